"""The public workflow: formulas, arrays, starts, predictions, pickling."""

import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import match_components
from simulate import simulate_mixture

from emformula import EMGLM, datasets, emglm, select_best, small_em
from emformula.engine.given import estimates_from_dict


@pytest.fixture(scope="module")
def categorical_data():
    rng = np.random.default_rng(7)
    n = 600
    g = rng.choice(["a", "b", "c"], size=n)
    x = rng.normal(size=n)
    z = rng.integers(0, 2, size=n)
    effect = pd.Series({"a": 0.0, "b": 0.4, "c": -0.3})[g].to_numpy()
    eta = np.where(z == 0, 0.3 + 0.8 * x, 2.2 - 0.5 * x) + effect
    s = rng.uniform(1, 3, size=n)
    y = rng.poisson(np.exp(eta + 0.2 * np.log(s)))
    return pd.DataFrame({"y": y, "x": x, "g": g, "s": s}, index=rng.permutation(n) + 1000)


FORMULA = "y ~ x + C(g) + np.log(s) + I(x**2)"


@pytest.fixture(scope="module")
def categorical_fit(categorical_data):
    return emglm(FORMULA, categorical_data, "poisson", K=2, random_state=4)


def test_formula_terms_are_named_as_formulaic_names_them(categorical_fit):
    assert list(categorical_fit.params.index) == [
        "Intercept",
        "x",
        "C(g)[T.b]",
        "C(g)[T.c]",
        "np.log(s)",
        "I(x ** 2)",
    ]
    assert list(categorical_fit.params.columns) == ["comp1", "comp2"]


def test_formula_route_equals_array_route(categorical_data, categorical_fit):
    d = categorical_data
    exog = np.column_stack(
        [np.ones(len(d)), d.x, d.g == "b", d.g == "c", np.log(d.s), d.x**2]
    ).astype(float)
    res = EMGLM(d.y, exog, "poisson", K=2).fit(random_state=4)
    np.testing.assert_allclose(
        res.params.to_numpy(), categorical_fit.params.to_numpy(), rtol=1e-10, atol=1e-12
    )
    assert res.llf == pytest.approx(categorical_fit.llf, rel=1e-13)
    np.testing.assert_allclose(res.bse.to_numpy(), categorical_fit.bse.to_numpy(), rtol=1e-8)


def test_same_random_state_gives_identical_results(categorical_data, categorical_fit):
    again = emglm(FORMULA, categorical_data, "poisson", K=2, random_state=4)
    assert again.llf == categorical_fit.llf
    np.testing.assert_array_equal(again.params.to_numpy(), categorical_fit.params.to_numpy())
    np.testing.assert_array_equal(again.posterior.to_numpy(), categorical_fit.posterior.to_numpy())


def test_input_dataframe_is_not_modified(categorical_data):
    before = categorical_data.copy(deep=True)
    emglm(
        FORMULA,
        categorical_data,
        "poisson",
        K=2,
        random_state=1,
        n_init=2,
        weights=np.ones(len(categorical_data)),
        offset=np.zeros(len(categorical_data)),
    )
    pd.testing.assert_frame_equal(categorical_data, before)


def test_results_pickle_and_unpickle(categorical_fit, categorical_data):
    clone = pickle.loads(pickle.dumps(categorical_fit))
    pd.testing.assert_frame_equal(clone.params, categorical_fit.params)
    pd.testing.assert_frame_equal(clone.bse, categorical_fit.bse)
    assert clone.llf == categorical_fit.llf
    pd.testing.assert_series_equal(
        clone.predict(categorical_data.head(20)), categorical_fit.predict(categorical_data.head(20))
    )


def test_results_are_immutable(categorical_fit):
    with pytest.raises(AttributeError):
        categorical_fit.llf = 0.0
    with pytest.raises(AttributeError):
        categorical_fit.anything = 1


def test_posterior_and_fitted_values_align_with_the_data_index(categorical_fit, categorical_data):
    post = categorical_fit.posterior
    pd.testing.assert_index_equal(post.index, categorical_data.index)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-12)
    mu = categorical_fit.predict(type="component")
    np.testing.assert_allclose(
        categorical_fit.fittedvalues, mu @ categorical_fit.prior.values, rtol=1e-12
    )


