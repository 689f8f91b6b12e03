"""Residuals: statsmodels agreement at K = 1, definitions by hand, and the
distribution of quantile and Pearson residuals under the model."""

import dataclasses
import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from sim2_fits import SIM2_RHS, sim2, sim2_glm, sim2_mixture
from simulate import simulate_mixture

import emformula
from emformula import emglm, residuals
from emformula.families import as_family
from emformula.postestimation.residuals import _as_fit, _compute

L = sm.families.links

#: name -> (simulate_mixture kind, family given to emglm)
MIXTURES = {
    "poisson": ("poisson", "poisson"),
    "negative_binomial": ("negative_binomial", sm.families.NegativeBinomial(alpha=0.5)),
    "binomial": ("binomial_counts", "binomial"),
    "gaussian": ("gaussian", "gaussian"),
    "gamma": ("gamma_log", sm.families.Gamma(L.Log())),
    "inverse_gaussian": ("inverse_gaussian_log", sm.families.InverseGaussian(L.Log())),
}


# ------------------------------------------------------------------ fits
@functools.cache
def mixture(name, n=600, seed=3):
    kind, family = MIXTURES[name]
    data, formula = simulate_mixture(kind, n, 2, seed)
    return emglm(formula, data, family, K=2, random_state=0), data


# ------------------------------------------------- K = 1 and statsmodels
@pytest.mark.parametrize("kind", ["response", "pearson", "deviance"])
def test_poisson_glm_residuals_equal_statsmodels(kind):
    glm = sim2_glm()
    ours = residuals(glm, kind)
    np.testing.assert_allclose(
        ours.to_numpy(), getattr(glm, f"resid_{kind}"), rtol=1e-12, atol=1e-14
    )
    assert ours.index.equals(sim2().data.index)


@pytest.mark.parametrize("kind", ["response", "pearson", "deviance"])
def test_poisson_k1_mixture_equals_statsmodels(kind):
    s = sim2()
    res = emglm(f"y ~ {SIM2_RHS}", s.data, "poisson", K=1, random_state=0)
    ours = res.residuals(kind)
    np.testing.assert_allclose(
        ours.to_numpy(), getattr(sim2_glm(), f"resid_{kind}"), rtol=1e-6, atol=1e-8
    )


@functools.cache
def binomial_counts():
    data, formula = simulate_mixture("binomial_counts", 400, 1, 11)
    res = emglm(formula, data, "binomial", K=1, random_state=0)
    glm = smf.glm(formula, data, family=sm.families.Binomial()).fit()
    return data, res, glm


@pytest.mark.parametrize("kind", ["pearson", "deviance"])
def test_binomial_counts_k1_equals_statsmodels(kind):
    data, res, glm = binomial_counts()
    expected = getattr(glm, f"resid_{kind}")
    np.testing.assert_allclose(residuals(glm, kind), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(residuals(res, kind), expected, rtol=1e-6, atol=1e-8)


def test_binomial_family_instance_reused_from_a_glm_fit():
    # statsmodels' Binomial.initialize stores the GLM's trials in family.n;
    # an emglm fit given that instance must still have the right residuals.
    data, res, glm = binomial_counts()
    formula = "succ + fail ~ x1 + x2"
    reused = emglm(formula, data, glm.model.family, K=1, random_state=0)
    np.testing.assert_allclose(
        residuals(reused, "deviance"), glm.resid_deviance, rtol=1e-6, atol=1e-8
    )


def test_binomial_response_residual_is_on_the_proportion_scale():
    data, res, glm = binomial_counts()
    trials = (data.succ + data.fail).to_numpy()
    # statsmodels multiplies by the number of trials (counts); ours stays
    # on the scale of the proportion, like fittedvalues.
    np.testing.assert_allclose(
        residuals(glm, "response") * trials, glm.resid_response, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        residuals(res, "response"), data.succ / trials - res.fittedvalues, rtol=1e-12
    )
    np.testing.assert_allclose(
        residuals(res, "response") * trials, glm.resid_response, rtol=1e-6, atol=1e-8
    )


def test_bernoulli_glm_residuals_equal_statsmodels():
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + x))))
    glm = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    for kind in ("response", "pearson", "deviance"):
        np.testing.assert_allclose(
            residuals(glm, kind), getattr(glm, f"resid_{kind}"), rtol=1e-12, atol=1e-14
        )
    assert residuals(glm).index.equals(pd.RangeIndex(300))


