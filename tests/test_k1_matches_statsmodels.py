"""A one-component fit (K = 1) is an ordinary GLM: it must reproduce statsmodels.

Every family and link the package supports is fitted with ``K=1`` to a small
simulated data set (intercept, two covariates and a three-level factor used as
``C(g)``) and compared with ``statsmodels.GLM`` on the same design:
coefficients, log-likelihood (with every constant), deviance, the maximum
likelihood dispersion, observed-information standard errors, AIC and BIC, with
and without frequency weights, offsets and exposures. The statsmodels reference
is built from arrays (not from a formula), so it does not share the formula
layer with emformula.

statsmodels conventions that matter here:

* ``GLMResults.llf`` evaluates the density at statsmodels' own scale: the ML
  scale for the Gaussian identity link, but Pearson's chi2 / df_resid for
  gamma and inverse Gaussian. Our llf is compared with
  ``llf_scaled(scale=<our ML scale>)`` and our scale is checked to maximise it.
* ``GLMResults.bse`` uses the expected information and the statsmodels scale;
  observed-information references are built from ``GLM.hessian``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize_scalar

from emformula import EMGLM, emglm

fams = sm.families
links = sm.families.links

N = 400
RHS = "x1 + x2 + C(g)"
TERMS = ["Intercept", "x1", "x2", "C(g)[T.b]", "C(g)[T.c]"]
NB_ALPHA = 0.7

PARAM_RTOL, PARAM_ATOL = 1e-6, 1e-8
LLF_RTOL = 1e-8
SE_RTOL = 1e-5
SCALE_RTOL = 1e-5
ROUTE_RTOL = 1e-10


# --------------------------------------------------------------------- data
@functools.cache
def make_data(seed=20240611):
    """One data frame with a response for every family (seeded)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=N)
    x2 = rng.uniform(-1.0, 1.0, size=N)
    g = rng.choice(["a", "b", "c"], size=N)
    g_effect = pd.Series(g).map({"a": 0.0, "b": 0.3, "c": -0.4}).to_numpy()
    eta = 0.5 + 0.4 * x1 - 0.3 * x2 + g_effect
    mu = np.exp(eta)
    df = pd.DataFrame({"x1": x1, "x2": x2, "g": g})
    # frequency weights, an offset and an exposure
    df["w"] = rng.integers(1, 5, size=N).astype(float)
    df["off"] = rng.normal(scale=0.3, size=N)
    df["expo"] = rng.uniform(0.5, 3.0, size=N)
    # Poisson (a plain response and one generated with offset and exposure)
    df["ypois"] = rng.poisson(mu)
    df["ypois_oe"] = rng.poisson(mu * np.exp(df["off"]) * df["expo"])
    # binomial: 0/1, counts (successes, failures) and proportion with trials
    p = 1.0 / (1.0 + np.exp(-(eta - 0.5)))
    df["ybin"] = rng.binomial(1, p)
    df["trials"] = rng.integers(1, 12, size=N).astype(float)
    df["succ"] = rng.binomial(df["trials"].astype(int), p).astype(float)
    df["fail"] = df["trials"] - df["succ"]
    df["prop"] = df["succ"] / df["trials"]
    # Gaussian
    df["ygau"] = eta + rng.normal(scale=0.7, size=N)
    # gamma with log link (shape 2.5) and with the inverse link (positive eta)
    df["ygam"] = rng.gamma(shape=2.5, scale=mu / 2.5)
    eta_inv = (
        1.0 + 0.15 * x1 + 0.1 * x2 + pd.Series(g).map({"a": 0.0, "b": 0.2, "c": -0.2}).to_numpy()
    )
    assert eta_inv.min() > 0.1
    df["ygam_inv"] = rng.gamma(shape=3.0, scale=(1.0 / eta_inv) / 3.0)
    # inverse Gaussian with log link (mean mu, shape lambda = 4)
    df["yig"] = rng.wald(mu, 4.0)
    # negative binomial NB2 with alpha = 0.7
    df["ynb"] = rng.negative_binomial(1.0 / NB_ALPHA, 1.0 / (1.0 + NB_ALPHA * mu)).astype(float)
    assert (df["ygam"] > 0).all() and (df["yig"] > 0).all()
    return df


