"""The Poisson family: counts with variance equal to the mean."""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.families import links as sm_links

from ._numeric import MAX_ETA, empty_like_broadcast, log_factorial
from .exponential import DiscreteFamily

__all__ = ["Poisson"]


class Poisson(DiscreteFamily):
    """Poisson components, ``f(y) = mu^y exp(-mu) / y!``; canonical link log.

    Examples
    --------
    >>> import numpy as np
    >>> family = Poisson()
    >>> float(np.exp(family.loglike(np.array([2.0]), np.array([3.0])))[0])  # doctest: +ELLIPSIS
    0.224...
    """

    name = "poisson"
    statsmodels_class = sm_families.Poisson
    is_count = True

    def _link_is_canonical(self, link):
        return type(link) is sm_links.Log

    def loglike_constant(self, y, trials=1.0):
        """``-log(y!)``."""
        return -log_factorial(y)

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        """``y log(mu) - mu``; with the log link and ``eta`` given, ``y eta - mu``
        built in place (one allocation for the engine's n x K array)."""
        if eta is not None and type(self.link) is sm_links.Log:
            out = empty_like_broadcast(y, mu, eta)
            np.clip(eta, -MAX_ETA, MAX_ETA, out=out)
            out *= y
            out -= mu
            return out[()]  # a scalar for scalar arguments, as numpy would give
        return special.xlogy(y, mu) - mu

    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        """Closed forms for the log link (score ``y - mu``, information and
        IRLS weight ``mu``); the general formula for other links."""
        if not self.canonical:
            return super().eta_derivatives(y, mu, trials, observed)
        with np.errstate(all="ignore"):
            return y - mu, mu, mu, 1.0 / mu

    def irls_terms(self, y, mu, params, trials=1.0):
        """The log link's IRLS weight ``mu`` and ``g'(mu) = 1 / mu``, without
        the score :meth:`eta_derivatives` also forms (every M-step)."""
        if not self.canonical:
            return super().irls_terms(y, mu, params, trials)
        # Every mean the engine forms is at least the smallest normal double
        # (:meth:`mean` clips eta at -700, the starts add TINY), whose
        # reciprocal is finite: nothing to silence.
        return mu, 1.0 / mu

    def simulate(self, mu, scale, trials, rng):
        return rng.poisson(mu).astype(float)

    def distribution(self, mu, scale=1.0, trials=1.0):
        return stats.poisson(mu)