def test_negative_binomial_glm_residuals_equal_statsmodels():
    data, formula = simulate_mixture("negative_binomial", 400, 1, 2)
    glm = smf.glm(formula, data, family=sm.families.NegativeBinomial(alpha=0.5)).fit()
    for kind in ("response", "pearson", "deviance"):
        np.testing.assert_allclose(
            residuals(glm, kind), getattr(glm, f"resid_{kind}"), rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize(
    "kind, family",
    [
        ("gaussian", sm.families.Gaussian()),
        ("gamma_log", sm.families.Gamma(L.Log())),
        ("inverse_gaussian_log", sm.families.InverseGaussian(L.Log())),
    ],
)
def test_dispersion_families_are_statsmodels_divided_by_sqrt_scale(kind, family):
    # Two components make the dispersion of one GLM clearly differ from 1.
    data, formula = simulate_mixture(kind, 300, 2, 4)
    glm = smf.glm(formula, data, family=family).fit()
    root = np.sqrt(glm.scale)
    assert abs(root - 1.0) > 0.05  # the scaling is visible
    np.testing.assert_allclose(residuals(glm, "pearson"), glm.resid_pearson / root, rtol=1e-12)
    np.testing.assert_allclose(residuals(glm, "deviance"), glm.resid_deviance / root, rtol=1e-12)
    np.testing.assert_allclose(residuals(glm, "response"), glm.resid_response, rtol=1e-12)


def test_glm_variance_weights_enter_like_statsmodels():
    data, formula = simulate_mixture("gaussian", 200, 1, 8)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=200)
    glm = smf.glm(formula, data, family=sm.families.Gaussian(), var_weights=w).fit()
    root = np.sqrt(glm.scale)
    np.testing.assert_allclose(residuals(glm, "pearson"), glm.resid_pearson / root, rtol=1e-12)
    np.testing.assert_allclose(residuals(glm, "deviance"), glm.resid_deviance / root, rtol=1e-12)
    # A gaussian with variance phi / w: the quantile residual is standardised.
    np.testing.assert_allclose(
        residuals(glm, "quantile"), glm.resid_response * np.sqrt(w) / root, rtol=1e-8
    )


def test_gaussian_k1_quantile_residual_is_the_standardised_residual():
    data, formula = simulate_mixture("gaussian", 300, 1, 4)
    res = emglm(formula, data, "gaussian", K=1, random_state=0)
    expected = (data.y - res.fittedvalues) / np.sqrt(res.scale.iloc[0])
    np.testing.assert_allclose(res.residuals("quantile"), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.residuals("pearson"), expected, rtol=1e-12)
    np.testing.assert_allclose(res.residuals("deviance"), expected, rtol=1e-12)


# ------------------------------------------------------ definitions by hand
def test_poisson_residuals_of_one_row_by_hand():
    res = sim2_mixture()
    data = sim2().data
    i = 7
    x = data.loc[i, ["V1", "V2", "V3", "V4", "V5"]].to_numpy(dtype=float)
    y = float(data.loc[i, "y"])
    mu = np.exp(x @ res.params.to_numpy())  # (K,)
    pi = res.prior.to_numpy()
    tau = res.posterior.loc[i].to_numpy()
    dev = 2 * (y * np.log(y / mu) - (y - mu)) if y > 0 else 2 * mu
    for k in range(2):
        assert res.residuals("response", component=k + 1)[i] == pytest.approx(y - mu[k])
        assert res.residuals("pearson", component=f"comp{k + 1}")[i] == pytest.approx(
            (y - mu[k]) / np.sqrt(mu[k])
        )
        assert res.residuals("deviance", component=k + 1)[i] == pytest.approx(
            np.sign(y - mu[k]) * np.sqrt(dev[k])
        )
    m = pi @ mu
    var = pi @ (mu + mu**2) - m**2
    assert res.residuals("response")[i] == pytest.approx(y - m)
    assert res.residuals("pearson")[i] == pytest.approx((y - m) / np.sqrt(var))
    assert res.residuals("deviance")[i] == pytest.approx(np.sign(y - m) * np.sqrt(tau @ dev))