def design(df):
    """The treatment-coded design of ``x1 + x2 + C(g)``, built by hand."""
    g = df["g"].to_numpy()
    return np.column_stack(
        [np.ones(len(df)), df["x1"], df["x2"], (g == "b").astype(float), (g == "c").astype(float)]
    )


# --------------------------------------------------------------- the cases
# name: (lhs of the formula, emglm family, statsmodels family factory,
#        extra emglm keywords, statsmodels endog columns)
CASES = {
    "poisson": ("ypois", "poisson", fams.Poisson, {}, "ypois"),
    "binomial_01": ("ybin", "binomial", fams.Binomial, {}, "ybin"),
    "binomial_two_column": ("succ + fail", "binomial", fams.Binomial, {}, ["succ", "fail"]),
    "binomial_proportion_trials": (
        "prop",
        "binomial",
        fams.Binomial,
        {"trials": "trials"},
        ["succ", "fail"],
    ),
    "gaussian": ("ygau", "gaussian", fams.Gaussian, {}, "ygau"),
    "gamma_log": ("ygam", fams.Gamma(links.Log()), lambda: fams.Gamma(links.Log()), {}, "ygam"),
    "gamma_inverse": ("ygam_inv", fams.Gamma(), fams.Gamma, {}, "ygam_inv"),
    "inverse_gaussian_log": (
        "yig",
        fams.InverseGaussian(links.Log()),
        lambda: fams.InverseGaussian(links.Log()),
        {},
        "yig",
    ),
    "negative_binomial": (
        "ynb",
        fams.NegativeBinomial(alpha=NB_ALPHA),
        lambda: fams.NegativeBinomial(alpha=NB_ALPHA),
        {},
        "ynb",
    ),
}
SCALE_FAMILIES = {"gaussian", "gamma_log", "gamma_inverse", "inverse_gaussian_log"}
# canonical links: statsmodels' (expected-information) bse is the observed one
CANONICAL = {
    "poisson",
    "binomial_01",
    "binomial_two_column",
    "binomial_proportion_trials",
    "gaussian",
    "gamma_inverse",
}

# settings: which of weights / offset / exposure are used
SETTINGS = {
    "plain": {},
    "weights": {"weights": "w"},
    "offset": {"offset": "off"},
    "exposure": {"exposure": "expo"},
    "weights_offset_exposure": {"weights": "w", "offset": "off", "exposure": "expo"},
}

COMBOS = (
    [(case, "plain") for case in CASES]
    + [(case, "weights") for case in CASES]
    + [
        ("poisson", "offset"),
        ("poisson", "exposure"),
        ("poisson", "weights_offset_exposure"),
        ("gaussian", "offset"),
        ("negative_binomial", "exposure"),
        ("binomial_two_column", "offset"),
    ]
)


def _lhs(case, setting):
    lhs = CASES[case][0]
    if case == "poisson" and ("offset" in SETTINGS[setting] or "exposure" in SETTINGS[setting]):
        return "ypois_oe"
    return lhs


@functools.cache
def fit_ours(case, setting):
    df = make_data()
    _, family, _, extra, _ = CASES[case]
    kwargs = dict(extra, **SETTINGS[setting])
    return emglm(f"{_lhs(case, setting)} ~ {RHS}", df, family=family, K=1, random_state=0, **kwargs)


@functools.cache
def reference(case, setting):
    """statsmodels GLM on the same arrays: (model, results)."""
    df = make_data()
    _, _, sm_family, _, endog_cols = CASES[case]
    if case == "poisson":
        endog_cols = _lhs(case, setting)
    endog = df[endog_cols].to_numpy()
    exog = pd.DataFrame(design(df), columns=TERMS)
    opts = SETTINGS[setting]
    kw = {}
    if "weights" in opts:
        kw["freq_weights"] = df[opts["weights"]].to_numpy()
    if "offset" in opts:
        kw["offset"] = df[opts["offset"]].to_numpy()
    if "exposure" in opts:
        kw["exposure"] = df[opts["exposure"]].to_numpy()
    with warnings.catch_warnings():
        # statsmodels warns that the inverse link can leave the gamma domain;
        # the simulated linear predictor of that case is positive.
        warnings.simplefilter("ignore", sm.tools.sm_exceptions.DomainWarning)
        model = sm.GLM(endog, exog, family=sm_family(), **kw)
    return model, model.fit(tol=1e-13, maxiter=500)


