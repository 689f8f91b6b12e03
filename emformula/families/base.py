"""What every component family provides: the contract the engine is written against.

A component family is one class per distribution (:mod:`.poisson`,
:mod:`.gamma`, ...), subclassing :class:`MixtureFamily`. The class states

* its names (``name`` for the registry, ``family_name`` and ``link_name``
  as summaries print them) and its mean: ``mean``, ``link``,
  ``clip_mean``, ``start_mean``;
* its log-density with every constant, split into ``loglike_constant``
  (data alone, computed once per data set) and ``loglike_kernel``;
* the derivatives of the log-density in the linear predictor
  (``eta_derivatives``; closed forms for canonical links are overrides);
* the unit deviance, a sampler, response checks and the distribution
  functions that quantile residuals need (``cdf_bounds``);
* its own per-component parameters, declared in ``parameters`` as
  :class:`FamilyParameter` records, with their maximum likelihood M-step,
  the sums over rows it needs (so that data in pieces, dask partitions,
  can be summed), and their per-row score and observed information.

The engine holds any number of family parameters per component (an
``(m, K)`` array) and reaches them only through the methods of the last
two sections of :class:`MixtureFamily`: ``log_kernel``,
``eta_derivatives_at``, ``parameter_derivatives``, ``parameter_statistics``
with ``parameters_from_statistics`` (the M-step, checked unless
``parameters_exact``), ``start_parameters``, ``simulate_at`` and
``cdf_bounds_at``. Their defaults serve the dispersion families and the
families without parameters; the dispersion's closed forms
(``mle_scale``, ``scale_statistic``, ``logscale_derivatives``...) are the
fast paths the engine takes where ``estimates_scale``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..warnings import warn
from .moments import WeightedMoments
from .parameters import DISPERSION, FamilyParameter, ParameterDerivatives, newton_step, rows_of

__all__ = ["MixtureFamily"]


class MixtureFamily:
    """Base class of the component families (one subclass per distribution).

    Subclasses set the class attributes and implement the methods that raise
    ``NotImplementedError`` here; the rest has working defaults. A family
    instance is immutable once built and must pickle (results keep it).

    Attributes
    ----------
    name : str
        Registry key (``"poisson"``, ``"gamma"``...), used in messages.
    parameters : tuple of FamilyParameter
        The family's own per-component parameters, in the order of the
        ``params`` arguments below. Empty for Poisson, binomial and the
        negative binomial with fixed alpha; the dispersion for Gaussian,
        gamma and inverse Gaussian; alpha for the negative binomial that
        estimates it, sigma for the tobit, cut points for ordinal families.
    is_discrete : bool
        The response takes separated values (quantile residuals are then
        randomised between ``F(y-)`` and ``F(y)``).
    is_count : bool
        The response is an unbounded count (Poisson, negative binomial):
        non-integer values get a warning and plots use a logarithmic axis
        for the means.
    takes_trials : bool
        The response is a proportion of a number of trials (binomial): a
        two-column response of successes and failures and ``trials=`` are
        accepted.
    has_coefficients : bool
        The component has a linear predictor (False for a point mass: no
        coefficients in theta, no IRLS step, NaN in the results' params).
    canonical : bool
        Whether the link is the family's canonical one (fast paths apply).
    link : statsmodels link or None
        Callable: ``link(mu)`` is the linear predictor.
    """

    name: str | None = None
    parameters: tuple[FamilyParameter, ...] = ()
    is_discrete = False
    is_count = False
    takes_trials = False
    has_coefficients = True
    canonical = False
    link: Any = None

    # ------------------------------------------------------------------ names
    @property
    def family_name(self):
        """The family as summaries print it (statsmodels' class name where
        the family is a statsmodels one)."""
        return type(self).__name__

    @property
    def link_name(self):
        """The link as summaries print it (statsmodels' link class name)."""
        return type(self.link).__name__ if self.link is not None else "none"

    def __repr__(self):
        return f"{type(self).__name__}(link={self.link_name})"

    def _identity(self):
        """What tells two families of one class apart (:meth:`__eq__`)."""
        return (self.link_name,)

    def __eq__(self, other):
        return type(self) is type(other) and self._identity() == other._identity()

    __hash__ = None  # type: ignore[assignment]  # equal families are not hashed

    def __setstate__(self, state):
        # A family pickled before families were one class per distribution is
        # a plain MixtureFamily holding its statsmodels family: give it the
        # class that wraps that statsmodels family now.
        self.__dict__.update(state)
        if type(self) is MixtureFamily and "sm_family" in state:
            kind = type(state["sm_family"])
            for cls in _all_subclasses(MixtureFamily):
                if getattr(cls, "statsmodels_class", None) is kind:
                    self.__class__ = cls
                    break

    @classmethod
    def from_name(cls, sm_family):
        """The family a user asks for by name, built on ``sm_family`` (the
        statsmodels family of the name, with the link asked for)."""
        return cls(sm_family)

    # ------------------------------------------------------------- the mean
    def mean(self, eta):
        """The mean of every row from its linear predictor, finite."""
        raise NotImplementedError

    def clip_mean(self, mu):
        """A mean moved into the open support of the family."""
        return mu

    def start_mean(self, y, trials):
        """A starting mean from the data (as statsmodels' ``starting_mu``)."""
        raise NotImplementedError

    def mean_on_boundary(self, mu):
        """Where a fitted mean sits at the edge of the family's mean range, so
        that the fit is at a boundary of the parameter space (a binomial
        probability of 0 or 1: separation). None anywhere by default."""
        return np.zeros(np.shape(mu), dtype=bool)

    def eta_clipped(self, eta):
        """Where :meth:`mean` clips the linear predictor to keep the mean
        finite (the mean there no longer follows the coefficients). None
        anywhere by default."""
        return np.zeros(np.shape(eta), dtype=bool)

    # -------------------------------------------------------- log-density
    def loglike(self, y, mu, scale=1.0, trials=1.0):
        """Log-density of every row with all constants (broadcasts).

        It is :meth:`loglike_kernel` plus :meth:`loglike_constant`. ``scale``
        is the value of the family's one parameter where it has one (the
        engine passes it there); :meth:`log_density` is the form for any
        number of parameters.
        """
        constant = self.loglike_constant(y, trials)
        return self.loglike_kernel(y, mu, scale, trials) + constant

    def loglike_constant(self, y, trials=1.0):
        """The part of the log-density that depends on the data alone.

        EM evaluates the log-density thousands of times on the same rows;
        for the count families the log-gamma terms cost more than the rest,
        so the engine computes them once per data set. Zero by default.
        """
        return np.zeros(np.shape(y))

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        """Log-density minus :meth:`loglike_constant`.

        ``eta``, the linear predictor of ``mu``, may be used by a fast path
        (the Poisson family with the log link: ``y log(mu) = y eta``).
        Broadcasts: ``mu`` may be ``(n, K)`` with ``scale`` ``(K,)``.
        """
        raise NotImplementedError

    def log_density(self, y, mu, params=(), trials=1.0):
        """Log-density at the family parameters ``params`` (natural scale, in
        the order of :attr:`parameters`): :meth:`log_kernel` plus
        :meth:`loglike_constant`, the form the parameter methods use."""
        params = self._check_params(params)
        return self.log_kernel(y, mu, params, trials) + self.loglike_constant(y, trials)

    # ------------------------------------------------------- eta derivatives
    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        """Per-row ``(score, info, irls_weight, link_deriv)`` of the linear
        predictor at unit dispersion: ``d log f / d eta``, ``-d^2 log f /
        d eta^2`` (observed, or expected with ``observed=False``), the IRLS
        weight and ``g'(mu)``. Divide score and information by the
        dispersion for the actual density. Arrays may be read-only views."""
        raise NotImplementedError

    # ------------------------------------------------------- distribution
    def unit_deviance(self, y, mu, trials=1.0):
        """Unit deviance per row (unit dispersion)."""
        raise NotImplementedError

    def simulate(self, mu, scale, trials, rng):
        """One response per row drawn from the family (binomial: a proportion)."""
        raise NotImplementedError

    def cdf_bounds(self, y, mu, scale=1.0, trials=1.0, var_weights=1.0):
        """``F(y-), F(y), 1 - F(y-), 1 - F(y)`` per row (broadcasts).

        The survival functions are computed, not ``1 - F``, so the upper
        tail keeps its precision. ``var_weights`` (a statsmodels GLM's)
        divide the dispersion.
        """
        raise NotImplementedError

    def check_response(self, y, trials, name="response"):
        """Raise a ValueError naming the rows where ``y`` is outside the support.

        Count families also warn about non-integer values: their
        log-likelihood is then a quasi-likelihood.
        """
        y = np.asarray(y, dtype=float)
        outside = self._outside_support(y, trials)
        if outside is not None:
            bad, what = outside
            if bad.any():
                rows = np.flatnonzero(bad)
                raise ValueError(
                    f"{name} has {what} for the {self.name} family at "
                    f"{bad.sum()} row(s), first at positions {rows[:5].tolist()}"
                )
        if self.is_count and np.any(y != np.round(y)):
            warn(
                f"{name} has non-integer values for the {self.name} family; "
                "the log-likelihood is then a quasi-likelihood with the "
                "gamma-function continuation",
                UserWarning,
            )

    def _outside_support(self, y, trials):
        """``(mask, description)`` of responses outside the support, or None
        when every real value is allowed."""
        return None

    # ------------------------------------------------ the family parameters
    def _check_params(self, params):
        params = tuple(params)
        if len(params) != len(self.parameters):
            raise ValueError(
                f"the {self.name} family has {len(self.parameters)} "
                f"parameter(s) ({', '.join(p.name for p in self.parameters)}), "
                f"got {len(params)} value(s)"
            )
        return params

    def parameter_derivatives(self, y, mu, params, trials=1.0):
        """Per-row score and observed information of the family parameters.

        Parameters
        ----------
        y, mu : array_like
            Responses and means (broadcasting, like :meth:`loglike`).
        params : sequence
            One value (or array broadcasting against ``mu``) per entry of
            :attr:`parameters`, on the natural scale.
        trials : array_like
            Binomial trials; ones for other families.

        Returns
        -------
        ParameterDerivatives
            On the unconstrained scale of each parameter.
        """
        params = self._check_params(params)
        if params:
            raise NotImplementedError
        shape = np.broadcast(y, mu).shape
        return ParameterDerivatives(
            np.zeros((0,) + shape), np.zeros((0, 0) + shape), np.zeros((0,) + shape)
        )

    def parameter_statistics(self, y, mu, weight, params, trials=1.0):
        """The sums over rows that the parameters' M-step needs.

        Returns a 1-d array that adds over pieces of the data: the statistic
        of all rows is the sum of the statistics of any partition of them
        (this is how the dask backend computes it). By default the weighted
        score and observed information at ``params`` (``m + m*m`` numbers),
        from which :meth:`parameters_from_statistics` takes one Newton step;
        families with a closed-form M-step override both. Rows without
        weight are left out (a mean at the edge of its range there would
        give ``0 * inf``).
        """
        return self._score_and_information(y, mu, weight, params, trials)

    def _score_and_information(self, y, mu, weight, params, trials=1.0):
        """``[sum w score (m), sum w info (m*m)]`` at ``params``: the
        statistics of a Newton step, which :meth:`mle_parameters` takes
        whatever a family's own :meth:`parameter_statistics` are."""
        params = self._check_params(params)
        m = len(params)
        keep = np.asarray(weight) > 0
        derivatives = self.parameter_derivatives(y[keep], mu[keep], params, rows_of(trials, keep))
        w = weight[keep]
        score = derivatives.score.reshape(m, -1) @ w
        info = derivatives.info.reshape(m, m, -1) @ w
        return np.concatenate([score, info.ravel()])

    def parameters_from_statistics(self, statistics, params):
        """The parameters' update from summed :meth:`parameter_statistics`.

        By default one Newton step on the unconstrained scale from
        ``params``: exact for a quadratic log-likelihood, a generalised EM
        step otherwise. Returns an array of the natural-scale values.
        """
        params = self._check_params(params)
        if not params:
            return np.zeros(0)
        theta = self._unconstrained(params)
        step = newton_step(np.asarray(statistics, dtype=float), len(params))
        return self._natural(theta + step)

    def mle_parameters(self, y, mu, weight, params, trials=1.0, tol=1e-10, max_iter=200):
        """Maximum likelihood values of the family parameters of one component.

        Maximises ``sum_i weight_i log f(y_i; mu_i, params)`` (``weight`` is
        the frequency weight times the posterior) given the means. By
        default Newton's method on the unconstrained scale from ``params``,
        each step halved until the weighted log-likelihood does not fall;
        families with a closed form override it.
        """
        params = self._check_params(params)
        if not params:
            return np.zeros(0)
        keep = np.asarray(weight) > 0
        y, mu, w, trials = y[keep], mu[keep], weight[keep], rows_of(trials, keep)

        def objective(theta):
            with np.errstate(all="ignore"):
                value = w @ self.log_density(y, mu, tuple(self._natural(theta)), trials)
            return value if np.isfinite(value) else -np.inf

        theta = self._unconstrained(params)
        current = objective(theta)
        for _ in range(max_iter):
            statistics = self._score_and_information(y, mu, w, tuple(self._natural(theta)), trials)
            step = newton_step(statistics, len(params))
            length = 1.0
            while length > 1e-12:
                candidate = theta + length * step
                value = objective(candidate)
                if value >= current:
                    break
                length /= 2.0
            else:
                break  # no step gains: a maximum to rounding
            theta, current = candidate, value
            if np.max(np.abs(length * step)) < tol:
                break
        return self._natural(theta)

    def _unconstrained(self, params):
        return np.array([float(p.to_unconstrained(v)) for p, v in zip(self.parameters, params)])

    def _natural(self, theta):
        return np.array([float(p.from_unconstrained(t)) for p, t in zip(self.parameters, theta)])

    # --------------- the engine's view: the parameters of K components at once
    # The engine holds a family's parameters as an (m, K) array, one row per
    # entry of ``parameters``; it passes them to the methods below as
    # ``params``, a tuple of m arrays that broadcast against the means (rows
    # of shape (K,) against means (n, K), or numbers for one component).
    # Every method is written for the dispersion families and those without
    # parameters; a family with other parameters overrides the ones that
    # raise NotImplementedError.
    @property
    def estimates_scale(self):
        """Whether the family's one parameter is the dispersion (Gaussian,
        gamma, inverse Gaussian): the engine's closed-form M-step and the
        ``scale`` of the results are then that parameter."""
        return tuple(self.parameters) == (DISPERSION,)

    #: Whether the linear predictor has an intercept (ordinal families have
    #: cut points in its place: the formula layer drops the column).
    has_intercept = True

    def for_response(self, y):
        """This family for the response ``y`` (an ordinal family takes its
        number of categories from it); itself by default."""
        return self

    #: Whether the family has a unit deviance (censored data have none).
    has_deviance = True

    #: Whether the IRLS step is Newton's step on the observed information
    #: (:meth:`working_step`) rather than the GLM's ``eta + (y - mu) g'(mu)``.
    newton_irls = False

    def working_step(self, y, mu, params, trials=1.0):
        """``(weight, step)`` of a family with ``newton_irls``: the working
        response is ``eta + step``."""
        raise NotImplementedError

    # A list of families (:class:`~emformula.families.components.ComponentFamilies`)
    # gives each component its own; a single family is every component's.
    n_members = None

    def member(self, k):
        """The family of component ``k`` (this family itself)."""
        return self

    def has_coefficients_of(self, k):
        """Whether component ``k`` has a linear predictor."""
        return self.has_coefficients

    @property
    def differs(self):
        """Whether components have different families (then they keep the
        order they were given in)."""
        return False

    @property
    def statistic_size(self):
        """Length of :meth:`parameter_statistics` (a score and an
        information: ``m + m*m``)."""
        m = len(self.parameters)
        return m + m * m

    @property
    def any_dispersion(self):
        """Whether some component's family has a dispersion (then the
        dispersion floor and the response's size check apply)."""
        return self.estimates_scale

    @property
    def parameters_exact(self):
        """Whether :meth:`parameters_from_statistics` is the exact maximiser
        of a component's expected complete-data log-likelihood given its means
        (a closed form). Otherwise the M-step checks that the update raises
        it, halving the step where it does not."""
        return not self.parameters or self.estimates_scale

    def start_parameters(self):
        """Values of the parameters before any fit (natural scale): each
        parameter's ``start``."""
        return tuple(p.start for p in self.parameters)

    def dispersion(self, params):
        """The dispersion in ``params`` (``params[0]`` of a dispersion family),
        else 1: what divides ``V(mu)`` in the variance and the Pearson
        residuals, and the results' ``scale``."""
        return params[0] if self.estimates_scale else 1.0

    def log_kernel(self, y, mu, params, trials=1.0, eta=None):
        """:meth:`loglike_kernel` at the family parameters ``params``."""
        if self.estimates_scale:
            return self.loglike_kernel(y, mu, params[0], trials, eta=eta)
        if not params:
            return self.loglike_kernel(y, mu, 1.0, trials, eta=eta)
        raise NotImplementedError(f"{type(self).__name__} must define log_kernel")

    def eta_derivatives_at(self, y, mu, params, trials=1.0, observed=True):
        """:meth:`eta_derivatives` of the actual density at ``params``: score
        and information divided by the dispersion; the IRLS weight and
        ``g'(mu)`` as they are (a dispersion common to a component's rows
        does not change its IRLS step)."""
        if self.parameters and not self.estimates_scale:
            raise NotImplementedError(f"{type(self).__name__} must define eta_derivatives_at")
        score, info, irls_weight, link_deriv = self.eta_derivatives(y, mu, trials, observed)
        if self.estimates_scale:
            scale = params[0]
            score, info = score / scale, info / scale
        return score, info, irls_weight, link_deriv

    def irls_terms(self, y, mu, params, trials=1.0):
        """The IRLS weight ``trials / (V(mu) g'(mu)^2)`` and ``g'(mu)`` per
        row at ``params`` (a dispersion common to a component's rows leaves
        its IRLS step unchanged, so it is left out)."""
        if self.parameters and not self.estimates_scale:
            raise NotImplementedError(f"{type(self).__name__} must define irls_terms")
        _, _, irls_weight, link_deriv = self.eta_derivatives(y, mu, trials, observed=False)
        return irls_weight, link_deriv

    #: Whether :meth:`mean` is ``E(y)`` (False where ``mu`` is a latent
    #: location: censored and ordinal responses), so that the delta-method
    #: predictions and margins, which differentiate ``mean(eta)``, apply.
    mean_is_response = True

    def expected_response(self, mu, params):
        """``E(y)`` from the engine's mean ``mu`` and the parameters: ``mu``
        itself, except where ``mu`` is a latent location (an ordinal
        family's expected category code)."""
        return mu

    def variance_at(self, mu, params, trials=1.0):
        """``Var(y)`` per row at ``params`` (``scale V(mu) / trials``)."""
        return self.dispersion(params) * self.variance(mu) / trials

    def unit_deviance_at(self, y, mu, params, trials=1.0):
        """The unit deviance at the family parameters ``params`` (a
        dispersion does not enter it; the negative binomial's alpha does)."""
        return self.unit_deviance(y, mu, trials)

    def scaled_deviance_at(self, y, mu, params, trials=1.0):
        """The unit deviance divided by the dispersion at ``params`` (what
        deviance residuals square)."""
        return self.unit_deviance_at(y, mu, params, trials) / self.dispersion(params)

    def simulate_at(self, mu, params, trials, rng):
        """:meth:`simulate` at the family parameters ``params``."""
        return self.simulate(mu, self.dispersion(params), trials, rng)

    def cdf_bounds_at(self, y, mu, params, trials=1.0, var_weights=1.0):
        """:meth:`cdf_bounds` at the family parameters ``params``."""
        return self.cdf_bounds(y, mu, self.dispersion(params), trials, var_weights)

    # ----------------- the dispersion's closed forms (the fast path of the above)
    @property
    def irls_is_exact(self):
        """Whether one IRLS step is the exact maximiser of a component's Q
        (weighted least squares: the Gaussian with the identity link). A
        property, so that families pickled before it existed work."""
        return False

    def mle_scale(self, y, mu, weight):
        """Maximum likelihood dispersion given means and row weights; 1 for
        a family without one."""
        return 1.0

    def scale_statistic(self, y, mu, weight):
        """The weighted sum the ML dispersion depends on (summable over
        pieces of the data); 0 for a family without a dispersion."""
        return 0.0

    def scale_from_statistic(self, mean_statistic):
        """ML dispersion from ``scale_statistic / sum(weight)``."""
        return 1.0

    def logscale_derivatives(self, y, mu, scale):
        """``(score, info)`` per row of ``log f`` in ``log(scale)``; zeros
        for a family without a dispersion."""
        zeros = np.zeros(np.broadcast(y, mu).shape)
        return zeros, zeros

    def floor_moments(self, y, weights):
        """Weighted moments whose variance sets the default dispersion floor
        (:func:`~emformula.families.default_scale_floor`); empty for a family
        without a dispersion."""
        return WeightedMoments()


def _all_subclasses(cls):
    """Every class below ``cls`` (the family classes register by existing)."""
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)
