"""The inverse Gaussian family: a positive response with variance ``scale mu^3``."""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.genmod import families as sm_families

from ._numeric import LOG_2PI, empty_like_broadcast, entries_at, positions
from .exponential import DispersionFamily, is_power_link

__all__ = ["InverseGaussian"]


class InverseGaussian(DispersionFamily):
    """Inverse Gaussian components; canonical link ``1 / mu^2``."""

    name = "inverse_gaussian"
    statsmodels_class = sm_families.InverseGaussian

    def _link_is_canonical(self, link):
        return is_power_link(link, -2.0)

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        return _inverse_gaussian_log_density(y, mu, scale)

    def _squared_residual(self, y, mu, scale=1.0):
        return (y - mu) ** 2 / (y * mu**2 * scale)

    def simulate(self, mu, scale, trials, rng):
        return rng.wald(mu, 1.0 / scale)

    def distribution(self, mu, scale=1.0, trials=1.0):
        """scipy's ``invgauss(mu scale, scale=1/scale)``: mean ``mu``, variance
        ``scale mu^3``."""
        return stats.invgauss(mu * scale, scale=1.0 / scale)

    def _outside_support(self, y, trials):
        return y <= 0, "non-positive values"


def _inverse_gaussian_log_density(y, mu, scale):
    """Inverse Gaussian log-density, ``-(y - mu)^2 / (2 phi y mu^2) - log(2 pi phi y^3) / 2``.

    The quadratic term is ``t^2`` with ``t = ((y - mu) / mu) / sqrt(2 y phi)``
    and the logarithm a sum of logarithms: ``y mu^2 phi`` and ``y^3``
    under- or overflow long before the density does. Where ``t`` still
    overflows, or its denominator is near the sub-normal range, the
    quadratic term comes from logarithms.
    """
    y, mu, scale = (np.asarray(a, dtype=float) for a in (y, mu, scale))
    if max(y.ndim, mu.ndim, scale.ndim) == 0:  # numbers: the array code on one row
        return _inverse_gaussian_log_density(y[None], mu, scale)[0]
    with np.errstate(all="ignore"):
        root_y, root_scale = np.sqrt(2.0 * y), np.sqrt(scale)
        if np.any(np.isinf(root_y)):  # 2 y overflows
            root_y = np.sqrt(2.0) * np.sqrt(y)
        t = np.subtract(y, mu, out=empty_like_broadcast(y, mu))
        t /= mu
        t /= root_y
        t /= root_scale
        out = np.square(t)
        bad = ~np.isfinite(t)
        if np.min(root_y, initial=np.inf) * np.min(root_scale, initial=np.inf) < 1e-150:
            bad |= (root_y * root_scale) < 1e-150
        if bad.any():
            at = positions(bad)
            yb, mb, sb = (entries_at(a, at, out.shape) for a in (y, mu, scale))
            out[at] = np.exp(
                2.0 * (np.log(np.abs(yb - mb)) - np.log(mb)) - np.log(2.0) - np.log(yb) - np.log(sb)
            )
        np.subtract(-0.5 * (LOG_2PI + np.log(scale)), out, out=out)
        out -= 1.5 * np.log(y)
    return out
