"""llnull, pseudo R² and the resid_* names: a one-component fit equals statsmodels."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from emformula import emglm


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(8)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "t": rng.uniform(0.5, 2.0, size=n)})
    df["y"] = rng.poisson(df["t"] * np.exp(0.3 + 0.5 * df["x"]))
    df["m"] = rng.integers(1, 6, size=n)
    df["s"] = rng.binomial(df["m"], 1 / (1 + np.exp(-(0.2 - 0.7 * df["x"]))))
    df["f"] = df["m"] - df["s"]
    return df


def test_poisson_with_exposure_equals_statsmodels(data):
    ours = emglm("y ~ x", data, "poisson", 1, exposure="t")
    theirs = sm.GLM.from_formula(
        "y ~ x", data, family=sm.families.Poisson(), exposure=data["t"]
    ).fit()
    assert ours.llnull == pytest.approx(theirs.llnull, rel=1e-10)
    for kind in ("cs", "mcf"):
        assert ours.pseudo_rsquared(kind) == pytest.approx(theirs.pseudo_rsquared(kind), rel=1e-8)
    np.testing.assert_allclose(ours.resid_response, theirs.resid_response, rtol=1e-7)
    np.testing.assert_allclose(ours.resid_pearson, theirs.resid_pearson, rtol=1e-6)
    np.testing.assert_allclose(ours.resid_deviance, theirs.resid_deviance, rtol=1e-6)


def test_binomial_counts_equal_statsmodels(data):
    ours = emglm("s + f ~ x", data, "binomial", 1)
    theirs = sm.GLM.from_formula("s + f ~ x", data, family=sm.families.Binomial()).fit()
    assert ours.llnull == pytest.approx(theirs.llnull, rel=1e-10)
    assert ours.pseudo_rsquared("mcf") == pytest.approx(theirs.pseudo_rsquared("mcf"), rel=1e-8)


def test_a_mixture_is_measured_against_the_same_null(data):
    one = emglm("y ~ x", data, "poisson", 1, exposure="t")
    two = emglm("y ~ x", data, "poisson", 2, exposure="t", random_state=0)
    assert two.llnull == pytest.approx(one.llnull, rel=1e-12)
    assert two.llf >= one.llf - 1e-8
    assert two.pseudo_rsquared("mcf") >= one.pseudo_rsquared("mcf") - 1e-10
    with pytest.raises(ValueError, match="kind"):
        two.pseudo_rsquared("nagelkerke")


def test_df_resid_counts_like_statsmodels(data):
    w = data["m"].astype(float)  # frequency weights: statsmodels counts wnobs
    pairs = [
        (
            emglm("y ~ x", data, "poisson", 1, weights=w),
            sm.GLM.from_formula("y ~ x", data, family=sm.families.Poisson(), freq_weights=w).fit(),
        ),
        # The dispersion is not counted (statsmodels: wnobs - rank).
        (
            emglm("y ~ x + t", data, "gaussian", 1),
            sm.GLM.from_formula("y ~ x + t", data, family=sm.families.Gaussian()).fit(),
        ),
        # Nor is the negative binomial's alpha (statsmodels' discrete NB2).
        (
            emglm("y ~ x", data, "negative_binomial", 1),
            sm.NegativeBinomial.from_formula("y ~ x", data).fit(disp=0),
        ),
    ]
    for ours, theirs in pairs:
        assert ours.df_resid == pytest.approx(theirs.df_resid, abs=1e-9)
    # K = 2, Poisson: 2 x 2 coefficients and one mixing parameter.
    two = emglm("y ~ x", data, "poisson", 2, exposure="t", random_state=0)
    assert two.df_resid == len(data) - 5
    # equal_scale: the one common dispersion, still not counted.
    gauss = emglm("y ~ x", data, "gaussian", 2, equal_scale=True, random_state=0)
    assert gauss.df_model == 2 * 2 + 1 + 1 and gauss.df_resid == len(data) - 5


def test_df_resid_of_an_ordinal_model_counts_the_cut_points_as_ordered_model():
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n)})
    latent = 0.8 * df.x + rng.logistic(size=n)
    df["y"] = np.digitize(latent, [-1.0, 0.3, 1.5])  # 4 categories
    ours = emglm("y ~ x", df, "ordinal_logit", 1)
    theirs = OrderedModel(df["y"], df[["x"]], distr="logit").fit(method="bfgs", disp=0)
    assert ours.df_resid == pytest.approx(theirs.df_resid, abs=1e-9)
    assert ours.df_resid == n - 1 - 3
