"""emformula against R flexmix 2.3-18 on the R package's own data sets.

The reference numbers are in ../shared/reference/flexmix_sim_fits.csv
(best of 10 starts, tolerance 1e-12, standard errors from refit()).
"""

import numpy as np
import pytest
import statsmodels.api as sm
from conftest import flexmix_fit, match_components

from emformula import emglm

FORMULA = "y ~ 0 + V1 + V2 + V3 + V4 + V5"
TERMS = ["V1", "V2", "V3", "V4", "V5"]


@pytest.fixture(scope="module")
def sim2_k2(sim2_r):
    return emglm(FORMULA, sim2_r, family="poisson", K=2, random_state=1)


def test_sim2_k2_reaches_flexmix_likelihood(sim2_k2, flexmix_fits):
    est, se, prior, llf, row = flexmix_fit(flexmix_fits, "sim2", 2)
    # README: -8441.864, AIC 16905.73, BIC 16977.42 with 11 free parameters.
    assert sim2_k2.llf == pytest.approx(llf, abs=1e-3)
    assert sim2_k2.llf >= llf - 1e-6  # a tightly converged fit is never worse
    assert sim2_k2.df_model == row.df == 11
    assert sim2_k2.aic == pytest.approx(row.AIC, abs=2e-3)
    assert sim2_k2.bic == pytest.approx(row.BIC, abs=2e-3)


def test_sim2_k2_estimates_and_priors_match_flexmix(sim2_k2, flexmix_fits):
    est, se, prior, llf, _ = flexmix_fit(flexmix_fits, "sim2", 2)
    ref = est.loc[TERMS].to_numpy()
    order = match_components(sim2_k2.params.loc[TERMS], ref)
    np.testing.assert_allclose(sim2_k2.params.loc[TERMS].to_numpy()[:, order], ref, atol=1e-3)
    np.testing.assert_allclose(sim2_k2.prior.to_numpy()[order], prior, atol=1e-3)


def test_sim2_k2_louis_standard_errors_match_flexmix_refit(sim2_k2, flexmix_fits):
    est, se, prior, llf, _ = flexmix_fit(flexmix_fits, "sim2", 2)
    order = match_components(sim2_k2.params.loc[TERMS], est.loc[TERMS].to_numpy())
    ours = sim2_k2.bse.loc[TERMS].to_numpy()[:, order]
    np.testing.assert_allclose(ours, se.loc[TERMS].to_numpy(), rtol=0.01)


def test_sim2_k2_components_are_ordered_by_prior(sim2_k2):
    assert sim2_k2.prior.is_monotonic_decreasing
    assert sim2_k2.prior.sum() == pytest.approx(1.0, abs=1e-12)


def test_sim1_k1_matches_flexmix_and_statsmodels(sim1_r, flexmix_fits):
    est, se, prior, llf, row = flexmix_fit(flexmix_fits, "sim1", 1)
    res = emglm(FORMULA, sim1_r, family="poisson", K=1, random_state=0)
    glm = sm.GLM.from_formula(FORMULA, sim1_r, family=sm.families.Poisson()).fit(tol=1e-12)
    np.testing.assert_allclose(res.params["comp1"].loc[TERMS], est.loc[TERMS, 1], atol=1e-6)
    np.testing.assert_allclose(res.params["comp1"].loc[TERMS], glm.params.loc[TERMS], rtol=1e-8)
    assert res.llf == pytest.approx(llf, rel=1e-9)
    assert res.llf == pytest.approx(glm.llf, rel=1e-10)
    np.testing.assert_allclose(res.bse["comp1"].loc[TERMS], glm.bse.loc[TERMS], rtol=1e-6)
    np.testing.assert_allclose(res.bse["comp1"].loc[TERMS], se.loc[TERMS, 1], rtol=1e-3)
    assert res.aic == pytest.approx(row.AIC, rel=1e-9)


@pytest.mark.parametrize("dataset, K", [("sim2", 3), ("sim1", 2)])
def test_larger_k_reaches_at_least_flexmix_likelihood(dataset, K, flexmix_fits, request):
    data = request.getfixturevalue(f"{dataset}_r")
    est, se, prior, llf, row = flexmix_fit(flexmix_fits, dataset, K)
    res = emglm(FORMULA, data, family="poisson", K=K, random_state=3, n_init=10)
    assert res.llf >= llf - 1e-3
    assert res.df_model == row.df
