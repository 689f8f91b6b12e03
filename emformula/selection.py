"""Choosing the number of components: information criteria and the
parametric bootstrap likelihood-ratio test."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic.utils.context import capture_context

from ._runtime.parallel import map_tasks, show_progress
from ._typing import DataLike, FamilyLike, RandomState
from .model import DEFAULT_N_INIT, EMGLM, _check_positive_int, _seed_sequence, model_spec
from .postestimation.simulation import simulate
from .specification import DEFAULT_FAMILY, DEFAULT_K, MixtureSpec
from .warnings import ConvergenceWarning, EstimationWarning, LocalMaximumWarning

__all__ = ["select_k", "SelectKResult", "bootstrap_lrt", "BootstrapLRT", "simulate"]

_CRITERIA = ("aic", "bic", "icl")


class SelectKResult:
    """What :func:`select_k` returns.

    Attributes
    ----------
    table : DataFrame
        One row per K: log-likelihood, free parameters, AIC, BIC, ICL,
        converged, iterations.
    fits : dict
        K -> EMGLMResults.
    criterion : str
    best_k : int
    best : EMGLMResults
        The fit with the smallest criterion.
    """

    def __init__(self, table, fits, criterion):
        self.table = table
        self.fits = fits
        self.criterion = criterion
        self.best_k = int(table[criterion].idxmin())
        self.best = fits[self.best_k]

    def __repr__(self):
        return (
            f"{self.table.to_string(float_format=lambda v: f'{v:.3f}')}\n"
            f"chosen by {self.criterion.upper()}: K = {self.best_k}"
        )

    def _repr_html_(self):
        choice = f"<p>chosen by {self.criterion.upper()}: K = {self.best_k}</p>"
        return self.table.to_html() + choice

    def plot(self, ax=None):
        """AIC, BIC and ICL against K, the chosen K marked.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .report.plotting import _figure_and_axes

        fig, ax = _figure_and_axes(ax, (6, 4))
        for name, marker in zip(_CRITERIA, "osd"):
            ax.plot(self.table.index, self.table[name], marker=marker, label=name.upper())
        ax.axvline(self.best_k, color="grey", linestyle=":", label=f"chosen K = {self.best_k}")
        ax.set_xlabel("K (components)")
        ax.set_ylabel("criterion (smaller is better)")
        ax.set_xticks(list(self.table.index))
        ax.legend()
        return fig


def _progress(items, progress, desc):
    """``items``, with a progress bar where :func:`show_progress` says so."""
    if not show_progress(progress):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


#: Keywords of EMGLM.fit that select_k and bootstrap_lrt pass on.
_FIT_KEYWORDS = ("start", "max_iter", "tol", "scale_floor", "cov_type", "polish")


def _split_fit_keywords(keywords, fit_kwargs):
    """``(model keywords, fit keywords)``: the fit's options may come as
    keywords beside the model's (as they always have) or as ``fit_kwargs``."""
    fit = dict(fit_kwargs or {})
    model = {}
    for name, value in keywords.items():
        (fit if name in _FIT_KEYWORDS else model)[name] = value
    return model, fit


