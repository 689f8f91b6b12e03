"""Standard errors do not depend on the units of the covariates (issue 14).

Rescaling a column of the design by ``c`` divides its coefficients and their
standard errors by exactly ``c`` and changes nothing else. The observed
information of such a design has rows and columns whose scales differ by
``c``; every rank decision and its inverse are taken on its equilibrated
(correlation) form, so that an eigenvalue cut-off meant for singular
information does not fire on a regular one (before the fix: income in dollars
gave a NaN intercept SE and a slope SE 4x too small).

* K = 1 against statsmodels' observed-information standard errors (the
  observed Hessian at the ML dispersion, as in test_k1_matches_statsmodels),
  with a column in units from 1e-12 to 1e9, the issue's income example and
  pairs of columns with condition number 1e6;
* a property test: random rescaling of a column for every family and
  K = 1..3, the rescaled fit started from the original estimates in the new
  units so that both land on the same maximum;
* a singular information is still detected and named at any scale, and the
  engine's own solves (normal equations, the saddle-free Newton direction)
  are invariant too.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from emformula import EMGLM, emglm
from emformula.covariance.estimators import invert_information
from emformula.engine.em import _ascent_direction, _solve_normal_equations
from emformula.engine.linalg import equilibration
from emformula.warnings import ConvergenceWarning, EstimationWarning

fams = sm.families
links = sm.families.links

SE_RTOL = 1e-6
NB_ALPHA = 0.5
TRIALS = 20

# name: (emformula family, statsmodels family factory)
FAMILIES = {
    "poisson": ("poisson", fams.Poisson),
    "binomial": ("binomial", fams.Binomial),
    "gaussian": ("gaussian", fams.Gaussian),
    "gamma": (fams.Gamma(links.Log()), lambda: fams.Gamma(links.Log())),
    "inverse_gaussian": (
        fams.InverseGaussian(links.Log()),
        lambda: fams.InverseGaussian(links.Log()),
    ),
    "negative_binomial": (
        fams.NegativeBinomial(alpha=NB_ALPHA),
        lambda: fams.NegativeBinomial(alpha=NB_ALPHA),
    ),
}


# ----------------------------------------------------------------- data
def simulate(name, coef, prior, rng, n, x):
    """Responses of a mixture of GLMs: ``coef`` (p x K), design ``x``.

    Binomial responses are proportions of ``TRIALS`` trials (a mixture of
    0/1 responses is not identified beyond K = 2).
    """
    K = coef.shape[1]
    z = rng.choice(K, size=n, p=prior)
    eta = np.einsum("ij,ji->i", x, coef[:, z])
    if name == "binomial":
        return rng.binomial(TRIALS, 1.0 / (1.0 + np.exp(-eta))) / TRIALS
    if name == "gaussian":
        return eta + rng.normal(scale=0.3, size=n)
    mu = np.exp(eta)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "gamma":
        return rng.gamma(20.0, mu / 20.0)
    if name == "inverse_gaussian":
        return rng.wald(mu, 20.0 * mu)  # coefficient of variation sqrt(mu / lambda)
    return rng.negative_binomial(1.0 / NB_ALPHA, 1.0 / (1.0 + NB_ALPHA * mu)).astype(float)


# Well separated components: intercepts apart by several standard deviations.
TRUE_INTERCEPTS = {
    "poisson": [0.3, 2.0, 3.5],
    "binomial": [-2.5, 0.0, 2.5],
    "gaussian": [-3.0, 0.0, 3.0],
    "gamma": [0.0, 1.5, 3.0],
    "inverse_gaussian": [0.0, 1.5, 3.0],
    "negative_binomial": [0.5, 2.5, 4.5],
}
TRUE_SLOPES = [0.6, -0.5, 0.3]
TRUE_SECOND = [-0.3, 0.2, 0.4]


def model(name, y, x, K):
    kw = {"trials": np.full(len(y), float(TRIALS))} if name == "binomial" else {}
    return EMGLM(y, x, family=FAMILIES[name][0], K=K, **kw)


@functools.cache
def base_fit(name, K):
    """A fit of a simulated mixture (intercept and two covariates), started
    at the true values, and its data."""
    rng = np.random.default_rng(100 + 10 * K + list(FAMILIES).index(name))
    n = 400 * K
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(-1.0, 1.0, size=n)])
    coef = np.array(
        [TRUE_INTERCEPTS[name][:K] if K > 1 else [1.0], TRUE_SLOPES[:K], TRUE_SECOND[:K]]
    )
    prior = np.full(K, 1.0 / K)
    y = simulate(name, coef, prior, rng, n, x)
    start = {"params": coef, "prior": prior}
    if name in ("gaussian", "gamma", "inverse_gaussian"):
        start["scale"] = np.full(K, 0.1)
    res = model(name, y, x, K).fit(start=start)
    return y, x, res


def rescaled_fit(name, K, scales):
    """The base fit's data with column j multiplied by ``scales[j]``, started
    from the base estimates in the new units."""
    y, x, base = base_fit(name, K)
    scales = np.asarray(scales, dtype=float)
    start = {"params": base.params.to_numpy() / scales[:, None], "prior": base.prior.to_numpy()}
    if base.model.family.estimates_scale:
        start["scale"] = base.scale.to_numpy()
    return model(name, y, x * scales, K).fit(start=start)


def _assert_no_estimation_warning(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", EstimationWarning)
        return fn()


# ------------------------------------------------------ K = 1 vs statsmodels
def statsmodels_observed(name, y, x, scale):
    """statsmodels' ML fit and the SEs and covariance from its observed
    Hessian at the given dispersion (observed vs observed for every link)."""
    _, sm_family = FAMILIES[name]
    endog = np.column_stack([y * TRIALS, (1 - y) * TRIALS]) if name == "binomial" else y
    mod = sm.GLM(endog, x, family=sm_family())
    ref = mod.fit(tol=1e-14, maxiter=1000)
    cov = np.linalg.inv(-mod.hessian(ref.params, observed=True, scale=scale))
    return ref.params, cov


def k1_data(name, x_column, rng):
    """A GLM response on the standardised column, and the design in the
    column's own units."""
    n = len(x_column)
    std = (x_column - x_column.mean()) / x_column.std()
    y = simulate(
        name, np.array([[1.0], [0.5]]), np.ones(1), rng, n, np.column_stack([np.ones(n), std])
    )
    return y, np.column_stack([np.ones(n), x_column])


