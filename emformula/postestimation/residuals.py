"""Residuals of mixture fits and of statsmodels GLMs.

One function, :func:`residuals`, computes response, Pearson, deviance and
randomized quantile residuals of an :class:`~emformula.EMGLMResults` or of a
statsmodels ``GLMResults`` (treated as a one-component mixture), for the
mixture as a whole or for one component.

Notation: row ``i`` has response ``y_i`` (for the binomial family the
*proportion* of successes), prior weight ``a_i`` (the number of binomial
trials, times the variance weights of a statsmodels GLM; 1 otherwise),
component means ``mu_ik``, dispersions ``phi_k``, mixing proportions
``pi_k`` and posterior probabilities ``tau_ik``. ``V`` is the family's
variance function (binomial: ``mu (1 - mu)`` per trial; negative binomial:
``mu + alpha mu^2``) and ``d_k(y, mu)`` the unit deviance (statsmodels'
``family._resid_dev``, multiplied by ``a_i``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..families import MixtureFamily, as_family

__all__ = ["residuals", "RESIDUAL_TYPES"]

#: The residual types :func:`residuals` accepts.
RESIDUAL_TYPES = ("response", "pearson", "deviance", "quantile")

# Probabilities are kept at least this far from 0 and 1 (on both the CDF and
# the survival side), so a quantile residual is finite: |r| <= about 37.5.
_TINY = np.finfo(float).tiny


@dataclass(frozen=True)
class _Fit:
    """The arrays every residual is computed from (one row per fitted row).

    ``mu``, ``posterior`` are ``(n, K)``; ``params`` ``(m, K)``, the family
    parameters of each component (a GLM's dispersion as one row); ``prior``
    ``(K,)``, or ``(n, K)`` for the per-row proportions of a concomitant model;
    ``trials`` the binomial number of trials (ones otherwise) and
    ``var_weights`` the statsmodels variance weights (ones for a mixture).
    """

    y: np.ndarray
    mu: np.ndarray
    params: np.ndarray
    prior: np.ndarray
    posterior: np.ndarray
    trials: np.ndarray
    var_weights: np.ndarray
    family: MixtureFamily
    index: pd.Index
    names: tuple

    @property
    def n_components(self):
        return self.mu.shape[1]

    @property
    def scale(self):
        """The dispersion of each component (ones for a family without one)."""
        return self.params[0] if self.family.estimates_scale else np.ones(self.mu.shape[1])

    @property
    def param_rows(self):
        """The family parameters as rows broadcasting against ``mu``."""
        return tuple(row[None, :] for row in self.params)

    @property
    def prior_weight(self):
        """``a_i``: the divisor of the variance function."""
        return self.trials * self.var_weights


def residuals(results, type="deviance", component=None, random_state=None, data=None, context=None):
    r"""Residuals of a mixture fit, or of a statsmodels GLM.

    Parameters
    ----------
    results : EMGLMResults or statsmodels GLMResults
        A statsmodels GLM is a mixture with one component (``K = 1``,
        ``pi_1 = tau_i1 = 1``) with mean ``glm.mu`` and dispersion
        ``glm.scale`` for the gaussian, gamma and inverse gaussian families
        (whatever scale the GLM was fitted with: statsmodels' default for
        gamma and inverse gaussian is Pearson's chi2 / df, not maximum
        likelihood) and 1 for the poisson, binomial and negative binomial
        families. Its variance weights join the prior weight ``a_i``; its
        frequency weights, like a mixture's, do not change any row's residual.
    type : {"deviance", "response", "pearson", "quantile"}
        Which residual; definitions below.
    component : int or str, optional
        ``None`` (default) for residuals of the mixture; ``k`` (1-based) or
        ``"compk"`` for those of component ``k`` alone, as if every row came
        from it.
    random_state : int, numpy Generator or None
        Seeds the uniform draws of quantile residuals of the discrete families
        (poisson, binomial, negative binomial); the same seed gives the same
        residuals. Ignored by the other types and continuous families.
    data : DataFrame or dict of columns, optional
        New data with the response (a mixture fit from a formula): the
        residuals of its rows under the fitted model, the posterior computed
        from their response as ``predict(data, type="posterior")``. A row
        missing a value the formula reads gets NaN; the index is ``data``'s.
    context : mapping, optional
        Names the formula uses for new data (see ``EMGLMResults.predict``).

    Returns
    -------
    Series
        One residual per fitted row, indexed like ``results.posterior``
        (``results.model.row_index``; for a GLM its row labels, else a
        RangeIndex), named ``resid_<type>`` (``resid_<type>_compk`` for a
        component).

    Raises
    ------
    ValueError
        For an unknown ``type``, a ``component`` that is not one of the fit's,
        or quantile residuals of a discrete GLM with variance weights (its
        distribution is then not the family's).
    TypeError
        For results that are neither, or a GLM family without a density here.

    Notes
    -----
    With the mixture mean ``m_i = sum_k pi_k mu_ik`` (``results.fittedvalues``):

    ``"response"``
        ``y_i - m_i``; for component ``k``: ``y_i - mu_ik``. For the binomial
        family this is on the proportion scale, like ``fittedvalues``
        (statsmodels' ``resid_response`` of a binomial GLM is ``a_i`` times it:
        the scale of counts).

    ``"pearson"``
        ``(y_i - m_i) / sqrt(Var_i)`` with the variance of the mixture

            Var_i = sum_k pi_k (phi_k V(mu_ik) / a_i + mu_ik^2) - m_i^2
                  = sum_k pi_k phi_k V(mu_ik) / a_i + sum_k pi_k (mu_ik - m_i)^2

        (the second form, used here, is the law of total variance and does
        not cancel digits); for component ``k``:
        ``(y_i - mu_ik) / sqrt(phi_k V(mu_ik) / a_i)``. Under the model they
        have mean 0 and variance 1 in every row.

    ``"deviance"``
        Component ``k``: ``sign(y_i - mu_ik) sqrt(d_k(y_i, mu_ik) / phi_k)``.
        The mixture has no saturated model, so its deviance residual is
        defined as the posterior-weighted one,

            sign(y_i - m_i) sqrt(sum_k tau_ik d_k(y_i, mu_ik) / phi_k),

        the square root of the row's expected scaled deviance under the
        posterior (what the complete-data deviance of EM's last E-step
        assigns to the row), signed by the mixture's response residual.

    ``"quantile"``
        Randomized quantile residuals (Dunn and Smyth 1996): with the mixture
        CDF ``F(y) = sum_k pi_k F_k(y; mu_ik, phi_k)`` (the prior, not the
        posterior: the posterior already depends on ``y``) or ``F_k`` alone
        for a component, ``r_i = Phi^{-1}(u_i)`` with ``u_i = F(y_i)`` for a
        continuous family and ``u_i`` uniform on ``(F(y_i-), F(y_i))`` for a
        discrete one. Under the model (true parameters) they are exactly
        independent standard normal. ``u_i`` and ``1 - u_i`` (computed from
        survival functions, so the upper tail keeps its precision) are kept
        at least the smallest positive double from 0, so ``r_i`` is finite.
        The component distributions (scipy.stats): poisson ``poisson(mu)``;
        binomial ``binom(a, mu)`` of the number of successes ``a y``; NB2
        ``nbinom(1/alpha, 1/(1 + alpha mu))``; gaussian
        ``norm(mu, sqrt(phi/a))``; gamma ``gamma(a/phi, scale=mu phi/a)``;
        inverse gaussian ``invgauss(mu phi/a, scale=a/phi)`` (mean ``mu``,
        variance ``phi mu^3 / a``).

    Scaling: Pearson and deviance residuals are divided by ``sqrt(phi_k)``
    (the components of a mixture have different dispersions, so only scaled
    residuals are comparable across rows). For a one-component fit they
    therefore equal statsmodels' ``resid_pearson`` and ``resid_deviance``
    divided by ``sqrt(scale)``: exactly statsmodels' values for the poisson,
    binomial and negative binomial families, where the dispersion is 1.
    No leverage correction is made (a mixture has no hat matrix).

    Examples
    --------
    >>> from emformula import emglm, datasets, residuals
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    >>> r = residuals(res, "quantile", random_state=0)
    >>> r.shape
    (5000,)
    >>> bool(abs(r.mean()) < 0.1 and abs(r.std() - 1) < 0.1)
    True
    >>> residuals(res, "pearson", component="comp2").name
    'resid_pearson_comp2'

    The same for a statsmodels GLM, where K = 1:

    >>> import statsmodels.formula.api as smf, statsmodels.api as sm
    >>> glm = smf.glm("y ~ V1 + V2 + V3 + V4 + V5", sim2.data,
    ...               family=sm.families.Poisson()).fit()
    >>> import numpy as np
    >>> bool(np.allclose(residuals(glm, "deviance"), glm.resid_deviance))
    True
    """
    if not isinstance(type, str) or type not in RESIDUAL_TYPES:
        raise ValueError(
            f"unknown residual type {type!r}; choose one of {', '.join(map(repr, RESIDUAL_TYPES))}"
        )
    fit = _as_fit(results) if data is None else _new_fit(results, data, context)
    if type == "deviance" and not fit.family.has_deviance:
        raise ValueError(
            f"deviance residuals are not defined for the {fit.family.name} "
            "family (censored responses); use type='quantile'"
        )
    k = _component_position(component, fit)
    values = _compute(fit, type, k, random_state)
    name = f"resid_{type}" if k is None else f"resid_{type}_{fit.names[k]}"
    return pd.Series(values, index=fit.index, name=name)


# ------------------------------------------------------------ the inputs
def _as_fit(results):
    """The :class:`_Fit` of an EMGLMResults or a statsmodels GLMResults."""
    if _is_mixture_fit(results):
        data = results.model.data
        est = results.estimates
        n = data.nobs
        return _Fit(
            y=np.asarray(data.endog, dtype=float),
            mu=np.asarray(results._component_mean, dtype=float),
            params=np.asarray(est.params, dtype=float),
            prior=(
                np.asarray(est.prior, dtype=float)
                if est.gamma is None
                else np.asarray(results._row_prior, dtype=float)
            ),
            posterior=np.asarray(results.posterior, dtype=float),
            trials=np.asarray(data.trials, dtype=float),
            var_weights=np.ones(n),
            family=_component_family(data.family),
            index=results.model.row_index,
            names=tuple(results.component_names),
        )
    glm = _glm_results(results)
    if glm is None:
        raise TypeError(
            "residuals() needs an EMGLMResults or a statsmodels GLMResults, "
            f"got {type(results).__name__}"
        )
    model = glm.model
    family = _fresh_family(model.family)
    y = np.asarray(model.endog, dtype=float)
    n = y.shape[0]
    mu = np.asarray(glm.mu, dtype=float)
    params = np.array([[float(glm.scale)]]) if family.estimates_scale else np.zeros((0, 1))
    trials = np.asarray(getattr(model, "n_trials", np.ones(n)), dtype=float)
    var_weights = np.broadcast_to(np.asarray(model.var_weights, dtype=float), (n,)).copy()
    labels = getattr(model.data, "row_labels", None)
    index = pd.Index(labels) if labels is not None and len(labels) == n else pd.RangeIndex(n)
    return _Fit(
        y=y,
        mu=mu[:, None],
        params=params,
        prior=np.ones(1),
        posterior=np.ones((n, 1)),
        trials=trials,
        var_weights=var_weights,
        family=family,
        index=index,
        names=("comp1",),
    )


def _new_fit(results, data, context):
    """The :class:`_Fit` of new data under an EMGLMResults (NaN rows where a
    value is missing)."""
    from ..engine import em as _em

    if not _is_mixture_fit(results, new_data=True):
        raise TypeError(
            f"residuals of new data (data=) need an EMGLMResults, got {type(results).__name__}"
        )
    est = results.estimates
    new = results._new_arrays(data, None, None, response=True, context=context)
    engine, endog, trials = new["data"], new["endog"], new["trials"]
    n = engine.nobs
    mu = results.family.mean(_em.linear_predictor(engine, est.coef, est.fixed_coef))
    posterior = results._new_posterior(new, results.component_names).to_numpy()
    rows = np.flatnonzero(np.all(np.isfinite(posterior), axis=1))
    y, n_trials = np.full(n, np.nan), np.ones(n)
    if rows.size:
        y[rows], n_trials[rows] = results.model._response(
            endog[rows], None if trials is None else trials[rows], rows.size
        )
    prior = np.asarray(est.prior, dtype=float) if est.gamma is None else results._new_prior(engine)
    return _Fit(
        y=y,
        mu=np.asarray(mu, dtype=float),
        params=np.asarray(est.params, dtype=float),
        prior=prior,
        posterior=posterior,
        trials=n_trials,
        var_weights=np.ones(n),
        family=_component_family(results.model.data.family),
        index=new["index"],
        names=tuple(results.component_names),
    )


#: What residuals read of a mixture fit; with new data also what turns the
#: new rows into arrays and posteriors.
_MIXTURE_ATTRIBUTES = (
    "model",
    "estimates",
    "family",
    "posterior",
    "_component_mean",
    "_row_prior",
    "component_names",
)
_NEW_DATA_ATTRIBUTES = ("_new_arrays", "_new_posterior", "_new_prior")


def _is_mixture_fit(results, new_data=False):
    """Whether ``results`` is a mixture fit (an EMGLMResults, or anything with
    its attributes).

    Checked by the attributes used rather than by class, so that this layer
    need not import the results module, which imports it (lazily) for
    ``res.residuals()``.
    """
    return has_attributes(results, _MIXTURE_ATTRIBUTES + (_NEW_DATA_ATTRIBUTES if new_data else ()))


def has_attributes(obj, names):
    """Whether ``obj`` has every attribute in ``names``.

    Each name is looked up on the class or in the instance's own attributes,
    never through ``getattr``: a cached property is then not computed by the
    check, only where it is used.
    """
    own = getattr(obj, "__dict__", {})
    return all(name in own or hasattr(type(obj), name) for name in names)


def _glm_results(results):
    """The unwrapped statsmodels GLMResults, or None."""
    from statsmodels.genmod.generalized_linear_model import GLMResults

    inner = getattr(results, "_results", results)
    return inner if isinstance(inner, GLMResults) else None


def _component_family(family):
    """The family of a mixture's components for its residuals: built anew
    from its statsmodels family (:func:`_fresh_family`) unless it has
    parameters of its own beyond a dispersion, whose values the fit holds."""
    if family.n_members is not None:
        from ..families import ComponentFamilies

        return ComponentFamilies([_component_family(m) for m in family.members])
    if not hasattr(family, "sm_family") or (family.parameters and not family.estimates_scale):
        return family
    return _fresh_family(family.sm_family)


def _fresh_family(sm_family):
    """A component family of the statsmodels family's class, link and alpha.

    Built anew rather than copied: a statsmodels Binomial that has been
    used in a GLM fit carries the number of trials of that data
    (``family.n``), which the unit deviance of :class:`MixtureFamily` would
    count a second time (also when such an instance was given to emglm).
    """
    kwargs = {"link": sm_family.link}
    if hasattr(sm_family, "alpha"):
        kwargs["alpha"] = sm_family.alpha
    try:
        fresh = type(sm_family)(**kwargs)
    except TypeError:
        fresh = sm_family
    return as_family(fresh)


def _component_position(component, fit):
    """0-based position of ``component`` (1-based int or name), or None."""
    if component is None:
        return None
    K = fit.n_components
    if isinstance(component, str):
        if component in fit.names:
            return fit.names.index(component)
        raise ValueError(f"unknown component {component!r}; the fit has {', '.join(fit.names)}")
    if isinstance(component, (bool, np.bool_)) or not isinstance(component, (int, np.integer)):
        raise ValueError(
            f"component must be an int 1..{K} or a name such as 'comp1', got {component!r}"
        )
    if not 1 <= component <= K:
        raise ValueError(
            f"component {component} is out of range: the fit has {K} component(s), numbered 1..{K}"
        )
    return int(component) - 1


# ---------------------------------------------------------- computations
def _compute(fit, type, k, random_state):
    """The residual values (ndarray) of ``type`` for component ``k`` (0-based)
    or the mixture (``k is None``)."""
    y, mu, family = fit.y, fit.mu, fit.family
    a = fit.prior_weight[:, None]
    # E(y) per component (an ordinal family's mu is a latent location).
    expected = family.expected_response(mu, fit.param_rows)
    if k is None:
        prior = fit.prior
        mean = _mix(expected, prior)
    else:
        mean = expected[:, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        if type == "response":
            return y - mean
        if type == "pearson":
            # phi_k V(mu_ik) / a_i: the variance of y_i within component k.
            within = family.variance_at(mu, fit.param_rows, a)
            if k is not None:
                return (y - mean) / np.sqrt(within[:, k])
            between = (expected - mean[:, None]) ** 2
            return (y - mean) / np.sqrt(_mix(within + between, prior))
        if type == "deviance":
            unit = family.scaled_deviance_at(y[:, None], mu, fit.param_rows, fit.trials[:, None])
            scaled = np.clip(unit * fit.var_weights[:, None], 0.0, None)
            # A row a component cannot explain (a point mass away from its
            # value: infinite deviance, posterior 0) adds nothing.
            weighted = np.where(fit.posterior > 0, fit.posterior * scaled, 0.0)
            total = scaled[:, k] if k is not None else np.sum(weighted, axis=1)
            return np.sign(y - mean) * np.sqrt(total)
        # quantile
        lower, upper, lower_sf, upper_sf = family.cdf_bounds_at(
            y[:, None], mu, fit.param_rows, fit.trials[:, None], fit.var_weights[:, None]
        )
        if k is not None:
            columns = [k]
            weight = np.ones(1)
        else:
            columns = slice(None)
            weight = fit.prior
        lower, upper = _mix(lower[:, columns], weight), _mix(upper[:, columns], weight)
        lower_sf, upper_sf = _mix(lower_sf[:, columns], weight), _mix(upper_sf[:, columns], weight)
        if family.is_discrete:
            v = np.random.default_rng(random_state).uniform(size=y.shape[0])
            u = lower + v * (upper - lower)
            u_sf = lower_sf - v * (lower_sf - upper_sf)
        else:
            u, u_sf = upper, upper_sf
        u = np.clip(u, _TINY, 1.0)
        u_sf = np.clip(u_sf, _TINY, 1.0)
        # Phi^{-1}(u) loses the upper tail to rounding (1 - 1e-17 == 1):
        # take it from the survival side there.
        return np.where(u <= u_sf, stats.norm.ppf(u), stats.norm.isf(u_sf))


def _mix(values, prior):
    """``sum_k pi_k values_ik`` with constant (K,) or per-row (n, K) proportions."""
    return values @ prior if prior.ndim == 1 else np.sum(values * prior, axis=1)
