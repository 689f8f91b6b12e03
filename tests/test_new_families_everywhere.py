"""The new component families through the rest of the package.

Negative binomial (alpha estimated), tobit, ordinal logit and the
zero-inflated Poisson each go through select_k, bootstrap_lrt, simulation,
residuals, the plots, predictions, the robust and cluster covariances and
dask, with numbers that could be wrong: dask equal to memory from the same
start, a sandwich that is the outer product of the unit scores around the
inverse information, select_k's criteria equal to the fits', draws whose
moments follow the fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emformula import emglm, select_k

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _data(kind, n=600, seed=0):
    if kind == "ordinal_logit":
        n = 800  # two classes of their own cut points need more rows to be identified
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n)
    eta = np.where(z == 0, 0.3 + 0.8 * x, 1.8 - 0.4 * x)
    if kind == "negative_binomial":
        mu = np.exp(eta)
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    elif kind == "tobit":
        y = np.maximum(eta - 1.0 + rng.normal(size=n), 0.0)
    elif kind == "ordinal_logit":
        y = np.digitize(np.where(z == 0, 2.5, -2.5) * x + rng.logistic(size=n), [-1.0, 0.5]).astype(
            float
        )
    else:  # zero-inflated Poisson
        y = rng.poisson(np.exp(0.5 + 0.5 * x)).astype(float)
        y[rng.uniform(size=n) < 0.25] = 0.0
    cluster = rng.integers(0, 40, n)
    return pd.DataFrame({"y": y, "x": x, "cl": cluster})


FAMILIES = {
    "negative_binomial": "negative_binomial",
    "tobit": "tobit",
    "ordinal_logit": "ordinal_logit",
    "zip": ["pointmass", "poisson"],
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def case(request):
    kind = request.param
    df = _data(kind)
    family = FAMILIES[kind]
    K = None if isinstance(family, list) else 2
    kwargs = {} if K is None else {"K": K}
    res = emglm("y ~ x", df, family, random_state=0, n_init=3, cov_groups="cl", **kwargs)
    return kind, df, family, kwargs, res


def test_dask_equals_memory_from_the_same_start(case):
    dd = pytest.importorskip("dask.dataframe")
    kind, df, family, kwargs, res = case
    start = {
        "params": np.nan_to_num(res.params.to_numpy()) * 0.95,
        "prior": np.full(res.n_components, 1.0 / res.n_components),
        "family_params": np.nan_to_num(res.estimates.params * 1.1, nan=1.0),
    }
    if kind == "ordinal_logit":
        from emformula.families import OrdinalFamily

        with pytest.raises(ValueError, match="n_categories"):
            emglm("y ~ x", dd.from_pandas(df, npartitions=3), family, start=start, **kwargs)
        family = OrdinalFamily("logit", n_categories=3)
    memory = emglm("y ~ x", df, family, start=start, **kwargs)
    lazy = emglm("y ~ x", dd.from_pandas(df, npartitions=3), family, start=start, **kwargs)
    assert lazy.n_iter == memory.n_iter
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-8)
    np.testing.assert_allclose(lazy.theta_bse.to_numpy(), memory.theta_bse.to_numpy(), rtol=1e-6)
    # Predictions are E(y) on both (a latent mean for tobit and ordinal).
    np.testing.assert_allclose(
        lazy.fittedvalues.compute().to_numpy(), memory.fittedvalues.to_numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        lazy.predict(type="component").compute().to_numpy(),
        memory.predict(type="component").to_numpy(),
        rtol=1e-6,
    )


def test_robust_and_cluster_covariances_are_sandwiches(case):
    kind, df, family, kwargs, res = case
    from emformula.engine.louis import unit_scores

    data = res.model.data
    scores = unit_scores(
        data, res.estimates, np.asarray(res.posterior), res._component_mean, res.layout
    )
    bread = np.linalg.inv(res.information().to_numpy())
    w = data.unit_weights[:, None]
    robust = bread @ ((scores * w).T @ scores) @ bread
    np.testing.assert_allclose(
        res.with_cov_type("robust").cov_params().to_numpy(), robust, rtol=1e-6, atol=1e-12
    )
    sums = pd.DataFrame(scores * w).groupby(df["cl"].to_numpy()).sum().to_numpy()
    cluster = bread @ (sums.T @ sums) @ bread  # no small-sample factor, as documented
    got = res.with_cov_type("cluster").cov_params().to_numpy()
    np.testing.assert_allclose(got, cluster, rtol=1e-6, atol=1e-12)


def test_simulation_residuals_and_plots(case):
    from emformula.selection import simulate

    kind, df, family, kwargs, res = case
    draws = np.array([simulate(res, seed) for seed in range(30)])
    assert draws.mean() == pytest.approx(res.fittedvalues.mean(), rel=0.05)
    quantile = res.residuals(type="quantile", random_state=0)
    assert np.all(np.isfinite(quantile)) and abs(quantile.mean()) < 0.15
    assert quantile.std() == pytest.approx(1.0, abs=0.15)
    pearson = res.residuals(type="pearson")
    assert np.all(np.isfinite(pearson))
    import matplotlib.pyplot as plt

    res.plot_params()
    res.plot_qq()
    res.plot_posterior()
    res.plot_diagnostics(type="quantile", random_state=0)
    plt.close("all")
    pred = res.predict(df.head(4), type="component")
    assert pred.shape == (4, res.n_components)


def test_select_k_and_the_bootstrap(case):
    kind, df, family, kwargs, res = case
    if isinstance(family, list):
        with pytest.raises(ValueError, match="families"):
            select_k("y ~ x", df, family, K=[1, 2])
        return
    choice = select_k("y ~ x", df, family, K=[1, 2], n_init=1, random_state=0)
    table = choice.table
    two = emglm("y ~ x", df, family, K=2, n_init=1, random_state=0)
    assert table.loc[2, "llf"] >= two.llf - 1e-6
    assert table.loc[2, "df"] == two.df_model
    from emformula import bootstrap_lrt

    test = bootstrap_lrt("y ~ x", df, family, K0=1, K1=2, n_boot=2, n_init=1, random_state=0)
    assert test.statistic == pytest.approx(
        2 * (table.loc[2, "llf"] - table.loc[1, "llf"]), abs=1e-4
    )
    assert 0.0 < test.pvalue <= 1.0
