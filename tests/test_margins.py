"""Marginal effects (emformula.postestimation.margins).

K = 1: every ``at`` and ``method`` (and ``dummy=True`` where statsmodels
allows it) equals statsmodels' ``GLMResults.get_margeff`` on the same design
(Poisson; Gaussian and gamma with the dispersion fixed at our ML value).
K = 2: the effects equal a finite difference of the mixture and component
means in the covariate, computed here from theta, and their standard errors
a finite-difference delta method of that.
"""

import numpy as np
import pytest
from postestimation_fits import (
    K1_FAMILIES,
    component_means,
    fd_delta_se,
    k1_fit,
    k2_gaussian_fixed,
    k2_poisson_concomitant,
    mixture_mean,
    theta_of,
)

from emformula.postestimation.margins import get_margeff

pytestmark = pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning")

CASES = [
    (at, method, dummy)
    for at in ("overall", "mean", "median", "zero")
    for method in ("dydx", "eyex", "dyex", "eydx")
    for dummy in (False, True)
    # statsmodels refuses a discrete change with these.
    if not (dummy and (method in ("eyex", "dyex") or at in ("median", "zero")))
]


@pytest.mark.parametrize("family", list(K1_FAMILIES))
@pytest.mark.parametrize("at, method, dummy", CASES)
def test_k1_equals_statsmodels_get_margeff(family, at, method, dummy):
    res, sm_res = k1_fit(family)
    if not hasattr(sm_res, "get_margeff"):
        pytest.skip("this statsmodels' GLMResults has no get_margeff (the reference)")
    ours = get_margeff(res, at=at, method=method, dummy=dummy).summary_frame(alpha=0.1)
    theirs = sm_res.get_margeff(at=at, method=method, dummy=dummy).summary_frame(alpha=0.1)
    for quantity in ("mixture", "comp1"):
        frame = ours.loc[quantity]
        assert list(frame.columns) == list(theirs.columns)
        assert list(frame.index) == list(theirs.index)
        np.testing.assert_allclose(frame.to_numpy(), theirs.to_numpy(), rtol=1e-6, atol=1e-8)


def _derivative_in_column(res, theta, j, quantity, h=1e-5):
    """d(mean)/dx_j averaged over the rows, by central differences in the
    column of the design (the fits here have no shared column in x)."""
    X = res.model.data.exog
    up, down = X.copy(), X.copy()
    up[:, j] += h
    down[:, j] -= h
    if quantity == "mixture":
        change = mixture_mean(res, theta, up) - mixture_mean(res, theta, down)
    else:
        change = (
            component_means(res, theta, up)[:, quantity]
            - component_means(res, theta, down)[:, quantity]
        )
    return np.mean(change / (2 * h))


@pytest.mark.parametrize("fit", [k2_poisson_concomitant, k2_gaussian_fixed])
def test_k2_effects_and_standard_errors_by_finite_differences(fit):
    res, _ = fit()
    margins = get_margeff(res)
    names = list(res.model.exog_names)
    theta = theta_of(res)
    for quantity, label in (("mixture", "mixture"), (0, "comp1"), (1, "comp2")):
        for covariate in ("x",):
            j = names.index(covariate)
            expected = _derivative_in_column(res, theta, j, quantity)
            np.testing.assert_allclose(margins.margeff.loc[label, covariate], expected, rtol=1e-7)
            se = fd_delta_se(
                res,
                lambda t, j=j, q=quantity: [_derivative_in_column(res, t, j, q, h=1e-4)],
                step=1e-4,
            )
            np.testing.assert_allclose(margins.margeff_se.loc[label, covariate], se[0], rtol=1e-4)


def test_k2_shared_column_and_discrete_change():
    res, df = k2_gaussian_fixed()
    margins = get_margeff(res)
    # The shared effect's derivative is its coefficient in every component
    # (identity link), and so is the mixture's.
    shared = res.fixed_params.iloc[0]
    np.testing.assert_allclose(margins.margeff["s"], shared, rtol=1e-10)
    res, df = k2_poisson_concomitant()
    discrete = get_margeff(res, dummy=True).margeff["d"]
    X = res.model.data.exog.copy()
    j = list(res.model.exog_names).index("d")
    X[:, j] = 1.0
    high = mixture_mean(res, theta_of(res), X)
    X[:, j] = 0.0
    low = mixture_mean(res, theta_of(res), X)
    np.testing.assert_allclose(discrete["mixture"], np.mean(high - low), rtol=1e-10)


def test_options_are_checked():
    res, _ = k2_poisson_concomitant()
    with pytest.raises(ValueError, match="at must be"):
        get_margeff(res, at="all")
    with pytest.raises(ValueError, match="method must be"):
        get_margeff(res, method="dx")
    with pytest.raises(ValueError, match="not defined"):
        get_margeff(res, method="eyex", dummy=True)