def check_k1(name, y, x):
    res = _assert_no_estimation_warning(lambda: model(name, y, x, 1).fit())
    assert res.converged
    scale = float(res.scale.iloc[0])
    params, cov = statsmodels_observed(name, y, x, scale)
    ours = res.bse["comp1"].to_numpy()
    np.testing.assert_allclose(
        res.params["comp1"].to_numpy(), params, rtol=1e-7, atol=1e-9 * np.abs(params).max()
    )
    np.testing.assert_allclose(ours, np.sqrt(np.diag(cov)), rtol=SE_RTOL)
    # The whole coefficient block of the covariance, relative to the SEs.
    names = [f"comp1:{name_}" for name_ in res.model.exog_names]
    block = res.cov_params().loc[names, names].to_numpy()
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(
        block / np.outer(se, se), cov / np.outer(se, se), rtol=SE_RTOL, atol=SE_RTOL
    )
    return res


K1_FAMILIES = ["poisson", "binomial", "gaussian", "gamma"]


@pytest.mark.parametrize("name", K1_FAMILIES)
@pytest.mark.parametrize("c", [1e-12, 1.0, 5e4, 1e9])
def test_k1_matches_statsmodels_with_scaled_column(name, c):
    rng = np.random.default_rng(7)
    x = rng.normal(size=500)
    y, design = k1_data(name, x, rng)
    res = check_k1(name, y, design * np.array([1.0, c]))
    if c != 1.0:
        # ... and is the unscaled fit's, divided by c.
        unscaled = model(name, y, design, 1).fit()
        np.testing.assert_allclose(
            res.bse["comp1"].to_numpy() * [1.0, c], unscaled.bse["comp1"].to_numpy(), rtol=SE_RTOL
        )


@pytest.mark.parametrize("name", K1_FAMILIES)
def test_k1_income_in_dollars(name):
    """The issue's example: income in dollars (mean 5e4, sd 1.5e4) next to
    an intercept; condition number 3e5 of the design."""
    rng = np.random.default_rng(14)
    income = rng.normal(5e4, 1.5e4, size=500)
    y, design = k1_data(name, income, rng)
    res = check_k1(name, y, design)
    in_10k = model(name, y, design / np.array([1.0, 1e4]), 1).fit()
    np.testing.assert_allclose(
        res.bse["comp1"].to_numpy() * [1.0, 1e4], in_10k.bse["comp1"].to_numpy(), rtol=SE_RTOL
    )


