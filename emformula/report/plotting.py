"""Plots of mixture fits: estimates, residual diagnostics, posteriors.

Imported lazily (``emformula.plot_qq`` and the results' ``plot_*`` methods
load it on first use) because the core package does not need matplotlib.
Every function returns the matplotlib Figure it drew on; none calls
``plt.show()``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from ..postestimation.residuals import _as_fit, _glm_results, _mix, residuals
from .known import known_frame, match_components

__all__ = ["plot_params", "plot_diagnostics", "plot_qq", "plot_posterior"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# Residual types already on a unit scale under the model (the dispersion is
# divided out), so a standard normal is their reference.
_STANDARDISED = ("pearson", "deviance", "quantile")


# ------------------------------------------------------------ parameters
def plot_params(results, known=None, alpha=0.05, ax=None, match=True):
    """Estimates with confidence intervals, one group of points per term.

    Each term gets one x position; the components are dodged side by side
    around it, each with its own colour and marker, and drawn as the
    estimate with its Wald ``(1 - alpha)`` interval (``results.conf_int``)
    as error bars. Known (true) values are overlaid at the same positions
    as black crosses labelled ``"known"``. Only the component-specific
    coefficients (``results.params``) are drawn: shared effects and
    concomitant coefficients are in the summary's own tables.

    Parameters
    ----------
    results : EMGLMResults or statsmodels GLMResults
        A GLM is drawn as a single component ``comp1``.
    known : DataFrame, ndarray or list of array_like, optional
        True coefficients. A DataFrame shaped like ``results.params``: its
        columns are matched to the components by name when it has every
        component's name (``comp1``, ...), else by position; its rows by
        term name when its index shares term names with ``params`` (terms it
        lacks are not drawn), else by position. An ndarray of shape
        ``(p, K)`` (or ``(p,)`` when K = 1) is matched by position, a list
        holds one vector of length ``p`` per component.
    alpha : float, default 0.05
        One minus the confidence level of the intervals.
    ax : matplotlib Axes, optional
        Draw into this panel instead of a new figure.
    match : bool, default True
        Mixture components carry arbitrary labels (label switching), so the
        known components are first permuted to the estimated ones: the
        permutation with the smallest sum of squared differences over the
        terms. ``False`` keeps the order given.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from emformula import emglm, datasets, plot_params
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    >>> fig = plot_params(res, known=sim2.params[["comp2", "comp1"]].to_numpy())
    >>> len(fig.axes)
    1
    """
    params, lower, upper = _param_frames(results, alpha)
    terms, names = list(params.index), list(params.columns)
    p, K = params.shape
    truth = None if known is None else known_frame(known, params)
    if truth is not None and match and K > 1:
        truth = match_components(truth, params)
    fig, ax = _figure_and_axes(ax, figsize=(max(4.0, 0.9 * p * max(K, 2) / 2 + 2), 4))

    positions = np.arange(p, dtype=float)
    width = 0.6
    offsets = (np.arange(K) - (K - 1) / 2.0) * (width / K if K > 1 else 0.0)
    for k, name in enumerate(names):
        x = positions + offsets[k]
        est = params[name].to_numpy()
        yerr = np.vstack([est - lower[name].to_numpy(), upper[name].to_numpy() - est])
        ax.errorbar(
            x,
            est,
            yerr=yerr,
            fmt=_MARKERS[k % len(_MARKERS)],
            color=f"C{k}",
            capsize=3,
            markersize=6,
            label=name,
        )
    if truth is not None:
        # One artist for every known value, so the legend has one "known".
        xs = (positions[:, None] + offsets[None, :]).ravel()
        ax.plot(
            xs,
            truth.to_numpy().ravel(),
            linestyle="none",
            marker="x",
            color="black",
            markersize=8,
            markeredgewidth=2,
            zorder=5,
            label="known",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(positions)
    ax.set_xticklabels(terms, rotation=45 if p > 6 else 0, ha="right" if p > 6 else "center")
    ax.set_xlim(-0.5, p - 0.5)
    ax.set_ylabel("estimate")
    ax.set_title(f"Estimates with {100 * (1 - alpha):g}% confidence intervals")
    ax.legend()
    return fig


def _param_frames(results, alpha):
    """``params``, lower and upper limits as (terms x components) frames."""
    glm = _glm_results(results)
    if glm is not None:
        params = pd.Series(np.asarray(glm.params), index=glm.model.exog_names)
        ci = np.asarray(glm.conf_int(alpha))
        return (
            params.to_frame("comp1"),
            pd.DataFrame({"comp1": ci[:, 0]}, index=params.index),
            pd.DataFrame({"comp1": ci[:, 1]}, index=params.index),
        )
    params = results.params
    ci = results.conf_int(alpha)
    lower = pd.DataFrame({c: ci[(c, "lower")] for c in params.columns}, index=params.index)
    upper = pd.DataFrame({c: ci[(c, "upper")] for c in params.columns}, index=params.index)
    return params, lower, upper


# ----------------------------------------------------------- diagnostics
def plot_diagnostics(results, type="deviance", random_state=None):
    """Four residual panels, like R's ``plot`` of a glm.

    Top left, residuals against the fitted mixture mean ``sum_k pi_k mu_k``
    with a lowess smooth; top right, a normal QQ plot (as :func:`plot_qq`);
    bottom left, scale-location: ``sqrt(|standardised residual|)`` against the
    fitted mean with a lowess smooth; bottom right, a histogram of the
    residuals (with the standard normal density for standardised types).

    Pearson, deviance and quantile residuals are already standardised (the
    dispersion is divided out; see :func:`emformula.residuals.residuals`) and
    are used as they are; response residuals are divided by their standard
    deviation. Unlike R, no leverage correction is made: a mixture has no
    hat matrix. The fitted axis is logarithmic for count families (poisson,
    negative binomial) when the fitted means span more than a factor of 10.

    Parameters
    ----------
    results : EMGLMResults or statsmodels GLMResults
    type : {"deviance", "pearson", "quantile", "response"}
        Residual type (see :func:`emformula.residuals.residuals`).
    random_state : int, numpy Generator or None
        Seed of quantile residuals of discrete families.

    Returns
    -------
    matplotlib.figure.Figure
        With four axes.

    Examples
    --------
    >>> from emformula import emglm, datasets, plot_diagnostics
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    >>> fig = plot_diagnostics(res, type="quantile", random_state=0)
    >>> len(fig.axes)
    4
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    resid = residuals(results, type=type, random_state=random_state).to_numpy()
    fit = _as_fit(results)
    fitted = _mix(fit.mu, fit.prior)
    ok = np.isfinite(resid) & np.isfinite(fitted)
    resid, fitted = resid[ok], fitted[ok]
    if type in _STANDARDISED:
        standardised = resid
    else:
        sd = resid.std(ddof=1) if resid.size > 1 else 1.0
        standardised = resid / (sd if sd > 0 else 1.0)
    log_x = (
        fit.family.is_count
        and fitted.size
        and fitted.min() > 0
        and fitted.max() / fitted.min() > 10
    )

    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
    (ax_fit, ax_qq), (ax_sl, ax_hist) = axes
    spread = np.sqrt(np.abs(standardised))
    for ax, values, label in (
        (ax_fit, resid, f"{type} residual"),
        (ax_sl, spread, "sqrt(|standardised residual|)"),
    ):
        ax.scatter(fitted, values, s=8, alpha=0.5, color="C0", edgecolors="none")
        # Smooth on the axis as drawn: on a log axis, a lowess of the raw
        # means would use the few largest means for most of the picture.
        where = np.log(fitted) if log_x else fitted
        if where.size > 3 and np.ptp(where) > 0:
            smooth = lowess(values, where, frac=2.0 / 3.0, it=3, delta=0.01 * np.ptp(where))
            ax.plot(
                np.exp(smooth[:, 0]) if log_x else smooth[:, 0],
                smooth[:, 1],
                color="C3",
                linewidth=1.5,
            )
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel("fitted mixture mean")
        ax.set_ylabel(label)
    ax_fit.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax_fit.set_title("Residuals vs fitted")
    ax_sl.set_title("Scale-location")

    _draw_qq(ax_qq, resid, type)

    ax_hist.hist(resid, bins="auto", density=True, color="C0", alpha=0.7)
    if type in _STANDARDISED:
        grid = np.linspace(min(resid.min(), -3.0), max(resid.max(), 3.0), 200)
        ax_hist.plot(grid, stats.norm.pdf(grid), color="C3", linewidth=1.5, label="N(0, 1)")
        ax_hist.legend()
    ax_hist.set_xlabel(f"{type} residual")
    ax_hist.set_ylabel("density")
    ax_hist.set_title("Histogram of residuals")
    fig.suptitle(f"{_describe(results, fit)}: {type} residuals")
    fig.tight_layout()
    return fig


