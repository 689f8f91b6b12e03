"""Inputs at the edge of double precision are refused by name, never fitted wrong."""

import numpy as np
import pytest
import statsmodels.api as sm

from emformula import EMGLM


def _poisson(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, rng.poisson(np.exp(0.3 + 0.5 * x))


@pytest.mark.parametrize("c", [1e101, 1e300, 1e-101, 1e-300])
def test_design_columns_beyond_double_precision_are_refused(c):
    x, y = _poisson()
    with pytest.raises(ValueError, match=r"x1 \(largest \|value\|.*rescale"):
        EMGLM(y, np.column_stack([np.ones(x.size), x * c]), family="poisson", K=1)


@pytest.mark.parametrize("c", [1e-90, 1e90])
def test_design_columns_within_range_match_statsmodels(c):
    x, y = _poisson()
    X = np.column_stack([np.ones(x.size), x * c])
    res = EMGLM(y, X, family="poisson", K=1).fit()
    ref = sm.GLM(y, np.column_stack([np.ones(x.size), x]), family=sm.families.Poisson()).fit()
    # SE(b for c x) = SE(b for x) / c.
    assert res.bse.iloc[1, 0] * c == pytest.approx(ref.bse[1], rel=1e-6)
    assert res.params.iloc[1, 0] * c == pytest.approx(ref.params[1], rel=1e-8)


def test_huge_gaussian_response_is_refused():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = (1 + x + rng.normal(size=200)) * 1e300
    with pytest.raises(ValueError, match="response 'y' reaches .*rescale"):
        EMGLM(y, np.column_stack([np.ones(200), x]), family="gaussian", K=1)


@pytest.mark.parametrize("bad", ["a", -1, 1.5, True, [1, 2]])
def test_random_state_is_checked(bad):
    x, y = _poisson()
    model = EMGLM(y, np.column_stack([np.ones(x.size), x]), family="poisson", K=2)
    with pytest.raises(TypeError, match="random_state must be"):
        model.fit(random_state=bad)
