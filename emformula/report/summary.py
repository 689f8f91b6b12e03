"""statsmodels-style tables: :func:`summarize` and :func:`compare`."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from statsmodels.iolib.summary import Summary, summary_params
from statsmodels.iolib.table import SimpleTable

from ..covariance.registry import get_estimator
from ..families import as_family
from ..postestimation.residuals import has_attributes

__all__ = ["summarize", "compare", "ComparisonTable"]


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "nan"
    if isinstance(value, (int, np.integer)):
        return str(value)
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        return f"{value:#.{digits}g}"
    return f"{value:.{digits}f}"


def summarize(res, alpha=0.05):
    """Build the statsmodels ``Summary`` of a mixture fit.

    Parameters
    ----------
    res : EMGLMResults
    alpha : float
        Significance level of the confidence intervals.

    Returns
    -------
    statsmodels.iolib.summary.Summary
    """
    model = res.model
    family = res.family
    now = time.localtime()
    yname = " + ".join(model.endog_names)
    gleft = [
        ("Dep. Variable:", [yname]),
        ("Model:", ["EMGLM"]),
        ("Model Family:", [family.family_name]),
        ("Link Function:", [family.link_name]),
        ("Method:", ["EM"]),
        ("Date:", [time.strftime("%a, %d %b %Y", now)]),
        ("Time:", [time.strftime("%H:%M:%S", now)]),
        ("No. Iterations:", [str(res.n_iter)]),
        ("Converged:", [str(res.converged)]),
        (
            "Best llf replicated:",
            [
                f"{res.n_best} of {res.n_full_starts} starts"
                if res.n_full_starts
                else "not recorded"
            ],
        ),
    ]
    gright = [
        ("No. Observations:", [str(res.nobs)]),
        ("Components:", [str(res.n_components)]),
        ("Df Model:", [str(res.df_model)]),
        ("Log-Likelihood:", [f"{res.llf:.2f}"]),
        ("AIC:", [f"{res.aic:.2f}"]),
        ("BIC:", [f"{res.bic:.2f}"]),
        ("ICL (entropy):", [f"{res.icl:.2f}"]),
        ("Covariance Type:", [get_estimator(res.cov_type).label]),
        ("No. Groups:", [str(res.n_groups)]) if res.n_groups is not None else ("", [""]),
    ]
    smry = Summary()
    smry.add_table_2cols(
        res,
        gleft=gleft,
        gright=gright,
        yname=yname,
        xname=list(model.exog_names),
        title="Finite Mixture of Generalized Linear Models (EM)",
    )
    ci = res.conf_int(alpha)
    bse, tvalues = res.bse, res.tvalues
    pvalues = res.pvalues
    prior_label = "mean prior" if res.concomitant_params is not None else "prior"
    for k, name in enumerate(res.component_names):
        if not res.family.has_coefficients_of(k):
            continue  # a point mass: its mass is in the mixing table
        interval = ci[name].to_numpy()
        table = summary_params(
            (
                res,
                res.params[name].to_numpy(),
                bse[name].to_numpy(),
                tvalues[name].to_numpy(),
                pvalues[name].to_numpy(),
                interval,
            ),
            yname=yname,
            xname=list(model.exog_names),
            alpha=alpha,
            use_t=False,
            title=f"Component {k + 1} ({prior_label} {res.prior.iloc[k]:.4f})",
        )
        smry.tables.append(table)
    if len(res.fixed_params):
        smry.tables.append(
            _theta_table(
                res,
                res.layout.fixed_index,
                list(res.fixed_params.index),
                yname,
                alpha,
                "Shared effects (all components)",
            )
        )
    if res.concomitant_params is not None and res.n_components > 1:
        lay = res.layout
        positions = np.concatenate([lay.gamma_index(k) for k in range(1, res.n_components)])
        names = [
            f"comp{k + 1}:{term}"
            for k in range(1, res.n_components)
            for term in model.concomitant_names
        ]
        smry.tables.append(
            _theta_table(
                res,
                positions,
                names,
                yname,
                alpha,
                "Concomitant model: log(pi_k / pi_1) (multinomial logit, reference comp1)",
            )
        )
    smry.tables.append(_mixing_table(res))
    notes = []
    if res.n_groups is not None:
        notes.append(
            f"Rows are grouped by {model.groups_name!r}: the {res.n_groups} groups "
            "each belong to one component; posteriors, weights and the BIC's "
            "sample size are per group."
        )
    if res.cov_type == "robust":
        unit = "group" if res.n_groups is not None else "row"
        notes.append(
            f"Standard errors: sandwich from the observed information and the "
            f"scores of each {unit}."
        )
    elif res.cov_type == "cluster":
        notes.append(
            f"Standard errors: sandwich with scores summed within the "
            f"{res.n_clusters} clusters of {res._cov.get('name', 'cov_groups')!r}."
        )
    if not res.converged:
        if res.em_converged:
            notes.append(
                "EM's log-likelihood settled, but the Newton finish could not "
                "confirm a local maximum (score not zero or information not "
                "positive definite): the standard errors may be meaningless."
            )
        else:
            notes.append(
                "EM did not converge: the estimates and standard errors are "
                "not at a maximum of the likelihood."
            )
    elif res.n_full_starts > 1 and res.n_best == 1:
        notes.append(
            f"The best log-likelihood was reached by 1 of {res.n_full_starts} "
            "starts: a local maximum; whether it is the global one, more starts "
            "(n_init) or other seeds can tell."
        )
    if notes:
        smry.add_extra_txt(notes)
    return smry


def _theta_table(res, positions, names, yname, alpha, title):
    """A statsmodels coefficient table of some of the free parameters."""
    from scipy import stats

    positions = np.asarray(positions, dtype=int)
    est = res._theta[positions]
    se = np.sqrt(np.diag(res._covariance))[positions]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    p = 2.0 * stats.norm.sf(np.abs(z))
    q = stats.norm.ppf(1.0 - alpha / 2.0)
    interval = np.column_stack([est - q * se, est + q * se])
    return summary_params(
        (res, est, se, z, p, interval),
        yname=yname,
        xname=names,
        alpha=alpha,
        use_t=False,
        title=title,
    )


def _mixing_table(res):
    """Mixing proportions and the family parameters (natural scale, delta
    method standard errors); a family without parameters shows its fixed
    unit dispersion."""
    names = list(res.family_params.index)
    rows = []
    for k, name in enumerate(res.component_names):
        row = [name, _fmt(res.prior.iloc[k]), _fmt(res.prior_bse.iloc[k])]
        own = [p.name for p in res.family.member(k).parameters]
        for parameter in names:
            # Blank where this component's family has no such parameter.
            row += (
                [
                    _fmt(res.family_params.loc[parameter, name]),
                    _fmt(res.family_bse.loc[parameter, name]),
                ]
                if parameter in own
                else ["", ""]
            )
        if not names:
            row += ["1 (fixed)", ""]
        rows.append(row)
    # "mean prior": the mean over units of a concomitant model's proportions.
    concomitant = res.concomitant_params is not None
    if res.family.estimates_scale or not names:
        title = "Mixing proportions and dispersions"
    elif res.family.n_members is not None:
        title = "Mixing proportions and family parameters"
    else:
        title = f"Mixing proportions and {res.family.name} parameters"
    if res.model.data.equal_scale:
        title += (
            " (one common dispersion)"
            if res.family.estimates_scale
            else " (one value for all components)"
        )
    headers = ["", "mean prior" if concomitant else "prior", "std err"]
    for parameter in names or ["scale"]:
        headers += [parameter, "std err"]
    return SimpleTable(
        rows, headers=headers, title=title, txt_fmt={"data_aligns": "r", "header_align": "r"}
    )


_LABELS = {
    "model": "Model",
    "K": "Components",
    "nobs": "No. Observations",
    "df": "Free parameters",
    "llf": "Log-Likelihood",
    "aic": "AIC",
    "bic": "BIC",
    "icl": "ICL",
    "deviance": "Deviance",
}


class ComparisonTable(pd.DataFrame):
    """A DataFrame of fit statistics (rows) by model (columns), with text,
    HTML and LaTeX renderings that format each statistic for reading."""

    @property
    def _constructor(self):
        return ComparisonTable

    def formatted(self):
        """The table as strings: counts as integers, the rest with 3 decimals."""

        def cell(value):
            if isinstance(value, str):
                return value
            if value is None or (isinstance(value, float) and np.isnan(value)):
                return ""
            whole = float(value).is_integer() and abs(value) < 1e9
            if isinstance(value, (int, np.integer)) or whole:
                return f"{int(value)}"
            return f"{value:.3f}"

        return pd.DataFrame(
            [[cell(v) for v in row] for row in self.itertuples(index=False)],
            index=self.index,
            columns=self.columns,
        )

    def as_table(self):
        """The table as a statsmodels ``SimpleTable`` (the look of a summary)."""
        cells = self.formatted()
        return SimpleTable(
            cells.to_numpy().tolist(),
            headers=[str(c) for c in cells.columns],
            stubs=[_LABELS.get(i, str(i)) for i in cells.index],
            title="Model comparison",
            txt_fmt={"data_aligns": "r", "header_align": "r"},
        )

    def as_text(self):
        return self.as_table().as_text()

    def as_html(self):
        return self.as_table().as_html()

    def as_latex(self):
        return self.as_table().as_latex_tabular()

    def __str__(self):
        return self.as_text()


def _statsmodels_row(glm):
    family = glm.model.family
    # Count the dispersion where the family estimates one, as emformula does,
    # so the criteria of a GLM and a K=1 mixture are on the same footing.
    dk = 1 if _estimates_scale(family) else 0
    return {
        "model": f"GLM {type(family).__name__}({type(family.link).__name__})",
        "K": 1,
        "nobs": int(glm.nobs),
        "df": int(round(glm.df_model + 1 + dk)),
        "llf": float(glm.llf),
        "aic": float(glm.info_criteria("aic", dk_params=dk)),
        "bic": float(glm.info_criteria("bic", dk_params=dk)),
        "icl": np.nan,
        "deviance": float(glm.deviance),
    }


def _likelihood_row(res):
    """A row of :func:`compare` for a statsmodels model fitted by maximum
    likelihood (not a GLM): its parameters all counted."""
    df = int(np.asarray(res.params).size)
    if hasattr(res, "ssr"):
        # A linear regression (OLS, WLS): its llf has the ML variance in it,
        # a parameter that params leaves out (as a Gaussian fit counts its
        # dispersion).
        df += 1
    nobs = float(res.nobs)
    llf = float(res.llf)
    return {
        "model": f"{type(res.model).__name__} (statsmodels)",
        "K": 1,
        "nobs": int(round(nobs)),
        "df": df,
        "llf": llf,
        "aic": -2.0 * llf + 2.0 * df,
        "bic": -2.0 * llf + np.log(nobs) * df,
        "icl": np.nan,
        "deviance": np.nan,
    }


def _estimates_scale(sm_family):
    """Whether emformula estimates a dispersion for this statsmodels family
    (False for one it has no component family for, such as Tweedie)."""
    try:
        return as_family(sm_family).estimates_scale
    except TypeError:
        return False


#: What a row of :func:`compare` reads of a mixture fit.
_MIXTURE_ROW = (
    "family",
    "n_components",
    "nobs",
    "df_model",
    "llf",
    "aic",
    "bic",
    "icl",
    "deviance",
)


def _is_mixture_fit(res):
    """Whether ``res`` has what :func:`_emformula_row` reads (an EMGLMResults).

    Checked by attributes rather than by class, so that the tables need not
    import the results module, which imports them (lazily) for
    ``res.summary()``.
    """
    return has_attributes(res, _MIXTURE_ROW)


def _emformula_row(res):
    return {
        "model": f"EMGLM {res.family.family_name}({res.family.link_name})",
        "K": res.n_components,
        "nobs": int(res.nobs),
        "df": int(res.df_model),
        "llf": float(res.llf),
        "aic": float(res.aic),
        "bic": float(res.bic),
        "icl": float(res.icl),
        "deviance": float(res.deviance) if res.n_components == 1 else np.nan,
    }


def compare(*results, names=None):
    """Fit statistics of several models side by side.

    Parameters
    ----------
    *results : EMGLMResults or statsmodels results
        Any mix, with any K: GLMs, and any statsmodels model fitted by
        maximum likelihood (the discrete ``NegativeBinomial``,
        ``ZeroInflatedPoisson``, ``OrderedModel``...).
    names : list of str, optional
        Column labels (default ``model 1``, ``model 2``, ...).

    Returns
    -------
    ComparisonTable
        Rows: model, components, observations, free parameters (``df``),
        log-likelihood, AIC, BIC, ICL (mixtures only) and deviance (GLMs and
        K = 1 fits); one column per model. For a GLM the log-likelihood is
        statsmodels' own; AIC and BIC are statsmodels' ``info_criteria``,
        counting the dispersion as a parameter where the family has one
        (for Poisson and binomial they equal ``GLMResults.aic`` and the
        likelihood-based ``bic_llf``, which is ``bic`` from statsmodels 0.15).
        For other statsmodels models every estimated parameter counts (an
        alpha, cut points, a zero model's coefficients): ``df`` is the length
        of ``params``, AIC ``-2 llf + 2 df`` and BIC ``-2 llf + log(nobs) df``,
        as the mixtures' criteria are formed (the same as statsmodels' own
        ``aic`` and ``bic`` of its discrete models).

    Examples
    --------
    >>> import statsmodels.api as sm
    >>> from emformula import datasets, emglm
    >>> sim2 = datasets.load_sim2()
    >>> glm = sm.GLM.from_formula(sim2.formula, sim2.data, family=sm.families.Poisson()).fit()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    >>> table = compare(glm, res, names=["GLM", "mixture"])
    >>> bool(table.loc["bic", "mixture"] < table.loc["bic", "GLM"])
    True
    >>> print(table.as_text())                              # doctest: +SKIP
    """
    if not results:
        raise ValueError("compare needs at least one results object")
    rows = []
    for i, res in enumerate(results):
        if _is_mixture_fit(res):
            rows.append(_emformula_row(res))
        elif hasattr(res, "model") and hasattr(res.model, "family") and hasattr(res, "llf"):
            rows.append(_statsmodels_row(res))
        elif all(hasattr(res, name) for name in ("model", "llf", "params", "nobs")):
            # statsmodels' results wrappers answer through __getattr__.
            rows.append(_likelihood_row(res))
        else:
            raise TypeError(
                f"argument {i + 1} of compare is a {type(res).__name__}, "
                "not an emformula or statsmodels likelihood results object"
            )
    if names is None:
        names = [f"model {i + 1}" for i in range(len(rows))]
    names = list(names)
    if len(names) != len(rows):
        raise ValueError(f"names has {len(names)} entries for {len(rows)} results")
    table = pd.DataFrame(rows, index=names).T
    return ComparisonTable(table)
