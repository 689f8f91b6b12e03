"""One reading of ``random_state`` for every entry point and backend."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["seed_sequence"]


def seed_sequence(random_state):
    """``random_state`` (None, a non-negative whole number, a Generator or a
    SeedSequence) as a SeedSequence; anything else is refused by name.

    Examples
    --------
    >>> seed_sequence(3).entropy
    3
    """
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if random_state is not None and (
        isinstance(random_state, bool)
        or not isinstance(random_state, numbers.Integral)
        or random_state < 0
    ):
        raise TypeError(
            "random_state must be None, a non-negative whole number or a "
            f"numpy Generator, got {random_state!r}"
        )
    return np.random.SeedSequence(None if random_state is None else int(random_state))