@pytest.mark.parametrize("name", K1_FAMILIES)
@pytest.mark.parametrize("pair", ["scales", "mean"])
def test_k1_condition_number_1e6_pair(name, pair):
    """Two columns whose design has condition number ~1e6: one correlated
    with the other in units 1e6 times larger, or a column of mean 1e3 and
    unit spread beside the intercept."""
    rng = np.random.default_rng(21)
    n = 500
    x1 = rng.normal(size=n)
    if pair == "scales":
        x = np.column_stack([np.ones(n), x1, 1e6 * (0.6 * x1 + 0.8 * rng.normal(size=n))])
        std = np.column_stack([np.ones(n), x1, x[:, 2] / 1e6])
        coef = np.array([[0.8], [0.4], [-0.3]])
    else:
        x = np.column_stack([np.ones(n), 1e3 + x1])
        std = np.column_stack([np.ones(n), x1])
        coef = np.array([[1.0], [0.5]])
    assert 5e5 < np.linalg.cond(x) < 5e6
    y = simulate(name, coef, np.ones(1), rng, n, std)
    check_k1(name, y, x)


# -------------------------------------------- random rescaling, K = 1..3
@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("name", list(FAMILIES))
@settings(max_examples=4, deadline=None)
@given(u=st.tuples(st.floats(-12.0, 12.0), st.floats(-12.0, 12.0)))
def test_bse_invariant_to_column_rescaling(name, K, u):
    _, _, base = base_fit(name, K)
    se = base.bse.to_numpy()
    assert np.all(np.isfinite(se)), se
    scales = np.array([1.0, 10.0 ** u[0], 10.0 ** u[1]])
    res = _assert_no_estimation_warning(lambda: rescaled_fit(name, K, scales))
    np.testing.assert_allclose(res.llf, base.llf, rtol=1e-10)
    np.testing.assert_allclose(
        res.params.to_numpy() * scales[:, None], base.params.to_numpy(), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(res.bse.to_numpy() * scales[:, None], se, rtol=SE_RTOL)
    if K > 1:
        assert np.all(np.isfinite(base.prior_bse))
        np.testing.assert_allclose(
            res.prior_bse.to_numpy(), base.prior_bse.to_numpy(), rtol=SE_RTOL
        )
    if base.model.family.estimates_scale:
        np.testing.assert_allclose(
            res.scale_bse.to_numpy(), base.scale_bse.to_numpy(), rtol=SE_RTOL
        )


def test_income_mixture_k2():
    """The issue's K = 2 example: slope and prior SEs in dollars are those in
    ten-thousands of dollars (before: slopes 3-4x too small, priors NaN)."""
    rng = np.random.default_rng(5)
    n = 1000
    income = rng.normal(5e4, 1.5e4, size=n)
    z = rng.integers(0, 2, size=n)
    eta = np.where(z == 0, 0.2 + 1.5e-5 * income, 2.5 - 1.0e-5 * income)
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "inc": income})
    start = {"params": np.array([[0.2, 2.5], [1.5e-5, -1.0e-5]]), "prior": [0.5, 0.5]}
    dollars = _assert_no_estimation_warning(
        lambda: emglm("y ~ inc", data, family="poisson", K=2, start=start)
    )
    start_10k = dict(start, params=start["params"] * np.array([[1.0], [1e4]]))
    tens = emglm("y ~ inc", data.assign(inc=data.inc / 1e4), family="poisson", K=2, start=start_10k)
    assert np.all(np.isfinite(dollars.prior_bse))
    np.testing.assert_allclose(
        dollars.bse.to_numpy() * [[1.0], [1e4]], tens.bse.to_numpy(), rtol=SE_RTOL
    )
    np.testing.assert_allclose(dollars.prior_bse, tens.prior_bse, rtol=SE_RTOL)


# ------------------------------------------ singular information, any scale
def _duplicated_fit(c):
    """The K = 2 Poisson fit with its second component split into two equal
    halves, refitted with the first covariate in units ``1 / c``."""
    y, x, base = base_fit("poisson", 2)
    p = base.params.to_numpy() / np.array([[1.0], [c], [1.0]])
    start = {
        "params": np.column_stack([p[:, 0], p[:, 1], p[:, 1]]),
        "prior": [base.prior.iloc[0], base.prior.iloc[1] / 2, base.prior.iloc[1] / 2],
    }
    with warnings.catch_warnings():
        # The duplicated point is a saddle: Newton cannot confirm a maximum.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EMGLM(y, x * np.array([1.0, c, 1.0]), family="poisson", K=3).fit(start=start)


def _unidentified(c):
    # The warning comes with the fit (not at the first bse).
    singular = "singular: .*logit_prior:comp2, logit_prior:comp3"
    with pytest.warns(EstimationWarning, match=singular) as rec:
        res = _duplicated_fit(c)
    cov = res.cov_params()
    names = list(cov.index[np.isnan(np.diag(cov.to_numpy()))])
    singular = [str(w.message) for w in rec if "singular" in str(w.message)]
    assert len(singular) == 1 and ", ".join(names) in singular[0]
    return names, res.bse.to_numpy()


