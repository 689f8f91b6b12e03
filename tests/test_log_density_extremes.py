"""Log-densities at the extremes of double precision, against scipy.stats.

Every family's log-density (``MixtureFamily.loglike``, and the kernel plus
data constant that the E-step adds, in its in-place column-major form) is
evaluated on grids of responses, means and dispersions that reach the
smallest sub-normal (5e-324) and the largest doubles (issue 14: a gamma
response of 1e-20 gave -inf and the fit never converged). Three checks:

* finite wherever scipy's log-density is finite, and never NaN or +inf
  where scipy's is -inf;
* equal to scipy's where scipy's is accurate;
* equal to the exact value (mpmath, with enough digits) to 1e-12 relative.

"Accurate" and "equal" allow ``1e-12`` relative plus the rounding floor of
the sum that forms the log-density: ``1e-14`` times the sum of the absolute
values of its terms (a Poisson log-density at y = mu = 1e20 is -23.9, the
difference of two terms of 4.5e21; no double-precision formula with those
terms gets its digits, scipy's included). scipy's own value is off by more
than that on part of the grid (sub-normal intermediates such as
``y / (mu phi)``, ``p = 1 / (1 + alpha mu)`` rounded to 1, the textbook
gamma form at large shape); there only the exact value is the reference.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import special, stats

from emformula.families import as_family

mp = pytest.importorskip("mpmath")

NB_ALPHA = 0.7
TRIALS = 10.0
RTOL = 1e-12
# Times the sum of the absolute values of the terms: the rounding floor.
FLOOR = 1e-14

FAMILIES = {
    "poisson": lambda: as_family("poisson"),
    "binomial": lambda: as_family("binomial"),
    "gaussian": lambda: as_family("gaussian"),
    "gamma": lambda: as_family("gamma", link="log"),
    "inverse_gaussian": lambda: as_family("inverse_gaussian", link="log"),
    "negative_binomial": lambda: as_family(sm.families.NegativeBinomial(alpha=NB_ALPHA)),
}

POSITIVE = [5e-324, 1e-310, 1e-300, 1e-20, 0.3, 1.0, 7.5, 1e20, 1e300, 1.7e308]
REAL = [-1.7e308, -1e20, -1.0, 0.0] + POSITIVE
COUNTS = [0.0, 1.0, 3.0, 17.0, 1e4, 1e8, 1e15, 1e20, 1e300]
DISPERSIONS = [5e-324, 1e-300, 1e-20, 0.5, 3.0, 1e20, 1e300]
# Responses a relative distance from the mean: where the deviance terms
# cancel to (y - mu)^2 and a large shape multiplies that.
RELATIVE = [-1e-12, -1e-8, -1e-4, -0.0099, 0.0101, 1e-4, 1e-8, 1e-12]


def _grid(name):
    """(y, mu, phi) arrays of one family's grid."""
    if name in ("poisson", "negative_binomial"):
        ys, mus, phis = COUNTS, POSITIVE + [1e-8, 1e8], [1.0]
    elif name == "binomial":
        ys = [0.0, 0.1, 0.5, 1.0]
        mus = [5e-324, 1e-300, 2.2e-16, 1e-10, 0.1, 0.5, 0.9, 1 - 1e-10, 1 - 2.2e-16]
        phis = [1.0]
    elif name == "gaussian":
        ys, mus, phis = REAL, REAL, DISPERSIONS
    else:
        ys, mus, phis = POSITIVE, POSITIVE, DISPERSIONS
    y, mu, phi = (a.ravel() for a in np.meshgrid(ys, mus, phis, indexing="ij"))
    if name in ("gamma", "inverse_gaussian", "gaussian"):
        base = np.array([1e-300, 1e-8, 1.0, 3.0, 1e20, 1e300])
        rel_y, rel_mu, rel_phi = (
            a.ravel() for a in np.meshgrid(RELATIVE, base, [1e-20, 1e-6, 0.5, 1e6], indexing="ij")
        )
        y = np.concatenate([y, rel_mu * (1.0 + rel_y)])
        mu = np.concatenate([mu, rel_mu])
        phi = np.concatenate([phi, rel_phi])
    return y, mu, phi


