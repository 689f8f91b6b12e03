"""Ordinal components (cumulative logit and probit).

References: statsmodels' OrderedModel, R's MASS::polr on MASS's housing
data with frequency weights (tests/reference/housing.csv and
housing_polr.csv, made by make_housing_polr.R; polr's standard errors come
from optim's finite-difference Hessian), a direct maximisation of the
mixture likelihood with scipy, and numerical Hessians.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from louis_check import assert_louis_equals_numerical_hessian
from scipy import optimize, special
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.tools.numdiff import approx_hess

from emformula import EMGLM, emglm

REFERENCE = Path(__file__).parent / "reference"
HOUSING = (
    "Sat ~ C(Infl, levels=['Low', 'Medium', 'High'])"
    " + C(Type, levels=['Tower', 'Apartment', 'Atrium', 'Terrace'])"
    " + C(Cont, levels=['Low', 'High'])"
)


def _simulate(n, seed, K=1, strong=False):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    slopes = (
        np.array([[2.5, -1.0], [-2.5, 1.0], [0.0, 2.5]])
        if strong
        else np.array([[0.8, -0.5], [-1.2, 0.4], [0.0, 1.5]])
    )[:K]
    z = rng.choice(K, size=n)
    latent = slopes[z, 0] * x1 + slopes[z, 1] * x2 + rng.logistic(size=n)
    y = np.digitize(latent, [-1.0, 0.3, 1.5]).astype(float)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2})


@pytest.mark.parametrize("distribution", ["logit", "probit"])
def test_k1_equals_statsmodels_ordered_model(distribution):
    df = _simulate(800, 0)
    res = emglm("y ~ x1 + x2", df, f"ordinal_{distribution}", K=1)
    ref = OrderedModel(df.y, df[["x1", "x2"]], distr=distribution).fit(
        method="bfgs", gtol=1e-8, maxiter=5000, disp=0
    )
    assert res.converged and list(res.params.index) == ["x1", "x2"]  # no intercept
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    np.testing.assert_allclose(res.params["comp1"], ref.params[["x1", "x2"]], rtol=1e-6)
    np.testing.assert_allclose(res.bse["comp1"], ref.bse[["x1", "x2"]], rtol=1e-4)
    # statsmodels' thresholds: the first cut point, then log gaps (ours' theta).
    theta = res.theta.to_numpy()[2:]
    np.testing.assert_allclose(theta, ref.params.to_numpy()[2:], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.theta_bse.to_numpy()[2:], ref.bse.to_numpy()[2:], rtol=1e-4)
    probs = res.predict(df.head(20), type="probabilities")
    np.testing.assert_allclose(probs.to_numpy(), ref.predict(df[["x1", "x2"]].head(20)), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert res.aic == pytest.approx(ref.aic, rel=1e-10)


def test_k1_equals_polr_with_frequency_weights():
    housing = pd.read_csv(REFERENCE / "housing.csv")
    ref = pd.read_csv(REFERENCE / "housing_polr.csv").set_index("term")
    res = emglm(HOUSING, housing, "ordinal_logit", K=1, weights="Freq")
    assert res.converged
    assert res.llf == pytest.approx(ref.loc["llf", "estimate"], rel=1e-11)
    terms = ["InflMedium", "InflHigh", "TypeApartment", "TypeAtrium", "TypeTerrace", "ContHigh"]
    np.testing.assert_allclose(res.params["comp1"], ref.loc[terms, "estimate"], rtol=1e-6)
    np.testing.assert_allclose(res.bse["comp1"], ref.loc[terms, "se"], rtol=1e-4)
    # The cut points: the first, and first + gap (delta method for its error).
    cut1, gap2 = res.family_params["comp1"]
    assert cut1 == pytest.approx(ref.loc["Low|Medium", "estimate"], rel=1e-6)
    assert cut1 + gap2 == pytest.approx(ref.loc["Medium|High", "estimate"], rel=1e-6)
    cov = (
        res.cov_params()
        .loc[["comp1:cut1", "comp1:log(gap2)"], ["comp1:cut1", "comp1:log(gap2)"]]
        .to_numpy()
    )
    grad = np.array([1.0, gap2])
    assert np.sqrt(grad @ cov @ grad) == pytest.approx(ref.loc["Medium|High", "se"], rel=1e-4)
    assert res.family_bse.loc["cut1", "comp1"] == pytest.approx(
        ref.loc["Low|Medium", "se"], rel=1e-4
    )


def _mixture_llf(theta, y, X):
    """K=2 ordinal logit mixture: (b1 (2), cut1, log gap2, log gap3, b2 (2), cut1,
    log gap2, log gap3, logit pi2), written out."""

    def component(part):
        b, c1, lg = part[:2], part[2], part[3:5]
        cuts = np.concatenate([[-np.inf], c1 + np.cumsum(np.r_[0.0, np.exp(lg)]), [np.inf]])
        eta = X @ b
        yi = y.astype(int)
        return np.log(special.expit(cuts[yi + 1] - eta) - special.expit(cuts[yi] - eta))

    l1, l2 = component(theta[:5]), component(theta[5:10])
    p2 = special.expit(theta[10])
    return np.sum(np.logaddexp(np.log1p(-p2) + l1, np.log(p2) + l2))


def test_k2_is_at_least_a_direct_maximisation_with_numerical_hessian_errors():
    df = _simulate(1500, 3, K=2)
    res = emglm("y ~ x1 + x2", df, "ordinal_logit", K=2, random_state=0)
    assert res.converged
    y, X = df.y.to_numpy(), df[["x1", "x2"]].to_numpy()
    rng = np.random.default_rng(1)
    best = -np.inf
    for _ in range(4):
        start = np.concatenate(
            [rng.normal(0, 1, 2), [-1.0, 0.0, 0.0], rng.normal(0, 1, 2), [-1.0, 0.0, 0.0], [0.0]]
        )
        fit = optimize.minimize(
            lambda t: -_mixture_llf(t, y, X),
            start,
            method="BFGS",
            options={"gtol": 1e-7, "maxiter": 5000},
        )
        if np.isfinite(fit.fun):
            best = max(best, -fit.fun)
    assert res.llf >= best - 1e-6
    theta = res.theta.to_numpy()
    assert _mixture_llf(theta, y, X) == pytest.approx(res.llf, rel=1e-12)
    hess = approx_hess(theta, lambda t: _mixture_llf(t, y, X))
    np.testing.assert_allclose(
        res.theta_bse.to_numpy(), np.sqrt(np.diag(np.linalg.inv(-hess))), rtol=1e-4
    )
    probs = res.predict(df.head(5), type="probabilities").to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_louis_information_equals_numerical_hessian(K):
    # Well separated classes: three ordinal classes of weak effects are
    # barely identified.
    df = _simulate(800 * K, 5, K, strong=True)
    model = EMGLM.from_formula("y ~ x1 + x2", df, "ordinal_logit", K)
    res = model.fit(random_state=1, n_init=3)
    assert res.converged
    assert_louis_equals_numerical_hessian(model, res)


def test_what_ordinal_components_refuse():
    df = _simulate(300, 5)
    with pytest.raises(ValueError, match="category codes"):
        emglm("y ~ x1", df.assign(y=df.y + 0.5), "ordinal_logit", K=1)
    X = np.column_stack([np.ones(len(df)), df.x1])
    with pytest.raises(ValueError, match="spans a constant"):
        EMGLM(df.y.to_numpy(), X, "ordinal_logit", K=1)
    with pytest.raises(ValueError, match="not link="):
        emglm("y ~ x1", df, "ordinal_logit", link="log", K=1)
    res = emglm("y ~ x1", df, "ordinal_logit", K=1)
    with pytest.raises(ValueError, match="deviance residuals are not defined"):
        res.residuals(type="deviance")
    with pytest.raises(ValueError, match="for ordinal families"):
        emglm("y ~ x1", df, "poisson", K=1).predict(type="probabilities")
