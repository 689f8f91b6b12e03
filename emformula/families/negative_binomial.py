"""The negative binomial (NB2) family with a fixed alpha, as statsmodels' GLM has it."""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod import families as sm_families

from ._numeric import TINY, log_gamma_ratio
from .exponential import DiscreteFamily

__all__ = ["NegativeBinomial"]


class NegativeBinomial(DiscreteFamily):
    """NB2 components, ``Var(y) = mu + alpha mu^2``, with the statsmodels
    family's alpha held fixed (statsmodels' default alpha is 1).

    Attributes
    ----------
    alpha : float
        The fixed overdispersion.
    """

    name = "negative_binomial"
    statsmodels_class = sm_families.NegativeBinomial
    is_count = True

    def __init__(self, sm_family=None):
        super().__init__(sm_family)
        self.alpha = float(self.sm_family.alpha)

    def _identity(self):
        return super()._identity() + (self.alpha,)

    def loglike_constant(self, y, trials=1.0):
        """``lgamma(y + 1/alpha) - lgamma(y + 1) - lgamma(1/alpha)``."""
        size = 1.0 / self.alpha
        return log_gamma_ratio(y, size) - special.gammaln(size)

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        # y log(a mu / (1 + a mu)) as -y log1p(1 / (a mu)): the textbook
        # y log(a mu) - y log1p(a mu) cancels for large means, and
        # y = 0 with a mean that underflows stays 0 (xlog1py).
        alpha = self.alpha
        alpha_mu = alpha * np.asarray(mu, dtype=float)
        with np.errstate(divide="ignore"):
            out = -special.xlog1py(y, 1.0 / alpha_mu) - np.log1p(alpha_mu) / alpha
        tiny = alpha_mu < TINY  # 1 / (a mu) overflows or has lost digits
        if np.any(tiny):
            y_b, mu_b = np.broadcast_arrays(y, mu)
            with np.errstate(divide="ignore"):
                out = np.where(tiny, special.xlogy(y_b, alpha) + special.xlogy(y_b, mu_b)
                               - alpha_mu / alpha, out)
        return out[()]

    def simulate(self, mu, scale, trials, rng):
        alpha = self.alpha
        return rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mu)).astype(float)

    def distribution(self, mu, scale=1.0, trials=1.0):
        alpha = self.alpha
        return stats.nbinom(1.0 / alpha, 1.0 / (1.0 + alpha * mu))