def test_gaussian_residuals_of_one_row_by_hand():
    res, data = mixture("gaussian")
    i = 11
    x = np.r_[1.0, data.loc[i, ["x1", "x2"]].to_numpy(dtype=float)]
    y = float(data.loc[i, "y"])
    mu = x @ res.params.to_numpy()
    phi, pi = res.scale.to_numpy(), res.prior.to_numpy()
    tau = res.posterior.loc[i].to_numpy()
    for k in range(2):
        z = (y - mu[k]) / np.sqrt(phi[k])
        for kind in ("pearson", "deviance", "quantile"):
            assert res.residuals(kind, component=k + 1)[i] == pytest.approx(z, rel=1e-9)
    m = pi @ mu
    var = pi @ (phi + mu**2) - m**2
    assert res.residuals("pearson")[i] == pytest.approx((y - m) / np.sqrt(var))
    assert res.residuals("deviance")[i] == pytest.approx(
        np.sign(y - m) * np.sqrt(tau @ ((y - mu) ** 2 / phi))
    )
    u = pi @ stats.norm.cdf(y, mu, np.sqrt(phi))
    assert res.residuals("quantile")[i] == pytest.approx(stats.norm.ppf(u), rel=1e-9)


def test_binomial_quantile_residual_lies_between_the_cdf_steps():
    res, data = mixture("binomial")
    trials = (data.succ + data.fail).to_numpy()
    mu, pi = res._component_mean, res.prior.to_numpy()
    succ = data.succ.to_numpy()
    lower = stats.binom.cdf(succ[:, None] - 1, trials[:, None], mu) @ pi
    upper = stats.binom.cdf(succ[:, None], trials[:, None], mu) @ pi
    u = stats.norm.cdf(res.residuals("quantile", random_state=3).to_numpy())
    assert np.all(u >= lower - 1e-12) and np.all(u <= upper + 1e-12)
    assert np.mean(upper - lower) > 0.05  # the randomisation does something


# ------------------------------------------- distributions under the model
@pytest.mark.parametrize("name", list(MIXTURES))
def test_mixture_variance_formula_equals_monte_carlo(name):
    res, _ = mixture(name)
    rows = [0, 1, 2]
    # Var_i recovered from the public residuals: (y - m) / pearson.
    var = (res.residuals("response") / res.residuals("pearson")).to_numpy()[rows] ** 2
    mean = res.fittedvalues.to_numpy()[rows]
    rng = np.random.default_rng(0)
    fit = _as_fit(res)
    sub = dataclasses.replace(
        fit,
        mu=np.repeat(fit.mu[rows], 100_000, axis=0),
        trials=np.repeat(fit.trials[rows], 100_000),
    )
    draws = simulate(sub, rng).reshape(len(rows), -1)
    # Five Monte Carlo standard errors.
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 5 * np.sqrt(var / draws.shape[1]))
    np.testing.assert_allclose(draws.var(axis=1), var, rtol=0.06)


def simulate(fit, rng):
    """One response per row of a _Fit drawn from its mixture (numpy samplers,
    independent of the scipy distributions the residuals use)."""
    n, K = fit.mu.shape
    z = rng.choice(K, size=n, p=fit.prior)
    mu = fit.mu[np.arange(n), z]
    phi = fit.scale[z]
    name = fit.family.name
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "negative_binomial":
        alpha = fit.family.alpha
        return rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mu)).astype(float)
    if name == "binomial":
        return rng.binomial(fit.trials.astype(int), mu) / fit.trials
    if name == "gaussian":
        return rng.normal(mu, np.sqrt(phi))
    if name == "gamma":
        return rng.gamma(1.0 / phi, mu * phi)
    return rng.wald(mu, 1.0 / phi)


