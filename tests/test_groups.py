"""Grouped data (``groups=``): all rows of a group belong to one component.

Reference: R flexmix 2.3-18, ``y ~ x | id`` (tests/reference).
"""

import pickle
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from flexmix_reference import assert_matches_flexmix, load_data, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import logsumexp
from simulate_features import (
    assert_louis_equals_numerical_hessian,
    assert_monotone,
    em_history,
    model_of,
    simulate,
)

from emformula import (
    EMGLM,
    ConvergenceWarning,
    EstimationWarning,
    bootstrap_lrt,
    compare,
    emglm,
    select_best,
    select_k,
    small_em,
)


@pytest.fixture(scope="module")
def data():
    return load_data("grouped_poisson")


@pytest.fixture(scope="module")
def fit(data):
    return emglm("y ~ x", data, "poisson", K=2, groups="id", random_state=1)


def test_matches_flexmix_loglik_estimates_and_refit_standard_errors(fit):
    assert_matches_flexmix(fit, "grouped_poisson")


def test_bic_counts_groups_not_rows(fit):
    ref = reference("grouped_poisson").iloc[0]
    assert fit.nobs == 1500 and fit.n_groups == 300 and fit.wnobs == 300
    assert fit.df_model == ref.df == 5
    assert fit.aic == pytest.approx(ref.AIC, abs=1e-4)
    assert fit.bic == pytest.approx(-2 * fit.llf + np.log(300) * 5, rel=1e-12)
    # flexmix's BIC uses the 1500 rows: the difference is exactly that.
    assert ref.BIC - fit.bic == pytest.approx((np.log(1500) - np.log(300)) * 5, abs=1e-4)


def test_log_likelihood_and_posterior_are_per_group(fit, data):
    mu = fit.predict(type="component").to_numpy()
    logf = stats.poisson.logpmf(data.y.to_numpy()[:, None], mu)
    per_group = pd.DataFrame(logf).groupby(data.id.to_numpy()).sum().to_numpy()
    joint = per_group + np.log(fit.prior.to_numpy())
    assert fit.llf == pytest.approx(logsumexp(joint, axis=1).sum(), rel=1e-12)
    post = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    np.testing.assert_allclose(fit.posterior.groupby(data.id.to_numpy()).first(), post, atol=1e-12)
    assert (fit.posterior.groupby(data.id.to_numpy()).nunique() == 1).all().all()
    # The entropy of the ICL counts each group once.
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(post * np.log(post))
    assert fit.icl == pytest.approx(fit.bic + 2 * entropy, rel=1e-10)


def test_one_row_per_group_is_the_ungrouped_model():
    data, formula, kwargs = simulate("poisson", 300, 2, seed=4, separation=3.0)
    plain = emglm(formula, data, K=2, random_state=0, n_init=3, **kwargs)
    grouped = emglm(
        formula, data.assign(g=np.arange(300)[::-1]), K=2, groups="g", start=plain, **kwargs
    )
    assert grouped.llf == pytest.approx(plain.llf, rel=1e-12)
    np.testing.assert_allclose(grouped.params, plain.params, rtol=1e-8)
    np.testing.assert_allclose(grouped.bse, plain.bse, rtol=1e-8)
    assert grouped.bic == pytest.approx(plain.bic, rel=1e-12)


def test_group_weights_equal_replicated_groups(fit, data):
    rng = np.random.default_rng(3)
    counts = pd.Series(rng.integers(1, 4, 300), index=np.arange(1, 301))
    weighted = emglm(
        "y ~ x",
        data,
        "poisson",
        K=2,
        groups="id",
        start=fit,
        weights=counts[data.id].to_numpy().astype(float),
    )
    copies = [
        data[data.id.isin(counts.index[counts >= c])].assign(id=lambda d, c=c: d.id + 1000 * c)
        for c in range(1, 4)
    ]
    expanded = pd.concat(copies, ignore_index=True)
    replicated = emglm("y ~ x", expanded, "poisson", K=2, groups="id", start=fit)
    assert weighted.llf == pytest.approx(replicated.llf, rel=1e-10)
    np.testing.assert_allclose(weighted.params, replicated.params, rtol=1e-7)
    np.testing.assert_allclose(weighted.bse, replicated.bse, rtol=1e-6)
    assert weighted.wnobs == counts.sum() == replicated.n_groups
    assert weighted.bic == pytest.approx(replicated.bic, rel=1e-10)


