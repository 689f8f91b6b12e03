"""Exponential-family building blocks for the EM engine.

One :class:`MixtureFamily` wraps a statsmodels family instance (its link and
variance function drive IRLS) and adds what a mixture fit needs beyond
statsmodels: the complete log-density with every constant, the maximum
likelihood dispersion update, and the per-row score and *observed*
information of ``eta`` and ``log(scale)`` used by Louis' method.

Every family handled here is an exponential dispersion family

    log f(y; mu, phi) = (a / phi) * (y * theta - b(theta)) + c(y, phi, a)

with prior weight ``a`` (the number of binomial trials, else 1), so the
derivatives with respect to the linear predictor have one general form; only
the log-density itself and the dispersion derivatives are family specific.

All functions broadcast: ``mu`` may be ``(n,)`` or ``(n, K)`` with ``scale``
of shape ``(K,)``, which is how the E-step evaluates every component at once.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
from scipy import special
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.families import links as sm_links

__all__ = ["MixtureFamily", "as_family", "FAMILY_NAMES", "LINK_NAMES"]

#: Family names accepted wherever a family is asked for.
FAMILY_NAMES = {
    "poisson": sm_families.Poisson,
    "binomial": sm_families.Binomial,
    "gaussian": sm_families.Gaussian,
    "normal": sm_families.Gaussian,
    "gamma": sm_families.Gamma,
    "inverse_gaussian": sm_families.InverseGaussian,
    "negative_binomial": sm_families.NegativeBinomial,
}

#: Link names accepted by :func:`as_family` (statsmodels link classes).
LINK_NAMES = {
    "log": sm_links.Log,
    "logit": sm_links.Logit,
    "probit": sm_links.Probit,
    "cloglog": sm_links.CLogLog,
    "loglog": sm_links.LogLog,
    "cauchy": sm_links.Cauchy,
    "identity": sm_links.Identity,
    "inverse": sm_links.InversePower,
    "inverse_power": sm_links.InversePower,
    "inverse_squared": sm_links.InverseSquared,
    "sqrt": sm_links.Sqrt,
}

# Mean clipping keeps logs and divisions finite at the edge of the parameter
# space (a Poisson mean of 0, a binomial probability of exactly 0 or 1).
_TINY = np.finfo(float).tiny
_EPS = np.finfo(float).eps
# exp(709) is the largest finite double; eta beyond it is clipped so that an
# extreme start produces a huge but finite mean rather than inf.
_MAX_ETA = 700.0
_LOG_2PI = float(np.log(2.0 * np.pi))


def as_family(family, link=None):
    """Return a :class:`MixtureFamily` from a name or a statsmodels family.

    Parameters
    ----------
    family : str or statsmodels.genmod.families.Family or MixtureFamily
        ``"poisson"``, ``"binomial"``, ``"gaussian"``, ``"gamma"``,
        ``"inverse_gaussian"``, ``"negative_binomial"``, or an instance of the
        corresponding statsmodels family with any link statsmodels allows.
    link : str or statsmodels link, optional
        Only with a family name: the link to use instead of the canonical
        one (``"log"``, ``"identity"``, ``"logit"``, ...).

    Returns
    -------
    MixtureFamily

    Examples
    --------
    >>> import statsmodels.api as sm
    >>> as_family("gamma", link="log").link_name
    'Log'
    >>> as_family(sm.families.Poisson()).name
    'poisson'
    """
    if isinstance(family, MixtureFamily):
        if link is not None:
            raise ValueError("link= is only accepted together with a family name")
        return family
    if isinstance(family, str):
        key = family.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in FAMILY_NAMES:
            raise ValueError(
                f"unknown family {family!r}; choose one of "
                f"{', '.join(sorted(set(FAMILY_NAMES) - {'normal'}))}"
            )
        kwargs = {}
        if link is not None:
            kwargs["link"] = _as_link(link)
        try:
            sm_family = FAMILY_NAMES[key](**kwargs)
        except ValueError:
            allowed = ", ".join(c.__name__ for c in FAMILY_NAMES[key].links)
            raise ValueError(f"link {link!r} is not allowed for family {family!r}; statsmodels "
                             f"allows {allowed}") from None
        return MixtureFamily(sm_family)
    if isinstance(family, sm_families.Family):
        if link is not None:
            raise ValueError("link= is only accepted together with a family name; "
                             "give the link to the statsmodels family instead")
        return MixtureFamily(family)
    raise TypeError(
        f"family must be a name or a statsmodels family instance, got {type(family).__name__}"
    )


def _as_link(link):
    if isinstance(link, sm_links.Link):
        return link
    if isinstance(link, str):
        key = link.strip().lower()
        if key not in LINK_NAMES:
            raise ValueError(f"unknown link {link!r}; choose one of {', '.join(sorted(LINK_NAMES))}")
        return LINK_NAMES[key]()
    raise TypeError(f"link must be a name or a statsmodels link instance, got {type(link).__name__}")


class MixtureFamily:
    """A statsmodels family plus what EM and Louis' method need.

    Parameters
    ----------
    sm_family : statsmodels.genmod.families.Family
        Copied, so the caller's instance is never changed.

    Attributes
    ----------
    name : str
        ``"poisson"``, ``"binomial"``, ``"gaussian"``, ``"gamma"``,
        ``"inverse_gaussian"`` or ``"negative_binomial"``.
    estimates_scale : bool
        Whether each component has a dispersion estimated by maximum
        likelihood (gaussian, gamma, inverse gaussian).
    """

    _NAMES = {
        sm_families.Poisson: "poisson",
        sm_families.Binomial: "binomial",
        sm_families.Gaussian: "gaussian",
        sm_families.Gamma: "gamma",
        sm_families.InverseGaussian: "inverse_gaussian",
        sm_families.NegativeBinomial: "negative_binomial",
    }

    def __init__(self, sm_family):
        kind = type(sm_family)
        if kind not in self._NAMES:
            raise TypeError(
                f"family {kind.__name__} is not supported: its density is needed for the "
                f"mixture likelihood; use one of {', '.join(c.__name__ for c in self._NAMES)}"
            )
        # statsmodels' Binomial keeps the number of trials as state: never share
        # it, and forget what a previous GLM fit left there (we pass trials).
        self.sm_family = copy.deepcopy(sm_family)
        if isinstance(self.sm_family, sm_families.Binomial):
            self.sm_family.n = 1
        self.name = self._NAMES[kind]
        self.link = self.sm_family.link
        self.variance = self.sm_family.variance
        self.estimates_scale = self.name in ("gaussian", "gamma", "inverse_gaussian")
        self.alpha = float(getattr(self.sm_family, "alpha", np.nan))
        self.canonical = _is_canonical(self.name, self.link)

    def floor_moments(self, y, weights):
        """Weighted moments of the values whose variance sets the default
        dispersion floor (:func:`default_scale_floor`): the response for the
        Gaussian, its logarithm for gamma and inverse Gaussian; rows without
        weight left out, frequency weights counted as duplicated rows."""
        keep = weights > 0
        values = y[keep] if self.name == "gaussian" else np.log(y[keep])
        return WeightedMoments(values, weights[keep])

    @property
    def irls_is_exact(self):
        """Whether one IRLS step is the exact maximiser of a component's Q:
        Gaussian with the identity link (weighted least squares). A property,
        not an attribute, so that families pickled before it existed work."""
        return self.canonical and self.name == "gaussian"

    # ------------------------------------------------------------------ names
    @property
    def link_name(self):
        """Name of the link class, as statsmodels prints it."""
        return type(self.link).__name__

    @property
    def family_name(self):
        """Name of the statsmodels family class, as statsmodels prints it."""
        return type(self.sm_family).__name__

    def __repr__(self):
        return f"MixtureFamily({self.family_name}, link={self.link_name})"

    def __eq__(self, other):
        return (isinstance(other, MixtureFamily) and self.name == other.name
                and self.link_name == other.link_name
                and (self.name != "negative_binomial" or self.alpha == other.alpha))

    __hash__ = None

    # ------------------------------------------------------------- the mean
    def mean(self, eta):
        """Inverse link with eta clipped so the mean stays finite."""
        if isinstance(self.link, sm_links.Log):
            return np.exp(np.clip(eta, -_MAX_ETA, _MAX_ETA))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mu = self.link.inverse(eta)
        return self.clip_mean(mu)

    def clip_mean(self, mu):
        """Clip a mean into the open support of the family."""
        if self.name == "binomial":
            return np.clip(mu, _EPS, 1.0 - _EPS)
        if self.name == "gaussian":
            return mu
        return np.clip(mu, _TINY, None)

    def start_mean(self, y, trials):
        """A starting mean from the data (as statsmodels' ``starting_mu``)."""
        if self.name == "binomial":
            return (trials * y + 0.5) / (trials + 1.0)
        if self.name == "gaussian":
            return np.asarray(y, dtype=float).copy()
        return (y + np.average(y)) / 2.0 + _TINY

    # -------------------------------------------------------- log-density
    def loglike(self, y, mu, scale=1.0, trials=1.0):
        """Log-density of every row with all constants (broadcasts).

        Equals statsmodels' ``family.loglike_obs`` (binomial: with the number
        of trials that ``family.initialize`` would set). It is
        :meth:`loglike_kernel` plus :meth:`loglike_constant`.
        """
        constant = self.loglike_constant(y, trials)
        return self.loglike_kernel(y, mu, scale, trials) + constant

    def loglike_constant(self, y, trials=1.0):
        """The part of the log-density that depends on the data alone.

        EM evaluates the log-density thousands of times on the same rows;
        for the count families the log-gamma terms cost more than the rest,
        so the engine computes them once per data set. Zero for the
        continuous families, whose constants involve the dispersion.
        """
        name = self.name
        if name == "poisson":
            return -special.gammaln(y + 1.0)
        if name == "binomial":
            successes = trials * y
            return (special.gammaln(trials + 1.0) - special.gammaln(successes + 1.0)
                    - special.gammaln(trials - successes + 1.0))
        if name == "negative_binomial":
            size = 1.0 / self.alpha
            return _log_gamma_ratio(y, size) - special.gammaln(size)
        return np.zeros(np.shape(y))

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        """Log-density minus :meth:`loglike_constant`.

        ``eta`` (the linear predictor of ``mu``) lets the Poisson family with
        the log link skip the logarithm: ``y log(mu) = y eta``. Returns a
        numpy array of the broadcast shape of the arguments (pandas inputs
        are not given back as pandas objects).
        """
        name = self.name
        # The n x K arrays of the two common cases are built in place: one
        # allocation instead of one per operation.
        if name == "poisson":
            if eta is not None and self.link_name == "Log":
                out = _empty_like_broadcast(y, mu, eta)
                np.clip(eta, -_MAX_ETA, _MAX_ETA, out=out)
                out *= y
                out -= mu
                return out[()]  # a scalar for scalar arguments, as numpy would give
            return special.xlogy(y, mu) - mu
        if name == "binomial":
            successes = trials * y
            return special.xlogy(successes, mu) + special.xlog1py(trials - successes, -mu)
        if name == "negative_binomial":
            # y log(a mu / (1 + a mu)) as -y log1p(1 / (a mu)): the textbook
            # y log(a mu) - y log1p(a mu) cancels for large means, and
            # y = 0 with a mean that underflows stays 0 (xlog1py).
            alpha = self.alpha
            alpha_mu = alpha * np.asarray(mu, dtype=float)
            with np.errstate(divide="ignore"):
                out = -special.xlog1py(y, 1.0 / alpha_mu) - np.log1p(alpha_mu) / alpha
            tiny = alpha_mu < _TINY  # 1 / (a mu) overflows or has lost digits
            if np.any(tiny):
                y_b, mu_b = np.broadcast_arrays(y, mu)
                with np.errstate(divide="ignore"):
                    out = np.where(tiny, special.xlogy(y_b, alpha) + special.xlogy(y_b, mu_b)
                                   - alpha_mu / alpha, out)
            return out[()]
        if name == "gaussian":
            scale = np.asarray(scale, dtype=float)
            out = _empty_like_broadcast(y, mu, scale)
            # The residual is standardised before it is squared, and the
            # logarithm split, so that neither (y - mu)^2 nor 2 pi scale
            # overflows and a sub-normal scale (whose reciprocal is
            # infinite) is not turned into 0 * inf.
            np.subtract(y, mu, out=out)
            out *= 1.0 / (np.sqrt(2.0) * np.sqrt(scale))  # finite: sqrt(5e-324) = 2e-162
            out *= out
            np.subtract(-0.5 * (_LOG_2PI + np.log(scale)), out, out=out)
            return out[()]
        if name == "gamma":
            return _gamma_log_density(y, mu, scale)
        if name == "inverse_gaussian":
            return _inverse_gaussian_log_density(y, mu, scale)
        raise AssertionError(f"no log-density for {name}")  # unreachable: checked at init

    # ------------------------------------------------- IRLS and derivatives
    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        """Per-row quantities of the linear predictor, without the dispersion.

        Returns ``(score, info, irls_weight, link_deriv)`` where, for
        ``log f`` with unit dispersion, ``score = d log f / d eta``,
        ``info = -d^2 log f / d eta^2`` (observed; with ``observed=False``
        the expected information, which is the IRLS weight),
        ``irls_weight = a / (V g'^2)`` and ``link_deriv = g'(mu)``. Divide
        score and information by the dispersion for the actual density.
        The arrays may be read-only views (the Gaussian's constant ones):
        use them, do not write into them.
        """
        fast = self._canonical_fast_path(y, mu, trials)
        if fast is not None:
            return fast
        # At the edge of the mean's range (a gamma mean clipped to tiny under
        # the inverse link) these overflow; callers drop non-finite rows.
        with np.errstate(all="ignore"):
            g1 = self.link.deriv(mu)
            v = self.variance(mu)
            resid = y - mu
            irls_weight = trials / (v * g1 ** 2)
            score = trials * resid / (v * g1)
            if not observed or self.canonical:
                return score, irls_weight, irls_weight, g1
            g2 = self.link.deriv2(mu)
            v1 = self.variance.deriv(mu)
            info = irls_weight + trials * resid * (v1 * g1 + v * g2) / (v ** 2 * g1 ** 3)
        return score, info, irls_weight, g1

    def _canonical_fast_path(self, y, mu, trials):
        """Closed forms for Poisson-log, Binomial-logit and Gaussian-identity.

        The generic path calls statsmodels' link derivative and variance
        function (each clips and allocates); these three cases, the most
        common by far, reduce to a line each. Same values as the generic
        path with unit prior weights (a test compares them).
        """
        if not self.canonical:
            return None
        with np.errstate(all="ignore"):
            # Trials (prior weights) exist only for the binomial family;
            # the engine passes ones for every other family.
            if self.name == "poisson":
                return y - mu, mu, mu, 1.0 / mu
            if self.name == "binomial":
                v = mu * (1.0 - mu)
                weight = trials * v
                return trials * (y - mu), weight, weight, 1.0 / v
            if self.name == "gaussian":
                # A read-only view of one number: no n x K array of ones.
                ones = np.broadcast_to(1.0, np.broadcast(y, mu).shape)
                return y - mu, ones, ones, ones
        return None

    # ----------------------------------------------------------- dispersion
    def mle_scale(self, y, mu, weight):
        """Maximum likelihood dispersion given means and row weights.

        ``weight`` is the frequency weight times the posterior. Returns 1 for
        families without a dispersion. The work is split in two so that data
        in pieces (dask partitions) can add :meth:`scale_statistic` over the
        pieces and solve once with :meth:`scale_from_statistic`.
        """
        if not self.estimates_scale:
            return 1.0
        return self.scale_from_statistic(self.scale_statistic(y, mu, weight) / weight.sum())

    def scale_statistic(self, y, mu, weight):
        """The weighted sum the ML dispersion depends on.

        Gaussian: ``sum w (y - mu)^2``; inverse gaussian:
        ``sum w (y - mu)^2 / (y mu^2)``; gamma: ``-sum w (1 + log(y/mu) - y/mu)``.
        Rows without weight are left out (a mean at the edge of its range
        there would give 0 * inf).
        """
        if self.name in ("gaussian", "inverse_gaussian"):
            value = self._mean_square(y, mu, weight)
            if not np.isfinite(value):
                keep = weight > 0
                value = self._mean_square(y[keep], mu[keep], weight[keep])
            return float(value)
        with np.errstate(all="ignore"):
            ratio = y / mu
            terms = 1.0 + np.log(ratio) - ratio
        keep = weight > 0
        return -float(np.dot(weight[keep], terms[keep]))

    def scale_from_statistic(self, mean_statistic):
        """ML dispersion from ``scale_statistic / sum(weight)``."""
        d = float(mean_statistic)
        if self.name in ("gaussian", "inverse_gaussian"):
            return d
        # Gamma: the shape nu = 1/phi solves log(nu) - digamma(nu) = d with
        # d >= 0; Newton on log(nu) converges in a handful of steps from the
        # approximation of Minka (2002).
        if not d > 1e-12:
            return 1e-12
        if not d < 1e10:
            # Means far from the data (clipped at the edge of their range):
            # log(nu) - digamma(nu) ~ 1/nu for small nu, so phi ~ d.
            return min(d, 1e300)
        nu = (3.0 - d + np.sqrt((d - 3.0) ** 2 + 24.0 * d)) / (12.0 * d)
        log_nu = np.log(nu)
        for _ in range(100):
            nu = np.exp(log_nu)
            f = log_nu - special.digamma(nu) - d
            fprime = 1.0 - nu * special.polygamma(1, nu)
            step = f / fprime
            log_nu -= step
            if abs(step) < 1e-14:
                break
        return float(np.exp(-log_nu))

    def _mean_square(self, y, mu, weight):
        """``sum w (y - mu)^2`` (gaussian) or ``sum w (y - mu)^2 / (y mu^2)``."""
        with np.errstate(all="ignore"):
            if self.name == "gaussian":
                return np.dot(weight, (y - mu) ** 2)
            return np.dot(weight, (y - mu) ** 2 / (y * mu ** 2))

    def logscale_derivatives(self, y, mu, scale):
        """First and minus second derivative of log f in ``log(scale)``.

        Returns ``(score, info)``, both per row; zeros when the family has no
        dispersion. The cross term with eta is ``info_eta_logscale = score_eta``
        for every exponential dispersion family (see :mod:`emformula.inference`).
        """
        with np.errstate(all="ignore"):
            return self._logscale_derivatives(y, mu, scale)

    def _logscale_derivatives(self, y, mu, scale):
        if self.name in ("gaussian", "inverse_gaussian"):
            if self.name == "gaussian":
                q = (y - mu) ** 2 / scale
            else:
                q = (y - mu) ** 2 / (y * mu ** 2 * scale)
            return 0.5 * q - 0.5, 0.5 * q
        if self.name == "gamma":
            nu = 1.0 / scale
            ratio = y / mu
            g = np.log(nu * ratio) + 1.0 - ratio - special.digamma(nu)
            score = -nu * g
            second = nu * g + nu * (1.0 - nu * special.polygamma(1, nu))
            return score, -second
        zeros = np.zeros(np.broadcast(y, mu).shape)
        return zeros, zeros

    # ------------------------------------------------------------ deviance
    def unit_deviance(self, y, mu, trials=1.0):
        """Unit deviance per row (statsmodels' ``_resid_dev``, unit dispersion)."""
        fam = self.sm_family
        if self.name == "binomial":
            # A fresh statsmodels Binomial has n = 1: scale by our own trials.
            return fam._resid_dev(y, mu) * trials
        return fam._resid_dev(y, mu)

    def simulate(self, mu, scale, trials, rng):
        """Draw one response per row from the family (binomial: a proportion).

        Parameters
        ----------
        mu, scale, trials : ndarray (n,)
        rng : numpy Generator
        """
        name = self.name
        if name == "poisson":
            return rng.poisson(mu).astype(float)
        if name == "binomial":
            n = np.asarray(trials)
            counts = rng.binomial(np.round(n).astype(np.int64), mu).astype(float)
            return np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)
        if name == "gaussian":
            return rng.normal(mu, np.sqrt(scale))
        if name == "gamma":
            return rng.gamma(1.0 / scale, mu * scale)
        if name == "inverse_gaussian":
            return rng.wald(mu, 1.0 / scale)
        alpha = self.alpha
        return rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mu)).astype(float)

    def check_response(self, y, trials, name="response"):
        """Raise a ValueError naming the rows where y is outside the support."""
        y = np.asarray(y, dtype=float)
        bad = None
        if self.name in ("poisson", "negative_binomial"):
            bad = y < 0
            what = "negative counts"
        elif self.name == "binomial":
            bad = (y < 0) | (y > 1)
            what = "proportions outside [0, 1] (or successes above trials)"
        elif self.name in ("gamma", "inverse_gaussian"):
            bad = y <= 0
            what = "non-positive values"
        if bad is not None and bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{name} has {what} for the {self.name} family at "
                f"{bad.sum()} row(s), first at positions {rows[:5].tolist()}"
            )
        if self.name in ("poisson", "negative_binomial"):
            if np.any(y != np.round(y)):
                warnings.warn(
                    f"{name} has non-integer values for the {self.name} family; "
                    "the log-likelihood is then a quasi-likelihood with the "
                    "gamma-function continuation", UserWarning, stacklevel=4)