@pytest.mark.parametrize("name", list(MIXTURES))
def test_residuals_of_data_drawn_from_the_fitted_mixture(name):
    """With the parameters known, quantile residuals are exactly N(0, 1) and
    Pearson residuals have mean 0 and variance 1."""
    res, _ = mixture(name)
    fit = _as_fit(res)
    rng = np.random.default_rng(1)
    reps = 20
    big = dataclasses.replace(
        fit,
        mu=np.tile(fit.mu, (reps, 1)),
        trials=np.tile(fit.trials, reps),
        var_weights=np.ones(reps * fit.y.size),
        posterior=np.tile(fit.posterior, (reps, 1)),
    )
    y = simulate(big, rng)
    drawn = dataclasses.replace(big, y=y)
    q = _compute(drawn, "quantile", None, 2)
    assert stats.kstest(q, "norm").pvalue > 0.01
    pearson = _compute(drawn, "pearson", None, None)
    assert abs(pearson.mean()) < 4 / np.sqrt(y.size)
    assert pearson.var() == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("name", ["poisson", "gaussian", "gamma"])
def test_quantile_residuals_of_a_fitted_mixture_are_normal(name):
    res, _ = mixture(name)
    r = res.residuals("quantile", random_state=0)
    assert np.all(np.isfinite(r))
    assert stats.kstest(r, "norm").pvalue > 0.01


def test_quantile_residuals_detect_a_missing_component_on_sim2():
    glm_p = stats.kstest(residuals(sim2_glm(), "quantile", random_state=0), "norm").pvalue
    mix_p = stats.kstest(sim2_mixture().residuals("quantile", random_state=0), "norm").pvalue
    assert glm_p < 1e-10
    assert mix_p > 0.01


# ------------------------------------------------ CDFs against densities
CDF_CASES = [
    ("poisson", {}, np.array([0.0, 1, 3, 7, 20]), np.array([0.4, 2.0, 3.5, 5.0, 18.0]), 1.0),
    (
        "negative_binomial",
        {"alpha": 0.7},
        np.array([0.0, 1, 4, 9, 30]),
        np.array([0.5, 2.0, 3.0, 8.0, 25.0]),
        1.0,
    ),
    ("gaussian", {}, np.array([-2.0, 0.3, 1.0, 4.0]), np.array([-1.0, 0.0, 2.0, 3.0]), 1.7),
    ("gamma", {}, np.array([0.2, 1.0, 2.5, 7.0]), np.array([0.5, 1.2, 2.0, 5.0]), 0.4),
    ("inverse_gaussian", {}, np.array([0.2, 1.0, 2.5, 7.0]), np.array([0.5, 1.2, 2.0, 5.0]), 0.3),
]


def _family(name, kwargs):
    if name == "negative_binomial":
        return as_family(sm.families.NegativeBinomial(**kwargs))
    if name == "gamma" or name == "inverse_gaussian":
        return as_family(name, link="log")
    return as_family(name)


@pytest.mark.parametrize("name, kwargs, y, mu, scale", CDF_CASES)
def test_cdf_parametrisation_matches_the_log_density(name, kwargs, y, mu, scale):
    family = _family(name, kwargs)
    density = np.exp(family.loglike(y, mu, scale))
    lower, upper, lower_sf, upper_sf = family.cdf_bounds(y, mu, scale)
    np.testing.assert_allclose(lower + lower_sf, 1.0, rtol=1e-12)
    np.testing.assert_allclose(upper + upper_sf, 1.0, rtol=1e-12)
    if name in ("poisson", "negative_binomial"):
        np.testing.assert_allclose(upper - lower, density, rtol=1e-9)
    else:
        h = 1e-5 * np.maximum(np.abs(y), 1.0)
        up = family.cdf_bounds(y + h, mu, scale)[1]
        down = family.cdf_bounds(y - h, mu, scale)[1]
        np.testing.assert_allclose((up - down) / (2 * h), density, rtol=1e-6)
        # A variance weight w is the same family with dispersion scale / w.
        w = 2.5
        np.testing.assert_allclose(
            family.cdf_bounds(y, mu, scale, var_weights=w)[1],
            family.cdf_bounds(y, mu, scale / w)[1],
            rtol=1e-12,
        )


def test_binomial_cdf_matches_the_log_density():
    family = as_family("binomial")
    trials = np.array([1.0, 5, 5, 10, 12, 12])
    successes = np.array([1.0, 0, 3, 10, 6, 11])
    mu = np.array([0.3, 0.2, 0.5, 0.9, 0.4, 0.7])
    y = successes / trials
    lower, upper, _, _ = family.cdf_bounds(y, mu, 1.0, trials)
    np.testing.assert_allclose(upper - lower, np.exp(family.loglike(y, mu, 1.0, trials)), rtol=1e-9)