def test_louis_equals_numerical_hessian_with_weights_and_offset(data):
    rng = np.random.default_rng(8)
    weights = pd.Series(rng.integers(1, 4, 300), index=np.arange(1, 301))[data.id]
    res = emglm(
        "y ~ x",
        data,
        "poisson",
        K=2,
        groups="id",
        weights=weights.to_numpy().astype(float),
        offset=rng.normal(scale=0.1, size=len(data)),
        random_state=0,
        n_init=4,
    )
    assert res.converged
    assert_louis_equals_numerical_hessian(res)


def test_louis_with_groups_concomitant_and_shared_effects():
    data, formula, kwargs = simulate(
        "gaussian", 600, 2, seed=5, concomitant=True, fixed=True, groups=4, separation=2.0
    )
    res = emglm(formula, data, K=2, equal_scale=True, random_state=0, n_init=4, **kwargs)
    assert res.converged and res.n_groups == 150
    assert_louis_equals_numerical_hessian(res)


def test_weights_and_concomitant_variables_must_be_constant_within_groups(data):
    weights = np.ones(len(data))
    weights[7] = 2.0
    with pytest.raises(ValueError, match="weights must be the same .* group 2"):
        emglm("y ~ x", data, "poisson", K=2, groups="id", weights=weights)
    with pytest.raises(ValueError, match="concomitant variables must be the same"):
        emglm("y ~ x", data, "poisson", K=2, groups="id", concomitant="~ x")
    with pytest.raises(ValueError, match="missing label"):
        emglm("y ~ x", data.assign(id=data.id.where(data.index != 3)), "poisson", K=2, groups="id")


def test_predict_posterior_of_new_groups(fit, data):
    new = data[data.id.isin([4, 9])]
    post = fit.predict(new, type="posterior")
    np.testing.assert_allclose(post, fit.posterior.loc[new.index], rtol=1e-10)
    # A partial group: the posterior of its rows present.
    part = fit.predict(new.iloc[:2], type="posterior")
    assert (part.nunique() == 1).all()
    with pytest.raises(ValueError, match="'id'"):
        fit.predict(new.drop(columns="id"), type="posterior")
    # Predictions that do not need the response ignore the groups.
    np.testing.assert_allclose(
        fit.predict(new.drop(columns=["id", "y"])), fit.fittedvalues.loc[new.index], rtol=1e-12
    )


def test_summary_reports_the_grouping(fit):
    text = fit.summary().as_text()
    assert "No. Groups:" in text and "300" in text
    assert "grouped by 'id'" in text


def test_small_em_samples_groups_and_select_best_starts_the_fit(fit, data):
    warm = small_em(
        "y ~ x", data, "poisson", K=2, groups="id", sample_size=60, repeats=5, random_state=0
    )
    res = emglm("y ~ x", data, "poisson", K=2, groups="id", start=select_best(warm))
    assert res.llf == pytest.approx(fit.llf, abs=1e-6)
    with pytest.raises(ValueError, match="number of groups"):
        small_em("y ~ x", data, "poisson", K=2, groups="id", sample_size=301)


def test_select_k_plots_and_pickle(fit, data):
    choice = select_k("y ~ x", data, "poisson", K=[1, 2, 3], groups="id", random_state=0, n_init=2)
    assert choice.best_k == 2
    np.testing.assert_allclose(
        choice.table["bic"], -2 * choice.table["llf"] + np.log(300) * choice.table["df"]
    )
    for figure in (fit.plot_posterior(), fit.plot_diagnostics(), fit.plot_params()):
        assert figure.axes
    plt.close("all")
    clone = pickle.loads(pickle.dumps(fit))
    assert clone.n_groups == 300
    pd.testing.assert_frame_equal(clone.bse, fit.bse)