def plot_qq(results, type="quantile", ax=None, random_state=None):
    """Normal QQ plot of residuals.

    The sorted residuals against the standard normal quantiles at R's
    ``ppoints`` (``(i - a) / (n + 1 - 2a)``, ``a = 3/8`` for ``n <= 10`` and
    ``1/2`` otherwise). The reference line is ``y = x`` for quantile
    residuals, which are exactly standard normal under the model, and R's
    ``qqline`` (through the quartiles) for the other types, whose
    distribution is normal only approximately, if at all.

    Parameters
    ----------
    results : EMGLMResults or statsmodels GLMResults
    type : {"quantile", "deviance", "pearson", "response"}
        Residual type (see :func:`emformula.residuals.residuals`).
    ax : matplotlib Axes, optional
        Draw into this panel instead of a new figure.
    random_state : int, numpy Generator or None
        Seed of quantile residuals of discrete families: the points are the
        residuals ``residuals(results, type, random_state=random_state)``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from emformula import emglm, datasets, plot_qq
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    >>> fig = plot_qq(res, random_state=0)
    >>> len(fig.axes)
    1
    """
    resid = residuals(results, type=type, random_state=random_state).to_numpy()
    fig, ax = _figure_and_axes(ax, figsize=(5, 5))
    _draw_qq(ax, resid[np.isfinite(resid)], type)
    return fig


