"""Fits shared by the postestimation tests, and an independent delta method.

One-component fits come with the statsmodels GLM of the same design and the
dispersion fixed at our maximum likelihood value (``fit(scale=...)``), so
that the covariances are identical: every family here has its canonical
link, where the observed and expected information agree.

:func:`fd_delta_se` is the check of every K = 2 standard error: the quantity
is recomputed in the test from theta by its own code (``layout.unpack`` and
numpy, not the module under test), differentiated by central differences
with a fixed step, and sandwiched with ``cov_params()``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm

from emformula import emglm

N = 300


@functools.cache
def k1_data(seed=11):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=N)
    x2 = rng.uniform(0.5, 2.0, size=N)
    g = rng.choice(["a", "b", "c"], size=N)
    d = rng.integers(0, 2, size=N).astype(float)
    eta = (
        0.4
        + 0.3 * x1
        - 0.2 * x2
        + 0.25 * d
        + pd.Series(g).map({"a": 0.0, "b": 0.2, "c": -0.3}).to_numpy()
    )
    df = pd.DataFrame({"x1": x1, "x2": x2, "g": g, "d": d})
    df["ypois"] = rng.poisson(np.exp(eta))
    # Away from 0, so that elasticities (a division by the mean) are well defined.
    df["ygau"] = 3.0 + eta + rng.normal(scale=0.6, size=N)
    # The gamma's canonical (inverse) link needs a positive linear predictor.
    mu_inv = 1.0 / (1.2 + 0.15 * x1 + 0.1 * x2 + 0.1 * d)
    df["ygam"] = rng.gamma(3.0, mu_inv / 3.0)
    return df


K1_FAMILIES = {
    "poisson": ("ypois", sm.families.Poisson),
    "gaussian": ("ygau", sm.families.Gaussian),
    "gamma": ("ygam", sm.families.Gamma),
}
RHS = "x1 + x2 + d + C(g)"


@functools.cache
def k1_fit(family):
    """``(res, sm_res)``: our K = 1 fit and statsmodels' GLM on its design,
    the dispersion fixed at our ML value."""
    column, sm_family = K1_FAMILIES[family]
    df = k1_data()
    with warnings.catch_warnings():
        # The gamma's inverse link does not keep every mean positive: both
        # packages say so, and the data here keep it positive.
        warnings.simplefilter("ignore", sm.tools.sm_exceptions.DomainWarning)
        res = emglm(f"{column} ~ {RHS}", df, family=family, K=1, random_state=0)
        exog = pd.DataFrame(res.model.data.exog, columns=res.model.exog_names)
        glm = sm.GLM(df[column].to_numpy(dtype=float), exog, family=sm_family())
    scale = float(res.scale.iloc[0])
    sm_res = glm.fit(scale=scale) if family != "poisson" else glm.fit()
    np.testing.assert_allclose(
        sm_res.params.to_numpy(), res.params["comp1"].to_numpy(), rtol=1e-7, atol=1e-9
    )
    return res, sm_res


@functools.cache
def k2_poisson_concomitant(seed=5):
    """Two Poisson regressions, class membership driven by ``w``."""
    rng = np.random.default_rng(seed)
    n = 500
    x = rng.normal(size=n)
    w = rng.normal(size=n)
    d = rng.integers(0, 2, size=n).astype(float)
    z = rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-0.8 * w))
    eta = np.where(z, 1.8 + 0.4 * x - 0.3 * d, 0.3 - 0.3 * x + 0.2 * d)
    df = pd.DataFrame(
        {"x": x, "w": w, "d": d, "y": rng.poisson(np.exp(eta)), "truth": z.astype(int)}
    )
    res = emglm("y ~ x + d", df, family="poisson", K=2, concomitant="~ w", random_state=1)
    return res, df


@functools.cache
def k2_gaussian_fixed(seed=6):
    """Two Gaussian regressions with a shared effect of ``s`` and their own
    dispersions."""
    rng = np.random.default_rng(seed)
    n = 400
    x = rng.normal(size=n)
    s = rng.uniform(-1, 1, size=n)
    z = rng.uniform(size=n) < 0.4
    y = (
        np.where(z, 3.0 + 1.0 * x, -1.0 - 0.5 * x)
        + 0.7 * s
        + rng.normal(scale=np.where(z, 0.8, 0.5))
    )
    df = pd.DataFrame({"x": x, "s": s, "y": y, "truth": z.astype(int)})
    res = emglm("y ~ x", df, family="gaussian", K=2, fixed="~ 0 + s", random_state=2)
    return res, df


# ------------------------------------------------------ independent checks
def theta_of(res):
    return res.theta.reindex(res.param_names).to_numpy(dtype=float)


def unpacked(res, theta):
    """``(coef, fixed, prior per row)`` at theta, through the engine's own
    unpacking (not the postestimation helpers)."""
    est = res.layout.unpack(np.asarray(theta, dtype=float), res.model.data)
    data = res.model.data
    fixed = np.zeros(0) if est.fixed_coef is None else est.fixed_coef
    if est.gamma is None:
        prior = np.tile(est.prior, (data.nobs, 1))
    else:
        logits = data.concomitant @ est.gamma
        prior = np.exp(logits - logits.max(axis=1, keepdims=True))
        prior /= prior.sum(axis=1, keepdims=True)
    return est.coef, fixed, prior


def component_means(res, theta, exog=None):
    """``mu_ik`` on the fit's rows (or another exog of the same columns)."""
    coef, fixed, _ = unpacked(res, theta)
    data = res.model.data
    X = data.exog if exog is None else exog
    eta = X @ coef + data.offset[:, None]
    if fixed.size:
        eta = eta + (data.fixed @ fixed)[:, None]
    return res.family.mean(eta)


def mixture_mean(res, theta, exog=None):
    _, _, prior = unpacked(res, theta)
    return np.sum(prior * component_means(res, theta, exog), axis=1)


def fd_jacobian(func, theta, step=1e-5):
    theta = np.asarray(theta, dtype=float)
    columns = []
    for j in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        columns.append((np.asarray(func(up)) - np.asarray(func(down))).ravel() / (2 * step))
    return np.column_stack(columns)


def fd_delta_se(res, func, step=1e-5):
    """Standard errors of ``func(theta)`` by a finite-difference delta method."""
    jac = fd_jacobian(func, theta_of(res), step)
    cov = res.cov_params().loc[res.param_names, res.param_names].to_numpy()
    return np.sqrt(np.diag(jac @ cov @ jac.T))