def test_predict_on_new_data_uses_training_levels(categorical_fit, categorical_data):
    new = categorical_data.iloc[[0, 5, 9]].copy()
    # One level only in the new data: the design must still have both dummies.
    new["g"] = ["c", "c", "c"]
    eta = categorical_fit.predict(new, type="linear")
    x = new.x.to_numpy()
    exog = np.column_stack([np.ones(3), x, np.zeros(3), np.ones(3), np.log(new.s), x**2])
    np.testing.assert_allclose(eta.to_numpy(), exog @ categorical_fit.params.to_numpy(), rtol=1e-12)
    mean = categorical_fit.predict(new)
    np.testing.assert_allclose(mean, np.exp(eta.to_numpy()) @ categorical_fit.prior.values)
    pd.testing.assert_index_equal(mean.index, new.index)


def test_predict_rejects_an_unseen_level(categorical_fit, categorical_data):
    new = categorical_data.head(3).copy()
    new["g"] = ["a", "zz", "b"]
    with pytest.raises(ValueError, match="zz"):
        categorical_fit.predict(new)


def test_predict_with_exposure_column_in_new_data():
    sim3 = datasets.load_sim3()
    # sim3 stacks component 1 on top of component 2: sample across both.
    rows = np.random.default_rng(0).permutation(len(sim3.data))
    data, new = sim3.data.iloc[rows[:3000]], sim3.data.iloc[rows[3000:3010]]
    res = emglm(sim3.formula, data, "poisson", K=2, exposure="exposure", random_state=2, n_init=3)
    eta = res.predict(new, type="linear").to_numpy()
    x = new[[f"V{j}" for j in range(1, 11)]].to_numpy()
    expected = x @ res.params.to_numpy() + np.log(new.exposure.to_numpy())[:, None]
    np.testing.assert_allclose(eta, expected, rtol=1e-12)
    # The truth is recovered (10000 rows would be sharper; 3000 suffice at 0.05).
    order = match_components(res.params, sim3.params)
    np.testing.assert_allclose(res.params.to_numpy()[:, order], sim3.params.to_numpy(), atol=0.05)


def test_predict_requires_array_offset_for_new_data(categorical_data):
    res = emglm("y ~ x", categorical_data, "poisson", K=1, offset=np.zeros(len(categorical_data)))
    with pytest.raises(ValueError, match="offset"):
        res.predict(categorical_data.head())
    out = res.predict(categorical_data.head(), offset=np.ones(5), type="linear")
    x = categorical_data.head().x.to_numpy()
    np.testing.assert_allclose(
        out["comp1"], res.params.loc["Intercept", "comp1"] + res.params.loc["x", "comp1"] * x + 1.0
    )


def test_two_column_binomial_equals_proportion_with_trials():
    data, formula = simulate_mixture("binomial_counts", 300, 2, seed=5)
    counts = emglm(formula, data, "binomial", K=2, random_state=0, n_init=4)
    prop = data.assign(p=data.succ / (data.succ + data.fail), n=data.succ + data.fail)
    rhs = formula.split("~")[1]
    other = emglm("p ~" + rhs, prop, "binomial", K=2, trials="n", random_state=0, n_init=4)
    assert other.llf == pytest.approx(counts.llf, rel=1e-10)
    np.testing.assert_allclose(other.params, counts.params, rtol=1e-7, atol=1e-9)


def test_start_from_results_dict_and_posterior(categorical_data, categorical_fit):
    from_results = emglm(FORMULA, categorical_data, "poisson", K=2, start=categorical_fit)
    assert from_results.llf == pytest.approx(categorical_fit.llf, abs=1e-8)
    as_dict = {"params": categorical_fit.params, "prior": categorical_fit.prior}
    from_dict = emglm(FORMULA, categorical_data, "poisson", K=2, start=as_dict)
    np.testing.assert_allclose(from_dict.params, categorical_fit.params, rtol=1e-6)
    post = {"posterior": categorical_fit.posterior.to_numpy()}
    from_post = emglm(FORMULA, categorical_data, "poisson", K=2, start=post)
    assert from_post.llf == pytest.approx(categorical_fit.llf, abs=1e-6)


