"""relabel: another order of the components is the same fit, in other terms."""

import numpy as np
import pandas as pd
import pytest

from emformula import emglm


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 1500
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    logits = np.column_stack([np.zeros(n), 0.3 + 0.8 * df.z, -0.2 - 0.6 * df.z])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    comp = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    intercept, slope = np.array([0.2, 1.4, 2.6]), np.array([0.8, -0.5, 0.3])
    df["y"] = rng.poisson(np.exp(intercept[comp] + slope[comp] * df.x))
    return df


@pytest.fixture(scope="module")
def fit2(data):
    return emglm("y ~ x", data, "poisson", K=2, random_state=0)


@pytest.fixture(scope="module")
def fit3(data):
    return emglm("y ~ x", data, "poisson", K=3, concomitant="~ z", random_state=0)


def test_swapping_two_components_swaps_every_number(fit2):
    new = fit2.relabel(order=[2, 1])
    assert new.llf == fit2.llf and new.df_model == fit2.df_model
    np.testing.assert_array_equal(new.params.to_numpy(), fit2.params.to_numpy()[:, ::-1])
    np.testing.assert_allclose(new.bse.to_numpy(), fit2.bse.to_numpy()[:, ::-1], rtol=1e-8)
    np.testing.assert_allclose(new.prior.to_numpy(), fit2.prior.to_numpy()[::-1], rtol=1e-12)
    np.testing.assert_allclose(new.posterior.to_numpy(), fit2.posterior.to_numpy()[:, ::-1])
    # The mixing log-odds change sign (re-based on the new first component).
    assert new.theta["logit_prior:comp2"] == pytest.approx(-fit2.theta["logit_prior:comp2"])
    assert new.theta_bse["logit_prior:comp2"] == pytest.approx(
        fit2.theta_bse["logit_prior:comp2"], rel=1e-8
    )
    # A test across the components: the effect flips, the evidence does not.
    old_t, new_t = (r.t_test("comp1:x - comp2:x = 0") for r in (fit2, new))
    assert float(new_t.effect[0]) == pytest.approx(-float(old_t.effect[0]), rel=1e-10)
    assert float(new_t.pvalue) == pytest.approx(float(old_t.pvalue), rel=1e-8)
    assert new.fit_options["relabelled"] == [2, 1]


def _rebase_matrix(res, perm):
    """theta' = A theta for the relabelled fit, built from the layout here."""
    lay = res.layout
    A = np.zeros((lay.size, lay.size))
    K = res.n_components
    for j, k in enumerate(perm):
        for a, b in zip(lay.coef_index[j], lay.coef_index[k]):
            A[a, b] = 1.0
    q = lay.n_concomitant
    # gamma'_j = gamma_perm[j] - gamma_perm[0] (gamma_1 = 0 is not a parameter).
    for j in range(1, K):
        for t in range(q):
            row = lay.prior_index[(j - 1) * q + t]
            if perm[j] > 0:
                A[row, lay.prior_index[(perm[j] - 1) * q + t]] += 1.0
            if perm[0] > 0:
                A[row, lay.prior_index[(perm[0] - 1) * q + t]] -= 1.0
    return A


@pytest.mark.parametrize("cov_type", ["louis", "robust"])
def test_a_new_reference_re_bases_the_concomitant_model(fit3, cov_type):
    res = fit3.with_cov_type(cov_type)
    new = res.relabel(reference=3)
    perm = [2, 0, 1]
    A = _rebase_matrix(res, perm)
    np.testing.assert_allclose(new.theta.to_numpy(), A @ res.theta.to_numpy(), atol=1e-12)
    # The covariance is computed afresh in the new terms and equals the
    # linear map of the old one.
    np.testing.assert_allclose(
        new.cov_params().to_numpy(), A @ res.cov_params().to_numpy() @ A.T, rtol=1e-6, atol=1e-12
    )
    assert new.llf == pytest.approx(res.llf, rel=1e-14)
    np.testing.assert_allclose(new.prior.to_numpy(), res.prior.to_numpy()[perm], rtol=1e-10)


def test_order_by_a_parameter_or_the_prior(fit3):
    by_x = fit3.relabel(by="x")
    assert np.all(np.diff(by_x.params.loc["x"].to_numpy()) > 0)
    down = fit3.relabel(by="Intercept", ascending=False)
    assert np.all(np.diff(down.params.loc["Intercept"].to_numpy()) < 0)
    up = fit3.relabel(by="prior")
    assert np.all(np.diff(up.prior.to_numpy()) > 0)
    assert by_x.llf == pytest.approx(fit3.llf, rel=1e-14)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one"),
        ({"order": [1, 2], "by": "x"}, "exactly one"),
        ({"order": [1, 1, 2]}, "each of the 3"),
        ({"order": [1, 2, 4]}, "numbered 1..3"),
        ({"reference": "comp9"}, "numbered 1..3"),
        ({"by": "w"}, "choose from"),
    ],
)
def test_relabel_errors(fit3, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit3.relabel(**kwargs)


def test_relabel_refuses_a_list_of_families(data):
    res = emglm("y ~ x", data, ["pointmass", "poisson"], random_state=0)
    with pytest.raises(ValueError, match="families"):
        res.relabel(order=[2, 1])
