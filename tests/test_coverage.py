"""Coverage of Louis-based Wald intervals in a simulation with known truth.

The Poisson study (400 fits, seconds) runs by default; the Gaussian K=3
study is slow: run it with ``python -m pytest -m slow``.
"""

import numpy as np
import pytest
from scipy import stats

from emformula import EMGLM

TRUE_COEF = np.array([[0.5, 2.0], [1.0, -0.5], [-0.5, 0.3]])  # (p, K)
TRUE_PRIOR = np.array([0.65, 0.35])


def _replicate(seed, n=600):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(-1, 1, size=n)])
    z = rng.choice(2, size=n, p=TRUE_PRIOR)
    y = rng.poisson(np.exp(np.einsum("ij,ji->i", x, TRUE_COEF[:, z])))
    res = EMGLM(y, x, "poisson", K=2).fit(random_state=seed, n_init=3)
    # Components come out by decreasing prior: component 1 is the 0.65 one.
    return res


def test_wald_intervals_cover_the_truth_at_the_nominal_rate():
    replicates = 400
    hits_coef, hits_prior = [], []
    q = stats.norm.ppf(0.975)
    for seed in range(replicates):
        res = _replicate(seed)
        est, se = res.params.to_numpy(), res.bse.to_numpy()
        hits_coef.append(np.abs(est - TRUE_COEF) <= q * se)
        hits_prior.append(abs(res.prior.iloc[0] - TRUE_PRIOR[0]) <= q * res.prior_bse.iloc[0])
    coverage = np.mean(hits_coef)
    per_coef = np.mean(hits_coef, axis=0)
    # 2400 intervals: the pooled coverage has a Monte Carlo SE of about 0.45%.
    assert 0.93 <= coverage <= 0.97, per_coef
    assert np.all((per_coef >= 0.91) & (per_coef <= 0.985)), per_coef
    assert 0.91 <= np.mean(hits_prior) <= 0.985


GAUSS_COEF = np.array([[-3.0, 0.0, 3.0], [1.0, -1.0, 0.5]])
GAUSS_PRIOR = np.array([0.5, 0.3, 0.2])
GAUSS_SCALE = np.array([1.0, 0.5, 0.8])


@pytest.mark.slow
def test_gaussian_k3_intervals_cover_coefficients_and_dispersions():
    q = stats.norm.ppf(0.975)
    hits = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        n = 900
        x = np.column_stack([np.ones(n), rng.normal(size=n)])
        z = rng.choice(3, size=n, p=GAUSS_PRIOR)
        y = np.einsum("ij,ji->i", x, GAUSS_COEF[:, z]) + rng.normal(size=n) * np.sqrt(
            GAUSS_SCALE[z]
        )
        res = EMGLM(y, x, "gaussian", K=3).fit(random_state=seed, n_init=5)
        est, se = res.params.to_numpy(), res.bse.to_numpy()
        hit = list((np.abs(est - GAUSS_COEF) <= q * se).ravel())
        hit += list(np.abs(res.scale.to_numpy() - GAUSS_SCALE) <= q * res.scale_bse.to_numpy())
        hits.append(hit)
    coverage = np.mean(hits)
    assert 0.93 <= coverage <= 0.97, np.mean(hits, axis=0)
