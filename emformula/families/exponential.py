"""Exponential dispersion families backed by a statsmodels family.

Every family here has the log-density

    log f(y; mu, phi) = (a / phi) * (y * theta - b(theta)) + c(y, phi, a)

with prior weight ``a`` (the number of binomial trials, else 1), so the
derivatives in the linear predictor have one general form, written once in
:class:`ExponentialFamily` from statsmodels' link and variance function;
the families with a canonical link override it with closed forms.
:class:`DiscreteFamily` adds the distribution functions of a discrete
response, :class:`DispersionFamily` the maximum likelihood dispersion.

All functions broadcast: ``mu`` may be ``(n,)`` or ``(n, K)`` with ``scale``
of shape ``(K,)``, which is how the E-step evaluates every component at once.
"""

from __future__ import annotations

import copy

import numpy as np
from statsmodels.genmod.families import links as sm_links

from ._numeric import MAX_ETA, TINY
from .base import MixtureFamily
from .moments import WeightedMoments
from .parameters import DISPERSION, ParameterDerivatives

__all__ = ["ExponentialFamily", "DiscreteFamily", "DispersionFamily"]


class ExponentialFamily(MixtureFamily):
    """A statsmodels family plus what EM and Louis' method need.

    Parameters
    ----------
    sm_family : statsmodels family, optional
        An instance of :attr:`statsmodels_class` with any link statsmodels
        allows; its canonical link when omitted. Copied, so the caller's
        instance is never changed.

    Attributes
    ----------
    statsmodels_class : type
        The statsmodels family class this family wraps.
    sm_family : statsmodels family
        The private copy; its link and variance function drive IRLS.
    """

    statsmodels_class = None

    def __init__(self, sm_family=None):
        if sm_family is None:
            sm_family = self.statsmodels_class()
        if type(sm_family) is not self.statsmodels_class:
            raise TypeError(
                f"{type(self).__name__} wraps a statsmodels "
                f"{self.statsmodels_class.__name__} family, got "
                f"{type(sm_family).__name__}"
            )
        self.sm_family = copy.deepcopy(sm_family)
        self.link = self.sm_family.link
        self.variance = self.sm_family.variance
        self.canonical = self._link_is_canonical(self.link)

    def _link_is_canonical(self, link):
        """Whether ``link`` is the family's canonical link (no closed forms
        by default)."""
        return False

    @property
    def family_name(self):
        """Name of the statsmodels family class, as statsmodels prints it."""
        return type(self.sm_family).__name__

    # ------------------------------------------------------------- the mean
    def mean(self, eta):
        """Inverse link with eta clipped so the mean stays finite."""
        if isinstance(self.link, sm_links.Log):
            return np.exp(np.clip(eta, -MAX_ETA, MAX_ETA))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mu = self.link.inverse(eta)
        return self.clip_mean(mu)

    def eta_clipped(self, eta):
        """``|eta| >= 700`` under the log link, where :meth:`mean` clips it."""
        if isinstance(self.link, sm_links.Log):
            return np.abs(eta) >= MAX_ETA
        return super().eta_clipped(eta)

    def clip_mean(self, mu):
        """Clip a mean into the open support of a positive family."""
        return np.clip(mu, TINY, None)

    def start_mean(self, y, trials):
        """A starting mean from the data (as statsmodels' ``starting_mu``)."""
        return (y + np.average(y)) / 2.0 + TINY

    # ------------------------------------------------- IRLS and derivatives
    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        """Per-row quantities of the linear predictor, without the dispersion.

        Returns ``(score, info, irls_weight, link_deriv)`` where, for
        ``log f`` with unit dispersion, ``score = d log f / d eta``,
        ``info = -d^2 log f / d eta^2`` (observed; with ``observed=False``
        the expected information, which is the IRLS weight),
        ``irls_weight = a / (V g'^2)`` and ``link_deriv = g'(mu)``. Divide
        score and information by the dispersion for the actual density.

        This is the general formula; families with a canonical link override
        it with closed forms that fall back to it for other links.
        """
        # At the edge of the mean's range (a gamma mean clipped to tiny under
        # the inverse link) these overflow; callers drop non-finite rows.
        with np.errstate(all="ignore"):
            g1 = self.link.deriv(mu)
            v = self.variance(mu)
            resid = y - mu
            irls_weight = trials / (v * g1**2)
            score = trials * resid / (v * g1)
            if not observed or self.canonical:
                return score, irls_weight, irls_weight, g1
            g2 = self.link.deriv2(mu)
            v1 = self.variance.deriv(mu)
            info = irls_weight + trials * resid * (v1 * g1 + v * g2) / (v**2 * g1**3)
        return score, info, irls_weight, g1

    # ------------------------------------------------------------ deviance
    def unit_deviance(self, y, mu, trials=1.0):
        """Unit deviance per row (statsmodels' ``_resid_dev``, unit dispersion)."""
        return self.sm_family._resid_dev(y, mu)

    def distribution(self, mu, scale=1.0, trials=1.0):
        """The scipy.stats distribution of a row's response (frozen,
        broadcasting); for a discrete family of its count
        (:meth:`DiscreteFamily.response_count`)."""
        raise NotImplementedError