def scipy_logpdf(name, y, mu, phi):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "poisson":
            return stats.poisson.logpmf(y, mu)
        if name == "binomial":
            return stats.binom.logpmf(np.round(TRIALS * y), TRIALS, mu)
        if name == "gaussian":
            return stats.norm.logpdf(y, mu, np.sqrt(phi))
        if name == "gamma":
            return stats.gamma.logpdf(y, 1.0 / phi, scale=mu * phi)
        if name == "inverse_gaussian":
            # scipy's invgauss(m, scale=s) has mean m s and shape s.
            return stats.invgauss.logpdf(y, mu * phi, scale=1.0 / phi)
        return stats.nbinom.logpmf(y, 1.0 / NB_ALPHA, 1.0 / (1.0 + NB_ALPHA * mu))


def _exact_one(name, y, mu, phi):
    """The textbook log-density in 400-digit arithmetic (inputs taken exactly)."""
    y, mu, phi = mp.mpf(float(y)), mp.mpf(float(mu)), mp.mpf(float(phi))
    if name == "poisson":
        if mu == 0:
            return 0.0 if y == 0 else -np.inf
        return y * mp.log(mu) - mu - mp.loggamma(y + 1)
    if name == "binomial":
        n = mp.mpf(TRIALS)
        s = mp.mpf(float(np.round(TRIALS * float(y))))
        value = mp.loggamma(n + 1) - mp.loggamma(s + 1) - mp.loggamma(n - s + 1)
        if s:
            value += s * mp.log(mu)
        if n - s:
            value += (n - s) * mp.log(1 - mu)
        return value
    if name == "gaussian":
        return -((y - mu) ** 2) / (2 * phi) - mp.log(2 * mp.pi * phi) / 2
    if name == "gamma":
        # The shape as the code forms it, 1 / phi in double precision.
        nu = mp.mpf(1.0 / float(phi))
        return (
            nu * mp.log(nu) - nu * mp.log(mu) + (nu - 1) * mp.log(y) - nu * y / mu - mp.loggamma(nu)
        )
    if name == "inverse_gaussian":
        return -mp.log(2 * mp.pi * phi * y**3) / 2 - (y - mu) ** 2 / (2 * phi * y * mu**2)
    size = 1 / mp.mpf(NB_ALPHA)
    am = mp.mpf(NB_ALPHA) * mu
    value = mp.loggamma(y + size) - mp.loggamma(y + 1) - mp.loggamma(size) - size * mp.log1p(am)
    if y:
        value += y * mp.log(am / (1 + am))
    return value


def exact_logpdf(name, y, mu, phi):
    """:func:`_exact_one` on arrays, with enough digits for the terms to
    cancel: they are at most about the product of the inputs and their
    reciprocals, so 30 digits plus the sum of the inputs' decimal exponents, up to
    370 (terms beyond 1e340 cannot cancel to a finite double)."""
    out = np.empty(y.size)
    with np.errstate(divide="ignore"):
        exponents = sum(np.abs(np.log10(np.where(a == 0, 1.0, np.abs(a)))) for a in (y, mu, phi))
    for i, args in enumerate(zip(y, mu, phi)):
        with mp.workdps(30 + int(min(exponents[i], 340))):
            try:
                value = _exact_one(name, *args)
                out[i] = float(value) if abs(value) < mp.mpf("1.7976931348623157e308") else -np.inf
            except (ValueError, ZeroDivisionError, OverflowError):
                out[i] = np.nan
    return out