def ours_params(res):
    assert list(res.params.columns) == ["comp1"]
    assert sorted(res.params.index) == sorted(TERMS)
    return res.params.loc[TERMS, "comp1"].to_numpy()


def ours_bse(res):
    assert list(res.bse.columns) == ["comp1"]
    return res.bse.loc[TERMS, "comp1"].to_numpy()


def our_scale(res):
    assert res.scale.shape == (1,)
    return float(res.scale.iloc[0])


def observed_bse(model, params, scale):
    """Standard errors from statsmodels' observed Hessian at a fixed scale."""
    hess = model.hessian(np.asarray(params), observed=True, scale=scale)
    return np.sqrt(np.diag(np.linalg.inv(-hess)))


def loglike_at(model, mu, scale):
    """statsmodels' log-likelihood (every constant) at given means and scale."""
    return model.family.loglike(
        model.endog, mu, var_weights=model.var_weights, freq_weights=model.freq_weights, scale=scale
    )


# -------------------------------------------------------------------- tests
def test_reference_glms_converged():
    """Guard: the references are proper maxima, so the comparisons mean something."""
    for case, setting in COMBOS:
        model, ref = reference(case, setting)
        # (not ref.converged: statsmodels' deviance criterion at tol=1e-13 can
        # miss a one-step Gaussian fit by rounding; the score is what matters)
        score = model.score(ref.params.to_numpy(), scale=1.0)
        assert np.max(np.abs(score)) < 1e-5, (case, setting, score)


@pytest.mark.parametrize("case,setting", COMBOS)
def test_params_llf_deviance_match_statsmodels(case, setting):
    res = fit_ours(case, setting)
    model, ref = reference(case, setting)
    assert res.converged
    assert res.nobs == N
    np.testing.assert_allclose(
        ours_params(res), ref.params.to_numpy(), rtol=PARAM_RTOL, atol=PARAM_ATOL
    )
    scale = our_scale(res)
    # our llf at our ML scale is statsmodels' log-likelihood at that scale
    np.testing.assert_allclose(res.llf, ref.llf_scaled(scale=scale), rtol=LLF_RTOL)
    if case not in ("gamma_log", "gamma_inverse", "inverse_gaussian_log"):
        # poisson/binomial/NB (scale 1) and Gaussian identity (ML scale):
        # statsmodels' own llf is the same number
        np.testing.assert_allclose(res.llf, ref.llf, rtol=LLF_RTOL)
    else:
        # statsmodels' llf uses the Pearson scale, which cannot beat the ML scale
        assert res.llf > ref.llf
    np.testing.assert_allclose(res.deviance, ref.deviance, rtol=LLF_RTOL)
    if case not in SCALE_FAMILIES:
        assert scale == 1.0


@pytest.mark.parametrize("case,setting", [c for c in COMBOS if c[0] in SCALE_FAMILIES])
def test_scale_is_maximum_likelihood(case, setting):
    res = fit_ours(case, setting)
    model, ref = reference(case, setting)
    scale = our_scale(res)
    mu = ref.mu

    def negll(log_scale):
        return -loglike_at(model, mu, np.exp(log_scale))

    start = np.log(ref.scale)
    opt = minimize_scalar(
        negll, bracket=(start - 0.5, start + 0.5), method="brent", options={"xtol": 1e-12}
    )
    np.testing.assert_allclose(scale, np.exp(opt.x), rtol=SCALE_RTOL)
    if case == "gaussian":
        w = model.freq_weights
        resid = model.endog - mu
        np.testing.assert_allclose(scale, np.sum(w * resid**2) / np.sum(w), rtol=1e-8)


@pytest.mark.parametrize("case,setting", COMBOS)
def test_bse_equals_observed_information(case, setting):
    """Coefficient SEs equal sqrt(diag(inv(-H))) with statsmodels' observed
    Hessian at the ML scale: at the MLE the coefficient / log-scale cross
    information is zero, so estimating the scale does not change them."""
    res = fit_ours(case, setting)
    model, ref = reference(case, setting)
    expected = observed_bse(model, ref.params, our_scale(res))
    np.testing.assert_allclose(ours_bse(res), expected, rtol=SE_RTOL)