def _stirling_error(x):
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
    direct = (special.gammaln(small) - (small - 0.5) * np.log(small) + small
              - 0.5 * np.log(2.0 * np.pi))
    return np.where(large, series, direct)


def _gamma_log_density(y, mu, scale):
    """Gamma log-density with mean ``mu`` and dispersion ``scale`` (shape 1/scale).

    Written as ``-nu d(r) - log(scale)/2 - log(2 pi)/2 - stirlerr(nu) - log y``
    with ``r = y / mu``, ``nu = 1 / scale`` and ``d(r) = r - 1 - log r``: the
    textbook form ``nu log(nu r) - nu r - lgamma(nu)`` cancels terms of size
    ``nu log(nu)`` and loses ~1e-10 of the log-likelihood when the shape is
    large (precise data). ``d`` is evaluated where each form is accurate, so
    the density is finite wherever it is representable:

    * ``u - log1p(u)`` with ``u = (y - mu) / mu`` (``y - mu`` is exact when
      ``y`` and ``mu`` are close), for ``r >= 0.01`` (the rounding of ``u``,
      ``eps``, is then below ``1e-13`` of ``d``);
    * a series where ``|u| < 0.01`` (there ``u - log1p(u)`` cancels to
      ``u^2 / 2``);
    * ``r - 1 - log r`` for ``r < 0.01``, with ``log r = log y - log mu``
      where ``r`` is not a normal number: ``log1p(y / mu - 1)`` is
      ``log1p(-1) = -inf`` once ``y / mu`` is below half the machine epsilon,
      so a response of 1e-20 gave a log-likelihood of -inf (issue 14);
    * where ``r`` overflows, ``nu d ~ nu r = exp(log y - log mu - log scale)``.

    Only ``y``, ``mu`` and the result take the shape of the data; terms of
    the dispersion alone stay at its shape (``(1, K)`` in the E-step).
    """
    y, mu, scale = (np.asarray(a, dtype=float) for a in (y, mu, scale))
    if max(y.ndim, mu.ndim, scale.ndim) == 0:  # numbers: the array code on one row
        return _gamma_log_density(y[None], mu, scale)[0]
    with np.errstate(all="ignore"):
        u = np.subtract(y, mu, out=_empty_like_broadcast(y, mu))
        u /= mu
        out = np.log1p(u)
        np.subtract(u, out, out=out)
        # d < 5e-5 is |u| < 0.00993 (u < 0) or 0.01003 (u > 0): one pass
        # where abs(u) < 0.01 takes two.
        for mask, fix in ((out < 5e-5, _gamma_near), (u < -0.99, _gamma_low)):
            if mask.any():
                at = _positions(mask)
                out[at] = fix(u, y, mu, at)
        out *= 1.0 / scale  # nu d
        huge = np.isinf(u)
        if huge.any():  # r overflows: nu d = nu r to rounding, from logs
            at = _positions(huge)
            out[at] = np.exp(np.log(_at(y, at, u.shape)) - np.log(_at(mu, at, u.shape))
                             - np.log(_at(scale, at, u.shape)))
        np.subtract(-0.5 * (np.log(scale) + _LOG_2PI) - _stirling_error(1.0 / scale), out,
                    out=out)
        out -= np.log(y)
    return out


