"""The censored Gaussian (tobit) family: a normal response seen only within bounds.

A latent ``y* ~ N(mu, sigma^2)`` with ``mu = x'b`` is observed as
``y = lower`` when ``y* <= lower``, ``y = upper`` when ``y* >= upper`` and
``y*`` otherwise. ``family="tobit"`` is censoring below at 0, the model of
R's ``survreg(Surv(y, y > 0, type="left") ~ x, dist="gaussian")``;
``CensoredGaussian(lower=..., upper=...)`` sets other bounds. The
coefficients are those of the latent mean ``mu`` (``predict(type="linear")``,
survreg's linear predictor); ``predict`` and ``fittedvalues`` report the
mean of the observed, censored response, and Pearson residuals its
variance.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod.families import links as sm_links

from ._numeric import LOG_2PI
from .base import MixtureFamily
from .parameters import FamilyParameter, ParameterDerivatives

__all__ = ["CensoredGaussian", "SIGMA"]

#: The latent standard deviation; the engine works on ``log(sigma)``, which
#: is survreg's ``Log(scale)``.
SIGMA = FamilyParameter(
    "sigma",
    "log",
    lower=1e-150,
    upper=1e150,
    description="standard deviation of the latent normal response",
    start=1.0,
)


class CensoredGaussian(MixtureFamily):
    """Gaussian components censored at ``lower`` and ``upper`` (tobit).

    Parameters
    ----------
    lower, upper : float
        The censoring points (``-inf`` or ``inf`` for none on that side);
        responses must lie in ``[lower, upper]``, those on a bound count as
        censored there.

    Examples
    --------
    >>> import numpy as np
    >>> family = CensoredGaussian(lower=0.0)
    >>> np.round(np.exp(family.log_density(np.array([0.0]), np.array([0.0]), (1.0,))), 3)
    array([0.5])
    """

    name = "tobit"
    parameters = (SIGMA,)
    # Censored responses are atoms: quantile residuals are randomised there
    # (the uncensored ones have F(y-) = F(y)).
    is_discrete = True
    canonical = True
    newton_irls = True
    has_deviance = False
    mean_is_response = False

    def __init__(self, lower=0.0, upper=np.inf):
        lower, upper = float(lower), float(upper)
        if not lower < upper:
            raise ValueError(f"censoring needs lower < upper, got {lower} and {upper}")
        if np.isinf(lower) and np.isinf(upper):
            raise ValueError(
                "a censored Gaussian needs a finite lower or upper bound; "
                "without censoring use family='gaussian'"
            )
        self.lower, self.upper = lower, upper
        self.link = sm_links.Identity()

    def __repr__(self):
        return f"CensoredGaussian(lower={self.lower:g}, upper={self.upper:g})"

    @property
    def family_name(self):
        return "CensoredGaussian"

    def _identity(self):
        return (self.lower, self.upper)

    # ------------------------------------------------------------ the mean
    def mean(self, eta):
        return np.asarray(eta, dtype=float)

    def start_mean(self, y, trials):
        return np.asarray(y, dtype=float).copy()

    def _outside_support(self, y, trials):
        return (y < self.lower) | (y > self.upper), f"values outside [{self.lower}, {self.upper}]"

    def _sides(self, y):
        y = np.asarray(y, dtype=float)
        return y <= self.lower, y >= self.upper

    # -------------------------------------------------------- log-density
    def log_kernel(self, y, mu, params, trials=1.0, eta=None):
        (sigma,) = params
        y, mu, sigma = np.broadcast_arrays(
            np.asarray(y, float), np.asarray(mu, float), np.asarray(sigma, float)
        )
        left, right = self._sides(y)
        with np.errstate(all="ignore"):
            z = (y - mu) / sigma
            out = -np.log(sigma) - 0.5 * LOG_2PI - 0.5 * z * z
            if left.any():
                out = np.where(left, special.log_ndtr((self.lower - mu) / sigma), out)
            if right.any():
                out = np.where(right, special.log_ndtr((mu - self.upper) / sigma), out)
        return out[()]

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        return self.log_kernel(y, mu, (scale,), trials, eta)

    # ------------------------------------------------------- derivatives
    def _terms(self, y, mu, sigma):
        """Per row: the score and observed information of eta (= mu) and
        of ``t = log sigma``, and their cross term ``-d2 l / d eta d t``.

        Uncensored, ``z = (y - mu) / sigma``: ``z / sigma``, ``1 / sigma^2``,
        ``z^2 - 1``, ``2 z^2``, ``2 z / sigma``. Censored below, ``a = (lower
        - mu) / sigma`` and the inverse Mills ratio ``lam = phi(a) / Phi(a)``:
        ``-lam / sigma``, ``lam (a + lam) / sigma^2``, ``-a lam``,
        ``-a lam + a^2 lam (a + lam)``, ``(a lam (a + lam) - lam) / sigma``;
        censored above the same with ``b = (mu - upper) / sigma`` and the
        signs of the eta terms turned.
        """
        y, mu, sigma = np.broadcast_arrays(
            np.asarray(y, float), np.asarray(mu, float), np.asarray(sigma, float)
        )
        left, right = self._sides(y)
        with np.errstate(all="ignore"):
            z = (y - mu) / sigma
            s_eta, h_eta = z / sigma, np.ones_like(z) / sigma**2
            s_t, h_t, cross = z * z - 1.0, 2.0 * z * z, 2.0 * z / sigma
            for side, sign, bound in ((left, -1.0, self.lower), (right, 1.0, self.upper)):
                if not side.any():
                    continue
                a = sign * (mu - bound) / sigma
                lam = np.exp(-0.5 * a * a - 0.5 * LOG_2PI - special.log_ndtr(a))
                curv = lam * (a + lam)
                s_eta = np.where(side, sign * lam / sigma, s_eta)
                h_eta = np.where(side, curv / sigma**2, h_eta)
                s_t = np.where(side, -a * lam, s_t)
                h_t = np.where(side, -a * lam + a * a * curv, h_t)
                cross = np.where(side, sign * (lam - a * curv) / sigma, cross)
        return s_eta, h_eta, s_t, h_t, cross

    def eta_derivatives_at(self, y, mu, params, trials=1.0, observed=True):
        """Score and observed information of eta (the identity link); the
        observed information is the IRLS weight too (positive everywhere)."""
        s_eta, h_eta, *_ = self._terms(y, mu, params[0])
        return s_eta, h_eta, h_eta, np.ones_like(h_eta)

    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        return self.eta_derivatives_at(y, mu, (1.0,), trials, observed)

    def irls_terms(self, y, mu, params, trials=1.0):
        """Newton's step as IRLS: weight the observed information ``h`` and
        step ``score / h`` (``working_step``)."""
        s_eta, h_eta, *_ = self._terms(y, mu, params[0])
        return h_eta, np.ones_like(h_eta)

    def working_step(self, y, mu, params, trials=1.0):
        """``(weight, score / weight)``: the working response is ``eta +
        score / weight`` (for an exponential family ``(y - mu) g'(mu)``)."""
        s_eta, h_eta, *_ = self._terms(y, mu, params[0])
        with np.errstate(all="ignore"):
            return h_eta, s_eta / h_eta

    def parameter_derivatives(self, y, mu, params, trials=1.0):
        params = self._check_params(params)
        _, _, s_t, h_t, cross = self._terms(y, mu, params[0])
        return ParameterDerivatives(s_t[None], h_t[None, None], cross[None])

    # ------------------------------------------------------ distribution
    def _censored_moments(self, mu, sigma):
        """``E(y)`` and ``E(y^2)`` of the censored response.

        With ``a = (lower - mu) / sigma`` and ``b = (upper - mu) / sigma``:
        ``E y = lower Phi(a) + upper (1 - Phi(b)) + mu (Phi(b) - Phi(a)) +
        sigma (phi(a) - phi(b))`` and ``E y^2 = lower^2 Phi(a) + upper^2 (1 -
        Phi(b)) + (mu^2 + sigma^2) (Phi(b) - Phi(a)) + 2 mu sigma (phi(a) -
        phi(b)) + sigma^2 (a phi(a) - b phi(b))``; an infinite bound adds
        nothing.
        """
        mu, sigma = np.broadcast_arrays(np.asarray(mu, float), np.asarray(sigma, float))
        with np.errstate(all="ignore"):
            a, b = (self.lower - mu) / sigma, (self.upper - mu) / sigma
            Pa, Pb = special.ndtr(a), special.ndtr(b)
            fa, fb = stats.norm.pdf(a), stats.norm.pdf(b)
            afa = np.where(np.isfinite(a), a * fa, 0.0)
            bfb = np.where(np.isfinite(b), b * fb, 0.0)
            low = np.where(np.isfinite(self.lower), self.lower * Pa, 0.0)
            high = np.where(np.isfinite(self.upper), self.upper * (1.0 - Pb), 0.0)
            low2 = np.where(np.isfinite(self.lower), self.lower**2 * Pa, 0.0)
            high2 = np.where(np.isfinite(self.upper), self.upper**2 * (1.0 - Pb), 0.0)
            inside = Pb - Pa
            first = low + high + mu * inside + sigma * (fa - fb)
            second = (
                low2
                + high2
                + (mu * mu + sigma * sigma) * inside
                + 2.0 * mu * sigma * (fa - fb)
                + sigma * sigma * (afa - bfb)
            )
        return first, second

    def expected_response(self, mu, params):
        """The mean of the censored response (the latent mean is ``mu``)."""
        return self._censored_moments(mu, params[0])[0]

    def variance_at(self, mu, params, trials=1.0):
        """The variance of the censored response."""
        first, second = self._censored_moments(mu, params[0])
        return np.maximum(second - first * first, 0.0)

    def unit_deviance(self, y, mu, trials=1.0):
        raise NotImplementedError(
            "the deviance of censored data is not defined here: use quantile residuals"
        )

    def simulate_at(self, mu, params, trials, rng):
        latent = rng.normal(mu, params[0])
        return np.clip(latent, self.lower, self.upper)

    def simulate(self, mu, scale, trials, rng):
        return self.simulate_at(mu, (scale,), trials, rng)

    def cdf_bounds_at(self, y, mu, params, trials=1.0, var_weights=1.0):
        """``F(y-), F(y), 1 - F(y-), 1 - F(y)``: ``F(y-) = 0`` at the lower
        bound (an atom of mass ``Phi(a)``), ``F(y) = 1`` at the upper."""
        (sigma,) = params
        y, mu, sigma = np.broadcast_arrays(
            np.asarray(y, float), np.asarray(mu, float), np.asarray(sigma, float)
        )
        z = (y - mu) / sigma
        cdf, sf = stats.norm.cdf(z), stats.norm.sf(z)
        left, right = self._sides(y)
        return (
            np.where(left, 0.0, cdf),
            np.where(right, 1.0, cdf),
            np.where(left, 1.0, sf),
            np.where(right, 0.0, sf),
        )

    def cdf_bounds(self, y, mu, scale=1.0, trials=1.0, var_weights=1.0):
        return self.cdf_bounds_at(y, mu, (scale,), trials, var_weights)

    def start_parameters(self):
        return (SIGMA.start,)
