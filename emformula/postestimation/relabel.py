"""The order of a mixture's components chosen by the user (flexmix's ``relabel``).

A fit puts its components in decreasing prior. A report may want them
ordered by a parameter (the class with the smallest intercept first) or
with a particular class as the reference of the concomitant model; the
labels are arbitrary, so any order is the same fit. :func:`relabel_order`
turns such a request into a permutation; the results' :meth:`relabel`
applies it to the estimates and posterior, and every standard error, test
and prediction is then computed in the new order (the mixing log-odds and
the concomitant coefficients are re-based on the new first component).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["relabel_order"]


def relabel_order(res, order=None, *, by=None, ascending=True, reference=None):
    """The permutation of the components that :meth:`EMGLMResults.relabel` applies.

    Parameters
    ----------
    res : EMGLMResults
    order : sequence of int or str, optional
        The components in their new order: numbers 1..K or names
        ``"comp1"``...
    by : str, optional
        Sort by ``"prior"`` or by a parameter: a coefficient's term name
        (``"x"``, ``"Intercept"``) or a family parameter's (``"alpha"``,
        ``"scale"``).
    ascending : bool, default True
        The direction of ``by``.
    reference : int or str, optional
        The component that becomes the first (the reference of the mixing
        log-odds and of the concomitant model); the others keep their order.

    Returns
    -------
    list of int
        0-based: new component ``j`` is old component ``order[j]``.
    """
    K = res.n_components
    given = [a for a in (order, by, reference) if a is not None]
    if len(given) != 1:
        raise ValueError("relabel takes exactly one of order=, by= or reference=")
    if order is not None:
        perm = [_component(res, k) for k in order]
        if sorted(perm) != list(range(K)):
            raise ValueError(f"order must name each of the {K} components once, got {order!r}")
        return perm
    if reference is not None:
        first = _component(res, reference)
        return [first] + [k for k in range(K) if k != first]
    values = _sort_key(res, by)
    if np.any(np.isnan(values)):
        raise ValueError(f"{by!r} is not estimated for every component")
    perm = np.argsort(values if ascending else -values, kind="stable")
    return [int(k) for k in perm]


def _component(res, label):
    """0-based position of a component given as 1..K or "compK"."""
    K = res.n_components
    names = res.component_names
    if isinstance(label, str) and label in names:
        return names.index(label)
    if isinstance(label, numbers.Integral) and not isinstance(label, bool) and 1 <= label <= K:
        return int(label) - 1
    raise ValueError(
        f"components are numbered 1..{K} (or named {names[0]}..{names[-1]}), got {label!r}"
    )


def _sort_key(res, by):
    if not isinstance(by, str):
        raise TypeError(f"by must be 'prior' or a parameter name, got {by!r}")
    if by == "prior":
        return np.asarray(res.prior, dtype=float)
    if by in res.params.index:
        return res.params.loc[by].to_numpy(dtype=float)
    family = res.family_params
    if family is not None and by in family.index:
        return family.loc[by].to_numpy(dtype=float)
    known = ["prior"] + list(res.params.index) + ([] if family is None else list(family.index))
    raise ValueError(f"by={by!r} is not 'prior' or a parameter; choose from {known}")