def test_small_em_and_select_best_reach_the_flexmix_optimum():
    sim2 = datasets.load_sim2()
    warm = small_em(sim2.formula, sim2.data, "poisson", K=2, repeats=8, max_iter=5, random_state=1)
    assert len(warm.table) == 8
    assert list(warm.table.columns[:4]) == ["llf", "n_iter", "prior_comp1", "prior_comp2"]
    assert (warm.table.n_iter == 5).all()
    start = select_best(warm)
    best = warm.table.llf.idxmax()
    for k in (1, 2):
        row = warm.table.loc[best, [f"comp{k}:V{j}" for j in range(1, 6)]].to_numpy(float)
        np.testing.assert_array_equal(start["params"][f"comp{k}"].to_numpy(), row)
    res = emglm(sim2.formula, sim2.data, "poisson", K=2, start=start)
    # Truth recovered (the package's own sim2: the true values of the R package).
    order = match_components(res.params, sim2.params)
    np.testing.assert_allclose(res.params.to_numpy()[:, order], sim2.params.to_numpy(), atol=0.03)
    assert res.llf >= warm.table.llf.max()


def test_small_em_subsamples_score_on_the_full_data():
    sim2 = datasets.load_sim2()
    warm = small_em(
        sim2.formula,
        sim2.data,
        "poisson",
        K=2,
        repeats=3,
        max_iter=3,
        sample_size=500,
        random_state=2,
    )
    start = select_best(warm)
    model = EMGLM.from_formula(sim2.formula, sim2.data, "poisson", 2)
    from emformula.engine import em as _em

    est = estimates_from_dict(start, model.family, 2)
    assert warm.table.llf.max() == pytest.approx(_em.e_step(model.data, est).llf, rel=1e-12)


@pytest.mark.parametrize(
    "loader, n, p",
    [(datasets.load_sim1, 5000, 5), (datasets.load_sim2, 5000, 5), (datasets.load_sim3, 10000, 10)],
)
def test_bundled_data_follow_the_r_designs(loader, n, p):
    sim = loader()
    assert len(sim.data) == n
    assert sim.params.shape[0] == p
    # The data are Poisson draws from the stated truth: the scaled deviance of
    # the true model is about its degrees of freedom (mean-one Pearson ratio).
    x = sim.data[[f"V{j}" for j in range(1, p + 1)]].to_numpy()
    eta = np.einsum("ij,ji->i", x, sim.params.to_numpy()[:, sim.component - 1])
    if "exposure" in sim.data:
        eta += np.log(sim.data.exposure.to_numpy())
    mu = np.exp(eta)
    pearson = ((sim.data.y - mu) ** 2 / mu).mean()
    assert 0.9 < pearson < 1.1
    # Same seed, same data.
    pd.testing.assert_frame_equal(loader().data, sim.data)


def test_bundled_sim2_glm_is_overdispersed():
    sim2 = datasets.load_sim2()
    glm = sm.GLM.from_formula(
        "y ~ V1 + V2 + V3 + V4 + V5", sim2.data, family=sm.families.Poisson()
    ).fit()
    assert glm.pearson_chi2 / glm.df_resid > 10


def test_one_convergence_warning_when_max_iter_is_reached():
    from emformula import ConvergenceWarning

    sim2 = datasets.load_sim2()
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations") as record:
        res = emglm(sim2.formula, sim2.data, "poisson", K=2, max_iter=2, n_init=3, random_state=0)
    assert len([w for w in record if issubclass(w.category, ConvergenceWarning)]) == 1
    assert not res.converged and res.n_iter == 2
    assert len(res.llf_history) == 3  # the start and two plain EM steps
    assert "EM did not converge" in res.summary().as_text()


def test_history_is_monotone_and_ends_at_llf():
    sim2 = datasets.load_sim2()
    res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=5, n_init=2)
    history = res.llf_history
    assert history[-1] == res.llf
    assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:]))
    assert res.converged and res.n_iter >= len(history) - 1
