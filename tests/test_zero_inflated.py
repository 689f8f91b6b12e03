"""A family per component, and point-mass components: zero-inflated models.

``family=["pointmass", "poisson"]`` with ``concomitant="~ ment + kid5"`` is
``pscl::zeroinfl(art ~ ... | ment + kid5)``; the references are pscl's fits
on bioChemists (tests/reference/biochemists_counts.csv, made by
make_biochemists_counts.R). pscl's zero model is the logit of the zero
state, ``log(pi_1 / pi_2)``: our concomitant coefficients of component 2
against the point mass are its negatives. pscl's standard errors come from
optim's finite-difference Hessian (BFGS), good to about 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from louis_check import assert_louis_equals_numerical_hessian

import emformula
from emformula import EMGLM, datasets, emglm

REFERENCE = Path(__file__).parent / "reference" / "biochemists_counts.csv"
FORMULA = "art ~ fem + mar + kid5 + phd + ment"
TERMS = ["Intercept", "fem", "mar", "kid5", "phd", "ment"]
ZERO_TERMS = ["Intercept", "ment", "kid5"]


@pytest.fixture(scope="module")
def bio():
    return datasets.load_biochemists()


def _reference(model):
    table = pd.read_csv(REFERENCE)
    return table[table.model == model].set_index(["part", "term"])


@pytest.fixture(scope="module")
def zip_fit(bio):
    return emglm(
        FORMULA, bio, ["pointmass", "poisson"], concomitant="~ ment + kid5", random_state=0
    )


@pytest.fixture(scope="module")
def zinb_fit(bio):
    return emglm(
        FORMULA,
        bio,
        ["pointmass", "negative_binomial"],
        concomitant="~ ment + kid5",
        random_state=0,
    )


@pytest.mark.parametrize("name", ["zip", "zinb"])
def test_zero_inflated_models_equal_pscl(name, zip_fit, zinb_fit):
    res = zip_fit if name == "zip" else zinb_fit
    ref = _reference(name)
    assert res.converged
    assert res.n_components == 2 and res.family.name.startswith("pointmass+")
    assert res.llf == pytest.approx(ref.loc[("llf", "llf"), "estimate"], rel=1e-10)
    count = ref.loc["count"].loc[TERMS]
    np.testing.assert_allclose(res.params["comp2"], count.estimate, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.bse["comp2"], count.se, rtol=5e-4)
    zero = ref.loc["zero"].loc[ZERO_TERMS]
    np.testing.assert_allclose(
        -res.concomitant_params.loc[ZERO_TERMS, "comp2"], zero.estimate, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(res.concomitant_bse.loc[ZERO_TERMS, "comp2"], zero.se, rtol=5e-4)
    # The point mass has no coefficients: NaN in the tables, none in theta.
    assert res.params["comp1"].isna().all() and res.bse["comp1"].isna().all()
    assert not any(n.startswith("comp1:") for n in res.param_names)
    if name == "zinb":
        alpha = ref.loc[("alpha", "alpha")]
        assert res.family_params.loc["alpha", "comp2"] == pytest.approx(alpha.estimate, rel=1e-5)
        assert res.family_bse.loc["alpha", "comp2"] == pytest.approx(alpha.se, rel=5e-4)
        assert np.isnan(res.family_params.loc["alpha", "comp1"])
        assert res.df_model == 6 + 1 + 3
    else:
        assert res.df_model == 6 + 3


@pytest.mark.parametrize(
    "families",
    [
        ["pointmass", "poisson"],
        ["pointmass", "negative_binomial"],
        ["pointmass", "poisson", "poisson"],
    ],
)
def test_louis_information_equals_numerical_hessian(families):
    rng = np.random.default_rng(3)
    n = 1200
    x = rng.normal(size=n)
    labels = rng.choice(
        len(families), size=n, p=np.r_[0.3, np.full(len(families) - 1, 0.7 / (len(families) - 1))]
    )
    mu = np.exp(np.where(labels == 2, 2.2 - 0.3 * x, 0.6 + 0.5 * x))
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    y[labels == 0] = 0.0
    df = pd.DataFrame({"y": y, "x": x})
    model = EMGLM.from_formula("y ~ x", df, families)
    res = model.fit(random_state=2)
    assert res.converged
    assert_louis_equals_numerical_hessian(model, res, rtol=1e-4)


def test_components_keep_the_order_of_the_list(bio):
    # The point mass has the smaller proportion but stays component 1.
    res = emglm(FORMULA, bio, [emformula.PointMass(0), "poisson"], random_state=1)
    assert res.prior.iloc[0] < res.prior.iloc[1]
    assert res.family.member(0).name == "pointmass"
    # Without a concomitant model the proportions are constant: llf as pscl's
    # zeroinfl(art ~ ... | 1), whose zero model is one logit.
    swapped = emglm(FORMULA, bio, ["poisson", "pointmass"], random_state=1)
    assert swapped.llf == pytest.approx(res.llf, rel=1e-10)
    assert swapped.prior.iloc[1] == pytest.approx(res.prior.iloc[0], rel=1e-6)


def test_what_a_list_of_families_cannot_do_is_refused(bio):
    with pytest.raises(ValueError, match="K=3 but 2 families"):
        emglm(FORMULA, bio, ["pointmass", "poisson"], K=3)
    with pytest.raises(ValueError, match="shared effects .* point mass"):
        emglm("art ~ fem", bio, ["pointmass", "poisson"], fixed="~ ment")
    with pytest.raises(ValueError, match="equal_scale=True needs one family"):
        emglm(FORMULA, bio, ["poisson", "negative_binomial"], equal_scale=True)
    with pytest.raises(ValueError, match="at least one component needs coefficients"):
        emglm(FORMULA, bio, ["pointmass", "pointmass"])
    with pytest.raises(ValueError, match="point mass"):
        emglm(FORMULA, bio, ["pointmass", "poisson"], random_state=0).wald_test_terms()


def test_simulation_and_residuals_follow_the_fit(zinb_fit, bio):
    from emformula.selection import simulate

    draws = np.array([simulate(zinb_fit, seed) for seed in range(40)])
    expected_mean = zinb_fit.fittedvalues.mean()
    assert draws.mean() == pytest.approx(expected_mean, rel=0.02)
    # Zeros: the point mass's share plus the count component's zeros.
    mu = zinb_fit.predict(type="component")["comp2"].to_numpy()
    alpha = zinb_fit.family_params.loc["alpha", "comp2"]
    pi = zinb_fit.predict(type="prior").to_numpy()
    p_zero = pi[:, 0] + pi[:, 1] * (1 + alpha * mu) ** (-1 / alpha)
    assert (draws == 0).mean() == pytest.approx(p_zero.mean(), abs=0.01)
    quantile = zinb_fit.residuals(type="quantile", random_state=0)
    assert np.all(np.isfinite(quantile)) and abs(quantile.mean()) < 0.1
    assert quantile.std() == pytest.approx(1.0, abs=0.1)
    deviance = zinb_fit.residuals(type="deviance")
    assert np.all(np.isfinite(deviance))
    pred = zinb_fit.get_prediction(bio.head(3), type="component").summary_frame()
    assert (pred["comp1"].to_numpy() == 0).all()  # the point mass: exactly 0


def test_dask_equals_memory(bio):
    dd = pytest.importorskip("dask.dataframe")
    first = emglm(
        FORMULA, bio, ["pointmass", "negative_binomial"], concomitant="~ ment", random_state=0
    )
    start = {
        "params": np.nan_to_num(first.params.to_numpy()) * 0.95,
        "prior": [0.2, 0.8],
        "family_params": np.nan_to_num(first.family_params.to_numpy(), nan=1.0) * 1.2,
    }
    memory = emglm(
        FORMULA, bio, ["pointmass", "negative_binomial"], concomitant="~ ment", start=start
    )
    lazy = emglm(
        FORMULA,
        dd.from_pandas(bio, npartitions=3),
        ["pointmass", "negative_binomial"],
        concomitant="~ ment",
        start=start,
    )
    assert lazy.n_iter == memory.n_iter
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-10)
    assert memory.llf == pytest.approx(first.llf, rel=1e-9)
    np.testing.assert_allclose(lazy.bse["comp2"], memory.bse["comp2"], rtol=1e-6)
    np.testing.assert_allclose(lazy.family_bse.iloc[:, 1], memory.family_bse.iloc[:, 1], rtol=1e-6)


def test_compare_takes_statsmodels_discrete_models(bio, zip_fit, zinb_fit):
    import statsmodels.api as sm
    from statsmodels.discrete.count_model import ZeroInflatedPoisson

    from emformula import compare

    exog = sm.add_constant(bio[["fem", "mar", "kid5", "phd", "ment"]].astype(float))
    infl = sm.add_constant(bio[["ment", "kid5"]].astype(float))
    sm_zip = ZeroInflatedPoisson(bio.art.astype(float), exog, exog_infl=infl).fit(
        method="bfgs", maxiter=5000, gtol=1e-10, disp=0
    )
    nb_sm = sm.NegativeBinomial(bio.art.astype(float), exog).fit(method="newton", tol=1e-12, disp=0)
    table = compare(sm_zip, zip_fit, nb_sm, zinb_fit, names=["sm ZIP", "ZIP", "sm NB", "ZINB"])
    assert table.loc["df", "sm ZIP"] == table.loc["df", "ZIP"] == 9
    assert table.loc["llf", "sm ZIP"] == pytest.approx(table.loc["llf", "ZIP"], abs=1e-5)
    assert table.loc["bic", "sm ZIP"] == pytest.approx(table.loc["bic", "ZIP"], abs=1e-4)
    # The same criteria statsmodels reports for its discrete models.
    assert table.loc["aic", "sm NB"] == pytest.approx(nb_sm.aic, rel=1e-12)
    assert table.loc["bic", "sm NB"] == pytest.approx(nb_sm.bic, rel=1e-12)
    assert table.loc["model", "sm NB"] == "NegativeBinomial (statsmodels)"
    with pytest.raises(TypeError, match="argument 1 of compare"):
        compare(object())


def test_a_list_with_a_dispersion_member_gets_the_dispersion_floor():
    # A Gaussian component in a list is held above the default floor, as
    # in a Gaussian mixture (1e-8 times the response's variance).
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(150), rng.normal(5.0, 1.0, 350)]
    df = pd.DataFrame({"y": y, "x": rng.normal(size=500)})
    model = EMGLM.from_formula("y ~ x", df, ["pointmass", "gaussian"])
    assert model._scale_floor(None) == pytest.approx(1e-8 * np.var(y), rel=1e-6)
    res = model.fit(random_state=0)
    # The zeros, less the Gaussian's tiny density at 0 (exp(-12.5) or so).
    assert res.prior.iloc[0] == pytest.approx(0.3, abs=1e-4)
    # The Gaussian's ML variance: the OLS residual variance of the non-zeros.
    X = np.column_stack([np.ones(350), df.x.to_numpy()[150:]])
    resid = y[150:] - X @ np.linalg.lstsq(X, y[150:], rcond=None)[0]
    assert res.family_params.loc["scale", "comp2"] == pytest.approx(np.mean(resid**2), rel=1e-4)


def test_mixed_families_starts_and_refusals_found_in_review(bio, zinb_fit):
    # Components whose statistics differ in length (Poisson none, NB two):
    # the M-step's halving rounds keep one width.
    mixed = emglm(FORMULA, bio, ["poisson", "negative_binomial"], random_state=0)
    nb1 = emglm(FORMULA, bio, "negative_binomial", K=1)
    assert mixed.converged and mixed.llf >= nb1.llf - 1e-6
    assert np.isnan(mixed.family_params.loc["alpha", "comp1"])
    # A fit of a list of families is a start (NaN where a family lacks a
    # parameter or the point mass its coefficients).
    start = {
        "params": zinb_fit.params,
        "prior": zinb_fit.prior,
        "family_params": zinb_fit.family_params,
        "concomitant": zinb_fit.concomitant_params,
    }
    again = emglm(
        FORMULA, bio, ["pointmass", "negative_binomial"], concomitant="~ ment + kid5", start=start
    )
    assert again.llf == pytest.approx(zinb_fit.llf, rel=1e-10) and again.n_iter <= 3
    # A Poisson fit starts a negative binomial one (alpha at its start value).
    poisson = emglm(FORMULA, bio, "poisson", K=1)
    assert emglm(FORMULA, bio, "negative_binomial", K=1, start=poisson).llf == pytest.approx(
        nb1.llf, rel=1e-10
    )
    with pytest.raises(ValueError, match="equal_scale=True needs one family"):
        emglm(FORMULA, bio, ["negative_binomial", "negative_binomial"], equal_scale=True)
    with pytest.raises(ValueError, match="has no coefficients"):
        emglm(FORMULA, bio, "pointmass", K=1)
    with pytest.raises(NotImplementedError, match="latent location"):
        emglm("art ~ ment", bio, "tobit", K=1).get_prediction()


def test_compare_counts_the_variance_of_a_linear_regression():
    import statsmodels.formula.api as smf

    from emformula import compare

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300)})
    df["y"] = 1.0 + df.x + rng.normal(size=300)
    table = compare(smf.ols("y ~ x", df).fit(), emglm("y ~ x", df, "gaussian", K=1))
    assert table.loc["df"].tolist() == [3, 3]
    assert table.loc["aic", "model 1"] == pytest.approx(table.loc["aic", "model 2"], rel=1e-10)