def _positions(mask):
    """``np.nonzero(mask)``, through the flat view of a contiguous mask: on
    the engine's column-major ``n x K`` arrays boolean and ``nonzero``
    indexing take milliseconds, this a fraction of one."""
    order = "F" if mask.flags.f_contiguous and not mask.flags.c_contiguous else "C"
    flat = np.flatnonzero(mask.ravel(order=order))
    return np.unravel_index(flat, mask.shape, order=order)


def _at(a, at, shape):
    """Entries ``at`` of ``a`` broadcast to ``shape`` (no copy of ``a``)."""
    return np.broadcast_to(a, shape)[at]


def _gamma_near(u, y, mu, at):
    """``d = u - log1p(u)`` for ``|u| < 0.0105``: Loader's (2000) series for
    the saddle-point deviance. With ``v = u / (2 + u)``,
    ``log1p(u) = 2 atanh(v)`` and ``d = u v - 2 (v^3/3 + v^5/5 + ...)``;
    ``|v| < 0.0053``, so four terms reach the rounding error."""
    u = u[at]
    v = u / (2.0 + u)
    v2 = v * v
    return u * v - 2.0 * v * v2 * (1.0 / 3.0 + v2 * (1.0 / 5.0 + v2 * (1.0 / 7.0 + v2 / 9.0)))