def term_size(name, y, mu, phi):
    """Sum of the absolute values of the terms of the log-density (rounded
    to double; only its size matters): the rounding floor of any
    double-precision evaluation. Overflowing terms make it infinite, which
    only ever meets a non-finite exact value (excluded)."""
    with np.errstate(all="ignore"):
        if name == "poisson":
            return np.abs(special.xlogy(y, mu)) + mu + special.gammaln(y + 1.0)
        if name == "binomial":
            s = np.round(TRIALS * y)
            return (
                special.gammaln(TRIALS + 1.0)
                + special.gammaln(s + 1.0)
                + special.gammaln(TRIALS - s + 1.0)
                + np.abs(special.xlogy(s, mu))
                + np.abs(special.xlog1py(TRIALS - s, -mu))
            )
        if name == "gaussian":
            return np.abs((y - mu) / np.sqrt(phi)) ** 2 / 2 + np.abs(np.log(phi)) + 2.0
        if name == "gamma":
            nu = 1.0 / phi
            log_r = np.log(y) - np.log(mu)
            d = np.where(np.abs(log_r) < 1e-3, log_r**2, np.abs(np.expm1(log_r)) + np.abs(log_r))
            return (
                nu * d
                + np.abs(np.log(phi))
                + np.abs(np.log(y))
                + 1.0
                + np.abs(special.gammaln(nu) - (nu - 0.5) * np.log(nu) + nu)
            )
        if name == "inverse_gaussian":
            return (
                np.exp(2 * np.log(np.abs(y - mu)) - np.log(y) - 2 * np.log(mu) - np.log(phi))
                + np.abs(np.log(phi))
                + 3 * np.abs(np.log(y))
                + 2.0
            )
        size = 1.0 / NB_ALPHA
        return (
            np.abs(special.xlog1py(y, 1.0 / (NB_ALPHA * mu)))
            + size * np.log1p(NB_ALPHA * mu)
            + (size + 1.0) * np.abs(np.log1p(y))
            + 1.0
        )


def close(a, b, size, factor=1.0):
    """``|a - b| <= factor (RTOL |b| + FLOOR size)`` (equal infinities count as close)."""
    with np.errstate(invalid="ignore"):
        same = a == b
        return same | (np.abs(a - b) <= factor * (RTOL * np.abs(b) + FLOOR * size))


def ours(name, y, mu, phi):
    family = FAMILIES[name]()
    with np.errstate(all="ignore"):
        return family.loglike(y, mu, phi, TRIALS if name == "binomial" else 1.0)


@functools.cache
def _case(name):
    y, mu, phi = _grid(name)
    return (
        name,
        y,
        mu,
        phi,
        ours(name, y, mu, phi),
        scipy_logpdf(name, y, mu, phi),
        exact_logpdf(name, y, mu, phi),
        term_size(name, y, mu, phi),
    )


@pytest.fixture(params=list(FAMILIES))
def case(request):
    return _case(request.param)


def _show(mask, y, mu, phi, *values):
    rows = np.flatnonzero(mask)[:5]
    return [(y[i], mu[i], phi[i]) + tuple(v[i] for v in values) for i in rows]


def test_finite_wherever_scipy_is(case):
    name, y, mu, phi, got, ref, exact, _ = case
    # Two points of the inverse Gaussian grid are left out: there scipy's
    # (y - mu)^2 underflows to a finite 1058 where the exact value, -5e311,
    # is beyond the doubles.
    bad = np.isfinite(ref) & np.isfinite(exact) & ~np.isfinite(got)
    assert not bad.any(), _show(bad, y, mu, phi, got, ref)
    # Where scipy's is -inf (outside the support, or beyond the doubles),
    # ours is -inf or finite, never NaN or +inf.
    wrong = (ref == -np.inf) & (np.isnan(got) | (got == np.inf))
    assert not wrong.any(), _show(wrong, y, mu, phi, got, ref)


