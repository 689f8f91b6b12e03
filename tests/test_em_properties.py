"""Invariants of EM on random small data of every family (hypothesis)."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emformula import EMGLM, EstimationWarning
from emformula import _em
from simulate import FAMILIES, simulate_mixture

KINDS = sorted(FAMILIES)


def _model(kind, n, K, seed, weighted, offset):
    data, formula = simulate_mixture(kind, n, K, seed)
    rng = np.random.default_rng(seed + 1)
    kwargs = {}
    if weighted:
        kwargs["weights"] = rng.uniform(0.2, 3.0, size=n)
    if offset:
        kwargs["offset"] = rng.normal(scale=0.1, size=n)
    return EMGLM.from_formula(formula, data, FAMILIES[kind](), K, **kwargs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), n=st.integers(30, 120), K=st.integers(1, 3),
       seed=st.integers(0, 2**31), weighted=st.booleans(), offset=st.booleans(),
       accelerate=st.booleans())
def test_log_likelihood_never_decreases(kind, n, K, seed, weighted, offset, accelerate):
    model = _model(kind, n, K, seed, weighted, offset)
    est = _em.initial_estimates(model.data, K, np.random.default_rng(seed), 1e-8)
    run = _em.run_em(model.data, est, max_iter=200, tol=1e-12, scale_floor=1e-8,
                     accelerate=accelerate, newton=accelerate)
    history = run.history
    assert np.all(np.isfinite(history))
    drops = np.diff(history)
    assert np.all(drops >= -1e-10 * np.abs(history[1:])), (kind, drops.min())
    # The posterior rows are probabilities.
    np.testing.assert_allclose(run.posterior.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(run.posterior >= 0)
    # The reported llf is the llf of the reported estimates.
    assert run.llf == pytest.approx(_em.e_step(model.data, run.estimates).llf, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_gives_finite_estimates_and_em_at_least_as_good_as_plain(kind):
    model = _model(kind, 150, 2, 11, True, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        res = model.fit(random_state=0, n_init=3)
    assert np.all(np.isfinite(res.params.to_numpy()))
    assert np.isfinite(res.llf)
    est = _em.initial_estimates(model.data, 2, np.random.default_rng(0), 1e-8)
    plain = _em.run_em(model.data, est, max_iter=3000, tol=1e-12, scale_floor=1e-8,
                       accelerate=False, newton=False)
    assert res.llf >= plain.llf - 1e-6 * abs(plain.llf)
