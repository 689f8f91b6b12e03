"""Louis' observed information against a numerical Hessian of the
observed log-likelihood (statsmodels.tools.numdiff.approx_hess)."""

import numpy as np
import pytest
from simulate import FAMILIES, simulate_mixture
from statsmodels.tools.numdiff import approx_fprime, approx_hess

from emformula import EMGLM
from emformula.engine import em as _em
from emformula.engine.layout import pack_theta, unpack_theta


def _loglike_of_theta(model):
    data = model.data
    scale = data.family.estimates_scale

    def llf(theta):
        est = unpack_theta(theta, data.n_coef, model.K, scale)
        return _em.e_step(data, est).llf

    return llf


CASES = [
    # kind, K, n, weights, offset
    ("poisson", 2, 400, False, False),
    ("poisson", 2, 400, True, True),
    ("binomial_counts", 2, 400, False, False),
    ("gaussian", 3, 600, False, False),
    ("gaussian", 2, 400, True, True),
    ("gamma_log", 2, 500, False, False),
    ("gamma_log", 2, 500, True, True),
    ("binomial_probit", 2, 600, False, False),
    ("inverse_gaussian_log", 2, 500, False, False),
    ("negative_binomial", 2, 500, True, False),
]


@pytest.mark.parametrize("kind, K, n, weighted, offset", CASES)
def test_louis_standard_errors_equal_numerical_hessian(kind, K, n, weighted, offset):
    data, formula = simulate_mixture(kind, n, K, seed=123, separation=3.0)
    rng = np.random.default_rng(9)
    kwargs = {}
    if weighted:
        kwargs["weights"] = rng.integers(1, 4, size=n).astype(float)
    if offset:
        kwargs["offset"] = rng.normal(scale=0.2, size=n)
    model = EMGLM.from_formula(formula, data, FAMILIES[kind](), K, **kwargs)
    res = model.fit(random_state=1, n_init=5)
    assert res.converged
    theta = pack_theta(res.estimates, model.family.estimates_scale)
    llf = _loglike_of_theta(model)
    # The estimate is a stationary point: the numerical score vanishes
    # relative to the standard errors.
    grad = approx_fprime(theta, llf, centered=True)
    se_louis = np.sqrt(np.diag(res.cov_params().to_numpy()))
    assert np.max(np.abs(grad) * se_louis) < 1e-4
    hess = approx_hess(theta, llf)
    se_numeric = np.sqrt(np.diag(np.linalg.inv(-hess)))
    np.testing.assert_allclose(se_louis, se_numeric, rtol=1e-4)
    # And the whole matrices agree, not only their diagonals.
    info = res.information().to_numpy()
    np.testing.assert_allclose(info, -hess, rtol=2e-4, atol=2e-4 * np.abs(info).max())


def test_delta_method_for_priors_and_scales():
    data, formula = simulate_mixture("gaussian", 500, 3, seed=4, separation=3.0)
    res = EMGLM.from_formula(formula, data, "gaussian", 3).fit(random_state=0, n_init=5)
    cov = res.cov_params().to_numpy()
    theta = pack_theta(res.estimates, True)
    names = res.param_names

    def numeric_se(fn):
        jac = approx_fprime(theta, fn, centered=True)
        return np.sqrt(np.diag(np.atleast_2d(jac) @ cov @ np.atleast_2d(jac).T))

    prior_se = numeric_se(lambda th: unpack_theta(th, 3, 3, True).prior)
    scale_se = numeric_se(lambda th: unpack_theta(th, 3, 3, True).params[0])
    np.testing.assert_allclose(res.prior_bse.to_numpy(), prior_se, rtol=1e-6)
    np.testing.assert_allclose(res.scale_bse.to_numpy(), scale_se, rtol=1e-6)
    assert names[3] == "comp1:log(scale)" and names[-1] == "logit_prior:comp3"


def test_confidence_intervals_and_tests_follow_from_bse():
    data, formula = simulate_mixture("poisson", 400, 2, seed=8, separation=3.0)
    res = EMGLM.from_formula(formula, data, "poisson", 2).fit(random_state=0)
    ci = res.conf_int(0.1)
    np.testing.assert_allclose(
        ci["comp2"]["upper"] - res.params["comp2"],
        1.6448536269514722 * res.bse["comp2"],
        rtol=1e-12,
    )
    from scipy import stats

    np.testing.assert_allclose(res.pvalues, 2 * stats.norm.sf(np.abs(res.params / res.bse)))


def test_conf_int_columns_follow_the_component_order_beyond_nine():
    rng = np.random.default_rng(0)
    n = 1100
    z = np.repeat(np.arange(11), 100)
    y = rng.normal(loc=z * 8.0, scale=1.0)
    x = np.ones((n, 1))
    res = EMGLM(y, x, "gaussian", K=11).fit(start={"posterior": np.eye(11)[z]})
    ci = res.conf_int()
    assert list(ci.columns.get_level_values(0)[::2]) == res.component_names
    np.testing.assert_allclose(
        ci["comp10"]["lower"], res.params["comp10"] - 1.959963984540054 * res.bse["comp10"]
    )


@pytest.mark.parametrize("name", ["poisson", "binomial", "gaussian"])
def test_canonical_fast_paths_equal_the_generic_formulas(name):
    from emformula.families import as_family

    rng = np.random.default_rng(0)
    family = as_family(name)
    mu = rng.uniform(0.1, 0.9, 50)
    y = rng.uniform(0.0, 1.0, 50)
    trials = rng.integers(1, 5, 50).astype(float) if name == "binomial" else np.ones(50)
    fast = family.eta_derivatives(y, mu, trials, observed=True)
    generic = type(family)(family.sm_family)
    generic.canonical = False
    slow = generic.eta_derivatives(y, mu, trials, observed=True)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(
            np.broadcast_to(a, (50,)), np.broadcast_to(b, (50,)), rtol=1e-12, atol=1e-12
        )