def test_equals_scipy_where_scipy_is_accurate(case):
    name, y, mu, phi, got, ref, exact, size = case
    finite = np.isfinite(exact)
    accurate = finite & np.isfinite(ref) & close(ref, exact, size)
    # Not vacuous: scipy is accurate on all of the finite grid for Poisson,
    # binomial and Gaussian, on 75-80% for gamma and inverse Gaussian and on
    # half for the negative binomial (whose p = 1 / (1 + alpha mu) cannot
    # carry a mean below 1e-16).
    assert accurate.sum() > 0.45 * finite.sum(), (accurate.sum(), finite.sum())
    # Both are within the tolerance of the exact value where scipy is
    # accurate, so they may be up to twice that apart (on either side of it).
    bad = accurate & ~close(got, ref, size, factor=2.0)
    assert not bad.any(), _show(bad, y, mu, phi, got, ref)


def test_equals_exact(case):
    name, y, mu, phi, got, _, exact, size = case
    finite = np.isfinite(exact)
    assert np.all(np.isfinite(got[finite]))
    bad = finite & ~close(got, exact, size)
    assert not bad.any(), _show(bad, y, mu, phi, got, exact)


@pytest.mark.parametrize("name", ["gaussian", "gamma", "inverse_gaussian"])
def test_continuous_relative_error_without_cancellation(name):
    """Away from cancelling values (|log f| well above the floor) the
    continuous families are accurate to 1e-12 of the value itself, the
    sub-normal and overflowing corners included. (Not the count families:
    the engine's kernel and data constant cancel at huge counts.)"""
    _, y, mu, phi, got, _, exact, size = _case(name)
    finite = np.isfinite(exact)
    keep = finite & (np.abs(exact) > 1e-6 * size)
    assert keep.sum() > 0.9 * finite.sum()
    np.testing.assert_allclose(got[keep], exact[keep], rtol=RTOL)


def test_gamma_tiny_response_issue_14():
    family = FAMILIES["gamma"]()
    y = np.array([1e-20, 1e-300, 5e-324])
    for mu, phi in [(1.0, 0.5), (3.7, 2.0), (1e5, 1e-3)]:
        got = family.loglike(y, mu, phi)
        ref = stats.gamma.logpdf(y, 1.0 / phi, scale=mu * phi)
        assert np.all(np.isfinite(got))
        # y = 5e-324 makes scipy's y / (mu phi) sub-normal (a few digits):
        # compared with the exact value there.
        np.testing.assert_allclose(got[:2], ref[:2], rtol=RTOL)
        np.testing.assert_allclose(
            got, exact_logpdf("gamma", y, np.full(3, mu), np.full(3, phi)), rtol=RTOL
        )


def test_engine_kernels_column_major():
    """The E-step's form: kernel on column-major (n, K) means with (1, K)
    dispersions, plus the per-row constant; Poisson with the linear
    predictor as well."""
    rng = np.random.default_rng(0)
    for name in FAMILIES:
        family = FAMILIES[name]()
        y, mu, _ = _grid(name)
        take = rng.choice(y.size, size=min(200, y.size), replace=False)
        yk = y[take]
        mus = np.asfortranarray(np.column_stack([mu[take], mu[rng.permutation(take)]]))
        phis = np.array([[0.5, 1e-20]]) if family.estimates_scale else np.ones((1, 2))
        trials = TRIALS if name == "binomial" else 1.0
        with np.errstate(all="ignore"):
            got = (
                family.loglike_kernel(yk[:, None], mus, phis, trials)
                + family.loglike_constant(yk, trials)[:, None]
            )
        for k in range(2):
            want = ours(name, yk, mus[:, k], np.full(yk.size, phis[0, k]))
            np.testing.assert_array_equal(got[:, k], want, err_msg=name)
    family = FAMILIES["poisson"]()
    eta = np.asfortranarray(np.array([[-700.0, -30.0], [0.0, 2.5], [40.0, 700.0]]))
    y = np.array([0.0, 3.0, 1e17])
    mu = family.mean(eta)
    got = (
        family.loglike_kernel(y[:, None], mu, 1.0, 1.0, eta=eta)
        + family.loglike_constant(y)[:, None]
    )
    ref = stats.poisson.logpmf(y[:, None], mu)
    np.testing.assert_allclose(got, ref, rtol=RTOL)
