"""Numerical helpers shared by the families' log-densities.

Nothing here knows a distribution: these are the constants and array tricks
that keep the log-densities finite at the edges of double precision and
cheap on the engine's ``n x K`` arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# Mean clipping keeps logs and divisions finite at the edge of the parameter
# space (a Poisson mean of 0, a binomial probability of exactly 0 or 1).
TINY = np.finfo(float).tiny
EPS = np.finfo(float).eps
# exp(709) is the largest finite double; eta beyond it is clipped so that an
# extreme start produces a huge but finite mean rather than inf.
MAX_ETA = 700.0
LOG_2PI = float(np.log(2.0 * np.pi))


#: Largest whole number whose log-factorial :func:`log_factorial` reads from
#: a table (the table then takes at most 8 MB).
LOG_FACTORIAL_TABLE = 1_000_000


def log_factorial(values):
    """``lgamma(values + 1)``, exactly as :func:`scipy.special.gammaln` gives it.

    Counts are whole numbers, mostly small, repeated many times: the
    log-factorials of 0..max(values) are computed once and looked up, about
    four times faster than ``gammaln`` on every row (a dask partition
    recomputes it on every pass over the data), when that table is no
    longer than the data. Anything else (fractions, negative values, a
    largest count beyond the data's length, NaN) goes through ``gammaln``
    itself.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 3.0, 3.0, 10.0])
    >>> bool(np.array_equal(log_factorial(y), special.gammaln(y + 1.0)))
    True
    >>> log_factorial(np.array([2.5])).round(4).tolist()
    [1.201]
    """
    values = np.asarray(values, dtype=float)
    if values.size > 64:
        with np.errstate(invalid="ignore"):  # NaN or beyond intp: not whole, below
            whole = values.astype(np.intp)
        top = whole.max()
        if (
            0 <= whole.min()
            and top <= min(LOG_FACTORIAL_TABLE, values.size)
            and np.array_equal(whole, values)
        ):
            table = special.gammaln(np.arange(top + 1, dtype=float) + 1.0)
            return table[whole]
    return special.gammaln(values + 1.0)


def empty_like_broadcast(*arrays):
    """An uninitialised float array of the broadcast shape of ``arrays``,
    column-major when an argument of that shape is (the engine's n x K
    arrays are)."""
    shapes = [np.shape(a) for a in arrays]
    shape = shapes[0]
    if any(other != shape for other in shapes[1:]):
        shape = np.broadcast_shapes(*shapes)
    if len(shape) < 2:  # the usual case (one component's rows): no order to choose
        return np.empty(shape)
    fortran = any(
        np.shape(a) == shape and len(shape) > 1 and np.isfortran(a)
        for a in arrays
        if isinstance(a, np.ndarray)
    )
    return np.empty(shape, order="F" if fortran else "C")


def positions(mask):
    """``np.nonzero(mask)``, through the flat view of a contiguous mask: on
    the engine's column-major ``n x K`` arrays boolean and ``nonzero``
    indexing take milliseconds, this a fraction of one."""
    order = "F" if mask.flags.f_contiguous and not mask.flags.c_contiguous else "C"
    flat = np.flatnonzero(mask.ravel(order=order))
    return np.unravel_index(flat, mask.shape, order=order)


def entries_at(a, at, shape):
    """Entries ``at`` of ``a`` broadcast to ``shape`` (no copy of ``a``)."""
    return np.broadcast_to(a, shape)[at]


def stirling_error(x):
    """``lgamma(x) - [(x - 1/2) log x - x + log(2 pi) / 2]``, accurate for all x > 0.

    For large x the difference is computed from its asymptotic series (the
    direct difference would cancel); for small x directly.
    """
    x = np.asarray(x, dtype=float)
    large = x >= 15.0
    safe = np.where(large, x, 15.0)
    inv2 = 1.0 / (safe * safe)
    series = (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0))) / safe
    small = np.where(large, 1.0, x)
    direct = (
        special.gammaln(small) - (small - 0.5) * np.log(small) + small - 0.5 * np.log(2.0 * np.pi)
    )
    return np.where(large, series, direct)


def log_gamma_ratio(y, a):
    """``lgamma(y + a) - lgamma(y + 1)`` for ``y >= 0`` and ``a > 0``.

    Directly for small arguments; for large ones from Stirling's series
    (:func:`stirling_error`) with the logarithms combined by ``log1p``,
    since the two log-gamma values (each ~ ``y log y``) cancel: at
    ``y = 1e15`` the direct difference is off by several units. ``a`` may
    be an array broadcasting against ``y``.
    """
    y = np.asarray(y, dtype=float)
    a = np.asarray(a, dtype=float)  # broadcasts: one value per component
    with np.errstate(all="ignore"):
        direct = special.gammaln(y + a) - special.gammaln(y + 1.0)
        large = (y + np.minimum(a, 1.0) >= 15.0) & np.isfinite(y)
        if not np.any(large):
            return direct
        yl = np.where(large, y, 15.0)
        c = a - 1.0
        series = (
            (yl + a - 0.5) * np.log1p(c / (yl + 1.0))
            + c * np.log(yl + 1.0)
            - c
            + stirling_error(yl + a)
            - stirling_error(yl + 1.0)
        )
    return np.where(large, series, direct)


def log_rising_factorial(r, y):
    """``lgamma(y + r) - lgamma(r)`` for ``r > 0`` and ``y >= 0`` (broadcasts).

    For ``r >= 15`` from Stirling's series: ``(r - 1/2) log1p(y / r) +
    y log(y + r) - y`` plus the series' error terms, so that a large ``r``
    (a negative binomial close to Poisson, ``r = 1 / alpha``) does not
    cancel two log-gamma values of size ``r log r``.
    """
    r = np.asarray(r, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(all="ignore"):
        direct = special.gammaln(y + r) - special.gammaln(r)
        large = (r >= 15.0) & np.isfinite(y)
        if not np.any(large):
            return direct
        rl = np.where(large, r, 15.0)
        series = (
            (rl - 0.5) * np.log1p(y / rl)
            + special.xlogy(y, y + rl)
            - y
            + stirling_error(y + rl)
            - stirling_error(rl)
        )
    return np.where(large, series, direct)