def _gamma_low(u, y, mu, at):
    """``d = r - 1 - log r`` for ``r < 0.01``."""
    y, mu = _at(y, at, u.shape), _at(mu, at, u.shape)
    r = y / mu
    log_r = np.log(r)
    lost = r < _TINY  # r underflowed or is sub-normal (digits lost)
    if lost.any():
        log_r[lost] = np.log(y[lost]) - np.log(mu[lost])
    return r - 1.0 - log_r


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
        t = np.subtract(y, mu, out=_empty_like_broadcast(y, mu))
        t /= mu
        t /= root_y
        t /= root_scale
        out = np.square(t)
        bad = ~np.isfinite(t)
        if np.min(root_y, initial=np.inf) * np.min(root_scale, initial=np.inf) < 1e-150:
            bad |= (root_y * root_scale) < 1e-150
        if bad.any():
            at = _positions(bad)
            yb, mb, sb = (_at(a, at, out.shape) for a in (y, mu, scale))
            out[at] = np.exp(2.0 * (np.log(np.abs(yb - mb)) - np.log(mb))
                             - np.log(2.0) - np.log(yb) - np.log(sb))
        np.subtract(-0.5 * (_LOG_2PI + np.log(scale)), out, out=out)
        out -= 1.5 * np.log(y)
    return out