@pytest.mark.parametrize("case,setting", [c for c in COMBOS if c[0] in CANONICAL])
def test_bse_equals_statsmodels_bse_canonical_link(case, setting):
    """With a canonical link observed = expected information, so statsmodels'
    ordinary bse (refitted at our scale where there is one) must match."""
    res = fit_ours(case, setting)
    model, ref = reference(case, setting)
    if case in SCALE_FAMILIES:
        ref = model.fit(scale=our_scale(res), tol=1e-13, maxiter=500)
    np.testing.assert_allclose(ours_bse(res), ref.bse.to_numpy(), rtol=SE_RTOL)


@pytest.mark.parametrize("setting", ["plain", "weights", "weights_offset_exposure"])
def test_aic_bic_poisson(setting):
    res = fit_ours("poisson", setting)
    _, ref = reference("poisson", setting)
    assert res.df_model == len(TERMS) == ref.df_model + 1
    np.testing.assert_allclose(res.aic, ref.aic, rtol=1e-10)
    np.testing.assert_allclose(res.bic, ref.bic_llf, rtol=1e-10)
    np.testing.assert_allclose(res.bic, ref.info_criteria("bic"), rtol=1e-10)


@pytest.mark.parametrize("setting", ["plain", "weights"])
def test_aic_bic_gaussian(setting):
    res = fit_ours("gaussian", setting)
    _, ref = reference("gaussian", setting)
    # coefficients plus the dispersion
    assert res.df_model == len(TERMS) + 1 == ref.df_model + 2
    np.testing.assert_allclose(res.aic, ref.info_criteria("aic", dk_params=1), rtol=1e-10)
    np.testing.assert_allclose(res.bic, ref.info_criteria("bic", dk_params=1), rtol=1e-10)


@pytest.mark.parametrize("case", ["gamma_log", "inverse_gaussian_log"])
def test_aic_bic_dispersion_families_use_ml_llf(case):
    res = fit_ours(case, "weights")
    model, ref = reference(case, "weights")
    llf = ref.llf_scaled(scale=our_scale(res))
    k = len(TERMS) + 1
    assert res.df_model == k
    np.testing.assert_allclose(res.aic, -2 * llf + 2 * k, rtol=1e-8)
    np.testing.assert_allclose(res.bic, -2 * llf + np.log(model.wnobs) * k, rtol=1e-8)


ROUTE_CASES = {
    "poisson_weights_offset_exposure": (
        "ypois_oe",
        "poisson",
        None,
        {"weights": "w", "offset": "off", "exposure": "expo"},
    ),
    "binomial_two_column_weights": ("succ + fail", "binomial", ["succ", "fail"], {"weights": "w"}),
    "binomial_proportion_trials": ("prop", "binomial", None, {"trials": "trials"}),
    "gamma_log": ("ygam", fams.Gamma(links.Log()), None, {}),
}


@pytest.mark.parametrize("name", list(ROUTE_CASES))
def test_formula_route_equals_array_route(name):
    df = make_data()
    lhs, family, endog_cols, kw = ROUTE_CASES[name]
    res_f = emglm(f"{lhs} ~ {RHS}", df, family=family, K=1, random_state=0, **kw)
    endog = df[endog_cols if endog_cols is not None else lhs].to_numpy()
    arrays = {key: df[col].to_numpy() for key, col in kw.items()}
    res_a = EMGLM(endog, design(df), family=family, K=1, exog_names=TERMS, **arrays).fit(
        random_state=0
    )
    assert list(res_a.params.index) == TERMS
    np.testing.assert_allclose(
        res_f.params.loc[TERMS].to_numpy(), res_a.params.to_numpy(), rtol=ROUTE_RTOL, atol=1e-12
    )
    np.testing.assert_allclose(
        res_f.bse.loc[TERMS].to_numpy(), res_a.bse.to_numpy(), rtol=ROUTE_RTOL
    )
    for attr in ("llf", "aic", "bic", "deviance"):
        np.testing.assert_allclose(
            getattr(res_f, attr), getattr(res_a, attr), rtol=ROUTE_RTOL, err_msg=attr
        )
    np.testing.assert_allclose(res_f.scale.to_numpy(), res_a.scale.to_numpy(), rtol=ROUTE_RTOL)
    assert res_f.df_model == res_a.df_model and res_f.nobs == res_a.nobs == N