def _fit_quietly(model, local_maxima=True, **kwargs):
    """Fit without degenerate-fit and convergence warnings (expected for a
    too-large K), but with :class:`LocalMaximumWarning`, which says the
    reported maximum may not be the best (unless ``local_maxima`` is False:
    the bootstrap's many refits of simulated data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("default" if local_maxima else "ignore", LocalMaximumWarning)
        return model.fit(_inference=False, **kwargs)


def select_k(
    formula: str,
    data: DataLike,
    family: FamilyLike = DEFAULT_FAMILY,
    K: Iterable[int] = range(1, 6),
    *,
    n_init: int = DEFAULT_N_INIT,
    criterion: str = "bic",
    random_state: RandomState = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    spec: MixtureSpec | None = None,
    fit_kwargs: dict | None = None,
    **model: Any,
) -> SelectKResult:
    """Fit every K and choose one by an information criterion.

    Each K is fitted with the default start strategy of :meth:`EMGLM.fit`
    (``start="auto"``), as flexmix's ``stepFlexmix`` refits each K from
    several starts; the values of K are fitted in increasing order and each
    fit also starts from splits of the previous K's components (one split
    always runs in full); with constant proportions a larger K never ends
    below the smaller one, and with a concomitant model a
    :class:`LocalMaximumWarning` says if it does. The table's ``n_best``
    column counts the full runs that reached each K's best log-likelihood.

    Parameters
    ----------
    formula, data, family, spec
        As in :func:`emformula.emglm` (``spec.K`` is not used).
    **model
        The model keywords of :func:`emformula.emglm` (``weights``,
        ``offset``, ``exposure``, ``trials``, ``link``, ``na_action``,
        ``context``, ``concomitant``, ``fixed``, ``equal_scale``,
        ``groups``, ``cov_groups``): the criteria count their parameters;
        with ``groups`` the BIC's sample size is the number of groups.
    K : iterable of int, default range(1, 6)
    n_init : int, default 10
        Full EM runs per K.
    criterion : {"bic", "aic", "icl"}
    random_state : int, Generator or None
    n_jobs : int, default 1
        Processes for the starts of each K (-1: every core); the result does
        not depend on it.
    progress : bool or None
        Progress bar over K (``None``: on a terminal or in a notebook, not under CI).
    fit_kwargs : dict, optional
        Passed to :meth:`EMGLM.fit` (``max_iter``, ``tol``, ``scale_floor``,
        ``cov_type``, ``polish``); these may also be given as keywords.

    Returns
    -------
    SelectKResult

    Examples
    --------
    >>> from emformula import select_k, datasets
    >>> sim2 = datasets.load_sim2()
    >>> choice = select_k(sim2.formula, sim2.data, "poisson", K=[1, 2, 3], random_state=1)
    >>> choice.best_k
    2
    """
    criterion = str(criterion).lower()
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(_CRITERIA)}, got {criterion!r}")
    ks = sorted({int(_check_positive_int(k, "K")) for k in K})
    if not ks:
        raise ValueError("K must list at least one number of components")
    n_init = _check_positive_int(n_init, "n_init")
    keywords, fit_kwargs = _split_fit_keywords(model, fit_kwargs)
    spec = model_spec("select_k", family, DEFAULT_K, spec, keywords)
    _refuse_family_list(spec, "select_k")
    spec = spec.replace(K=min(ks))
    if spec.context is None:
        spec = spec.replace(context=capture_context(1))
    smallest = EMGLM.from_formula(formula, data, spec=spec)
    models = {k: smallest.with_k(k) for k in ks}  # every K checked before any fit
    seeds = _seed_sequence(random_state).spawn(len(ks))
    fits: list = []
    previous: dict = {}
    for k, seed in zip(_progress(ks, progress, "select_k"), seeds):
        related = {"previous": previous.get(k - 1)}
        fit = _fit_quietly(
            models[k],
            n_init=n_init,
            random_state=seed,
            n_jobs=n_jobs,
            _related=related,
            **fit_kwargs,
        )
        previous[k] = fit.estimates
        fits.append(fit)
    rows = [
        {
            "K": k,
            "llf": r.llf,
            "df": r.df_model,
            "aic": r.aic,
            "bic": r.bic,
            "icl": r.icl,
            "converged": r.converged,
            "n_iter": r.n_iter,
            "n_best": r.n_best,
        }
        for k, r in zip(ks, fits)
    ]
    table = pd.DataFrame(rows).set_index("K")
    return SelectKResult(table, dict(zip(ks, fits)), criterion)


def _refuse_family_list(spec, caller):
    """A list of families fixes K (one component each): there is no other K
    of the same model to compare with."""
    family = spec.family
    if isinstance(family, (list, tuple)) or getattr(family, "n_members", None):
        raise ValueError(
            f"{caller} compares numbers of components of one family; a list "
            "of families fixes K (one component per family): fit the models "
            "you want to compare and put them side by side with compare()"
        )


# ------------------------------------------------------------- bootstrap
class BootstrapLRT:
    """Parametric bootstrap likelihood-ratio test of K0 against K1 components.

    Attributes
    ----------
    statistic : float
        ``2 (llf_K1 - llf_K0)`` on the data.
    pvalue : float
        ``(1 + #{null >= statistic}) / (n_boot + 1)``.
    null_distribution : ndarray
        The statistic on each bootstrap sample (simulated from the K0 fit).
    fit0, fit1 : EMGLMResults
    """

    def __init__(self, statistic, null_distribution, fit0, fit1):
        self.statistic = float(statistic)
        self.null_distribution = np.asarray(null_distribution)
        self.pvalue = float(
            (1 + np.sum(self.null_distribution >= self.statistic))
            / (self.null_distribution.size + 1)
        )
        self.fit0, self.fit1 = fit0, fit1

    @property
    def k0(self):
        return self.fit0.n_components

    @property
    def k1(self):
        return self.fit1.n_components

    def __repr__(self):
        return (
            f"Bootstrap LR test of K={self.k0} against K={self.k1}: "
            f"LR = {self.statistic:.3f}, p = {self.pvalue:.4g} "
            f"({self.null_distribution.size} bootstrap samples)"
        )


def _with_response(model, endog):
    """A fitted model of the data with a simulated response in place of the
    observed one. The model was built (and checked) through the constructor
    once; a replicate only swaps the response, which :func:`simulate` draws
    from the model's own family, so nothing needs checking again (and the
    constructor's warnings, such as a link outside the family's domain, are
    not repeated for every replicate)."""
    clone = copy.copy(model)
    clone.data = replace(model.data, endog=endog)
    return clone


def _bootstrap_task(shared, seed):
    fit0, fit1, n_init, fit_kwargs = shared
    k0, k1 = fit0.n_components, fit1.n_components
    rng = np.random.default_rng(seed)
    y = simulate(fit0, rng)
    seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(2)
    # The data's own fits are warm starts for each replicate's, and the
    # replicate's K0 fit is split for its K1 fit (when K1 = K0 + 1), which
    # keeps the statistic from going negative through a poor K1 start.
    null = _fit_quietly(
        _with_response(fit0.model, y),
        False,
        n_init=n_init,
        random_state=seeds[0],
        _related={"extra": [("fit to the data", fit0.estimates)], "nested": False},
        **fit_kwargs,
    )
    related = {"extra": [("fit to the data", fit1.estimates)], "nested": False}
    if k1 == k0 + 1:
        related["previous"] = null.estimates
    alt = _fit_quietly(
        _with_response(fit1.model, y),
        False,
        n_init=n_init,
        random_state=seeds[1],
        _related=related,
        **fit_kwargs,
    )
    return 2.0 * (alt.llf - null.llf)


def bootstrap_lrt(
    formula: str,
    data: DataLike,
    family: FamilyLike = DEFAULT_FAMILY,
    K0: int = 1,
    K1: int | None = None,
    *,
    n_boot: int = 99,
    n_init: int = 3,
    random_state: RandomState = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    spec: MixtureSpec | None = None,
    fit_kwargs: dict | None = None,
    **model: Any,
) -> BootstrapLRT:
    """Parametric bootstrap likelihood-ratio test of K0 against K1 components.

    The likelihood ratio of mixtures with different K has no chi-squared
    limit (the null sits on the boundary of the parameter space), so its
    distribution is simulated: ``n_boot`` responses are drawn from the K0
    fit (McLachlan 1987; flexmix's ``LR_test``, mixtools' ``boot.comp``),
    both models are refitted to each and the statistic recomputed.

    Parameters
    ----------
    formula, data, family, spec
        As in :func:`emformula.emglm` (``spec.K`` is not used).
    **model
        The model keywords of :func:`emformula.emglm` (``weights``,
        ``offset``, ``exposure``, ``trials``, ``link``, ``na_action``,
        ``context``, ``concomitant``, ``fixed``, ``equal_scale``,
        ``groups``). Bootstrap responses are drawn per group and from each
        unit's own mixing proportions. Frequency weights other than 1 are
        refused: a row of weight w stands for w observations, each with its
        own draw (expand the data to one row per observation).
    fit_kwargs : dict, optional
        Passed to :meth:`EMGLM.fit` (``max_iter``, ``tol``, ``scale_floor``,
        ``polish``); these may also be given as keywords.
    K0 : int, default 1
    K1 : int, default K0 + 1
    n_boot : int, default 99
    n_init : int, default 3
        Starts run to convergence per bootstrap fit (the default strategy
        of :meth:`EMGLM.fit`, with the fits to the data as further starts);
        the fits to the data themselves use at least the default 10.
    random_state : int, Generator or None
    n_jobs : int, default 1
        Processes across bootstrap samples; the result does not depend on it.
    progress : bool or None

    Returns
    -------
    BootstrapLRT

    Examples
    --------
    >>> from emformula import bootstrap_lrt, datasets
    >>> sim2 = datasets.load_sim2()
    >>> test = bootstrap_lrt(sim2.formula, sim2.data, "poisson", 1, 2, n_boot=19,
    ...                      random_state=0)
    >>> test.pvalue
    0.05
    """
    K0 = _check_positive_int(K0, "K0")
    K1 = K0 + 1 if K1 is None else _check_positive_int(K1, "K1")
    if K1 <= K0:
        raise ValueError(f"K1 must exceed K0, got K0={K0}, K1={K1}")
    n_boot = _check_positive_int(n_boot, "n_boot")
    n_init = _check_positive_int(n_init, "n_init")
    keywords, fit_kwargs = _split_fit_keywords(model, fit_kwargs)
    spec = model_spec("bootstrap_lrt", family, DEFAULT_K, spec, keywords)
    _refuse_family_list(spec, "bootstrap_lrt")
    spec = spec.replace(K=K0)
    if spec.context is None:
        spec = spec.replace(context=capture_context(1))
    null_model = EMGLM.from_formula(formula, data, spec=spec)
    if not np.all(null_model.data.weights == 1.0):
        raise ValueError(
            "bootstrap_lrt simulates one response per row, but a row of frequency weight w "
            "stands for w observations, each with its own draw: expand the data to one row "
            "per observation (weights of 1)"
        )
    seed0, seed1, seed_boot = _seed_sequence(random_state).spawn(3)
    n_data = max(n_init, DEFAULT_N_INIT)
    fit0 = _fit_quietly(null_model, n_init=n_data, random_state=seed0, **fit_kwargs)
    fit1 = _fit_quietly(
        null_model.with_k(K1),
        n_init=n_data,
        random_state=seed1,
        _related={"previous": fit0.estimates} if K1 == K0 + 1 else None,
        **fit_kwargs,
    )
    statistic = 2.0 * (fit1.llf - fit0.llf)
    null = map_tasks(
        _bootstrap_task,
        seed_boot.spawn(n_boot),
        shared=(fit0, fit1, n_init, fit_kwargs),
        n_jobs=n_jobs,
        progress=progress,
        desc="bootstrap",
    )
    return BootstrapLRT(statistic, null, fit0, fit1)