def _log_gamma_ratio(y, a):
    """``lgamma(y + a) - lgamma(y + 1)`` for ``y >= 0`` and ``a > 0``.

    Directly for small arguments; for large ones from Stirling's series
    (:func:`_stirling_error`) with the logarithms combined by ``log1p``,
    since the two log-gamma values (each ~ ``y log y``) cancel: at
    ``y = 1e15`` the direct difference is off by several units.
    """
    y = np.asarray(y, dtype=float)
    a = float(a)
    with np.errstate(all="ignore"):
        direct = special.gammaln(y + a) - special.gammaln(y + 1.0)
        large = (y + min(a, 1.0) >= 15.0) & np.isfinite(y)
        if not np.any(large):
            return direct
        yl = np.where(large, y, 15.0)
        c = a - 1.0
        series = ((yl + a - 0.5) * np.log1p(c / (yl + 1.0)) + c * np.log(yl + 1.0) - c
                  + _stirling_error(yl + a) - _stirling_error(yl + 1.0))
    return np.where(large, series, direct)


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
            merged.m2 = self.m2 + other.m2 + delta ** 2 * self.weight * other.weight / total
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


def _empty_like_broadcast(*arrays):
    """An uninitialised float array of the broadcast shape of ``arrays``,
    column-major when an argument of that shape is (the engine's n x K
    arrays are)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    fortran = any(np.shape(a) == shape and len(shape) > 1 and np.isfortran(a)
                  for a in arrays if isinstance(a, np.ndarray))
    return np.empty(shape, order="F" if fortran else "C")


def _is_canonical(name, link):
    canonical = {
        "poisson": sm_links.Log,
        "binomial": sm_links.Logit,
        "gaussian": sm_links.Identity,
        "gamma": sm_links.InversePower,
        "inverse_gaussian": sm_links.InverseSquared,
    }
    kind = canonical.get(name)
    if kind is None:
        return False
    if kind is sm_links.Identity:
        return isinstance(link, sm_links.Identity) or (
            isinstance(link, sm_links.Power) and float(link.power) == 1.0)
    if kind is sm_links.InversePower:
        return isinstance(link, sm_links.Power) and float(link.power) == -1.0
    if kind is sm_links.InverseSquared:
        return isinstance(link, sm_links.Power) and float(link.power) == -2.0
    return type(link) is kind
