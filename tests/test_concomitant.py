"""Concomitant variables: mixing proportions as a multinomial logit of covariates.

Reference: R flexmix 2.3-18, ``FLXPmultinom(~ z)`` (tests/reference).
"""

import pickle
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from flexmix_reference import assert_matches_flexmix, load_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simulate_features import (
    assert_louis_equals_numerical_hessian,
    assert_monotone,
    em_history,
    model_of,
    simulate,
)

from emformula import EMGLM, compare, emglm, select_k
from emformula.engine import em as _em
from emformula.engine.layout import log_softmax


@pytest.fixture(scope="module")
def data():
    return load_data("concomitant_poisson")


@pytest.fixture(scope="module")
def fit(data):
    return emglm("y ~ x", data, "poisson", K=2, concomitant="~ z", random_state=1)


def test_matches_flexmix_loglik_estimates_and_refit_standard_errors(fit):
    table = assert_matches_flexmix(fit, "concomitant_poisson")
    # The concomitant coefficients themselves, re-based on flexmix's component 1.
    gamma = table[table.parameter.str.startswith("concomitant:") & (table.component == 2)]
    np.testing.assert_allclose(gamma.ours, gamma.estimate, atol=1e-4)
    np.testing.assert_allclose(gamma.ours_se, gamma.se, rtol=1e-3)


def test_information_criteria_count_the_concomitant_coefficients(fit):
    # K p = 4 coefficients and (K - 1) q = 2 concomitant ones (flexmix's df 6).
    assert fit.df_model == 6
    assert fit.aic == pytest.approx(7789.03382893513, abs=1e-4)
    assert fit.bic == pytest.approx(-2 * fit.llf + np.log(1500) * 6, rel=1e-12)
    assert fit.bic == pytest.approx(7820.91315125767, abs=1e-4)


def test_parameters_are_labelled_and_the_reference_is_component_one(fit):
    assert fit.param_names[-2:] == ["concomitant:comp2:Intercept", "concomitant:comp2:z"]
    gamma = fit.concomitant_params
    assert list(gamma.index) == ["Intercept", "z"]
    assert list(gamma.columns) == ["comp1", "comp2"]
    assert np.all(gamma["comp1"] == 0.0)
    assert fit.concomitant_bse["comp1"].isna().all()
    np.testing.assert_allclose(
        fit.concomitant_bse["comp2"], fit.theta_bse.iloc[-2:].to_numpy(), rtol=1e-12
    )
    # The reported prior is the mean of the per-row proportions.
    np.testing.assert_allclose(fit.prior, fit.predict(type="prior").mean(), rtol=1e-12)


def test_louis_standard_errors_equal_numerical_hessian(fit):
    assert_louis_equals_numerical_hessian(fit)


def test_louis_with_weights_offset_and_three_components():
    data, formula, kwargs = simulate("poisson", 500, 3, seed=3, concomitant=True, separation=3.0)
    rng = np.random.default_rng(5)
    res = emglm(
        formula,
        data,
        K=3,
        weights=rng.integers(1, 4, len(data)).astype(float),
        offset=rng.normal(scale=0.1, size=len(data)),
        random_state=0,
        n_init=4,
        **kwargs,
    )
    assert res.converged
    assert res.df_model == 3 * 3 + 2 * 2
    assert_louis_equals_numerical_hessian(res)


def test_prior_bse_of_the_mean_proportions_by_the_delta_method(fit):
    from statsmodels.tools.numdiff import approx_fprime

    lay, data = fit.layout, fit.model.data
    theta = lay.pack(fit.estimates)
    jac = approx_fprime(theta, lambda th: lay.unpack(th, data).prior, centered=True)
    se = np.sqrt(np.diag(jac @ fit.cov_params().to_numpy() @ jac.T))
    np.testing.assert_allclose(fit.prior_bse, se, rtol=1e-6)


def test_predict_prior_for_new_data_is_the_multinomial_logit(fit, data):
    new = pd.DataFrame({"x": [0.0, 1.0, -1.0], "z": [-2.0, 0.0, 3.0]}, index=[7, 8, 9])
    prior = fit.predict(new, type="prior")
    gamma = fit.concomitant_params.to_numpy()
    w = np.column_stack([np.ones(3), new.z])
    np.testing.assert_allclose(prior, np.exp(log_softmax(w @ gamma)), rtol=1e-12)
    assert list(prior.index) == [7, 8, 9] and list(prior.columns) == ["comp1", "comp2"]
    # The mixture mean weights the component means by the row's own proportions.
    mean = fit.predict(new)
    component = fit.predict(new, type="component")
    np.testing.assert_allclose(mean, (component * prior).sum(axis=1), rtol=1e-12)
    # Training rows: the same as predicting their own data.
    pd.testing.assert_frame_equal(
        fit.predict(type="prior").head(5), fit.predict(data.head(5), type="prior")
    )
    np.testing.assert_allclose(fit.fittedvalues.head(5), fit.predict(data.head(5)), rtol=1e-12)


