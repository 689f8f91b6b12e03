"""The engine's shortcuts give the numbers of the long way round.

The exact Gaussian M-step, the preallocated work arrays and the in-place
log-density kernels are performance devices; these tests pin what they must
not change.
"""

import numpy as np
import pytest
import statsmodels.api as sm

from emformula import EMGLM
from emformula.engine import em as _em
from emformula.engine.mstep import parameters_from_arrays
from emformula.families import as_family


def _gaussian_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    z = rng.integers(0, 2, n)
    y = np.where(z == 0, x @ [0.0, 1.0, -1.0], x @ [4.0, -0.5, 0.5]) + rng.normal(size=n)
    return y, x


def test_exact_gaussian_step_is_the_weighted_least_squares_fit():
    y, x = _gaussian_data()
    offset = np.linspace(-0.5, 0.5, y.size)
    data = EMGLM(y, x, "gaussian", 2, offset=offset).data
    assert data.family.irls_is_exact
    rng = np.random.default_rng(1)
    weight = rng.uniform(0.0, 2.0, y.size)
    coef0 = np.array([10.0, 3.0, -2.0])  # far from the solution: one step must land
    eta0 = x @ coef0 + offset
    coef, eta, mu, q, ok = _em.irls_step(
        data, weight, coef0, eta0, eta0, None, (1.0,), need_q=False
    )
    wls = sm.WLS(y - offset, x, weights=weight).fit()
    np.testing.assert_allclose(coef, wls.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(eta, x @ coef + offset, rtol=1e-12)
    np.testing.assert_allclose(mu, eta, rtol=1e-12)
    assert q is None and ok
    # The checked step (Q evaluated, halving allowed) takes the same full step.
    checked = _em.irls_step(
        data,
        weight,
        coef0,
        eta0,
        eta0,
        _em.weighted_sum(weight, data.family.loglike(y, eta0, 1.0, np.ones_like(y))),
        (1.0,),
    )
    np.testing.assert_allclose(checked[0], coef, rtol=1e-10, atol=1e-12)


def test_gaussian_m_step_never_lowers_q_or_the_likelihood():
    y, x = _gaussian_data(seed=3)
    model = EMGLM(y, x, "gaussian", 2)
    est = _em.initial_estimates(model.data, 2, np.random.default_rng(0), 1e-8)
    estep = _em.e_step(model.data, est)

    def q(posterior, est_q, estep_q):
        # Expected complete-data log-likelihood under the fixed posterior.
        return float(np.sum(posterior * (estep_q.loglike + np.log(est_q.prior))))

    for _ in range(5):
        new = {}
        est_new, _ = _em.m_step(model.data, est, estep, 1e-8, new)
        estep_new = _em.e_step(model.data, est_new, new["eta"], new["mu"])
        assert q(estep.posterior, est_new, estep_new) >= q(estep.posterior, est, estep) - 1e-10
        assert estep_new.llf >= estep.llf - 1e-10 * abs(estep.llf)
        est, estep = est_new, estep_new


@pytest.mark.parametrize("family, K", [("poisson", 2), ("gaussian", 3)])
def test_e_steps_do_not_share_arrays_through_the_work_buffers(family, K):
    rng = np.random.default_rng(2)
    n = 300
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.poisson(3.0, n).astype(float)
    data = EMGLM(y, x, family, K).data
    first_est = _em.initial_estimates(data, K, np.random.default_rng(0), 1e-8)
    second_est = _em.initial_estimates(data, K, np.random.default_rng(1), 1e-8)
    first = _em.e_step(data, first_est)
    kept = (first.posterior.copy(), first.row_llf.copy(), first.llf)
    second = _em.e_step(data, second_est)
    # The second E-step reused the work arrays; the first one's results stand.
    np.testing.assert_array_equal(first.posterior, kept[0])
    np.testing.assert_array_equal(first.row_llf, kept[1])
    assert not np.shares_memory(first.posterior, second.posterior)
    assert not np.shares_memory(first.row_llf, second.row_llf)
    # And each equals the textbook log-sum-exp.
    for est, estep in ((first_est, first), (second_est, second)):
        log_joint = estep.loglike + np.log(est.prior)
        top = log_joint.max(axis=1, keepdims=True)
        unit = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
        np.testing.assert_allclose(estep.row_llf, unit, rtol=1e-13)
        np.testing.assert_allclose(
            estep.posterior, np.exp(log_joint - unit[:, None]), rtol=1e-12, atol=1e-300
        )
        assert estep.llf == pytest.approx(unit.sum(), rel=1e-13)


@pytest.mark.parametrize("name", ["poisson", "gaussian"])
def test_in_place_kernels_equal_the_textbook_log_density(name):
    from scipy import stats

    family = as_family(name)
    rng = np.random.default_rng(4)
    y = rng.poisson(4.0, (60, 1)).astype(float)
    eta = rng.normal(1.0, 0.3, (60, 3))
    mu = np.exp(eta) if name == "poisson" else eta
    scale = np.array([[0.5, 1.0, 2.0]])
    got = family.loglike_kernel(y, mu, scale, np.ones_like(y), eta=eta) + family.loglike_constant(
        y, np.ones_like(y)
    )
    if name == "poisson":
        expected = stats.poisson.logpmf(y, mu)
    else:
        expected = stats.norm.logpdf(y, mu, np.sqrt(scale))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_one_model_fitted_from_several_threads_gives_the_sequential_numbers():
    # The work arrays are per thread: numpy releases the GIL while filling
    # them, so shared ones would mix the steps of different threads.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    n = 200_000
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.poisson(np.exp(0.5 + x[:, 1])).astype(float)
    data = EMGLM(y, x, "poisson", 2).data
    starts = [_em.initial_estimates(data, 2, np.random.default_rng(s), 0.0) for s in range(4)]
    esteps = [_em.e_step(data, est) for est in starts]

    def one(i):
        est, _ = _em.m_step(data, starts[i], esteps[i], 0.0)
        return est.coef, _em.e_step(data, est).llf

    sequential = [one(i) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            for (coef, llf), (ref_coef, ref_llf) in zip(pool.map(one, range(4)), sequential):
                np.testing.assert_array_equal(coef, ref_coef)
                assert llf == ref_llf


def test_best_run_prefers_the_first_converged_run_among_ties():
    from emformula.model import _best_run_index

    top = -1000.0
    tie = top - 5e-9  # 5e-12 relative: a rounding-level tie
    llfs = np.array([tie, top - 1.0, top, tie, np.nan])
    assert _best_run_index(llfs, [True] * 5) == 0  # first of the tied runs
    assert _best_run_index(llfs, [False, True, True, True, True]) == 2  # converged first
    assert _best_run_index(llfs, [False] * 5) == 0  # none converged: first tied
    assert _best_run_index(np.array([top - 1e-3, top]), [True, True]) == 1  # not a tie
    assert _best_run_index(np.array([np.nan, -np.inf]), [True, True]) == 0


@pytest.mark.parametrize("family", ["gaussian", "gamma"])
def test_common_dispersion_equals_the_stacked_ml_update(family):
    rng = np.random.default_rng(5)
    n, K = 500, 3
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.gamma(3.0, 1.0, n)
    weights = rng.integers(0, 3, n).astype(float)  # zero weights included
    data = EMGLM(y, x, family, K, weights=weights, equal_scale=True).data
    mu = rng.uniform(1.0, 5.0, (n, K))
    posterior = rng.dirichlet(np.ones(K), n)
    row_weights = weights[:, None] * posterior
    keep = row_weights > 0
    stacked = np.repeat(y[:, None], K, axis=1)
    expected = data.family.mle_scale(stacked[keep], mu[keep], row_weights[keep])
    common = parameters_from_arrays(data, mu, posterior, np.ones((1, K)), 1e-12)
    np.testing.assert_allclose(common, expected, rtol=1e-12)