class DiscreteFamily(ExponentialFamily):
    """An exponential family of a discrete response without a dispersion
    (Poisson, binomial, negative binomial with fixed alpha)."""

    is_discrete = True

    def _outside_support(self, y, trials):
        return y < 0, "negative counts"

    def response_count(self, y, trials):
        """The count whose distribution is :meth:`distribution` (the
        response itself by default)."""
        return y

    def cdf_bounds(self, y, mu, scale=1.0, trials=1.0, var_weights=1.0):
        """``F(y-), F(y), 1 - F(y-), 1 - F(y)`` of one component (broadcasts).

        For integer counts ``F(y-) = F(y - 1)``. A variance weight other
        than 1 would take ``y`` out of the family, so it is refused.
        """
        return self._count_bounds(self.distribution(mu, scale, trials), y, mu, trials, var_weights)

    def _count_bounds(self, dist, y, mu, trials, var_weights):
        """:meth:`cdf_bounds` from the frozen distribution ``dist`` of the counts."""
        y, mu = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(mu, dtype=float))
        if np.any(np.asarray(var_weights) != 1.0):
            raise ValueError(
                f"quantile residuals of the {self.name} family need unit variance "
                "weights: with others y does not follow the family"
            )
        count = self.response_count(y, trials)
        return dist.cdf(count - 1), dist.cdf(count), dist.sf(count - 1), dist.sf(count)


