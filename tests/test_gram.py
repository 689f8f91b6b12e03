"""The weighted Gram helper equals the direct sandwich product, both ways."""

import numpy as np
import pytest

from emformula.engine.gram import WeightedGram


@pytest.mark.parametrize("p", [1, 3, 7, 9])
def test_weighted_gram_equals_sandwich(p):
    rng = np.random.default_rng(p)
    x = rng.normal(size=(500, p))
    w = rng.gamma(2.0, size=500)
    gram = WeightedGram(x)
    # p <= 5 stores the column products; p = 7 and 9 take the fallback path.
    assert (gram.products is not None) == (p <= 5)
    expected = x.T @ (w[:, None] * x)
    np.testing.assert_allclose(gram(w), expected, rtol=1e-12, atol=1e-12)
    assert np.array_equal(gram(w), gram(w).T)  # filled from one triangle either way


def test_weighted_gram_many_weights_and_fallback_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    weights = rng.normal(size=(300, 3))  # signed weights (Louis blocks) too
    stored, direct = WeightedGram(x), WeightedGram(x, max_expansion=0.0)
    assert direct.products is None
    many = stored(weights)
    assert many.shape == (3, 4, 4)
    for j in range(3):
        expected = x.T @ (weights[:, j : j + 1] * x)
        np.testing.assert_allclose(many[j], expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(direct(weights[:, j]), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(direct(weights), many, rtol=1e-12, atol=1e-12)


def test_weighted_gram_propagates_non_finite_weights():
    x = np.ones((3, 2))
    out = WeightedGram(x)(np.array([1.0, np.nan, 1.0]))
    assert np.isnan(out).all()
