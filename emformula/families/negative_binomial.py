"""The negative binomial (NB2) family: alpha estimated per component, or fixed.

``Var(y) = mu + alpha mu^2``. By name (``family="negative_binomial"``) or
as ``NegativeBinomial()`` each component's alpha is estimated by maximum
likelihood, as statsmodels' discrete ``NegativeBinomial`` and R's
``MASS::glm.nb`` do (``alpha = 1 / theta``); a statsmodels
``NegativeBinomial(alpha=a)`` family keeps alpha fixed at ``a``, as a
statsmodels GLM does.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.families import links as sm_links

from ._numeric import TINY, log_factorial, log_gamma_ratio, log_rising_factorial
from .exponential import DiscreteFamily
from .parameters import FamilyParameter, ParameterDerivatives

__all__ = ["NegativeBinomial", "ALPHA"]

#: The NB2 overdispersion, ``Var(y) = mu + alpha mu^2``; the engine works on
#: ``log(alpha)``. Bounded away from 0 (the Poisson limit, where log(alpha)
#: has no maximum) and infinity.
ALPHA = FamilyParameter(
    "alpha",
    "log",
    lower=1e-8,
    upper=1e8,
    description="NB2 overdispersion: Var(y) = mu + alpha * mu^2",
    start=1.0,
)


class NegativeBinomial(DiscreteFamily):
    """NB2 components, ``Var(y) = mu + alpha mu^2``.

    Parameters
    ----------
    sm_family : statsmodels NegativeBinomial, optional
        Its link, and its alpha held fixed (as in a statsmodels GLM).
        Without it alpha is estimated, with the ``link`` given (log by
        default).
    link : statsmodels link, optional
        The link when alpha is estimated.

    Attributes
    ----------
    alpha : float or None
        The fixed overdispersion, or None when it is estimated.

    Examples
    --------
    >>> NegativeBinomial().parameters[0].name
    'alpha'
    >>> import statsmodels.api as sm
    >>> NegativeBinomial(sm.families.NegativeBinomial(alpha=0.5)).alpha
    0.5
    """

    name = "negative_binomial"
    statsmodels_class = sm_families.NegativeBinomial
    is_count = True

    def __init__(self, sm_family=None, link=None):
        estimated = sm_family is None
        if estimated:
            # alpha given explicitly: statsmodels warns when it is left out.
            sm_family = (
                sm_families.NegativeBinomial(alpha=1.0)
                if link is None
                else sm_families.NegativeBinomial(link=link, alpha=1.0)
            )
        elif link is not None:
            raise ValueError(
                "link= goes with an estimated alpha; give the link to the "
                "statsmodels family instead"
            )
        super().__init__(sm_family)
        self.alpha = None if estimated else float(self.sm_family.alpha)
        self.parameters = (ALPHA,) if estimated else ()

    @classmethod
    def from_name(cls, sm_family):
        """The family asked for by name: alpha estimated, with the link of
        ``sm_family``."""
        return cls(link=sm_family.link)

    @property
    def estimates_alpha(self):
        return self.alpha is None

    def __repr__(self):
        alpha = "estimated" if self.estimates_alpha else f"{self.alpha:g}"
        return f"NegativeBinomial(link={self.link_name}, alpha={alpha})"

    def _identity(self):
        return super()._identity() + (self.alpha,)

    # ------------------------------------------------------ log-density
    def loglike_constant(self, y, trials=1.0):
        """``-lgamma(y + 1)``, and with a fixed alpha also
        ``lgamma(y + 1/alpha) - lgamma(1/alpha)``."""
        if self.estimates_alpha:
            return -log_factorial(y)
        size = 1.0 / self.alpha
        return log_gamma_ratio(y, size) - special.gammaln(size)

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        """The log-density minus :meth:`loglike_constant` at the fixed alpha."""
        if self.estimates_alpha:
            raise TypeError(
                "this negative binomial estimates alpha: use log_kernel with the alpha values"
            )
        return _nb_mean_terms(y, mu, self.alpha)

    def log_kernel(self, y, mu, params, trials=1.0, eta=None):
        if not self.estimates_alpha:
            return self.loglike_kernel(y, mu, 1.0, trials, eta)
        (alpha,) = params
        alpha = np.asarray(alpha, dtype=float)
        return log_rising_factorial(1.0 / alpha, y) + _nb_mean_terms(y, mu, alpha)

    # ---------------------------------------------- derivatives in eta
    def _variance_terms(self, mu, alpha):
        """``V(mu) = mu + alpha mu^2`` and ``V'(mu)``."""
        return mu + alpha * mu * mu, 1.0 + 2.0 * alpha * mu

    def eta_derivatives_at(self, y, mu, params, trials=1.0, observed=True):
        """Score, information, IRLS weight and ``g'(mu)`` at alpha: NB2 with
        alpha known is an exponential family with variance function
        ``mu + alpha mu^2`` and unit dispersion."""
        if not self.estimates_alpha:
            return self.eta_derivatives(y, mu, trials, observed)
        (alpha,) = params
        with np.errstate(all="ignore"):
            if isinstance(self.link, sm_links.Log):
                one_am = 1.0 + alpha * mu
                score = (y - mu) / one_am
                weight = mu / one_am
                info = mu * (1.0 + alpha * y) / one_am**2 if observed else weight
                return score, info, weight, 1.0 / mu
            g1 = self.link.deriv(mu)
            v, v1 = self._variance_terms(mu, alpha)
            resid = y - mu
            weight = 1.0 / (v * g1**2)
            score = resid / (v * g1)
            if not observed:
                return score, weight, weight, g1
            g2 = self.link.deriv2(mu)
            info = weight + resid * (v1 * g1 + v * g2) / (v**2 * g1**3)
        return score, info, weight, g1

    def irls_terms(self, y, mu, params, trials=1.0):
        _, _, weight, link_deriv = self.eta_derivatives_at(y, mu, params, trials, observed=False)
        return weight, link_deriv

    # ------------------------------------------- the parameter alpha
    def parameter_derivatives(self, y, mu, params, trials=1.0):
        """Score and observed information of ``log(alpha)`` per row, and
        their cross term with eta.

        With ``r = 1 / alpha`` and ``u = 1 + alpha mu``:
        ``score = (psi(r) - psi(y + r) + log u) / alpha + (y - mu) / u``;
        ``info = score_A - (psi'(y + r) - psi'(r)) / alpha^2 - mu / u
        + alpha mu (y - mu) / u^2`` with ``score_A`` the first term of the
        score; ``cross = alpha (y - mu) / (u^2 g'(mu))``.
        """
        params = self._check_params(params)
        if not params:
            return super().parameter_derivatives(y, mu, params, trials)
        (alpha,) = params
        alpha = np.asarray(alpha, dtype=float)
        with np.errstate(all="ignore"):
            r = 1.0 / alpha
            u = 1.0 + alpha * mu
            resid = y - mu
            part = (special.digamma(r) - special.digamma(y + r) + np.log1p(alpha * mu)) / alpha
            score = part + resid / u
            info = (
                part
                - (special.polygamma(1, y + r) - special.polygamma(1, r)) / alpha**2
                - mu / u
                + alpha * mu * resid / u**2
            )
            g1 = 1.0 / mu if isinstance(self.link, sm_links.Log) else self.link.deriv(mu)
            cross = alpha * resid / (u**2 * g1)
        shape = np.broadcast_shapes(np.shape(score), np.shape(info), np.shape(cross))
        return ParameterDerivatives(
            np.broadcast_to(score, shape)[None],
            np.broadcast_to(info, shape)[None, None],
            np.broadcast_to(cross, shape)[None],
        )

    # ------------------------------------------------ distribution
    def variance_at(self, mu, params, trials=1.0):
        if not self.estimates_alpha:
            return super().variance_at(mu, params, trials)
        return self._variance_terms(mu, params[0])[0] / trials

    def unit_deviance_at(self, y, mu, params, trials=1.0):
        """``2 [y log(y / mu) - (y + 1/alpha) log((1 + alpha y) / (1 + alpha mu))]``."""
        if not self.estimates_alpha:
            return super().unit_deviance_at(y, mu, params, trials)
        alpha = np.asarray(params[0], dtype=float)
        with np.errstate(all="ignore"):
            return 2.0 * (
                special.xlogy(y, y)
                - special.xlogy(y, mu)
                - (y + 1.0 / alpha) * (np.log1p(alpha * y) - np.log1p(alpha * mu))
            )

    def simulate(self, mu, scale, trials, rng):
        return self._draw(mu, self.alpha, rng)

    def simulate_at(self, mu, params, trials, rng):
        alpha = self.alpha if not self.estimates_alpha else np.asarray(params[0], dtype=float)
        return self._draw(mu, alpha, rng)

    @staticmethod
    def _draw(mu, alpha, rng):
        return rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mu)).astype(float)

    def distribution(self, mu, scale=1.0, trials=1.0):
        return _nbinom(mu, self.alpha)

    def cdf_bounds_at(self, y, mu, params, trials=1.0, var_weights=1.0):
        if not self.estimates_alpha:
            return super().cdf_bounds_at(y, mu, params, trials, var_weights)
        return self._count_bounds(
            _nbinom(mu, np.asarray(params[0], dtype=float)), y, mu, trials, var_weights
        )

    def start_parameters(self):
        return (ALPHA.start,) if self.estimates_alpha else ()


def _nbinom(mu, alpha):
    return stats.nbinom(1.0 / alpha, 1.0 / (1.0 + alpha * np.asarray(mu, dtype=float)))


def _nb_mean_terms(y, mu, alpha):
    """``y log(alpha mu / (1 + alpha mu)) - log(1 + alpha mu) / alpha``:
    the terms of the NB2 log-density with the mean (broadcasts).

    Written as ``-y log1p(1 / (alpha mu))``: the textbook ``y log(alpha mu)
    - y log1p(alpha mu)`` cancels for large means, and ``y = 0`` with a mean
    that underflows stays 0 (xlog1py).
    """
    alpha_mu = alpha * np.asarray(mu, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = -special.xlog1py(y, 1.0 / alpha_mu) - np.log1p(alpha_mu) / alpha
    tiny = alpha_mu < TINY  # 1 / (a mu) overflows or has lost digits
    if np.any(tiny):
        y_b, mu_b, alpha_b = np.broadcast_arrays(y, mu, alpha)
        with np.errstate(divide="ignore"):
            out = np.where(tiny, special.xlogy(y_b, alpha_b) + special.xlogy(y_b, mu_b) - mu_b, out)
    return out[()]