def _draw_qq(ax, resid, type):
    """Points (theoretical, sorted residual) and a reference line."""
    ordered = np.sort(resid)
    n = ordered.size
    a = 3.0 / 8.0 if n <= 10 else 0.5
    theory = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.plot(
        theory,
        ordered,
        linestyle="none",
        marker="o",
        markersize=3,
        alpha=0.6,
        color="C0",
        label="residuals",
    )
    if type == "quantile":
        slope, intercept, what = 1.0, 0.0, "y = x"
    else:
        q_data = np.quantile(ordered, [0.25, 0.75]) if n else np.array([0.0, 1.0])
        q_norm = stats.norm.ppf([0.25, 0.75])
        slope = (q_data[1] - q_data[0]) / (q_norm[1] - q_norm[0])
        intercept, what = q_data[0] - slope * q_norm[0], "quartile line"
    ends = np.array([theory[0], theory[-1]]) if n else np.array([-3.0, 3.0])
    ax.plot(ends, intercept + slope * ends, color="C3", linewidth=1.2, label=what)
    ax.set_xlabel("standard normal quantile")
    ax.set_ylabel(f"{type} residual")
    ax.set_title("Normal Q-Q")


# ----------------------------------------------------------- posteriors
def plot_posterior(results, bins=20, eps=1e-4, root=True):
    """Histograms of the posterior probabilities, one panel per component.

    As flexmix's ``plot`` of a fit (a rootogram): for component ``k`` the
    histogram of ``tau_ik`` over the rows, on ``bins`` equal bins of [0, 1],
    leaving out rows with ``tau_ik < eps`` (flexmix's default ``eps =
    1e-4``): those are the rows that clearly belong elsewhere, and their
    spike at 0 would flatten every other bar. Counts are weighted by the
    frequency weights and, with ``root=True``, drawn as square roots so that
    small bars stay visible. With ``groups=`` each group is counted once.
    A well separated component shows mass near 1
    (and near 0, below the cut); mass in the middle means rows the mixture
    cannot attribute.

    Parameters
    ----------
    results : EMGLMResults
    bins : int, default 20
    eps : float, default 1e-4
        Posterior probabilities below it are not counted.
    root : bool, default True
        Bar heights are ``sqrt(count)`` (else the counts).

    Returns
    -------
    matplotlib.figure.Figure
        With one axes per component.

    Examples
    --------
    >>> from emformula import emglm, datasets, plot_posterior
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    >>> fig = plot_posterior(res)
    >>> len(fig.axes)
    2
    """
    if _glm_results(results) is not None:
        raise TypeError("plot_posterior needs a mixture fit (EMGLMResults): a GLM has no posterior")
    bins = int(bins)
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    # One posterior per unit: with groups=, a group counts once, not per row.
    names = list(results.posterior.columns)
    posterior = pd.DataFrame(results._unit_posterior, columns=names)
    weights = np.asarray(results.model.data.unit_weights, dtype=float)
    K = len(names)
    ncols = min(K, 4)
    nrows = math.ceil(K / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, sharey=True, squeeze=False, figsize=(3.2 * ncols, 3.0 * nrows)
    )
    for extra in axes.ravel()[K:]:
        fig.delaxes(extra)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for k, (ax, name) in enumerate(zip(axes.ravel(), names)):
        tau = posterior[name].to_numpy()
        keep = tau >= eps
        counts, _ = np.histogram(tau[keep], bins=edges, weights=weights[keep])
        heights = np.sqrt(counts) if root else counts
        ax.bar(
            edges[:-1],
            heights,
            width=np.diff(edges),
            align="edge",
            color=f"C{k}",
            edgecolor="white",
            linewidth=0.5,
        )
        ax.set_xlim(-0.04, 1.04)
        ax.set_title(f"{name} (prior {results.prior[name]:.3f})")
        ax.set_xlabel("posterior probability")
        if k % ncols == 0:
            ax.set_ylabel("sqrt(count)" if root else "count")
    fig.suptitle(f"Posterior probabilities (rows with posterior < {eps:g} left out)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------- helpers
def _figure_and_axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _describe(results, fit):
    if _glm_results(results) is not None:
        return f"GLM ({fit.family.name})"
    return f"{fit.family.name} mixture, K={fit.n_components}"