def test_predict_posterior_needs_the_response(fit, data):
    new = data.iloc[[3, 10, 20]]
    post = fit.predict(new, type="posterior")
    np.testing.assert_allclose(post, fit.posterior.iloc[[3, 10, 20]], rtol=1e-12)
    pd.testing.assert_frame_equal(fit.predict(type="posterior"), fit.posterior)
    with pytest.raises(ValueError, match="needs the response"):
        fit.predict(new.drop(columns="y"), type="posterior")
    # A row with a missing value gets no posterior; the others are unaffected.
    holed = new.assign(y=[new.y.iloc[0], np.nan, new.y.iloc[2]])
    post = fit.predict(holed, type="posterior")
    assert post.iloc[1].isna().all()
    np.testing.assert_allclose(post.iloc[[0, 2]], fit.posterior.iloc[[3, 20]], rtol=1e-12)


def test_an_intercept_only_concomitant_model_is_the_constant_prior_model(data):
    const = emglm("y ~ x", data, "poisson", K=2, random_state=2, n_init=3)
    conc = emglm("y ~ x", data, "poisson", K=2, concomitant="~ 1", random_state=2, n_init=3)
    assert conc.llf == pytest.approx(const.llf, rel=1e-12)
    np.testing.assert_allclose(conc.prior, const.prior, rtol=1e-8)
    np.testing.assert_allclose(conc.bse, const.bse, rtol=1e-6)
    assert conc.param_names[-1] == "concomitant:comp2:Intercept"
    assert const.param_names[-1] == "logit_prior:comp2"
    assert conc.theta_bse.iloc[-1] == pytest.approx(const.theta_bse.iloc[-1], rel=1e-6)
    np.testing.assert_allclose(conc.prior_bse, const.prior_bse, rtol=1e-6)


def test_concomitant_m_step_maximises_the_weighted_multinomial_likelihood():
    rng = np.random.default_rng(0)
    W = np.column_stack([np.ones(300), rng.normal(size=(300, 2))])
    tau = rng.dirichlet(np.ones(3), size=300)
    v = rng.uniform(0.5, 2.0, size=300)
    gamma = _em.concomitant_step(W, v, tau, np.zeros((3, 3)), max_steps=50)
    pi = np.exp(log_softmax(W @ gamma))
    grad = W.T @ (v[:, None] * (tau - pi))
    assert np.abs(grad[:, 1:]).max() < 1e-9
    assert np.all(gamma[:, 0] == 0)

    # One step already increases the objective (a GEM step).
    def objective(g):
        return float(v @ np.sum(tau * log_softmax(W @ g), axis=1))

    one = _em.concomitant_step(W, v, tau, np.zeros((3, 3)), max_steps=1)
    assert objective(np.zeros((3, 3))) < objective(one) <= objective(gamma) + 1e-12


def test_summary_has_the_concomitant_table(fit):
    text = fit.summary().as_text()
    assert "Concomitant model" in text and "reference comp1" in text
    for term in ("comp2:Intercept", "comp2:z"):
        assert term in text
    row = text.split("comp2:z")[1].split()
    assert float(row[0]) == pytest.approx(fit.concomitant_params.loc["z", "comp2"], abs=1e-4)
    assert float(row[1]) == pytest.approx(fit.concomitant_bse.loc["z", "comp2"], abs=1e-3)
    assert "mean prior" in text
    assert "Covariance Type:                 Louis" in text


def test_pickle_keeps_everything(fit, data):
    clone = pickle.loads(pickle.dumps(fit))
    pd.testing.assert_frame_equal(clone.concomitant_params, fit.concomitant_params)
    pd.testing.assert_frame_equal(clone.concomitant_bse, fit.concomitant_bse)
    pd.testing.assert_frame_equal(
        clone.predict(data.head(), type="prior"), fit.predict(data.head(), type="prior")
    )


