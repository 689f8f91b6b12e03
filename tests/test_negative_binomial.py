"""Negative binomial (NB2) components with alpha estimated per component.

References: R's MASS::glm.nb on bioChemists (tests/reference/
biochemists_counts.csv, made by make_biochemists_counts.R), statsmodels'
discrete NegativeBinomial (observed-information standard errors), a
numerical Hessian of the observed log-likelihood (Louis' information), a
direct maximisation of the mixture likelihood with scipy, and simulations
with known truth.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from derivative_check import assert_one_parameter_derivatives
from louis_check import assert_louis_equals_numerical_hessian
from scipy import optimize, special
from statsmodels.tools.numdiff import approx_fprime, approx_hess

from emformula import EMGLM, datasets, emglm
from emformula.engine import em as _em
from emformula.families import NegativeBinomial, as_family

REFERENCE = Path(__file__).parent / "reference" / "biochemists_counts.csv"
FORMULA = "art ~ fem + mar + kid5 + phd + ment"
TERMS = ["Intercept", "fem", "mar", "kid5", "phd", "ment"]


@pytest.fixture(scope="module")
def bio():
    return datasets.load_biochemists()


@pytest.fixture(scope="module")
def reference():
    table = pd.read_csv(REFERENCE)
    return table[table.model == "glm_nb"].set_index(["part", "term"])


@pytest.fixture(scope="module")
def nb1(bio):
    return emglm(FORMULA, bio, "negative_binomial", K=1)


def _nb_loglike(y, mu, alpha):
    """NB2 log-density written out (independently of the package)."""
    r = 1.0 / alpha
    return (
        special.gammaln(y + r)
        - special.gammaln(r)
        - special.gammaln(y + 1)
        + r * np.log(r / (r + mu))
        + y * np.log(mu / (r + mu))
    )


def test_k1_equals_r_glm_nb(nb1, reference):
    # llf, coefficients and alpha = 1/theta as MASS::glm.nb (tolerance 1e-12).
    assert nb1.converged
    assert nb1.llf == pytest.approx(reference.loc[("llf", "llf"), "estimate"], rel=1e-11)
    expected = reference.loc["count"].loc[TERMS, "estimate"].to_numpy()
    np.testing.assert_allclose(nb1.params["comp1"].to_numpy(), expected, rtol=2e-7, atol=1e-9)
    alpha = reference.loc[("alpha", "alpha"), "estimate"]
    assert nb1.family_params.loc["alpha", "comp1"] == pytest.approx(alpha, rel=1e-6)
    assert nb1.df_model == 7  # six coefficients and alpha


def test_k1_glm_nb_standard_errors_are_the_fixed_alpha_expected_information(bio, nb1, reference):
    # glm.nb reports the GLM's errors at the fitted theta: the expected
    # information X'WX with W = mu / (1 + alpha mu), alpha held fixed. The
    # fit's own means and alpha give them to R's digits; emformula's SEs are
    # the joint observed information's (statsmodels' discrete NB2 above).
    X = np.column_stack([np.ones(len(bio)), bio[TERMS[1:]].to_numpy(float)])
    mu = np.asarray(nb1.fittedvalues)
    alpha = nb1.family_params.loc["alpha", "comp1"]
    weights = mu / (1.0 + alpha * mu)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ (weights[:, None] * X))))
    np.testing.assert_allclose(se, reference.loc["count"].loc[TERMS, "se"], rtol=1e-6)
    _, _, irls_weight, _ = nb1.family.eta_derivatives_at(
        bio.art.to_numpy(float), mu, (alpha,), observed=False
    )
    np.testing.assert_allclose(irls_weight, weights, rtol=1e-12)


def test_k1_standard_errors_equal_statsmodels_discrete_nb2(bio, nb1):
    # statsmodels' NegativeBinomial (NB2) has the observed information of
    # (beta, alpha) jointly; glm.nb's coefficient errors hold theta fixed.
    sm_fit = smf.negativebinomial(FORMULA, bio, loglike_method="nb2").fit(
        method="newton", maxiter=200, tol=1e-14, disp=0
    )
    assert nb1.llf >= sm_fit.llf - 1e-9
    np.testing.assert_allclose(
        nb1.params["comp1"].to_numpy(), sm_fit.params[TERMS].to_numpy(), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(nb1.bse["comp1"].to_numpy(), sm_fit.bse[TERMS].to_numpy(), rtol=1e-5)
    assert nb1.family_params.loc["alpha", "comp1"] == pytest.approx(
        sm_fit.params["alpha"], rel=1e-6
    )
    assert nb1.family_bse.loc["alpha", "comp1"] == pytest.approx(sm_fit.bse["alpha"], rel=1e-5)
    assert nb1.aic == pytest.approx(sm_fit.aic, rel=1e-10)
    assert nb1.bic == pytest.approx(sm_fit.bic, rel=1e-10)


def test_k1_llf_is_the_written_out_density(bio, nb1):
    mu = np.asarray(nb1.fittedvalues)
    alpha = nb1.family_params.loc["alpha", "comp1"]
    assert nb1.llf == pytest.approx(
        _nb_loglike(bio.art.to_numpy(float), mu, alpha).sum(), rel=1e-12
    )


def test_statsmodels_instance_keeps_alpha_fixed(bio):
    fixed = emglm(FORMULA, bio, sm.families.NegativeBinomial(alpha=0.5), K=1)
    glm = smf.glm(FORMULA, bio, family=sm.families.NegativeBinomial(alpha=0.5)).fit(tol=1e-14)
    assert fixed.family_params.shape == (0, 1) and fixed.df_model == 6
    assert fixed.llf == pytest.approx(glm.llf, rel=1e-10)
    np.testing.assert_allclose(fixed.params["comp1"], glm.params, rtol=1e-7)


def test_by_name_and_class_estimate_alpha_and_stay_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no statsmodels "alpha not set" warning
        named = as_family("negative_binomial")
        linked = as_family("negative_binomial", link="sqrt")
    assert named == NegativeBinomial() and named.alpha is None
    assert [p.name for p in named.parameters] == ["alpha"]
    assert linked.link_name == "Sqrt" and linked.parameters == named.parameters
    assert as_family(sm.families.NegativeBinomial(alpha=0.5)).parameters == ()


# ------------------------------------------------------------- simulation
def _simulate(n, seed, alphas=(0.3, 1.5), coefs=((0.5, 1.0), (2.5, -0.5)), prior=(0.4, 0.6)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.choice(len(prior), size=n, p=prior)
    b = np.asarray(coefs)[z]
    mu = np.exp(b[:, 0] + b[:, 1] * x)
    alpha = np.asarray(alphas)[z]
    y = rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mu)).astype(float)
    return pd.DataFrame({"y": y, "x": x})


def _ordered(res):
    order = np.argsort(res.params.loc["Intercept"].to_numpy())
    return order


def test_k2_recovers_the_truth():
    df = _simulate(6000, 11)
    res = emglm("y ~ x", df, "negative_binomial", K=2, random_state=3)
    assert res.converged
    o = _ordered(res)
    np.testing.assert_allclose(res.params.to_numpy()[:, o], [[0.5, 2.5], [1.0, -0.5]], atol=0.1)
    np.testing.assert_allclose(res.family_params.to_numpy()[0, o], [0.3, 1.5], rtol=0.2)
    np.testing.assert_allclose(res.prior.to_numpy()[o], [0.4, 0.6], atol=0.04)
    # The truth lies within 3.5 standard errors of every estimate.
    truth = np.array([0.5, 1.0, 2.5, -0.5])
    est = res.params.to_numpy()[:, o].T.ravel()
    se = res.bse.to_numpy()[:, o].T.ravel()
    assert np.all(np.abs(est - truth) < 3.5 * se)


def _mixture_llf(theta, y, x):
    """The K=2 NB2 mixture log-likelihood of (b10, b11, log a1, b20, b21, log a2,
    logit pi2), written out with scipy."""
    b1, la1, b2, la2, logit = theta[0:2], theta[2], theta[3:5], theta[5], theta[6]
    l1 = _nb_loglike(y, np.exp(b1[0] + b1[1] * x), np.exp(la1))
    l2 = _nb_loglike(y, np.exp(b2[0] + b2[1] * x), np.exp(la2))
    p2 = special.expit(logit)
    return np.sum(np.logaddexp(np.log1p(-p2) + l1, np.log(p2) + l2))


def test_k2_is_at_least_a_direct_maximisation_with_numerical_hessian_errors():
    df = _simulate(800, 5)
    y, x = df.y.to_numpy(float), df.x.to_numpy()
    res = emglm("y ~ x", df, "negative_binomial", K=2, random_state=0)
    rng = np.random.default_rng(0)
    best = -np.inf
    for _ in range(12):
        start = np.array(
            [
                rng.normal(0.5, 1),
                rng.normal(0, 1),
                rng.normal(-1, 0.5),
                rng.normal(2.0, 1),
                rng.normal(0, 1),
                rng.normal(0, 0.5),
                0.0,
            ]
        )
        fit = optimize.minimize(
            lambda t: -_mixture_llf(t, y, x),
            start,
            method="BFGS",
            options={"gtol": 1e-8, "maxiter": 5000},
        )
        if np.isfinite(fit.fun):
            best = max(best, -fit.fun)
    assert res.llf >= best - 1e-6
    # Louis' standard errors equal the inverse of a numerical Hessian of the
    # written-out likelihood at the estimates (in the package's layout:
    # b1, log a1, b2, log a2, logit pi2).
    theta = np.concatenate(
        [
            res.params["comp1"],
            [np.log(res.family_params.iloc[0, 0])],
            res.params["comp2"],
            [np.log(res.family_params.iloc[0, 1])],
            [np.log(res.prior.iloc[1] / res.prior.iloc[0])],
        ]
    )
    assert _mixture_llf(theta, y, x) == pytest.approx(res.llf, rel=1e-12)
    grad = approx_fprime(theta, lambda t: _mixture_llf(t, y, x), centered=True)
    assert np.max(np.abs(grad)) < 1e-3
    hess = approx_hess(theta, lambda t: _mixture_llf(t, y, x))
    np.testing.assert_allclose(
        np.sqrt(np.diag(res.cov_params().to_numpy())),
        np.sqrt(np.diag(np.linalg.inv(-hess))),
        rtol=1e-4,
    )
    assert res.param_names == [
        "comp1:Intercept",
        "comp1:x",
        "comp1:log(alpha)",
        "comp2:Intercept",
        "comp2:x",
        "comp2:log(alpha)",
        "logit_prior:comp2",
    ]


@pytest.mark.parametrize("K", [1, 2, 3])
def test_louis_information_equals_numerical_hessian(K):
    df = _simulate(
        900,
        20 + K,
        alphas=(0.3, 1.0, 0.6)[:K] if K > 1 else (0.5,),
        coefs=((0.5, 1.0), (2.5, -0.5), (1.5, 0.0))[:K],
        prior=np.full(K, 1.0 / K),
    )
    model = EMGLM.from_formula("y ~ x", df, "negative_binomial", K)
    res = model.fit(random_state=1)
    assert_louis_equals_numerical_hessian(model, res)


def test_equal_scale_gives_one_alpha():
    df = _simulate(2000, 8, alphas=(0.8, 0.8))
    common = emglm("y ~ x", df, "negative_binomial", K=2, equal_scale=True, random_state=1)
    own = emglm("y ~ x", df, "negative_binomial", K=2, random_state=1)
    alphas = common.family_params.to_numpy()[0]
    assert alphas[0] == alphas[1]
    assert common.df_model == own.df_model - 1
    assert common.param_names[-2] == "log(alpha)"
    assert common.llf <= own.llf + 1e-8
    assert alphas[0] == pytest.approx(0.8, rel=0.2)
    # The common alpha maximises the likelihood given the rest: a numerical
    # score in log(alpha) vanishes.
    layout = common.model.layout
    theta = layout.pack(common.estimates)
    i = common.param_names.index("log(alpha)")

    def llf(t):
        full = theta.copy()
        full[i] = t[0]
        return _em.e_step(common.model.data, layout.unpack(full, common.model.data)).llf

    assert (
        abs(approx_fprime(theta[i : i + 1], llf, centered=True)[0])
        * common.family_bse.iloc[0, 0]
        / alphas[0]
        < 1e-5
    )


def test_simulate_and_residuals_follow_alpha(nb1, bio):
    # Pearson residuals use Var = mu + alpha mu^2 at the fitted alpha, as a
    # statsmodels GLM with that alpha.
    alpha = nb1.family_params.loc["alpha", "comp1"]
    glm = smf.glm(FORMULA, bio, family=sm.families.NegativeBinomial(alpha=alpha)).fit(tol=1e-14)
    np.testing.assert_allclose(nb1.resid_pearson, glm.resid_pearson, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(nb1.resid_deviance, glm.resid_deviance, rtol=1e-6, atol=1e-8)
    # Draws from the fit have its mean and NB2 variance.
    rng = np.random.default_rng(1)
    mu = np.asarray(nb1.fittedvalues)
    draws = np.array([nb1.family.simulate_at(mu, (alpha,), 1.0, rng) for _ in range(400)])
    resid = (draws - mu) / np.sqrt(mu + alpha * mu**2)
    assert abs(resid.mean()) < 0.01 and resid.var() == pytest.approx(1.0, abs=0.02)


def test_dask_fit_equals_memory_from_the_same_start():
    dd = pytest.importorskip("dask.dataframe")
    df = _simulate(1500, 2)
    first = emglm("y ~ x", df, "negative_binomial", K=2, random_state=1)
    start = {
        "params": first.params.to_numpy() * 0.95 + 0.02,
        "prior": [0.5, 0.5],
        "family_params": first.family_params.to_numpy() * 1.2,
    }
    memory = emglm("y ~ x", df, "negative_binomial", K=2, start=start)
    lazy = emglm("y ~ x", dd.from_pandas(df, npartitions=3), "negative_binomial", K=2, start=start)
    assert lazy.n_iter == memory.n_iter and memory.n_iter > 3
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-10)
    assert memory.llf == pytest.approx(first.llf, rel=1e-9)
    for name in ("params", "bse", "family_params", "family_bse"):
        np.testing.assert_allclose(
            getattr(lazy, name).to_numpy(), getattr(memory, name).to_numpy(), rtol=1e-6
        )


@pytest.mark.parametrize("link", ["log", "sqrt"])
def test_derivatives_equal_numerical_derivatives_of_the_density(link):
    from scipy import stats

    family = as_family("negative_binomial", link=link)
    rng = np.random.default_rng(4)
    mu = rng.uniform(0.3, 6.0, 60)
    alpha = 0.7
    y = family.simulate_at(mu, (alpha,), 1.0, rng)
    np.testing.assert_allclose(
        family.log_density(y, mu, (alpha,)),
        stats.nbinom.logpmf(y, 1 / alpha, 1 / (1 + alpha * mu)),
        rtol=1e-12,
    )
    assert_one_parameter_derivatives(family, y, mu, alpha)
    _, _, weight, g1 = family.eta_derivatives_at(y, mu, (alpha,))
    # The expected information is the IRLS weight: E[info] = weight.
    expected = (mu / (1 + alpha * mu)) if link == "log" else 1 / ((mu + alpha * mu**2) * g1**2)
    np.testing.assert_allclose(weight, expected, rtol=1e-12)
