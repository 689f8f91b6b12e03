"""Censored Gaussian (tobit) components.

References: R's survival::survreg on Tobin's durable-goods data
(tests/reference/tobit_survreg.csv and tobin.csv, made by make_tobit.R), a
direct maximisation of the mixture likelihood with scipy, numerical
derivatives and Hessians, and simulations with known truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from derivative_check import assert_one_parameter_derivatives
from louis_check import assert_louis_equals_numerical_hessian
from scipy import optimize, special, stats
from statsmodels.tools.numdiff import approx_fprime, approx_hess

from emformula import EMGLM, CensoredGaussian, emglm

REFERENCE = Path(__file__).parent / "reference"


def test_k1_equals_survreg():
    data = pd.read_csv(REFERENCE / "tobin.csv")
    ref = pd.read_csv(REFERENCE / "tobit_survreg.csv").set_index("term")
    res = emglm("durable ~ age + quant", data, "tobit", K=1)
    assert res.converged
    assert res.llf == pytest.approx(ref.loc["llf", "estimate"], rel=1e-11)
    terms = ["Intercept", "age", "quant"]
    np.testing.assert_allclose(res.params["comp1"], ref.loc[terms, "estimate"], rtol=1e-7)
    np.testing.assert_allclose(res.bse["comp1"], ref.loc[terms, "se"], rtol=1e-6)
    assert res.family_params.loc["sigma", "comp1"] == pytest.approx(
        ref.loc["sigma", "estimate"], rel=1e-7
    )
    assert res.family_bse.loc["sigma", "comp1"] == pytest.approx(ref.loc["sigma", "se"], rel=1e-6)
    # log(sigma) is survreg's Log(scale), with its standard error.
    i = res.param_names.index("comp1:log(sigma)")
    assert res.theta_bse.iloc[i] == pytest.approx(ref.loc["Log(scale)", "se"], rel=1e-6)
    assert res.df_model == 4 and np.isnan(res.deviance)
    with pytest.raises(ValueError, match="deviance residuals are not defined"):
        res.residuals(type="deviance")


def _loglike(y, mu, sigma, lower=0.0, upper=np.inf):
    """The censored normal log-density written out."""
    z = (y - mu) / sigma
    out = stats.norm.logpdf(z) - np.log(sigma)
    out = np.where(y <= lower, special.log_ndtr((lower - mu) / sigma), out)
    return np.where(y >= upper, special.log_ndtr((mu - upper) / sigma), out)


@pytest.mark.parametrize("bounds", [(0.0, np.inf), (0.0, 5.0), (-np.inf, 3.0)])
def test_derivatives_equal_numerical_derivatives(bounds):
    family = CensoredGaussian(*bounds)
    rng = np.random.default_rng(1)
    mu = rng.normal(1.5, 2.0, 80)
    sigma = 1.7
    y = family.simulate_at(mu, (sigma,), 1.0, rng)
    assert np.any(y == bounds[0]) or np.any(y == bounds[1])
    np.testing.assert_allclose(
        family.log_density(y, mu, (sigma,)), _loglike(y, mu, sigma, *bounds), rtol=1e-12, atol=1e-12
    )
    assert_one_parameter_derivatives(family, y, mu, sigma)
    assert np.all(family.eta_derivatives_at(y, mu, (sigma,))[2] > 0)  # IRLS weights


def _simulate(n, seed, K=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    coefs = np.array([[-0.5, 1.0], [3.0, -0.8], [1.0, 0.0]])[:K]
    sigmas = np.array([1.0, 1.5, 0.5])[:K]
    z = rng.choice(K, size=n, p=np.full(K, 1.0 / K))
    latent = coefs[z, 0] + coefs[z, 1] * x + sigmas[z] * rng.normal(size=n)
    return pd.DataFrame({"y": np.maximum(latent, 0.0), "x": x})


def _mixture_llf(theta, y, x):
    """K=2 tobit mixture: (b10, b11, log s1, b20, b21, log s2, logit pi2)."""
    l1 = _loglike(y, theta[0] + theta[1] * x, np.exp(theta[2]))
    l2 = _loglike(y, theta[3] + theta[4] * x, np.exp(theta[5]))
    p2 = special.expit(theta[6])
    return np.sum(np.logaddexp(np.log1p(-p2) + l1, np.log(p2) + l2))


def test_k2_recovers_the_truth_and_is_at_least_a_direct_maximisation():
    df = _simulate(3000, 4)
    res = emglm("y ~ x", df, "tobit", K=2, random_state=0)
    assert res.converged
    order = np.argsort(res.params.loc["Intercept"].to_numpy())
    truth = np.array([[-0.5, 3.0], [1.0, -0.8]])
    est, se = res.params.to_numpy()[:, order], res.bse.to_numpy()[:, order]
    assert np.all(np.abs(est - truth) < 3.5 * se), (est, se)
    sigma = res.family_params.to_numpy()[0, order]
    sigma_se = res.family_bse.to_numpy()[0, order]
    assert np.all(np.abs(sigma - [1.0, 1.5]) < 3.5 * sigma_se), (sigma, sigma_se)
    assert res.prior.iloc[0] == pytest.approx(0.5, abs=0.05)
    y, x = df.y.to_numpy(), df.x.to_numpy()
    rng = np.random.default_rng(0)
    best = -np.inf
    for _ in range(8):
        start = np.array(
            [rng.normal(0, 1), rng.normal(0, 1), 0.0, rng.normal(2, 1), rng.normal(0, 1), 0.0, 0.0]
        )
        fit = optimize.minimize(
            lambda t: -_mixture_llf(t, y, x),
            start,
            method="BFGS",
            options={"gtol": 1e-7, "maxiter": 5000},
        )
        if np.isfinite(fit.fun):
            best = max(best, -fit.fun)
    assert res.llf >= best - 1e-6
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
    assert (
        np.max(np.abs(approx_fprime(theta, lambda t: _mixture_llf(t, y, x), centered=True))) < 1e-3
    )
    hess = approx_hess(theta, lambda t: _mixture_llf(t, y, x))
    np.testing.assert_allclose(
        np.sqrt(np.diag(res.cov_params().to_numpy())),
        np.sqrt(np.diag(np.linalg.inv(-hess))),
        rtol=1e-4,
    )


@pytest.mark.parametrize("K", [1, 2, 3])
def test_louis_information_equals_numerical_hessian(K):
    df = _simulate(900, 10 + K, K)
    model = EMGLM.from_formula("y ~ x", df, "tobit", K)
    res = model.fit(random_state=1)
    assert_louis_equals_numerical_hessian(model, res)


def test_quantile_residuals_are_normal_under_the_model_and_bad_responses_refused():
    df = _simulate(4000, 7, K=1)
    res = emglm("y ~ x", df, "tobit", K=1)
    q = res.residuals(type="quantile", random_state=0)
    assert np.mean(df.y == 0) > 0.2  # a good share is censored
    assert stats.kstest(q, "norm").pvalue > 0.01
    with pytest.raises(ValueError, match="outside"):
        emglm("y ~ x", df.assign(y=df.y - 1.0), "tobit", K=1)
    with pytest.raises(ValueError, match="lower < upper"):
        CensoredGaussian(lower=2.0, upper=1.0)


@pytest.mark.parametrize("bounds", [(0.0, np.inf), (0.0, 2.0), (-np.inf, 1.0)])
def test_mean_and_variance_of_the_censored_response(bounds):
    from scipy import integrate

    family = CensoredGaussian(*bounds)
    for mu in (-1.0, 0.5, 1.5):
        sigma = 1.3

        def moment(power, mu=mu, sigma=sigma):
            def f(x):
                return np.clip(x, *bounds) ** power * stats.norm.pdf(x, mu, sigma)

            return integrate.quad(f, -np.inf, np.inf, epsabs=1e-12, epsrel=1e-12)[0]

        mean = family.expected_response(np.array([mu]), (sigma,))[0]
        assert mean == pytest.approx(moment(1), rel=1e-8, abs=1e-10)
        variance = family.variance_at(np.array([mu]), (sigma,))[0]
        assert variance == pytest.approx(moment(2) - moment(1) ** 2, rel=1e-7)


def test_a_one_component_fit_on_dask_has_no_deviance_and_equals_memory():
    dd = pytest.importorskip("dask.dataframe")
    data = pd.read_csv(REFERENCE / "tobin.csv")
    memory = emglm("durable ~ age + quant", data, "tobit", K=1)
    lazy = emglm("durable ~ age + quant", dd.from_pandas(data, npartitions=2), "tobit", K=1)
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-10)
    assert np.isnan(lazy.deviance) and np.isnan(memory.deviance)
    np.testing.assert_allclose(
        lazy.fittedvalues.compute().to_numpy(), memory.fittedvalues.to_numpy(), rtol=1e-7
    )