def test_array_route_with_string_labels(fit, data):
    x = np.column_stack([np.ones(len(data)), data.x])
    labels = np.array([f"g{i}" for i in data.id])
    res = EMGLM(data.y, x, "poisson", 2, groups=labels).fit(start=fit)
    assert res.llf == pytest.approx(fit.llf, rel=1e-12)
    post = res.predict(
        {"exog": x[:10], "endog": data.y[:10], "groups": labels[:10]}, type="posterior"
    )
    np.testing.assert_allclose(post, fit.posterior.iloc[:10], rtol=1e-10)


def test_bootstrap_draws_one_component_per_group(fit, data):
    from emformula.selection import simulate as draw

    y = draw(fit, np.random.default_rng(0))
    assert y.shape == (1500,) and np.all(y >= 0)
    test = bootstrap_lrt(
        "y ~ x", data, "poisson", 1, 2, groups="id", n_boot=3, n_init=1, random_state=0
    )
    assert test.fit1.llf == pytest.approx(fit.llf, abs=1e-6)
    assert test.pvalue == 0.25
    table = compare(fit, test.fit0)
    assert table.loc["bic"].tolist() == [fit.bic, test.fit0.bic]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["poisson", "gaussian", "binomial"]),
    n=st.integers(40, 120),
    K=st.integers(1, 3),
    size=st.integers(1, 5),
    seed=st.integers(0, 2**31),
    concomitant=st.booleans(),
    accelerate=st.booleans(),
)
def test_log_likelihood_never_decreases(kind, n, K, size, seed, concomitant, accelerate):
    data, formula, kwargs = simulate(kind, n, K, seed, groups=size, concomitant=concomitant)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model_of(data, formula, K, kwargs)
    except ValueError as exc:
        assert "too large" in str(exc)
        return
    run = em_history(model, seed, accelerate)
    assert_monotone(run)
    # Rows of a group share the posterior.
    post = pd.DataFrame(run.posterior).groupby(data.id.to_numpy()).nunique()
    assert (post <= 1).all().all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["poisson", "gaussian", "gamma", "binomial"]),
    n=st.integers(3, 40),
    K=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    concomitant=st.booleans(),
    fixed=st.booleans(),
    size=st.sampled_from([None, 1, 3]),
    equal=st.booleans(),
    cov_type=st.sampled_from(["louis", "robust"]),
)
def test_tiny_data_with_any_feature_fits_or_refuses_cleanly(
    kind, n, K, seed, concomitant, fixed, size, equal, cov_type
):
    """A correct fit (finite estimates, posteriors summing to one) or one of
    the documented errors, whatever the combination of features."""
    data, formula, kwargs = simulate(
        kind, n, K, seed, concomitant=concomitant, fixed=fixed, groups=size
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = model_of(data, formula, K, kwargs, equal_scale=equal)
    except ValueError as exc:
        message = str(exc)
        assert "too large" in message or "rank deficient" in message, message
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = model.fit(random_state=seed, n_init=2, cov_type=cov_type)
        se = res.theta_bse.to_numpy()
        res.summary()
    assert np.all(np.isfinite(res.params.to_numpy()))
    assert np.isfinite(res.llf)
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0, atol=1e-12)
    assert not np.any(np.isinf(se))


def test_a_separated_component_gets_nan_robust_errors_not_a_sqrt_warning():
    # Found by the property test above at hypothesis 6.50.1: a component
    # fitting probabilities of 0 or 1 has a nearly singular information,
    # where the sandwich's variances came out negative by rounding (-2e-17)
    # and `bse` raised "invalid value encountered in sqrt".
    data, formula, kwargs = simulate("binomial", 36, 3, 348388783, groups=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = model_of(data, formula, 3, kwargs)
    with pytest.warns(EstimationWarning, match="negative variances for comp3:x1, comp3:x2"):
        res = model.fit(random_state=348388783, n_init=2, cov_type="robust")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        se = res.theta_bse
    assert se[["comp3:x1", "comp3:x2"]].isna().all()
    assert np.isfinite(se.drop(["comp3:x1", "comp3:x2"])).all()
