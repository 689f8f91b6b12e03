"""Small simulated mixtures with concomitant variables, shared effects and
groups, for the tests of those features."""

import numpy as np
import pandas as pd

from emformula import EMGLM
from emformula.engine import em as _em


def simulate(kind, n, K, seed, *, concomitant=False, fixed=False, groups=None, separation=2.0):
    """A data frame and the ``emglm`` keyword arguments of a mixture.

    Parameters
    ----------
    kind : {"poisson", "gaussian", "gamma", "binomial"}
    n : int
        Rows.
    concomitant : bool
        Mixing proportions depend on ``z`` (multinomial logit).
    fixed : bool
        A shared effect of ``x2``.
    groups : int, optional
        Rows per group (``id`` column); the component is drawn per group.

    Returns
    -------
    data, formula, kwargs
    """
    rng = np.random.default_rng(seed)
    size = n if groups is None else -(-n // groups)
    z_unit = rng.normal(size=size)
    logits = np.outer(z_unit, np.linspace(-1.0, 1.0, K)) if concomitant else np.zeros((size, K))
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    comp_unit = (rng.uniform(size=(size, 1)) > np.cumsum(prob, axis=1)).sum(axis=1)
    comp_unit = np.minimum(comp_unit, K - 1)
    unit = np.arange(n) if groups is None else np.arange(n) // groups
    comp, z = comp_unit[unit], z_unit[unit]
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    intercept = separation * (comp - (K - 1) / 2)
    slope = np.linspace(-0.5, 0.5, K)[comp] if K > 1 else np.zeros(n)
    lin = intercept + slope * x1 + (0.4 * x2 if fixed else 0.0)
    data = {"x1": x1, "x2": x2, "z": z, "id": unit}
    formula = "y ~ x1"
    if kind == "poisson":
        data["y"] = rng.poisson(np.exp(0.5 + 0.5 * lin)).astype(float)
    elif kind == "gaussian":
        data["y"] = 2.0 * lin + rng.normal(size=n)
    elif kind == "gamma":
        data["y"] = rng.gamma(4.0, np.exp(0.5 * lin) / 4.0)
    elif kind == "binomial":
        trials = rng.integers(2, 10, size=n)
        succ = rng.binomial(trials, 1.0 / (1.0 + np.exp(-lin)))
        data["succ"], data["fail"] = succ.astype(float), (trials - succ).astype(float)
        formula = "succ + fail ~ x1"
    else:
        raise ValueError(kind)
    kwargs = {"family": {"gamma": "gamma"}.get(kind, kind)}
    if concomitant:
        kwargs["concomitant"] = "~ z"
    if fixed:
        kwargs["fixed"] = "~ x2"
    else:
        formula += " + x2"
    if groups is not None:
        kwargs["groups"] = "id"
    if kind == "gamma":
        import statsmodels.api as sm

        kwargs["family"] = sm.families.Gamma(sm.families.links.Log())
    return pd.DataFrame(data), formula, kwargs


def model_of(data, formula, K, kwargs, **extra):
    """The EMGLM of :func:`simulate`'s output."""
    kw = dict(kwargs)
    family = kw.pop("family")
    return EMGLM.from_formula(formula, data, family, K, **kw, **extra)


def em_history(model, seed, accelerate):
    """Run EM from a random start; return the run."""
    est = _em.initial_estimates(model.data, model.K, np.random.default_rng(seed), 1e-8)
    return _em.run_em(
        model.data,
        est,
        max_iter=150,
        tol=1e-12,
        scale_floor=1e-8,
        accelerate=accelerate,
        newton=accelerate,
    )


def assert_monotone(run):
    """The log-likelihood never falls (to rounding), and the run is consistent."""
    history = run.history
    assert np.all(np.isfinite(history))
    drops = np.diff(history)
    assert np.all(drops >= -1e-10 * np.abs(history[1:])), drops.min()
    np.testing.assert_allclose(run.posterior.sum(axis=1), 1.0, atol=1e-12)


def loglike_of_theta(res):
    """The observed log-likelihood of a fit's model as a function of theta."""
    data, lay = res.model.data, res.layout
    return lambda theta: _em.e_step(data, lay.unpack(theta, data)).llf


def unit_loglike_of_theta(res):
    """The log-likelihood of each unit (row, or group) as a function of theta."""
    data, lay = res.model.data, res.layout
    return lambda theta: _em.e_step(data, lay.unpack(theta, data)).row_llf


def assert_louis_equals_numerical_hessian(res, rtol=1e-4):
    """Louis' standard errors (and information) against statsmodels' numerical
    Hessian of the observed log-likelihood in theta."""
    from statsmodels.tools.numdiff import approx_fprime, approx_hess

    llf = loglike_of_theta(res)
    theta = res.layout.pack(res.estimates)
    se = res.theta_bse.to_numpy()
    # A stationary point: the numerical score is negligible against the SEs.
    assert np.max(np.abs(approx_fprime(theta, llf, centered=True)) * se) < 1e-4
    hess = approx_hess(theta, llf)
    np.testing.assert_allclose(se, np.sqrt(np.diag(np.linalg.inv(-hess))), rtol=rtol)
    info = res.information().to_numpy()
    np.testing.assert_allclose(info, -hess, rtol=2e-4, atol=2e-4 * np.abs(info).max())
