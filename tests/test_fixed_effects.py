"""Shared effects (``fixed=``) and one common dispersion (``equal_scale=``).

Reference: R flexmix 2.3-18, ``FLXMRglmfix(fixed = ~ x2, varFix = TRUE)``
(tests/reference). flexmix's Gaussian sigma is not the ML value, so the
estimates are compared with the ML polish of its fit.
"""

import pickle
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from flexmix_reference import assert_matches_flexmix, load_data, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simulate_features import (
    assert_louis_equals_numerical_hessian,
    assert_monotone,
    em_history,
    loglike_of_theta,
    model_of,
    simulate,
)

from emformula import EMGLM, compare, emglm, select_k


@pytest.fixture(scope="module")
def data():
    return load_data("fixed_gaussian")


@pytest.fixture(scope="module")
def fit(data):
    return emglm("y ~ x1", data, "gaussian", K=2, fixed="~ x2", equal_scale=True, random_state=1)


def test_matches_flexmix_ml_point_and_refit_standard_errors(fit):
    table = assert_matches_flexmix(fit, "fixed_gaussian", gaussian=True)
    # ML beats flexmix's own (non-ML sigma) fit.
    assert fit.llf > float(reference("fixed_gaussian").loglik.iloc[0]) + 5e-4
    # Our scale is the variance: sigma^2, the same in both components.
    polish = reference("fixed_gaussian", polish=True)
    sigma = polish.loc[polish.parameter == "sigma", "estimate"].iloc[0]
    np.testing.assert_allclose(np.sqrt(fit.scale), sigma, rtol=1e-6)
    # One SE for the shared x2, the same in flexmix's two rows.
    x2 = table[table.parameter == "x2"]
    np.testing.assert_allclose(x2.ours_se, x2.se, rtol=1e-3)


def test_one_shared_coefficient_and_one_dispersion(fit):
    assert list(fit.params.index) == ["Intercept", "x1"]  # the fixed intercept is dropped
    assert list(fit.fixed_params.index) == ["x2"]
    assert fit.scale.iloc[0] == fit.scale.iloc[1]
    assert fit.scale_bse.iloc[0] == fit.scale_bse.iloc[1]
    assert fit.param_names == [
        "comp1:Intercept",
        "comp1:x1",
        "comp2:Intercept",
        "comp2:x1",
        "fixed:x2",
        "log(scale)",
        "logit_prior:comp2",
    ]
    # 2 x 2 component coefficients + x2 + one sigma + one prior (flexmix's df 7).
    assert fit.df_model == 7
    assert fit.bic == pytest.approx(-2 * fit.llf + np.log(1200) * 7, rel=1e-12)


def test_common_scale_is_the_ml_value(fit):
    resid = fit.model.data.endog[:, None] - fit.predict(type="component").to_numpy()
    tau = fit.posterior.to_numpy()
    assert fit.scale.iloc[0] == pytest.approx(np.sum(tau * resid**2) / len(resid), rel=1e-9)


def test_louis_equals_numerical_hessian_with_weights_and_offset(data):
    rng = np.random.default_rng(2)
    res = emglm(
        "y ~ x1",
        data,
        "gaussian",
        K=2,
        fixed="~ x2",
        equal_scale=True,
        weights=rng.integers(1, 4, len(data)).astype(float),
        offset=rng.normal(scale=0.3, size=len(data)),
        random_state=0,
        n_init=4,
    )
    assert res.converged
    assert_louis_equals_numerical_hessian(res)


@pytest.mark.parametrize(
    "kind, fixed, equal",
    [
        ("poisson", True, False),
        ("gamma", True, True),
        ("gamma", False, True),
        ("gaussian", True, False),
    ],
)
def test_louis_equals_numerical_hessian_for_other_combinations(kind, fixed, equal):
    data, formula, kwargs = simulate(kind, 500, 2, seed=7, fixed=fixed, separation=3.0)
    res = emglm(formula, data, K=2, equal_scale=equal, random_state=0, n_init=4, **kwargs)
    assert res.converged
    assert_louis_equals_numerical_hessian(res)
    if equal:
        # The pooled shape equation of the gamma family is solved exactly:
        # the score of the common log-dispersion vanishes.
        from statsmodels.tools.numdiff import approx_fprime

        grad = approx_fprime(res.layout.pack(res.estimates), loglike_of_theta(res), centered=True)
        assert abs(grad[res.layout.scale_index[0]]) < 1e-5


def test_k1_with_a_shared_effect_is_the_glm(data):
    res = emglm("y ~ x1", data, "gaussian", K=1, fixed="~ x2")
    glm = sm.GLM.from_formula("y ~ x1 + x2", data, family=sm.families.Gaussian()).fit()
    np.testing.assert_allclose(res.params["comp1"], glm.params[["Intercept", "x1"]], rtol=1e-8)
    assert res.fixed_params["x2"] == pytest.approx(glm.params["x2"], rel=1e-8)
    ml_scale = float(np.sum(glm.resid_response**2) / glm.nobs)
    assert res.scale.iloc[0] == pytest.approx(ml_scale, rel=1e-8)
    assert res.llf == pytest.approx(glm.model.loglike(glm.params, scale=ml_scale), rel=1e-10)


