"""Invariants of EM on random small data of every family (hypothesis)."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from simulate import FAMILIES, simulate_mixture

from emformula import EMGLM, EstimationWarning
from emformula.engine import em as _em

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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(30, 120),
    K=st.integers(1, 3),
    seed=st.integers(0, 2**31),
    weighted=st.booleans(),
    offset=st.booleans(),
    accelerate=st.booleans(),
)
def test_log_likelihood_never_decreases(kind, n, K, seed, weighted, offset, accelerate):
    model = _model(kind, n, K, seed, weighted, offset)
    est = _em.initial_estimates(model.data, K, np.random.default_rng(seed), 1e-8)
    run = _em.run_em(
        model.data,
        est,
        max_iter=200,
        tol=1e-12,
        scale_floor=1e-8,
        accelerate=accelerate,
        newton=accelerate,
    )
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
    plain = _em.run_em(
        model.data, est, max_iter=3000, tol=1e-12, scale_floor=1e-8, accelerate=False, newton=False
    )
    assert res.llf >= plain.llf - 1e-6 * abs(plain.llf)


def _start_from_fit(model, seed):
    res = model.fit(random_state=seed, n_init=2)
    return {
        "params": res.params.to_numpy() * 0.97,
        "prior": res.prior.to_numpy(),
        "scale": res.scale.to_numpy(),
    }, res


SEPARATED = ["poisson", "binomial_counts", "gaussian", "gamma_log", "negative_binomial"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(SEPARATED),
    n=st.integers(80, 160),
    K=st.integers(1, 2),
    seed=st.integers(0, 2**31),
)
def test_permuting_rows_permutes_posteriors_and_keeps_estimates(kind, n, K, seed):
    data, formula = simulate_mixture(kind, n, K, seed, separation=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        model = EMGLM.from_formula(formula, data, FAMILIES[kind](), K)
        start, res = _start_from_fit(model, seed)
        fitted = model.fit(start=start)
        order = np.random.default_rng(seed).permutation(n)
        shuffled = data.iloc[order]
        refit = EMGLM.from_formula(formula, shuffled, FAMILIES[kind](), K).fit(start=start)
    coef = fitted.params.to_numpy()
    # Two fitted components that coincide leave the mixing proportion (and
    # so the posterior) unidentified: a flat ridge of the likelihood, on which
    # any two fits may stop at different points with the same llf (seen:
    # gamma_log, n=93, K=2, seed=236: priors 0.963 and 0.986, llf equal to
    # 1e-15, slopes equal to 1e-8).
    assume(K == 1 or not np.allclose(coef[:, 0], coef[:, 1], rtol=1e-4, atol=1e-4))
    # Likewise where Newton could not confirm a maximum (a saddle or a
    # ridge): rounding alone, from another row order or BLAS, moves the
    # stopping point (seen at the minimum versions: gamma_log, n=80, K=2,
    # seed=209, slopes -0.72 against -0.12 at the same llf).
    assume(fitted.converged)
    np.testing.assert_allclose(refit.params.to_numpy(), coef, rtol=1e-8, atol=1e-8)
    assert refit.llf == pytest.approx(fitted.llf, rel=1e-10)
    np.testing.assert_allclose(
        refit.posterior.to_numpy(), fitted.posterior.to_numpy()[order], atol=1e-8
    )
    assert list(refit.posterior.index) == list(data.index[order])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(SEPARATED),
    n=st.integers(60, 120),
    K=st.integers(1, 2),
    seed=st.integers(0, 2**31),
)
def test_integer_frequency_weights_equal_duplicated_rows(kind, n, K, seed):
    data, formula = simulate_mixture(kind, n, K, seed, separation=3.0)
    counts = np.random.default_rng(seed).integers(1, 4, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        weighted = EMGLM.from_formula(
            formula, data, FAMILIES[kind](), K, weights=counts.astype(float)
        )
        start, _ = _start_from_fit(weighted, seed)
        a = weighted.fit(start=start)
        expanded = data.loc[data.index.repeat(counts)].reset_index(drop=True)
        b = EMGLM.from_formula(formula, expanded, FAMILIES[kind](), K).fit(start=start)
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-7, atol=1e-8)
    assert a.llf == pytest.approx(b.llf, rel=1e-10)
    assert a.bic == pytest.approx(b.bic, rel=1e-10)
    np.testing.assert_allclose(a.bse.to_numpy(), b.bse.to_numpy(), rtol=1e-6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(2, 40),
    K=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    weighted=st.booleans(),
    offset=st.booleans(),
)
def test_public_fit_raises_only_documented_exceptions(kind, n, K, seed, weighted, offset):
    """Tiny data sets: a correct fit (finite estimates, posteriors summing to
    one, problems recorded) or the documented 'K too large' error."""
    try:
        model = _model(kind, n, K, seed, weighted, offset)
    except ValueError as exc:
        message = str(exc)
        assert "too large" in message or "rank deficient" in message, message
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        res = model.fit(random_state=seed, n_init=2)
    assert np.all(np.isfinite(res.params.to_numpy()))
    assert np.isfinite(res.llf)
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        se = res.bse.to_numpy()
    assert not np.any(np.isinf(se))
