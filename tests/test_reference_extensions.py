"""The two plain mixtures of the extension reference set (tests/reference):
binomial counts and a three-component Gaussian, against R flexmix 2.3-18."""

import numpy as np
from flexmix_reference import assert_matches_flexmix, load_data, reference

from emformula import emglm


def test_binomial_counts_match_flexmix():
    res = emglm("succ + fail ~ x", load_data("binomial_counts"), "binomial", K=2, random_state=1)
    assert_matches_flexmix(res, "binomial_counts")


def test_gaussian_k3_reaches_the_ml_point_above_flexmix():
    res = emglm("y ~ x", load_data("gaussian_k3"), "gaussian", K=3, random_state=1)
    table = assert_matches_flexmix(res, "gaussian_k3", gaussian=True)
    assert res.llf > float(reference("gaussian_k3").loglik.iloc[0]) + 1e-3
    # flexmix's sigma^2 is the ML value times n / (n - p): about sqrt(900/898).
    sigma = table[table.parameter == "sigma"]
    np.testing.assert_allclose(sigma.estimate / sigma.ours, np.sqrt(900 / 898), rtol=2e-3)