class DispersionFamily(ExponentialFamily):
    """An exponential family of a continuous response with a dispersion
    estimated by maximum likelihood per component (Gaussian, gamma,
    inverse Gaussian).

    The dispersion is the family's one parameter (:data:`DISPERSION`, on
    the ``log`` scale). Gaussian and inverse Gaussian share the closed
    forms below, which need only the squared standardised residual
    :meth:`_squared_residual`; the gamma family overrides them.
    """

    parameters = (DISPERSION,)

    def _squared_residual(self, y, mu, scale=1.0):
        """``(y - mu)^2 / (scale V(mu))`` in the family's own form: the ML
        dispersion is its weighted mean."""
        raise NotImplementedError

    def _floor_values(self, y):
        """The values whose variance sets the default dispersion floor: the
        response on the scale where its spread is free of its level."""
        return np.log(y)

    def cdf_bounds(self, y, mu, scale=1.0, trials=1.0, var_weights=1.0):
        """``F(y), F(y), 1 - F(y), 1 - F(y)``: for a continuous response
        ``F(y-) = F(y)``; variance weights divide the dispersion, which
        keeps the response in its family."""
        y, mu = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(mu, dtype=float))
        dist = self.distribution(mu, scale / var_weights, trials)
        cdf, sf = dist.cdf(y), dist.sf(y)
        return cdf, cdf, sf, sf

    # ------------------------------------------------- the engine's dispersion
    def floor_moments(self, y, weights):
        """Weighted moments of :meth:`_floor_values`, rows without weight
        left out, frequency weights counted as duplicated rows."""
        keep = weights > 0
        return WeightedMoments(self._floor_values(y[keep]), weights[keep])

    def mle_scale(self, y, mu, weight):
        """Maximum likelihood dispersion given means and row weights.

        ``weight`` is the frequency weight times the posterior. The work is
        split in two so that data in pieces (dask partitions) can add
        :meth:`scale_statistic` over the pieces and solve once with
        :meth:`scale_from_statistic`.
        """
        return self.scale_from_statistic(self.scale_statistic(y, mu, weight) / weight.sum())

    def scale_statistic(self, y, mu, weight):
        """``sum w (y - mu)^2 / V(mu)``; rows without weight are left out
        where a mean at the edge of its range would give ``0 * inf``."""
        value = self._weighted_square(y, mu, weight)
        if not np.isfinite(value):
            keep = weight > 0
            value = self._weighted_square(y[keep], mu[keep], weight[keep])
        return float(value)

    def _weighted_square(self, y, mu, weight):
        with np.errstate(all="ignore"):
            return np.dot(weight, self._squared_residual(y, mu))

    def scale_from_statistic(self, mean_statistic):
        """ML dispersion from ``scale_statistic / sum(weight)``: the mean
        squared standardised residual itself."""
        return float(mean_statistic)

    def logscale_derivatives(self, y, mu, scale):
        """First and minus second derivative of log f in ``log(scale)``.

        Returns ``(score, info)``, both per row. The cross term with eta is
        ``score_eta / scale`` for every exponential dispersion family
        (:meth:`parameter_derivatives`).
        """
        with np.errstate(all="ignore"):
            return self._log_dispersion_derivatives(y, mu, scale)

    def _log_dispersion_derivatives(self, y, mu, scale):
        # log f = -q / 2 - log(scale) / 2 + ..., q = squared residual / scale.
        q = self._squared_residual(y, mu, scale)
        return 0.5 * q - 0.5, 0.5 * q

    # --------------------------------------------- the general parameter API
    def parameter_derivatives(self, y, mu, params, trials=1.0):
        """Score and information of ``log(scale)``, and their cross term
        with eta (``score_eta / scale``: ``log f`` depends on the
        dispersion through ``1 / scale`` times a function of eta)."""
        (scale,) = self._check_params(params)
        with np.errstate(all="ignore"):
            score, info = self._log_dispersion_derivatives(y, mu, scale)
            cross = self.eta_derivatives(y, mu, trials, observed=True)[0] / scale
        shape = np.broadcast_shapes(np.shape(score), np.shape(info), np.shape(cross))
        return ParameterDerivatives(
            np.broadcast_to(score, shape)[None],
            np.broadcast_to(info, shape)[None, None],
            np.broadcast_to(cross, shape)[None],
        )

    statistic_size = 2

    def parameter_statistics(self, y, mu, weight, params, trials=1.0):
        """``[scale_statistic, sum(weight)]``: the closed-form M-step needs
        nothing else, whatever the current value."""
        self._check_params(params)
        return np.array([self.scale_statistic(y, mu, weight), float(np.sum(weight))])

    def parameters_from_statistics(self, statistics, params):
        """The exact ML dispersion from summed :meth:`parameter_statistics`
        (``params`` unchanged where no row has weight)."""
        params = self._check_params(params)
        statistic, total = statistics
        if not total > 0:
            return np.asarray(params, dtype=float)
        return np.array([self.scale_from_statistic(statistic / total)])

    def mle_parameters(self, y, mu, weight, params, trials=1.0, tol=1e-10, max_iter=200):
        """The closed-form ML dispersion (:meth:`mle_scale`)."""
        self._check_params(params)
        return np.array([self.mle_scale(y, mu, weight)])


def is_power_link(link, power):
    """Whether ``link`` is statsmodels' power link with this exponent (the
    identity, inverse and inverse-squared links are power links)."""
    return isinstance(link, sm_links.Power) and float(link.power) == float(power)
