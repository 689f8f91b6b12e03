"""The Gaussian family: a real response with a dispersion (the variance)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.genmod import families as sm_families

from ._numeric import LOG_2PI, empty_like_broadcast
from .exponential import DispersionFamily, is_power_link

__all__ = ["Gaussian"]


class Gaussian(DispersionFamily):
    """Gaussian components, variance ``scale`` per component; canonical
    link identity, where one IRLS step is weighted least squares (exact)."""

    name = "gaussian"
    statsmodels_class = sm_families.Gaussian

    def _link_is_canonical(self, link):
        return is_power_link(link, 1.0)

    @property
    def irls_is_exact(self):
        return self.canonical

    def clip_mean(self, mu):
        """Every real mean is allowed."""
        return mu

    def start_mean(self, y, trials):
        return np.asarray(y, dtype=float).copy()

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        scale = np.asarray(scale, dtype=float)
        out = empty_like_broadcast(y, mu, scale)
        # The residual is standardised before it is squared, and the
        # logarithm split, so that neither (y - mu)^2 nor 2 pi scale
        # overflows and a sub-normal scale (whose reciprocal is
        # infinite) is not turned into 0 * inf.
        np.subtract(y, mu, out=out)
        out *= 1.0 / (np.sqrt(2.0) * np.sqrt(scale))  # finite: sqrt(5e-324) = 2e-162
        out *= out
        np.subtract(-0.5 * (LOG_2PI + np.log(scale)), out, out=out)
        return out[()]

    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        """Closed forms for the identity link (score ``y - mu``, information
        1); the general formula for other links."""
        if not self.canonical:
            return super().eta_derivatives(y, mu, trials, observed)
        # A read-only view of one number: no n x K array of ones.
        ones = np.broadcast_to(1.0, np.broadcast(y, mu).shape)
        with np.errstate(all="ignore"):
            return y - mu, ones, ones, ones

    def _squared_residual(self, y, mu, scale=1.0):
        return (y - mu) ** 2 / scale

    def _floor_values(self, y):
        return y

    def simulate(self, mu, scale, trials, rng):
        return rng.normal(mu, np.sqrt(scale))

    def distribution(self, mu, scale=1.0, trials=1.0):
        return stats.norm(mu, np.sqrt(scale))
