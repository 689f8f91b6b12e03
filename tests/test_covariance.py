"""Covariance choices: Louis (default), robust sandwich, cluster sandwich."""

import pickle

import numpy as np
import pandas as pd
import pytest
from flexmix_reference import load_data
from simulate_features import simulate, unit_loglike_of_theta
from statsmodels.tools.numdiff import approx_fprime

from emformula import emglm
from emformula.engine.louis import observed_score


@pytest.fixture(scope="module")
def concomitant_fit():
    data = load_data("concomitant_poisson")
    weights = np.random.default_rng(1).integers(1, 3, len(data)).astype(float)
    return emglm(
        "y ~ x", data, "poisson", K=2, concomitant="~ z", weights=weights, random_state=1, n_init=3
    )


@pytest.fixture(scope="module")
def grouped_fit():
    data = load_data("grouped_poisson")
    return emglm(
        "y ~ x", data, "poisson", K=2, groups="id", cov_groups="id", random_state=1, n_init=3
    )


@pytest.fixture(scope="module")
def fixed_fit():
    data = load_data("fixed_gaussian")
    return emglm(
        "y ~ x1", data, "gaussian", K=2, fixed="~ x2", equal_scale=True, random_state=1, n_init=3
    )


def _hand_sandwich(res):
    """I^-1 (sum_u v_u g_u g_u') I^-1 with g_u numerical gradients of each
    unit's log-likelihood."""
    theta = res.layout.pack(res.estimates)
    jac = approx_fprime(theta, unit_loglike_of_theta(res), centered=True)
    v = res.model.data.unit_weights
    bread = np.linalg.inv(res.information().to_numpy())
    return bread @ (jac.T @ (v[:, None] * jac)) @ bread


@pytest.mark.parametrize("name", ["concomitant_fit", "grouped_fit", "fixed_fit"])
def test_robust_is_the_sandwich_of_numerical_unit_scores(name, request):
    res = request.getfixturevalue(name)
    robust = res.with_cov_type("robust")
    np.testing.assert_allclose(
        robust.cov_params().to_numpy(), _hand_sandwich(res), rtol=1e-5, atol=1e-9
    )
    # The unit scores are those gradients, and they add up to the score.
    scores = res._unit_scores
    theta = res.layout.pack(res.estimates)
    jac = approx_fprime(theta, unit_loglike_of_theta(res), centered=True)
    np.testing.assert_allclose(scores, jac, rtol=1e-5, atol=1e-6 * np.abs(jac).max())
    data = res.model.data
    total = observed_score(data, res.estimates, res._run.posterior, res._component_mean)
    np.testing.assert_allclose(data.unit_weights @ scores, total, atol=1e-8)


def test_cluster_with_one_row_per_cluster_equals_robust():
    data, formula, kwargs = simulate("poisson", 400, 2, seed=2, concomitant=True, separation=3.0)
    res = emglm(
        formula,
        data.assign(c=np.arange(400)),
        K=2,
        cov_type="cluster",
        cov_groups="c",
        random_state=0,
        n_init=3,
        **kwargs,
    )
    assert res.cov_type == "cluster" and res.n_clusters == 400
    np.testing.assert_allclose(
        res.cov_params(), res.with_cov_type("robust").cov_params(), rtol=1e-12
    )


def test_robust_with_groups_uses_group_scores(grouped_fit):
    robust = grouped_fit.with_cov_type("robust")
    by_id = grouped_fit.with_cov_type("cluster")  # the model's cov_groups: the group ids
    assert by_id.n_clusters == 300
    np.testing.assert_allclose(robust.cov_params(), by_id.cov_params(), rtol=1e-12)
    assert grouped_fit._unit_scores.shape == (300, grouped_fit.df_model)


def test_clusters_must_contain_whole_groups(grouped_fit):
    labels = np.arange(1500) % 7
    with pytest.raises(ValueError, match="whole groups"):
        grouped_fit.with_cov_type("cluster", labels)
    coarse = grouped_fit.with_cov_type("cluster", (np.arange(1500) // 50))
    assert coarse.n_clusters == 30


def test_robust_close_to_louis_for_a_correctly_specified_model():
    data, formula, kwargs = simulate("poisson", 6000, 2, seed=11, concomitant=True, separation=2.5)
    res = emglm(formula, data, K=2, random_state=0, n_init=2, **kwargs)
    ratio = res.with_cov_type("robust").theta_bse / res.theta_bse
    assert np.all(np.abs(ratio - 1) < 0.1), ratio


def test_everything_follows_the_covariance_type(concomitant_fit):
    robust = concomitant_fit.with_cov_type("robust")
    assert concomitant_fit.cov_type == "louis" and robust.cov_type == "robust"
    se = np.sqrt(np.diag(robust.cov_params().to_numpy()))
    np.testing.assert_allclose(robust.theta_bse, se)
    positions = np.concatenate(robust.layout.coef_index)
    np.testing.assert_allclose(robust.bse.to_numpy().T.ravel(), se[positions])
    np.testing.assert_allclose(robust.concomitant_bse["comp2"], se[-2:])
    assert not np.allclose(robust.bse, concomitant_fit.bse)
    np.testing.assert_allclose(robust.params, concomitant_fit.params)
    ci = robust.conf_int()
    np.testing.assert_allclose(
        ci["comp1"]["upper"] - robust.params["comp1"], 1.959963984540054 * robust.bse["comp1"]
    )
    assert "Covariance Type:                Robust" in robust.summary().as_text()
    assert "Covariance Type:                 Louis" in concomitant_fit.summary().as_text()
    # The information itself is always Louis'.
    pd.testing.assert_frame_equal(robust.information(), concomitant_fit.information())


def test_cov_type_at_fit_time_equals_the_method(grouped_fit):
    data = load_data("grouped_poisson")
    res = emglm("y ~ x", data, "poisson", K=2, groups="id", cov_type="robust", start=grouped_fit)
    np.testing.assert_allclose(
        res.cov_params(), grouped_fit.with_cov_type("robust").cov_params(), rtol=1e-8
    )
    text = grouped_fit.with_cov_type("cluster").summary().as_text()
    assert "Cluster" in text and "300 clusters of 'id'" in text


def test_bad_covariance_arguments(concomitant_fit, fixed_fit):
    with pytest.raises(ValueError, match="cov_type must be one of"):
        concomitant_fit.with_cov_type("HC0")
    with pytest.raises(ValueError, match="needs cluster labels"):
        fixed_fit.with_cov_type("cluster")
    with pytest.raises(ValueError, match="only used with cov_type='cluster'"):
        fixed_fit.with_cov_type("robust", np.arange(1200))
    with pytest.raises(ValueError, match="one label per row"):
        fixed_fit.with_cov_type("cluster", np.arange(10))


def test_cluster_labels_as_a_series_align_on_the_index(fixed_fit):
    labels = pd.Series(np.arange(1200) // 4, index=load_data("fixed_gaussian").index)
    a = fixed_fit.with_cov_type("cluster", labels)
    b = fixed_fit.with_cov_type("cluster", labels.to_numpy())
    np.testing.assert_allclose(a.cov_params(), b.cov_params())
    assert a.n_clusters == 300


def test_pickle_keeps_the_covariance_type(grouped_fit):
    clustered = grouped_fit.with_cov_type("cluster")
    clone = pickle.loads(pickle.dumps(clustered))
    assert clone.cov_type == "cluster"
    pd.testing.assert_frame_equal(clone.bse, clustered.bse)
