"""Average marginal effects of the mixture mean and of each component's mean.

A coefficient of a mixture component is on the scale of its link; a
report says how much the expected response moves with a covariate, for the
population (the mixture mean ``m_i = sum_k pi_ik mu_ik``) and within each
class (``mu_ik``). :func:`get_margeff` gives those effects with
delta-method standard errors, with statsmodels' options and table, and
with one component equals statsmodels' ``GLMResults.get_margeff``
(tests/test_margins.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..warnings import warn
from ._delta import (
    central_jacobian,
    check_delta_family,
    covariance,
    normal_quantile,
    parameters_of,
    rows_of,
)

__all__ = ["get_margeff", "MixtureMargins", "MARGEFF_AT", "MARGEFF_METHODS"]

#: Where the effects are evaluated.
MARGEFF_AT = ("overall", "mean", "median", "zero")

#: The effect's scale, with statsmodels' column titles.
MARGEFF_METHODS = {
    "dydx": "dy/dx",
    "eyex": "d(lny)/d(lnx)",
    "dyex": "dy/d(lnx)",
    "eydx": "d(lny)/dx",
}


class MixtureMargins:
    """Marginal effects of a mixture with their delta-method covariance.

    Made by :func:`get_margeff`. Rows of every table are the quantities
    (``"mixture"``, the mixture mean, then ``"comp1"``, ``"comp2"``, ...:
    each component's mean) and the covariates.

    Attributes
    ----------
    margeff : DataFrame (quantities x covariates)
    margeff_se : DataFrame
    margeff_cov : DataFrame
        Covariance of all the effects, labelled ``(quantity, covariate)``.
    at, method, dummy
        The options of :func:`get_margeff`.
    """

    def __init__(self, effects, cov, quantities, variables, at, method, dummy):
        self.at, self.method, self.dummy = at, method, dummy
        self.margeff = pd.DataFrame(effects, index=quantities, columns=variables)
        labels = pd.MultiIndex.from_product(
            [quantities, variables], names=["quantity", "covariate"]
        )
        self.margeff_cov = pd.DataFrame(cov, index=labels, columns=labels)
        se = np.sqrt(np.maximum(np.diag(cov), 0.0)).reshape(effects.shape)
        self.margeff_se = pd.DataFrame(se, index=quantities, columns=variables)

    @property
    def tvalues(self):
        """z statistics of the effects."""
        return self.margeff / self.margeff_se

    @property
    def pvalues(self):
        """Two-sided p-values (normal reference)."""
        return pd.DataFrame(
            2.0 * stats.norm.sf(np.abs(self.tvalues.to_numpy())),
            index=self.margeff.index,
            columns=self.margeff.columns,
        )

    def conf_int(self, alpha=0.05):
        """Wald intervals: a frame with columns ``lower``, ``upper`` and the
        rows of :meth:`summary_frame`."""
        q = normal_quantile(alpha)
        effect = self.margeff.stack()
        se = self.margeff_se.stack()
        return pd.DataFrame({"lower": effect - q * se, "upper": effect + q * se})

    def summary_frame(self, alpha=0.05):
        """The effects as statsmodels' ``DiscreteMargins.summary_frame``.

        Returns
        -------
        DataFrame
            Rows ``(quantity, covariate)`` (``frame.loc["mixture"]`` is the
            statsmodels-shaped table of the mixture mean); columns the
            effect (titled by the method, ``dy/dx`` ...), ``Std. Err.``,
            ``z``, ``Pr(>|z|)``, ``Conf. Int. Low``, ``Cont. Int. Hi.``
            (statsmodels' spelling, kept so that code written for it runs).
        """
        ci = self.conf_int(alpha)
        frame = pd.DataFrame(
            {
                MARGEFF_METHODS[self.method]: self.margeff.stack(),
                "Std. Err.": self.margeff_se.stack(),
                "z": self.tvalues.stack(),
                "Pr(>|z|)": self.pvalues.stack(),
                "Conf. Int. Low": ci["lower"],
                "Cont. Int. Hi.": ci["upper"],
            }
        )
        frame.index.names = ["quantity", "covariate"]
        return frame

    def __repr__(self):
        return (
            f"<MixtureMargins: at={self.at!r}, method={self.method!r}, "
            f"{self.margeff.shape[1]} covariates>"
        )


def _weighted_median(values, weights):
    """The median of the data with each row repeated by its frequency weight
    (the mean of the two middle values for an even total, as ``np.median``)."""
    order = np.argsort(values, kind="stable")
    sorted_values, cumulative = values[order], np.cumsum(weights[order])
    half = cumulative[-1] / 2.0
    lower = sorted_values[np.searchsorted(cumulative, half, side="left")]
    upper = sorted_values[np.searchsorted(cumulative, half, side="right")]
    return 0.5 * (lower + upper)


def _representative(columns, weights, at):
    """One row of a design at its weighted mean, median, or at zero (its
    constant columns, the intercept, kept at their value)."""
    if at == "mean":
        return (weights @ columns / weights.sum())[None, :]
    if at == "median":
        return np.array([[_weighted_median(c, weights) for c in columns.T]])
    constant = np.ptp(columns, axis=0) == 0
    row = np.zeros((1, columns.shape[1]))
    row[0, constant] = columns[0, constant]
    return row


def _evaluation_rows(rows, at):
    """The rows the effects are computed on: the fit's rows for
    ``"overall"``, else one representative row (the offset and the
    concomitant design taken at the same summary as the covariates)."""
    if at == "overall":
        return rows
    w = rows.weights
    pieces = {
        "exog": _representative(rows.exog, w, at),
        "offset": _representative(rows.offset[:, None], w, at)[:, 0],
        "weights": np.ones(1),
        "index": pd.RangeIndex(1),
    }
    if rows.fixed is not None:
        pieces["fixed"] = _representative(rows.fixed, w, at)
    if rows.concomitant is not None:
        pieces["concomitant"] = _representative(rows.concomitant, w, at)
    if at == "zero":
        pieces["offset"] = np.zeros(1)
    return rows.replace(**pieces)


def _set_column(rows, j, value):
    """The rows with column ``j`` of ``[exog, fixed]`` set to ``value``."""
    p = rows.exog.shape[1]
    if j < p:
        exog = rows.exog.copy()
        exog[:, j] = value
        return rows.replace(exog=exog)
    fixed = rows.fixed.copy()
    fixed[:, j - p] = value
    return rows.replace(fixed=fixed)


def _is_dummy(column):
    values = np.unique(column)
    return values.size == 2 and values[0] == 0.0 and values[1] == 1.0


def get_margeff(res, at="overall", method="dydx", dummy=False):
    """Marginal effects of the mixture mean and of each component's mean.

    Parameters
    ----------
    res : EMGLMResults
        A fit in memory.
    at : {"overall", "mean", "median", "zero"}
        ``"overall"``: the average over the fit's rows (weighted by the
        frequency weights) of each row's effect, the average marginal effect;
        ``"mean"``, ``"median"``: the effect at one row whose covariates
        (and offset and concomitant variables) are at their weighted mean or
        median; ``"zero"``: at zero covariates (constant columns kept, offset
        0), as statsmodels.
    method : {"dydx", "eyex", "dyex", "eydx"}
        ``dy/dx``, the elasticity ``d log y / d log x``, and the
        semi-elasticities ``dy / d log x`` and ``d log y / dx``, transformed
        row by row before averaging (as statsmodels).
    dummy : bool, default False
        Treat 0/1 columns as discrete: the effect is the change from 0 to 1
        (of ``log y`` for ``eydx``) rather than the derivative; not with
        the ``ex`` methods, whose change in ``log x`` a jump from 0 has not.

    Returns
    -------
    MixtureMargins
        ``margeff``, ``margeff_se``, ``summary_frame()``, ``conf_int()``.

    Notes
    -----
    The covariates are the non-constant columns of the component design
    (``exog``, then the shared design of ``fixed=``), as statsmodels
    takes the non-constant columns of ``exog``: a factor's columns are
    separate 0/1 covariates, and a variable that enters several columns
    (``x + I(x**2)``, a spline) gets one effect per column with the others
    held fixed, which is not the effect of the variable; such effects are
    not supported. For row ``i`` and covariate ``j`` (coefficient
    ``beta_kj``: the component's own, or the shared one)

    * component ``k``: ``d mu_ik / d x_ij = h'(eta_ik) beta_kj``;
    * mixture: ``d m_i / d x_ij = sum_k pi_ik h'(eta_ik) beta_kj``, the
      mixing proportions held fixed (a covariate that also enters the
      concomitant model moves them too; that channel is not included).

    Standard errors are by the delta method, ``J V J'`` with ``V =
    res.cov_params()``, the Jacobian ``J`` of the averaged effects in the
    free parameters taken by central differences (step ``eps^(1/3)``,
    accurate to about 1e-10 relative; the effects are smooth in theta).

    Examples
    --------
    >>> margins = get_margeff(res)                        # doctest: +SKIP
    >>> margins.summary_frame().loc["mixture"]            # doctest: +SKIP
    >>> get_margeff(res, at="mean", method="eydx").margeff   # doctest: +SKIP
    """
    if at not in MARGEFF_AT:
        raise ValueError(f"at must be one of {', '.join(map(repr, MARGEFF_AT))}, got {at!r}")
    if method not in MARGEFF_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, MARGEFF_METHODS))}, got {method!r}"
        )
    if dummy and method in ("eyex", "dyex"):
        raise ValueError(
            f"method={method!r} (a change in log x) is not defined for the "
            "discrete change of a 0/1 covariate (dummy=True), as in statsmodels"
        )
    rows = rows_of(res)
    design = rows.design
    names = list(res.model.exog_names) + list(getattr(res.model, "fixed_names", None) or [])
    names = names[: design.shape[1]]
    columns = [j for j in range(design.shape[1]) if np.ptp(design[:, j]) > 0]
    if not columns:
        raise ValueError("the design has no non-constant column to take effects of")
    shared = sorted(
        set(names[j] for j in columns) & set(getattr(res.model, "concomitant_names", None) or [])
    )
    if shared and res.n_components > 1:
        warn(
            f"{', '.join(shared)} also enter(s) the concomitant model: the effects of "
            "the mixture mean hold the mixing proportions fixed, so they are not the "
            "total effects of these covariates",
            UserWarning,
        )
    discrete = {j for j in columns if dummy and _is_dummy(design[:, j])}
    evaluation = _evaluation_rows(rows, at)
    weights = evaluation.weights / evaluation.weights.sum()
    check_delta_family(res, "get_margeff")
    family = res.family
    K = res.n_components
    log_scale = method in ("eyex", "eydx")
    times_x = method in ("eyex", "dyex")

    def means(par, on):
        mu = family.mean(par.eta(on))
        return np.column_stack([np.sum(par.prior(on) * mu, axis=1), mu])

    def effects(theta):
        par = parameters_of(res, theta)
        eta = par.eta(evaluation)
        prior = par.prior(evaluation)
        slope = family.link.inverse_deriv(eta)
        level = means(par, evaluation)  # (n, 1 + K)
        beta = np.vstack([par.coef, np.repeat(par.fixed[:, None], K, axis=1)])  # (p + r, K)
        out = np.empty((1 + K, len(columns)))
        x_values = evaluation.design
        for c, j in enumerate(columns):
            if j in discrete:
                low = means(par, _set_column(evaluation, j, 0.0))
                high = means(par, _set_column(evaluation, j, 1.0))
                change = np.log(high) - np.log(low) if log_scale else high - low
            else:
                comp = slope * beta[j][None, :]
                change = np.column_stack([np.sum(prior * comp, axis=1), comp])
                if log_scale:
                    change = change / level
                if times_x:
                    change = change * x_values[:, [j]]
            out[:, c] = weights @ change
        return out

    theta = res.theta.reindex(res.param_names).to_numpy(dtype=float)
    value = effects(theta)
    jac = central_jacobian(lambda t: effects(t).ravel(), theta)
    cov = jac @ covariance(res) @ jac.T
    quantities = ["mixture"] + list(res.component_names)
    return MixtureMargins(value, cov, quantities, [names[j] for j in columns], at, method, dummy)
