"""Fits on dask DataFrames equal the in-memory fits."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")

from simulate import simulate_mixture  # noqa: E402

from emformula import compare, emglm  # noqa: E402


def _pair(kind, family, n=2000, K=2, seed=3, npartitions=4, **kwargs):
    data, formula = simulate_mixture(kind, n, K, seed, separation=3.0)
    rng = np.random.default_rng(seed)
    data["w"] = rng.integers(1, 4, size=n).astype(float)
    data["off"] = rng.normal(scale=0.1, size=n)
    memory = emglm(
        formula, data, family, K, weights="w", offset="off", random_state=seed, n_init=3, **kwargs
    )
    start = {
        "params": memory.params.to_numpy() * 0.95 + 0.01,
        "prior": [0.55, 0.45],
        "scale": memory.scale.to_numpy() * 1.1,
    }
    in_memory = emglm(formula, data, family, K, weights="w", offset="off", start=start, **kwargs)
    on_dask = emglm(
        formula,
        dd.from_pandas(data, npartitions=npartitions),
        family,
        K,
        weights="w",
        offset="off",
        start=start,
        **kwargs,
    )
    return in_memory, on_dask, data, formula


@pytest.mark.parametrize(
    "kind, family",
    [("poisson", "poisson"), ("binomial_counts", "binomial"), ("gaussian", "gaussian")],
)
def test_dask_fit_equals_in_memory_fit(kind, family):
    memory, lazy, data, _ = _pair(kind, family)
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-8)
    np.testing.assert_allclose(
        lazy.params.to_numpy(), memory.params.to_numpy(), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(lazy.prior, memory.prior, atol=1e-8)
    np.testing.assert_allclose(lazy.scale, memory.scale, rtol=1e-6)
    np.testing.assert_allclose(lazy.bse.to_numpy(), memory.bse.to_numpy(), rtol=1e-6)
    assert lazy.df_model == memory.df_model and lazy.nobs == memory.nobs
    assert lazy.bic == pytest.approx(memory.bic, rel=1e-8)
    assert lazy.icl == pytest.approx(memory.icl, rel=1e-6)
    assert lazy.info_criteria("icl", kind="classification") == pytest.approx(
        memory.info_criteria("icl", kind="classification"), rel=1e-6
    )
    assert lazy.converged
    assert lazy.n_iter == memory.n_iter


@pytest.mark.parametrize("kind, family", [("gaussian", "gaussian"), ("gamma_log", "gamma")])
def test_dask_common_dispersion_equals_the_in_memory_fit(kind, family):
    memory, lazy, _, _ = _pair(kind, family, equal_scale=True)
    assert memory.scale.nunique() == 1
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-8)
    np.testing.assert_allclose(
        lazy.params.to_numpy(), memory.params.to_numpy(), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(lazy.scale, memory.scale, rtol=1e-6)
    np.testing.assert_allclose(lazy.bse.to_numpy(), memory.bse.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(lazy.scale_bse, memory.scale_bse, rtol=1e-6)
    assert lazy.df_model == memory.df_model
    assert lazy.bic == pytest.approx(memory.bic, rel=1e-8)
    assert "common" in lazy.summary().as_text().lower()
    assert lazy.n_iter == memory.n_iter


@pytest.mark.parametrize("kind, family", [("poisson", "poisson"), ("gaussian", "gaussian")])
def test_dask_robust_covariance_equals_the_in_memory_sandwich(kind, family):
    memory, lazy, data, formula = _pair(kind, family, cov_type="robust")
    assert memory.cov_type == lazy.cov_type == "robust"
    assert lazy.n_iter == memory.n_iter
    np.testing.assert_allclose(
        lazy.cov_params().to_numpy(), memory.cov_params().to_numpy(), rtol=1e-6, atol=1e-12
    )
    # Switching covariances keeps the fit and moves only the standard errors.
    louis = lazy.with_cov_type("louis")
    assert louis.cov_type == "louis" and louis.llf == lazy.llf
    np.testing.assert_allclose(
        louis.bse.to_numpy(), memory.with_cov_type("louis").bse.to_numpy(), rtol=1e-6
    )
    assert not np.allclose(louis.bse.to_numpy(), lazy.bse.to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(
        louis.with_cov_type("robust").bse.to_numpy(), lazy.bse.to_numpy(), rtol=1e-12
    )
    with pytest.raises(NotImplementedError, match="cov_groups"):
        lazy.with_cov_type("cluster")  # the fit had no cluster column


def test_dask_clustered_covariance_equals_the_in_memory_one(monkeypatch):
    from emformula.backends import dask as _dask

    # Small blocks: clusters spread over blocks and over partitions.
    monkeypatch.setattr(_dask, "MEAT_BLOCK_ROWS", 150)
    data, formula = simulate_mixture("poisson", 1200, 2, 7, separation=3.0)
    data["firm"] = [f"f{i % 37:02d}" for i in range(1200)]
    memory = emglm(
        formula, data, "poisson", 2, random_state=1, n_init=3, cov_type="cluster", cov_groups="firm"
    )
    start = {"params": memory.params.to_numpy() * 0.95, "prior": [0.55, 0.45]}
    memory = emglm(formula, data, "poisson", 2, start=start, cov_type="cluster", cov_groups="firm")
    ddf = dd.from_pandas(data, npartitions=4)
    lazy = emglm(formula, ddf, "poisson", 2, start=start, cov_type="cluster", cov_groups="firm")
    assert lazy.cov_type == "cluster" and lazy.n_clusters == memory.n_clusters == 37
    assert lazy.n_iter == memory.n_iter
    np.testing.assert_allclose(
        lazy.cov_params().to_numpy(), memory.cov_params().to_numpy(), rtol=1e-6, atol=1e-12
    )
    assert "37 clusters of 'firm'" in lazy.summary().as_text()
    # Louis and robust from the same fit; back to clustered.
    np.testing.assert_allclose(
        lazy.with_cov_type("robust").bse.to_numpy(),
        memory.with_cov_type("robust").bse.to_numpy(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        lazy.with_cov_type("louis").with_cov_type("cluster").bse, lazy.bse, rtol=1e-12
    )
    with pytest.raises(NotImplementedError, match="fit again"):
        lazy.with_cov_type("cluster", data["firm"])
    with pytest.raises(ValueError, match="needs cluster labels"):
        emglm(formula, ddf, "poisson", 2, cov_type="cluster")
    # As in memory, the cluster column may come with another covariance, for
    # a later switch.
    louis = emglm(formula, ddf, "poisson", 2, start=start, cov_groups="firm")
    assert louis.cov_type == "louis"
    np.testing.assert_allclose(louis.with_cov_type("cluster").bse, lazy.bse, rtol=1e-9)
    holes = data.assign(firm=data["firm"].where(np.arange(1200) != 5))
    with pytest.raises(ValueError, match="missing labels"):
        emglm(
            formula,
            dd.from_pandas(holes, npartitions=2),
            "poisson",
            2,
            cov_type="cluster",
            cov_groups="firm",
        )


def test_partition_meat_in_blocks_equals_the_whole_sum(monkeypatch):
    from emformula import EMGLM
    from emformula.backends import dask as _dask
    from emformula.covariance.estimators import score_meat
    from emformula.engine import em as _em
    from emformula.engine.louis import unit_scores

    data, formula = simulate_mixture("gaussian", 1000, 2, 4, separation=3.0)
    x = np.column_stack([np.ones(1000), data["x1"], data["x2"]])
    engine = EMGLM(data["y"].to_numpy(), x, "gaussian", 2, weights=np.arange(1000) % 3 + 1.0).data
    est = _em.initial_estimates(engine, 2, np.random.default_rng(0), 1e-8)
    estep = _em.e_step(engine, est)
    whole = score_meat(unit_scores(engine, est, estep.posterior, estep.mu), engine.unit_weights)
    monkeypatch.setattr(_dask, "MEAT_BLOCK_ROWS", 97)  # 11 blocks, the last one short
    meat, clusters = _dask._partition_meat(engine, est, estep)
    assert clusters is None
    np.testing.assert_allclose(meat, whole, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("kind, family", [("gaussian", "gaussian"), ("gamma_log", "gamma")])
def test_dask_default_dispersion_floor_equals_the_in_memory_one(kind, family):
    # 1e-8 times the frequency-weighted variance of y (gaussian) or log y.
    in_memory, on_dask, data, _ = _pair(kind, family)
    values = data["y"] if family == "gaussian" else np.log(data["y"])
    mean = np.average(values, weights=data["w"])
    expected = 1e-8 * np.average((values - mean) ** 2, weights=data["w"])
    assert in_memory.fit_options["scale_floor"] == pytest.approx(expected, rel=1e-12)
    assert on_dask.fit_options["scale_floor"] == pytest.approx(expected, rel=1e-9)


def test_dask_predictions_and_posteriors_are_lazy_and_equal():
    memory, lazy, data, _ = _pair("poisson", "poisson", n=1200)
    ddf = dd.from_pandas(data, npartitions=3)
    pred = lazy.predict(ddf)
    assert hasattr(pred, "compute")
    np.testing.assert_allclose(
        pred.compute().to_numpy(), memory.predict(data).to_numpy(), rtol=1e-6
    )
    comp = lazy.predict(ddf, type="component").compute()
    np.testing.assert_allclose(comp.to_numpy(), memory.predict(data, type="component"), rtol=1e-6)
    post = lazy.posterior.compute()
    pd.testing.assert_index_equal(post.index, memory.posterior.index)
    np.testing.assert_allclose(post.to_numpy(), memory.posterior.to_numpy(), atol=1e-7)
    assert "Covariance Type:                 Louis" in lazy.summary().as_text()
    table = compare(memory, lazy)
    assert table.loc["llf", "model 2"] == pytest.approx(table.loc["llf", "model 1"], rel=1e-8)


def test_categorical_levels_spread_unevenly_across_partitions():
    rng = np.random.default_rng(5)
    n = 1500
    g = np.sort(rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]))  # sorted: uneven
    x = rng.normal(size=n)
    z = rng.integers(0, 2, size=n)
    effect = pd.Series({"a": 0.0, "b": 0.5, "c": -0.7})[g].to_numpy()
    y = rng.poisson(np.exp(np.where(z == 0, 0.2 + x, 2.0 - 0.5 * x) + effect))
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    ddf = dd.from_pandas(data, npartitions=5)
    # The first partition sees only level "a", the last only "c".
    assert set(ddf.partitions[0].compute().g) == {"a"}
    formula = "y ~ x + C(g)"
    memory = emglm(formula, data, "poisson", 2, random_state=1, n_init=3)
    start = {"params": memory.params.to_numpy(), "prior": memory.prior.to_numpy()}
    lazy = emglm(formula, ddf, "poisson", 2, start=start)
    assert list(lazy.params.index) == list(memory.params.index)
    np.testing.assert_allclose(lazy.params.to_numpy(), memory.params.to_numpy(), rtol=1e-6)
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-10)


def test_random_starts_use_a_sample_then_all_rows():
    data, formula = simulate_mixture("poisson", 3000, 2, 8, separation=3.0)
    memory = emglm(formula, data, "poisson", 2, random_state=2, n_init=3)
    lazy = emglm(
        formula, dd.from_pandas(data, npartitions=3), "poisson", 2, random_state=2, n_init=3
    )
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-9)


def test_distributed_local_cluster():
    distributed = pytest.importorskip("distributed")
    data, formula = simulate_mixture("gaussian", 1500, 2, 9, separation=3.0)
    memory = emglm(formula, data, "gaussian", 2, random_state=0, n_init=3)
    start = {
        "params": memory.params.to_numpy(),
        "prior": memory.prior.to_numpy(),
        "scale": memory.scale.to_numpy(),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster),
        ):
            lazy = emglm(formula, dd.from_pandas(data, npartitions=4), "gaussian", 2, start=start)
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-10)
    np.testing.assert_allclose(lazy.params.to_numpy(), memory.params.to_numpy(), rtol=1e-7)


def test_dask_rejects_what_it_does_not_support():
    data, formula = simulate_mixture("poisson", 200, 2, 1)
    ddf = dd.from_pandas(data, npartitions=2)
    with pytest.raises(TypeError, match="column name"):
        emglm(formula, ddf, "poisson", 2, weights=np.ones(200))
    with pytest.raises(ValueError, match="nothere"):
        emglm("y ~ x1 + nothere", ddf, "poisson", 2)


def test_the_core_never_imports_dask():
    code = (
        "import sys, emformula; from emformula import datasets, emglm; "
        "s = datasets.load_sim2(); emglm(s.formula, s.data, K=2, n_init=1); "
        "print('dask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_small_em_on_dask_runs_on_a_sample():
    from emformula import select_best, small_em

    data, formula = simulate_mixture("poisson", 30000, 2, 4, separation=3.0)
    ddf = dd.from_pandas(data, npartitions=3)
    warm = small_em(formula, ddf, "poisson", 2, repeats=4, random_state=1)
    assert len(warm.table) == 4
    res = emglm(formula, ddf, "poisson", 2, start=select_best(warm))
    memory = emglm(formula, data, "poisson", 2, start=select_best(warm))
    assert res.llf == pytest.approx(memory.llf, rel=1e-9)


def test_array_level_model_with_dask_arrays():
    import dask.array as da

    from emformula import EMGLM

    data, formula = simulate_mixture("poisson", 2000, 2, 6, separation=3.0)
    X = np.column_stack([np.ones(2000), data.x1, data.x2])
    rng = np.random.default_rng(0)
    w = rng.integers(1, 3, 2000).astype(float)
    memory = EMGLM(
        data.y.to_numpy(), X, "poisson", 2, weights=w, exog_names=["const", "x1", "x2"]
    ).fit(random_state=1, n_init=3)
    start = {"params": memory.params.to_numpy() * 0.9, "prior": [0.5, 0.5]}
    lazy = EMGLM(
        da.from_array(data.y.to_numpy(), chunks=500),
        da.from_array(X, chunks=(500, 3)),
        "poisson",
        2,
        weights=da.from_array(w, chunks=500),
        exog_names=["const", "x1", "x2"],
    ).fit(start=start)
    again = EMGLM(
        data.y.to_numpy(), X, "poisson", 2, weights=w, exog_names=["const", "x1", "x2"]
    ).fit(start=start)
    assert lazy.llf == pytest.approx(again.llf, rel=1e-8)
    np.testing.assert_allclose(lazy.params.to_numpy(), again.params.to_numpy(), rtol=1e-6)
    assert list(lazy.params.index) == ["const", "x1", "x2"]


def test_merged_moments_keep_their_precision():
    from emformula.families import WeightedMoments

    rng = np.random.default_rng(0)
    values = 1e8 + 5e-5 * rng.normal(size=4000)  # raw moments would cancel
    weights = rng.integers(1, 4, 4000).astype(float)
    pieces = [
        WeightedMoments(values[i : i + 700], weights[i : i + 700]) for i in range(0, 4000, 700)
    ]
    merged = sum(pieces)
    mean = np.average(values, weights=weights)
    assert merged.weight == weights.sum()
    assert merged.variance == pytest.approx(
        np.average((values - mean) ** 2, weights=weights), rel=1e-9
    )
    assert (WeightedMoments() + WeightedMoments([2.0], [0.0])).variance == 0.0


def test_dask_refuses_data_without_weight_or_rows_before_fitting():
    data, formula = simulate_mixture("gaussian", 300, 2, 1)
    data["w0"] = 0.0
    with pytest.raises(ValueError, match="weights are all zero"):
        emglm(formula, dd.from_pandas(data, npartitions=2), "gaussian", 2, weights="w0")
    holes = data.assign(x1=np.nan)
    with pytest.raises(ValueError, match="every row has a missing value"):
        emglm(formula, dd.from_pandas(holes, npartitions=2), "gaussian", 2)


def test_dask_results_details_match_memory():
    data, formula = simulate_mixture("poisson", 600, 2, 2, separation=3.0)
    data["w"] = np.arange(600) % 2 + 1.0
    data["firm"] = np.arange(600) % 23
    ddf = dd.from_pandas(data, npartitions=3)
    res = emglm(
        formula,
        ddf,
        "poisson",
        2,
        weights="w",
        cov_type="Robust",
        cov_groups="firm",
        random_state=0,
    )
    assert res.cov_type == "robust"  # case-insensitive, as in memory
    # Predicting needs neither the weights nor the cluster column.
    new = dd.from_pandas(data.drop(columns=["w", "firm"]), npartitions=2)
    np.testing.assert_allclose(
        res.predict(new).compute().to_numpy(), res.predict(ddf).compute().to_numpy()
    )
    # The fit's own cluster column may be named again; other labels may not.
    clustered = res.with_cov_type("cluster", "firm")
    assert clustered.n_clusters == 23
    with pytest.raises(ValueError, match="only used with cov_type='cluster'"):
        res.with_cov_type("robust", "firm")
    # Copies do not share their options.
    assert clustered.fit_options is not res.fit_options
    # Results pickled before the meats existed still load, switch and pickle.
    state = res.__getstate__()
    del state["_meat"], state["_clusters"]
    old = object.__new__(type(res))
    old.__setstate__(state)
    assert old.with_cov_type("louis").cov_type == "louis"
    pickle.loads(pickle.dumps(old))
    with pytest.raises(NotImplementedError, match="fit again"):
        old.with_cov_type("robust")


def test_cluster_sums_keep_nan_like_memory():
    from emformula.backends.dask import _add, _sum_by_label

    values = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]])
    first = _sum_by_label(pd.Index(["a", "b", "a"]), values)
    assert first.loc["a", 0] == 5.0 and np.isnan(first.loc["a", 1])
    merged = _add([first, _sum_by_label(pd.Index(["a"]), np.array([[1.0, 1.0]]))])
    assert merged.loc["a", 0] == 6.0 and np.isnan(merged.loc["a", 1])
    assert merged.loc["b"].tolist() == [2.0, 3.0]


# ----------------------------------------- every feature, on dask as in memory
def _assert_same_fit(lazy, memory):
    """The dask fit equals the in-memory fit from the same start, iteration
    for iteration."""
    assert lazy.n_iter == memory.n_iter
    assert lazy.llf == pytest.approx(memory.llf, rel=1e-8)
    for name in ("params", "bse"):
        np.testing.assert_allclose(
            getattr(lazy, name).to_numpy(), getattr(memory, name).to_numpy(), rtol=1e-6, atol=1e-8
        )
    for name in ("fixed_params", "fixed_bse", "prior", "prior_bse", "scale", "theta_bse"):
        np.testing.assert_allclose(
            getattr(lazy, name).to_numpy(), getattr(memory, name).to_numpy(), rtol=1e-6, atol=1e-8
        )
    if memory.concomitant_params is not None:
        np.testing.assert_allclose(
            lazy.concomitant_params, memory.concomitant_params, rtol=1e-6, atol=1e-8
        )
        np.testing.assert_allclose(
            lazy.concomitant_bse.iloc[:, 1:], memory.concomitant_bse.iloc[:, 1:], rtol=1e-6
        )
    assert lazy.df_model == memory.df_model and lazy.nobs == memory.nobs
    assert lazy.wnobs == pytest.approx(memory.wnobs, rel=1e-12)
    assert lazy.n_groups == memory.n_groups
    assert lazy.icl == pytest.approx(memory.icl, rel=1e-6)
    assert lazy.converged == memory.converged
    assert lazy.cov_type == memory.cov_type


def _feature_pair(kind, K=2, n=1600, seed=4, npartitions=4, by_group=False, **features):
    """An in-memory fit and a dask fit of simulated data, from one start
    (a perturbed fit, so that EM has work to do)."""
    from simulate_features import simulate

    data, formula, kwargs = simulate(
        kind,
        n,
        K,
        seed,
        concomitant="concomitant" in features,
        fixed="fixed" in features,
        groups=features.pop("groups", None),
    )
    for name in ("concomitant", "fixed"):
        features.pop(name, None)
    kwargs.update(features)
    first = emglm(formula, data, K=K, random_state=seed, n_init=2, **kwargs)
    start = {
        "params": first.params.to_numpy() * 0.95 + 0.02,
        "prior": np.full(K, 1.0 / K),
        "scale": first.scale.to_numpy() * 1.1,
    }
    if first.fixed_params.size:
        start["fixed"] = first.fixed_params.to_numpy() * 0.9
    if first.concomitant_params is not None:
        start["concomitant"] = first.concomitant_params.to_numpy() * 0.8
    memory = emglm(formula, data, K=K, start=start, **kwargs)
    frame = data.set_index(data["id"].rename("unit")) if by_group else data
    lazy = emglm(
        formula, dd.from_pandas(frame, npartitions=npartitions), K=K, start=start, **kwargs
    )
    return memory, lazy, data, formula, kwargs


def test_dask_concomitant_model_equals_memory():
    memory, lazy, data, formula, kwargs = _feature_pair("poisson", concomitant=True)
    _assert_same_fit(lazy, memory)
    # A start without concomitant coefficients: the log-odds of its proportions.
    start = {"params": memory.params.to_numpy() * 0.9, "prior": [0.7, 0.3]}
    _assert_same_fit(
        emglm(formula, dd.from_pandas(data, npartitions=3), K=2, start=start, **kwargs),
        emglm(formula, data, K=2, start=start, **kwargs),
    )
    pred = lazy.predict(type="prior").compute()
    np.testing.assert_allclose(pred.to_numpy(), memory.predict(type="prior").to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("kind", ["poisson", "gaussian"])
def test_dask_shared_effects_equal_memory(kind):
    memory, lazy, data, *_ = _feature_pair(kind, fixed=True)
    assert list(lazy.fixed_params.index) == ["x2"]
    _assert_same_fit(lazy, memory)
    np.testing.assert_allclose(
        lazy.fittedvalues.compute().to_numpy(), memory.fittedvalues.to_numpy(), rtol=1e-6
    )


def test_dask_groups_equal_memory():
    memory, lazy, *_ = _feature_pair("poisson", groups=4, by_group=True, concomitant=True)
    assert memory.n_groups == 400
    _assert_same_fit(lazy, memory)
    post = lazy.posterior.compute()
    np.testing.assert_allclose(post.to_numpy(), memory.posterior.to_numpy(), atol=1e-7)


@pytest.mark.parametrize("kind", ["gaussian", "gamma"])
def test_dask_equal_scale_with_shared_effects_equals_memory(kind):
    memory, lazy, *_ = _feature_pair(kind, fixed=True, equal_scale=True)
    assert memory.scale.nunique() == 1
    _assert_same_fit(lazy, memory)


@pytest.mark.parametrize("cov_type", ["robust", "cluster"])
def test_dask_sandwich_covariances_of_grouped_data_equal_memory(cov_type):
    from simulate_features import simulate

    data, formula, kwargs = simulate("gaussian", 1200, 2, 5, groups=3, fixed=True)
    data["firm"] = data["id"] // 7
    kwargs.update(cov_type=cov_type, cov_groups="firm")
    first = emglm(formula, data, K=2, random_state=1, n_init=2, **kwargs)
    start = {
        "params": first.params.to_numpy() * 0.9,
        "prior": [0.6, 0.4],
        "scale": first.scale.to_numpy(),
        "fixed": first.fixed_params.to_numpy(),
    }
    memory = emglm(formula, data, K=2, start=start, **kwargs)
    frame = data.set_index(data["id"].rename("unit"))
    lazy = emglm(formula, dd.from_pandas(frame, npartitions=3), K=2, start=start, **kwargs)
    _assert_same_fit(lazy, memory)
    np.testing.assert_allclose(
        lazy.cov_params().to_numpy(), memory.cov_params().to_numpy(), rtol=1e-6, atol=1e-12
    )
    other = "louis" if cov_type == "robust" else "robust"
    np.testing.assert_allclose(
        lazy.with_cov_type(other).bse, memory.with_cov_type(other).bse, rtol=1e-6
    )


def test_dask_refuses_a_group_spread_over_partitions():
    from simulate_features import simulate

    data, formula, kwargs = simulate("poisson", 400, 2, 1, groups=5)
    spread = pd.concat([data, data.iloc[:3]])  # group 0 again at the end
    spread.index = np.arange(len(spread))
    with pytest.raises(ValueError, match="group 0 has rows in more than one partition"):
        emglm(formula, dd.from_pandas(spread, npartitions=2), K=2, **kwargs)


def test_dask_default_tolerance_is_the_in_memory_one():
    import inspect

    from emformula.backends.dask import fit_dask
    from emformula.dask_model import DaskEMGLM
    from emformula.model import DEFAULT_TOL

    assert inspect.signature(fit_dask).parameters["tol"].default == DEFAULT_TOL == 1e-10
    assert inspect.signature(DaskEMGLM.fit).parameters["tol"].default == DEFAULT_TOL


def test_dask_results_pickle_with_their_sums():
    memory, lazy, *_ = _feature_pair("poisson", fixed=True, cov_type="robust")
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_allclose(again.bse, lazy.bse, rtol=1e-12)
    assert again.with_cov_type("louis").cov_type == "louis"
    assert again.llf == lazy.llf and again.n_iter == lazy.n_iter


@pytest.mark.parametrize("kind, family", [("poisson", "poisson"), ("binomial_counts", "binomial")])
def test_dask_m_step_check_and_next_e_step_share_a_pass(kind, family, monkeypatch):
    # For a family without parameters of its own the M-step knows its
    # estimates before the check of its full steps, so the E-step at them
    # rides in the check's pass. Without that: the same fit, more passes.
    from emformula.backends.dask import DaskRows

    _, fused, data, formula = _pair(kind, family)
    monkeypatch.setattr(DaskRows, "looks_ahead", False)
    start = {"params": fused.params.to_numpy() * 0.95 + 0.01, "prior": [0.55, 0.45]}
    ddf = dd.from_pandas(data, npartitions=4)
    kwargs = dict(weights="w", offset="off", start=start)
    apart = emglm(formula, ddf, family, 2, **kwargs)
    monkeypatch.setattr(DaskRows, "looks_ahead", True)
    together = emglm(formula, ddf, family, 2, **kwargs)
    assert together.llf == apart.llf and together.n_iter == apart.n_iter
    np.testing.assert_array_equal(together.params.to_numpy(), apart.params.to_numpy())
    np.testing.assert_array_equal(together.bse.to_numpy(), apart.bse.to_numpy())
    saved = apart.fit_options["passes"] - together.fit_options["passes"]
    # One pass per M-step whose full steps held: at least one per EM
    # iteration before the Newton finish.
    assert saved >= 3, (apart.fit_options["passes"], together.fit_options["passes"])


def _reversed_start(fit):
    """A start whose components come out in the reverse of the documented
    order (so that the fit ends by reordering them)."""
    params = fit.params.to_numpy()[:, ::-1] * 0.95 + 0.01
    return {"params": params, "prior": fit.prior.to_numpy()[::-1]}


@pytest.mark.parametrize("cov_type", ["louis", "robust"])
def test_dask_results_sums_ride_in_newtons_last_e_step(cov_type, monkeypatch):
    # Newton's last step (its predicted gain at rounding level) is where the
    # run ends: the results' pass (information, meat, entropies, counts) is
    # formed in that E-step's pass, at the estimates in the documented
    # order, instead of one pass more.
    import emformula.backends.dask as dask_backend
    import emformula.engine.loop as loop

    _, fused, data, formula = _pair("poisson", "poisson")
    ddf = dd.from_pandas(data, npartitions=4)
    kwargs = dict(weights="w", offset="off", start=_reversed_start(fused), cov_type=cov_type)
    orders = []
    order_of = dask_backend.component_order
    monkeypatch.setattr(
        dask_backend, "component_order", lambda *a: orders.append(order_of(*a)) or orders[-1]
    )
    monkeypatch.setattr(loop, "FINAL", None)
    apart = emglm(formula, ddf, "poisson", 2, **kwargs)
    monkeypatch.setattr(loop, "FINAL", dask_backend.FINAL)
    together = emglm(formula, ddf, "poisson", 2, **kwargs)
    # The fit ended by reordering its components: the case the cache must match.
    assert orders == [[1, 0]]
    assert together.llf == apart.llf and together.n_iter == apart.n_iter
    np.testing.assert_array_equal(together.params.to_numpy(), apart.params.to_numpy())
    np.testing.assert_array_equal(together.bse.to_numpy(), apart.bse.to_numpy())
    assert together.info_criteria("icl") == apart.info_criteria("icl")
    assert apart.fit_options["passes"] - together.fit_options["passes"] == 1


def test_dask_refused_last_newton_step_gets_a_results_pass_of_its_own(monkeypatch):
    # Should the last step be refused after all, the results' sums formed at
    # it belong to other estimates: the fit computes them again at its own.
    import emformula.backends.dask as dask_backend
    import emformula.engine.loop as loop
    from emformula.backends.dask import DaskRows, DaskState

    _, fused, data, formula = _pair("poisson", "poisson")
    ddf = dd.from_pandas(data, npartitions=4)
    kwargs = dict(weights="w", offset="off", start=_reversed_start(fused))
    monkeypatch.setattr(loop, "FINAL", None)
    plain = emglm(formula, ddf, "poisson", 2, **kwargs)
    monkeypatch.setattr(loop, "FINAL", dask_backend.FINAL)
    e_step = DaskRows.e_step

    def refusing(self, est, predictors=None, ahead=None):
        state = e_step(self, est, predictors, ahead)
        if ahead is not dask_backend.FINAL:
            return state
        # The step is refused; its sums, marked, must not reach the results.
        self.final = self.final[0], {**self.final[1], "llf": 12345.0}
        return DaskState(est, -np.inf)

    monkeypatch.setattr(DaskRows, "e_step", refusing)
    refused = emglm(formula, ddf, "poisson", 2, **kwargs)
    # One step short of the plain fit's end, which it matches to rounding.
    assert refused.n_iter == plain.n_iter - 1
    assert refused.fit_options["passes"] == plain.fit_options["passes"]
    np.testing.assert_allclose(refused.llf, plain.llf, rtol=1e-12)
    np.testing.assert_allclose(refused.params.to_numpy(), plain.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(refused.bse.to_numpy(), plain.bse.to_numpy(), rtol=1e-6)
    # Its sums are those of its own estimates, not the refused step's: the
    # log-likelihood of the results' pass is its last E-step's, bit for bit.
    assert refused.llf == refused.llf_history[-1] != 12345.0


def test_dask_partitions_rebuilt_per_pass_skip_the_column_products():
    # The Gram helper's column products cost about a pass to form; a
    # partition read again for every pass would pay that every time.
    from emformula.backends.dask import _chunk, _partition_arguments
    from emformula.families import as_family
    from emformula.formula.dask_design import build_dask_design, formula_context
    from emformula.specification import MixtureSpec

    data, formula = simulate_mixture("poisson", 300, 2, 0)
    ddf = dd.from_pandas(data, npartitions=2)
    family = as_family("poisson")
    spec = MixtureSpec(family="poisson")
    context = formula_context(formula, spec.context)
    design = build_dask_design(formula, ddf, spec.replace(context=context))
    part = ddf.partitions[0].compute()
    once = _chunk(part, _partition_arguments(design, family, context, False)).data
    kept = _chunk(part, _partition_arguments(design, family, context, False, reused=True)).data
    assert once.gram.products is None and kept.gram.products is not None
    w = np.linspace(0.1, 2.0, once.nobs)
    np.testing.assert_allclose(once.gram(w), kept.gram(w), rtol=1e-12)
