"""The binomial family: a proportion of successes out of a number of trials."""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.families import links as sm_links

from ._numeric import EPS
from .exponential import DiscreteFamily

__all__ = ["Binomial"]


class Binomial(DiscreteFamily):
    """Binomial components of the proportion ``y`` of ``a`` trials (the
    prior weight); canonical link logit.

    statsmodels' Binomial keeps the number of trials as state (``n``, set by
    a GLM fit); the copy here forgets it, since the engine passes trials.
    """

    name = "binomial"
    statsmodels_class = sm_families.Binomial
    takes_trials = True

    def __init__(self, sm_family=None):
        super().__init__(sm_family)
        self.sm_family.n = 1

    def _link_is_canonical(self, link):
        return type(link) is sm_links.Logit

    def clip_mean(self, mu):
        """A probability kept ``eps`` away from 0 and 1."""
        return np.clip(mu, EPS, 1.0 - EPS)

    def mean_on_boundary(self, mu):
        """A probability within ``1e-10`` of 0 or 1 (separated rows)."""
        mu = np.asarray(mu, dtype=float)
        return np.minimum(mu, 1.0 - mu) <= 1e-10

    def start_mean(self, y, trials):
        return (trials * y + 0.5) / (trials + 1.0)

    def loglike_constant(self, y, trials=1.0):
        """``log C(a, a y)``."""
        successes = trials * y
        return (
            special.gammaln(trials + 1.0)
            - special.gammaln(successes + 1.0)
            - special.gammaln(trials - successes + 1.0)
        )

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        successes = trials * y
        return special.xlogy(successes, mu) + special.xlog1py(trials - successes, -mu)

    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        """Closed forms for the logit link; the general formula for others."""
        if not self.canonical:
            return super().eta_derivatives(y, mu, trials, observed)
        with np.errstate(all="ignore"):
            v = mu * (1.0 - mu)
            weight = trials * v
            return trials * (y - mu), weight, weight, 1.0 / v

    def unit_deviance(self, y, mu, trials=1.0):
        # A fresh statsmodels Binomial has n = 1: scale by our own trials.
        return self.sm_family._resid_dev(y, mu) * trials

    def simulate(self, mu, scale, trials, rng):
        n = np.asarray(trials)
        counts = rng.binomial(np.round(n).astype(np.int64), mu).astype(float)
        return np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)

    def distribution(self, mu, scale=1.0, trials=1.0):
        """The distribution of the number of successes ``a y``."""
        return stats.binom(np.round(trials), mu)

    def response_count(self, y, trials):
        return np.round(y * np.broadcast_to(trials, np.shape(y)))

    def _outside_support(self, y, trials):
        return (y < 0) | (y > 1), "proportions outside [0, 1] (or successes above trials)"