def test_start_from_results_and_from_a_dict(fit, data):
    again = emglm("y ~ x", data, "poisson", K=2, concomitant="~ z", start=fit)
    assert again.llf == pytest.approx(fit.llf, abs=1e-8)
    # A dict without concomitant coefficients starts from constant proportions.
    start = {"params": fit.params, "prior": fit.prior.to_numpy()}
    again = emglm("y ~ x", data, "poisson", K=2, concomitant="~ z", start=start)
    assert again.llf == pytest.approx(fit.llf, abs=1e-6)


def test_select_k_compare_and_plots_with_a_concomitant_model(data, fit):
    choice = select_k(
        "y ~ x", data, "poisson", K=[1, 2, 3], concomitant="~ z", random_state=0, n_init=2
    )
    assert choice.best_k == 2
    assert choice.table["df"].tolist() == [2, 6, 10]
    table = compare(fit, choice.fits[1])
    assert table.loc["df"].tolist() == [6, 2]
    for figure in (
        fit.plot_posterior(),
        fit.plot_diagnostics(random_state=0),
        fit.plot_params(),
        fit.plot_qq(random_state=0),
    ):
        assert figure.axes
    plt.close("all")


def test_residuals_use_each_rows_mixing_proportions(fit):
    resid = fit.residuals("response")
    prior = fit.predict(type="prior").to_numpy()
    mu = fit.predict(type="component").to_numpy()
    np.testing.assert_allclose(resid, fit.model.data.endog - (prior * mu).sum(axis=1), rtol=1e-12)
    pearson = fit.residuals("pearson")
    mean = (prior * mu).sum(axis=1)
    var = (prior * (mu + (mu - mean[:, None]) ** 2)).sum(axis=1)  # Poisson: V(mu) = mu
    np.testing.assert_allclose(pearson, (fit.model.data.endog - mean) / np.sqrt(var), rtol=1e-10)


def test_array_route_equals_formula_route(fit, data):
    x = np.column_stack([np.ones(len(data)), data.x])
    w = np.column_stack([np.ones(len(data)), data.z])
    res = EMGLM(
        data.y,
        x,
        "poisson",
        2,
        concomitant=w,
        exog_names=["Intercept", "x"],
        concomitant_names=["Intercept", "z"],
    ).fit(start=fit)
    assert res.llf == pytest.approx(fit.llf, rel=1e-12)
    np.testing.assert_allclose(res.concomitant_params, fit.concomitant_params, rtol=1e-7)
    prior = res.predict({"exog": x[:4], "concomitant": w[:4]}, type="prior")
    np.testing.assert_allclose(prior, fit.predict(data.head(4), type="prior"), rtol=1e-7)
    with pytest.raises(ValueError, match="concomitant"):
        res.predict(x[:4], type="prior")


def test_bad_concomitant_arguments():
    data, formula, kwargs = simulate("poisson", 60, 2, seed=1, concomitant=True)
    with pytest.raises(ValueError, match="one-sided"):
        emglm(formula, data, K=2, family="poisson", concomitant="y ~ z")
    with pytest.raises(ValueError, match="not_there"):
        emglm(formula, data, K=2, family="poisson", concomitant="~ not_there")
    with pytest.raises(ValueError, match="rank deficient"):
        emglm(formula, data.assign(z2=2 * data.z), K=2, family="poisson", concomitant="~ z + z2")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["poisson", "gaussian", "binomial"]),
    n=st.integers(40, 100),
    K=st.integers(1, 3),
    seed=st.integers(0, 2**31),
    accelerate=st.booleans(),
)
def test_log_likelihood_never_decreases(kind, n, K, seed, accelerate):
    data, formula, kwargs = simulate(kind, n, K, seed, concomitant=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model_of(data, formula, K, kwargs)
    run = em_history(model, seed, accelerate)
    assert_monotone(run)
    assert run.estimates.gamma.shape == (2, K)


def test_separating_concomitant_variables_are_reported():
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=n)
    comp = z > 0  # z decides the component: the logit diverges
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(np.where(comp, 2.5 - 0.5 * x, 0.5 + 0.5 * x)))
    data = pd.DataFrame({"y": y, "x": x, "z": z})
    from emformula import EstimationWarning

    with pytest.warns(EstimationWarning, match="separate the components"):
        res = emglm(
            "y ~ x", data, "poisson", K=2, concomitant="~ z", random_state=0, n_init=2, max_iter=300
        )
    assert any("concomitant" in p for p in res.problems)