def test_inverse_gaussian_moments():
    # invgauss(mu phi, scale=1/phi): mean mu and variance phi mu^3.
    mu, phi = 1.7, 0.4
    dist = stats.invgauss(mu * phi, scale=1 / phi)
    assert dist.mean() == pytest.approx(mu)
    assert dist.var() == pytest.approx(phi * mu**3)


def test_quantile_residuals_stay_finite_in_the_far_tails():
    res, _ = mixture("gaussian")
    fit = _as_fit(res)
    far = np.where(np.arange(fit.y.size) % 2 == 0, 1e6, -1e6)
    r = _compute(dataclasses.replace(fit, y=far), "quantile", None, None)
    assert np.all(np.isfinite(r))
    assert np.all(r[::2] > 30) and np.all(r[1::2] < -30)
    # The upper tail keeps its precision: 1 - F(y) far below machine epsilon.
    top = fit.mu.max() + 12 * np.sqrt(fit.scale.max())
    r_top = _compute(dataclasses.replace(fit, y=np.full(fit.y.size, top)), "quantile", None, None)
    assert np.all(r_top > 8.5)


# ------------------------------------------------- seeds, index, errors
def test_same_seed_same_residuals_and_different_seeds_differ():
    res = sim2_mixture()
    a = res.residuals("quantile", random_state=5)
    b = residuals(res, "quantile", random_state=5)
    c = res.residuals("quantile", random_state=6)
    pd.testing.assert_series_equal(a, b)
    assert not np.allclose(a, c)
    g = residuals(res, "quantile", random_state=np.random.default_rng(5))
    pd.testing.assert_series_equal(a, g)


def test_continuous_quantile_residuals_do_not_depend_on_the_seed():
    res, _ = mixture("gaussian")
    pd.testing.assert_series_equal(
        res.residuals("quantile", random_state=1), res.residuals("quantile", random_state=2)
    )


def test_index_follows_the_rows_used():
    data, formula = simulate_mixture("poisson", 300, 2, 6)
    data.index = np.arange(300) * 3 + 100
    data.loc[103, "x1"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = emglm(formula, data, "poisson", K=2, random_state=0)
    for kind in ("response", "pearson", "deviance", "quantile"):
        r = res.residuals(kind, random_state=0)
        assert r.index.equals(res.model.row_index)
        assert r.index.equals(res.posterior.index)
        assert 103 not in r.index and len(r) == 299
    assert res.residuals("pearson", component=2).name == "resid_pearson_comp2"
    assert res.residuals().name == "resid_deviance"


def test_glm_index_from_row_labels():
    data, formula = simulate_mixture("poisson", 100, 1, 6)
    data.index = data.index + 50
    glm = smf.glm(formula, data, family=sm.families.Poisson()).fit()
    assert residuals(glm).index.equals(data.index)


def test_top_level_name_is_the_function():
    assert emformula.residuals is residuals


@pytest.mark.parametrize("bad", ["devianc", "Pearson", "working", None, 3])
def test_unknown_type_raises(bad):
    with pytest.raises(ValueError, match="unknown residual type") as info:
        residuals(sim2_mixture(), bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [0, 3, -1, "comp3", "Comp1", True, 1.0])
def test_bad_component_raises(bad):
    with pytest.raises(ValueError, match="component"):
        residuals(sim2_mixture(), "pearson", component=bad)


def test_component_of_a_glm_is_only_comp1():
    glm = sim2_glm()
    pd.testing.assert_series_equal(
        residuals(glm, "pearson", component=1),
        residuals(glm, "pearson", component="comp1"),
        check_names=False,
    )
    with pytest.raises(ValueError):
        residuals(glm, "pearson", component=2)


def test_other_objects_are_refused():
    with pytest.raises(TypeError, match="EMGLMResults"):
        residuals(sim2().data)


def test_discrete_glm_with_variance_weights_has_no_quantile_residuals():
    data, formula = simulate_mixture("poisson", 100, 1, 6)
    glm = smf.glm(formula, data, family=sm.families.Poisson(), var_weights=np.full(100, 2.0)).fit()
    with pytest.raises(ValueError, match="variance weights"):
        residuals(glm, "quantile")