@pytest.mark.parametrize("c", [1e-9, 1e9])
def test_duplicated_component_still_named_at_any_scale(c):
    """A component duplicated into two leaves the split of its prior
    unidentified (and, at this saddle point, the duplicated components'
    coefficients): the same parameters are named whatever the units of the
    covariate (before, 1e-9 also dropped comp1:x1, 1e9 comp1:x0 and x2)."""
    names, se = _unidentified(1.0)
    assert "logit_prior:comp2" in names and "comp1:x1" not in names
    names_c, se_c = _unidentified(c)
    assert names_c == names
    np.testing.assert_allclose(se_c * np.array([[1.0], [c], [1.0]]), se, rtol=1e-6)


def test_invert_information_equilibrated():
    """A singular matrix and a regular one, each congruently rescaled by
    factors from 1e-12 to 1e12: the same parameters are dropped and the
    covariance scales exactly."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 4))
    regular = a.T @ a
    singular = np.zeros((5, 5))
    b = np.column_stack([a, a[:, 0] + a[:, 1]])
    singular[:] = b.T @ b
    for info in (regular, singular):
        cov0, drop0, neg0 = invert_information(info)
        for _ in range(5):
            d = 10.0 ** rng.uniform(-12.0, 12.0, size=info.shape[0])
            cov, drop, neg = invert_information(d[:, None] * info * d[None, :])
            np.testing.assert_array_equal(drop, drop0)
            assert neg == neg0
            np.testing.assert_allclose(cov * np.outer(d, d), cov0, rtol=1e-10)
    # The three columns of the null direction x0 + x1 - x4 load on it alike.
    assert invert_information(singular)[1].tolist() == [0, 1, 4]
    assert invert_information(regular)[1].size == 0


def test_equilibration_zero_diagonal():
    """A parameter with no curvature of its own in an indefinite matrix is
    scaled by its row; an all-zero row keeps 1."""
    m = np.array([[0.0, 2e6, 0.0], [2e6, 1e12, 0.0], [0.0, 0.0, 0.0]])
    s = equilibration(m)
    np.testing.assert_allclose(s, [0.5e0, 1e-6, 1.0])
    scaled = s[:, None] * m * s[None, :]
    np.testing.assert_allclose(np.abs(scaled).max(axis=1), [1.0, 1.0, 0.0])


def test_engine_solves_are_scale_invariant():
    """The M-step's normal equations (regular and singular, the latter by
    least squares) and the saddle-free Newton direction of an indefinite
    information transform with the units."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(30, 4))
    gram = a.T @ a
    rhs = rng.normal(size=4)
    # A column without weight: exactly singular, so solve() fails and
    # least squares takes over.
    singular = gram.copy()
    singular[3, :] = singular[:, 3] = 0.0
    indefinite = gram - 40.0 * np.outer(a[0], a[0]) / (a[0] @ a[0])
    assert np.linalg.eigvalsh(indefinite).min() < 0
    ref = {
        key: fn()
        for key, fn in {
            "solve": lambda: _solve_normal_equations(gram, rhs),
            "lstsq": lambda: _solve_normal_equations(singular, singular @ rhs),
            "ascent": lambda: _ascent_direction(indefinite, rhs),
        }.items()
    }
    assert ref["solve"][1] and not ref["lstsq"][1] and not ref["ascent"][1]
    for _ in range(5):
        d = 10.0 ** rng.uniform(-12.0, 12.0, size=4)
        got = {
            "solve": _solve_normal_equations(d[:, None] * gram * d, d * rhs),
            "lstsq": _solve_normal_equations(d[:, None] * singular * d, d * (singular @ rhs)),
            "ascent": _ascent_direction(d[:, None] * indefinite * d, d * rhs),
        }
        for key in ref:
            assert got[key][1] == ref[key][1], key
            np.testing.assert_allclose(got[key][0] * d, ref[key][0], rtol=1e-8, err_msg=key)


def test_equilibration_stays_finite_beside_a_subnormal_entry():
    # A zero diagonal whose row holds only a subnormal entry (seen in a
    # property test of grouped concomitant fits): 1 / 5e-324 overflows.
    info = np.array([[1.0, 5e-324], [5e-324, 0.0]])
    with np.errstate(all="raise"):
        s = equilibration(info)
    assert np.all(np.isfinite(s)) and s.tolist() == [1.0, 1.0]
