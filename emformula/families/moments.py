"""Weighted moments that add up over pieces of the data.

The default dispersion floor (:func:`default_scale_floor`) is a fraction of
a variance of the response; on dask that variance is summed over
partitions, so it is kept as mergeable moments rather than as sums of
squares that cancel.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WeightedMoments", "default_scale_floor"]


class WeightedMoments:
    """Weighted count, mean and centred sum of squares of some values; adding
    two merges them (Chan, Golub and LeVeque), so the variance of data in
    pieces (dask partitions) keeps its precision where ``E[v^2] - E[v]^2``
    would cancel.

    Examples
    --------
    >>> whole = WeightedMoments([1.0, 2.0, 4.0], [1.0, 1.0, 2.0])
    >>> parts = WeightedMoments([1.0, 2.0], [1.0, 1.0]) + WeightedMoments([4.0], [2.0])
    >>> bool(np.isclose(whole.variance, parts.variance)), whole.variance
    (True, 1.6875)
    """

    def __init__(self, values=(), weights=()):
        values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
        self.weight = float(weights.sum())
        self.mean = float(weights @ values / self.weight) if self.weight > 0 else 0.0
        self.m2 = float(weights @ (values - self.mean) ** 2) if self.weight > 0 else 0.0

    def __add__(self, other):
        if not isinstance(other, WeightedMoments):
            return NotImplemented
        total = self.weight + other.weight
        merged = WeightedMoments()
        if total > 0:
            delta = other.mean - self.mean
            merged.weight = total
            merged.mean = self.mean + delta * other.weight / total
            merged.m2 = self.m2 + other.m2 + delta**2 * self.weight * other.weight / total
        return merged

    def __radd__(self, other):  # sum() starts from 0
        return self if isinstance(other, int) and other == 0 else self.__add__(other)

    @property
    def variance(self):
        return self.m2 / self.weight if self.weight > 0 else 0.0


def default_scale_floor(variance):
    """The smallest dispersion allowed by default: ``1e-8`` times the
    variance of :meth:`MixtureFamily.floor_moments` (``1e-12`` for constant
    data). It keeps a component that collapses onto a few points, where the
    likelihood is unbounded, at a finite dispersion."""
    return 1e-8 * max(float(variance), np.finfo(float).tiny) if variance > 0 else 1e-12