def test_shared_intercept_without_component_intercepts(data):
    res = emglm("y ~ 0 + x1", data, "gaussian", K=2, fixed="~ x2", random_state=0, n_init=3)
    assert list(res.fixed_params.index) == ["Intercept", "x2"]
    assert res.df_model == 2 + 2 + 2 + 1


def test_collinear_shared_and_specific_columns_are_refused(data):
    with pytest.raises(ValueError, match="rank deficient"):
        emglm("y ~ x1", data, "gaussian", K=2, fixed="~ x1", random_state=0)


def test_predict_adds_the_shared_effect(fit):
    new = pd.DataFrame({"x1": [0.0, 1.0], "x2": [2.0, -1.0]})
    eta = fit.predict(new, type="linear").to_numpy()
    expected = (
        fit.params.loc["Intercept"].to_numpy()
        + np.outer(new.x1, fit.params.loc["x1"])
        + np.outer(new.x2, [fit.fixed_params["x2"]] * 2)
    )
    np.testing.assert_allclose(eta, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="x2"):
        fit.predict(new.drop(columns="x2"))


def test_summary_shows_the_shared_effects_once(fit):
    text = fit.summary().as_text()
    assert "Shared effects (all components)" in text
    assert text.count("\nx2 ") == 1
    assert "one common dispersion" in text


def test_equal_scale_is_ignored_without_a_dispersion():
    data, formula, kwargs = simulate("poisson", 200, 2, seed=3)
    a = emglm(formula, data, K=2, random_state=0, n_init=2, **kwargs)
    b = emglm(formula, data, K=2, equal_scale=True, random_state=0, n_init=2, **kwargs)
    assert a.llf == b.llf and a.df_model == b.df_model


def test_array_route_start_and_pickle(fit, data):
    x = np.column_stack([np.ones(len(data)), data.x1])
    res = EMGLM(
        data.y,
        x,
        "gaussian",
        2,
        fixed=data[["x2"]],
        fixed_names=["x2"],
        exog_names=["Intercept", "x1"],
        equal_scale=True,
    ).fit(start=fit)
    assert res.llf == pytest.approx(fit.llf, rel=1e-12)
    clone = pickle.loads(pickle.dumps(res))
    pd.testing.assert_series_equal(clone.fixed_bse, res.fixed_bse)
    start = {
        "params": fit.params,
        "prior": fit.prior,
        "scale": fit.scale.to_numpy(),
        "fixed": fit.fixed_params,
    }
    again = emglm("y ~ x1", data, "gaussian", K=2, fixed="~ x2", equal_scale=True, start=start)
    assert again.llf == pytest.approx(fit.llf, abs=1e-8)


def test_select_k_compare_and_plots(data, fit):
    choice = select_k(
        "y ~ x1",
        data,
        "gaussian",
        K=[1, 2, 3],
        fixed="~ x2",
        equal_scale=True,
        random_state=0,
        n_init=2,
    )
    assert choice.best_k == 2
    # K p + 1 shared + 1 dispersion + K - 1 priors.
    assert choice.table["df"].tolist() == [4, 7, 10]
    assert compare(fit, choice.fits[1]).loc["df"].tolist() == [7, 4]
    for figure in (fit.plot_posterior(), fit.plot_diagnostics(), fit.plot_params()):
        assert figure.axes
    plt.close("all")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["poisson", "gaussian", "gamma", "binomial"]),
    n=st.integers(40, 100),
    K=st.integers(1, 3),
    seed=st.integers(0, 2**31),
    equal=st.booleans(),
    accelerate=st.booleans(),
)
def test_log_likelihood_never_decreases(kind, n, K, seed, equal, accelerate):
    data, formula, kwargs = simulate(kind, n, K, seed, fixed=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model_of(data, formula, K, kwargs, equal_scale=equal)
    run = em_history(model, seed, accelerate)
    assert_monotone(run)
    if equal and model.family.estimates_scale:
        assert np.all(run.estimates.params == run.estimates.params[0, 0])


def test_rows_missing_a_shared_variable_are_dropped(data):
    holed = data.assign(x2=data.x2.where(data.index % 100 != 0))
    with pytest.warns(UserWarning, match="dropped 12 of 1200 rows"):
        res = emglm(
            "y ~ x1",
            holed,
            "gaussian",
            K=2,
            fixed="~ x2",
            equal_scale=True,
            random_state=0,
            n_init=2,
        )
    assert res.nobs == 1188
    assert 0 not in res.posterior.index
