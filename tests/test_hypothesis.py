"""Wald tests and linear combinations (emformula.postestimation.hypothesis).

K = 1: t_test, wald_test and f_test equal statsmodels' GLM tests of the same
constraints (Poisson; Gaussian and gamma with the dispersion fixed at our ML
value, so that the covariances are identical). K = 2: the statistics equal
the quadratic forms written out from ``theta`` and ``cov_params()``, for
constraints across components, on shared effects, dispersions and
concomitant coefficients; the parameter names are read from
``res.param_names``, never spelt out for the mixing parameters.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from postestimation_fits import K1_FAMILIES, k1_fit, k2_gaussian_fixed, k2_poisson_concomitant
from scipy import stats

from emformula.postestimation.hypothesis import (
    f_test,
    lincom,
    linear_constraints,
    t_test,
    wald_test,
    wald_test_terms,
)

pytestmark = pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning")

RTOL = 1e-6

OURS = "comp1:x1 = 2 * comp1:x2 + 0.1, comp1:C(g)[T.b] - comp1:C(g)[T.c] = comp1:d"
THEIRS = "x1 = 2 * x2 + 0.1, C(g)[T.b] - C(g)[T.c] = d"


def _cov(res):
    return res.cov_params().loc[res.param_names, res.param_names].to_numpy()


@pytest.mark.parametrize("family", list(K1_FAMILIES))
def test_k1_t_test_equals_statsmodels(family):
    res, sm_res = k1_fit(family)
    ours, theirs = t_test(res, OURS), sm_res.t_test(THEIRS)
    for name in ("effect", "sd", "statistic", "pvalue"):
        np.testing.assert_allclose(
            np.ravel(getattr(ours, name)), np.ravel(getattr(theirs, name)), rtol=RTOL
        )
    np.testing.assert_allclose(ours.conf_int(0.1), theirs.conf_int(0.1), rtol=RTOL, atol=1e-8)
    assert ours.distribution == theirs.distribution == "norm"
    assert "comp1:x1 - 2 comp1:x2 = 0.1" in str(ours.summary())


@pytest.mark.parametrize("family", list(K1_FAMILIES))
def test_k1_wald_and_f_tests_equal_statsmodels(family):
    res, sm_res = k1_fit(family)
    ours, theirs = wald_test(res, OURS), sm_res.wald_test(THEIRS, scalar=True)
    np.testing.assert_allclose(ours.statistic, theirs.statistic, rtol=RTOL)
    np.testing.assert_allclose(ours.pvalue, theirs.pvalue, rtol=RTOL)
    assert ours.df_denom == theirs.df_denom == 2 and isinstance(ours.statistic, float)
    ours, theirs = f_test(res, OURS), sm_res.f_test(THEIRS)
    np.testing.assert_allclose(ours.fvalue, theirs.fvalue, rtol=RTOL)
    np.testing.assert_allclose(ours.pvalue, theirs.pvalue, rtol=RTOL)
    assert (ours.df_num, ours.df_denom) == (theirs.df_num, theirs.df_denom)


def test_k1_matrix_constraints_equal_the_string():
    res, sm_res = k1_fit("poisson")
    names = res.param_names
    R = np.zeros((2, len(names)))
    R[0, names.index("comp1:x1")] = 1.0
    R[1, names.index("comp1:x2")] = 1.0
    by_matrix = t_test(res, R, q=[0.3, -0.2])
    by_string = t_test(res, "comp1:x1 = 0.3, comp1:x2 = -0.2")
    np.testing.assert_allclose(by_matrix.statistic, by_string.statistic, rtol=1e-12)
    frame = pd.DataFrame(
        R[:, [names.index("comp1:x1"), names.index("comp1:x2")]], columns=["comp1:x1", "comp1:x2"]
    )
    by_frame = wald_test(res, (frame, [0.3, -0.2]))
    np.testing.assert_allclose(
        by_frame.statistic, wald_test(res, "comp1:x1 = 0.3, comp1:x2 = -0.2").statistic, rtol=1e-12
    )
    np.testing.assert_allclose(
        by_matrix.statistic,
        sm_res.t_test((R[:, : sm_res.params.size], [0.3, -0.2])).statistic,
        rtol=RTOL,
    )


def test_constraint_parsing():
    res, _ = k1_fit("poisson")
    # A chain a = b = c is two constraints; an expression alone is "= 0";
    # parentheses, division and unary minus are linear.
    lc = linear_constraints(res, "comp1:x1 = comp1:x2 = -(comp1:d - 1) / 2")
    names = res.param_names
    row = dict(zip(names, lc.matrix[1]))
    assert len(lc) == 2 and row["comp1:x2"] == 1.0 and row["comp1:d"] == 0.5
    np.testing.assert_allclose(lc.values, [0.0, 0.5])
    lc = linear_constraints(res, "2*comp1:C(g)[T.b]")
    assert lc.values.tolist() == [0.0] and lc.matrix[0, names.index("comp1:C(g)[T.b]")] == 2
    for bad, message in (
        ("comp1:x1 * comp1:x2", "linear"),
        ("comp1:zz = 0", "cannot read"),
        ("comp1:x1 / comp1:x2", "linear"),
        ("(comp1:x1", "parenthes"),
        ("3 = 1", "no parameter"),
        ("comp1:x1 =", "ends too early"),
    ):
        with pytest.raises(ValueError, match=message):
            linear_constraints(res, bad)
    with pytest.raises(ValueError, match="columns"):
        linear_constraints(res, np.ones((1, 3)))


def test_k2_tests_across_components_equal_the_quadratic_forms():
    res, _ = k2_gaussian_fixed()
    names, theta, cov = res.param_names, res.theta[res.param_names].to_numpy(), _cov(res)
    i, j = names.index("comp1:x"), names.index("comp2:x")
    diff = theta[i] - theta[j]
    se = np.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
    test = t_test(res, "comp1:x = comp2:x")
    np.testing.assert_allclose(
        [test.effect[0], test.sd[0], test.statistic[0]], [diff, se, diff / se], rtol=1e-12
    )
    np.testing.assert_allclose(test.pvalue, 2 * stats.norm.sf(abs(diff / se)), rtol=1e-10)
    # Equal dispersions (on the log scale of the covariance) and the shared
    # effect, jointly.
    s1, s2 = names.index("comp1:log(scale)"), names.index("comp2:log(scale)")
    fixed = [n for n in names if n.startswith("fixed:")][0]
    f = names.index(fixed)
    R = np.zeros((2, len(names)))
    R[0, s1], R[0, s2], R[1, f] = 1.0, -1.0, 1.0
    gap = R @ theta - [0.0, 0.7]
    expected = gap @ np.linalg.inv(R @ cov @ R.T) @ gap
    test = wald_test(res, f"comp1:log(scale) = comp2:log(scale), {fixed} = 0.7")
    np.testing.assert_allclose(test.statistic, expected, rtol=1e-10)
    np.testing.assert_allclose(test.pvalue, stats.chi2.sf(expected, 2), rtol=1e-10)
    assert test.df_denom == 2
    ftest = f_test(res, f"comp1:log(scale) = comp2:log(scale), {fixed} = 0.7")
    np.testing.assert_allclose(ftest.fvalue, expected / 2, rtol=1e-10)
    # The residual degrees of freedom (res.df_resid) count the regression
    # coefficients (4 + 1 shared) and the mixing parameter, not the dispersions.
    assert ftest.df_denom == res.df_resid == res.wnobs - 6


def test_k2_concomitant_coefficient_and_mixing_parameters():
    res, _ = k2_poisson_concomitant()
    names = res.param_names
    theta, cov = res.theta[names].to_numpy(), _cov(res)
    mixing = [n for n in names if not n.startswith("comp")]
    slope = [n for n in mixing if n.endswith(":w")][0]
    j = names.index(slope)
    test = wald_test(res, slope)
    np.testing.assert_allclose(test.statistic, theta[j] ** 2 / cov[j, j], rtol=1e-10)
    both = wald_test(res, ", ".join(mixing))
    positions = [names.index(n) for n in mixing]
    sub = theta[positions]
    np.testing.assert_allclose(
        both.statistic, sub @ np.linalg.solve(cov[np.ix_(positions, positions)], sub), rtol=1e-10
    )


def test_wald_test_terms_is_each_terms_equality_test():
    res, _ = k2_poisson_concomitant()
    table = wald_test_terms(res).table
    assert list(table.index) == ["Intercept", "x", "d"]
    assert list(table.columns) == ["statistic", "pvalue", "df_constraint"]
    for term in table.index:
        one = wald_test(res, f"comp1:{term} = comp2:{term}")
        np.testing.assert_allclose(table.loc[term, "statistic"], one.statistic, rtol=1e-12)
        np.testing.assert_allclose(table.loc[term, "pvalue"], one.pvalue, rtol=1e-10)
    assert list(wald_test_terms(res).summary_frame().columns) == ["chi2", "P>chi2", "df constraint"]


def test_wald_test_terms_groups_a_factors_columns():
    from emformula import emglm

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abc"), size=n)})
    z = rng.uniform(size=n) < 0.5
    df["y"] = rng.poisson(np.exp(np.where(z, 2.0, 0.2) + 0.3 * df.x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = emglm("y ~ x + C(g)", df, family="poisson", K=2, random_state=0)
    table = wald_test_terms(res).table
    assert table.loc["C(g)", "df_constraint"] == 2
    joint = wald_test(res, "comp1:C(g)[T.b] = comp2:C(g)[T.b], comp1:C(g)[T.c] = comp2:C(g)[T.c]")
    np.testing.assert_allclose(table.loc["C(g)", "statistic"], joint.statistic, rtol=1e-12)


def test_lincom_is_the_t_test_table():
    res, _ = k2_gaussian_fixed()
    table = lincom(res, "comp2:x - comp1:x, comp1:Intercept = 1", alpha=0.1)
    test = t_test(res, "comp2:x - comp1:x, comp1:Intercept = 1")
    np.testing.assert_allclose(table["coef"], test.effect - [0, 1], rtol=1e-12)
    np.testing.assert_allclose(table["std err"], test.sd, rtol=1e-12)
    np.testing.assert_allclose(table["P>|z|"], test.pvalue, rtol=1e-10)
    np.testing.assert_allclose(
        table[["[0.05", "0.95]"]], test.conf_int(0.1) - [[0, 0], [1, 1]], rtol=1e-12
    )
    assert list(table.index) == ["-comp1:x + comp2:x", "comp1:Intercept - 1"]
