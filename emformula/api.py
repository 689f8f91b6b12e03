"""Public entry points: :func:`emglm`, :func:`small_em`, :func:`select_best`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from formulaic.utils.context import capture_context

from ._runtime.parallel import map_tasks
from ._typing import DataLike, FamilyLike, RandomState
from .engine import em as _em
from .engine.starts import candidate_start
from .formula.dask_design import is_dask_collection
from .model import DEFAULT_MAX_ITER, DEFAULT_N_INIT, DEFAULT_TOL, EMGLM, _seed_sequence, model_spec
from .results import EMGLMResults
from .specification import DEFAULT_FAMILY, DEFAULT_K, MixtureSpec

__all__ = ["emglm", "small_em", "select_best", "WarmupTrials"]


def emglm(
    formula: str,
    data: DataLike,
    family: FamilyLike = DEFAULT_FAMILY,
    K: int = DEFAULT_K,
    *,
    start: Any = "auto",
    n_init: int = DEFAULT_N_INIT,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    random_state: RandomState = None,
    scale_floor: float | None = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    cov_type: str = "louis",
    spec: MixtureSpec | None = None,
    **model: Any,
) -> EMGLMResults:
    """Fit a finite mixture of generalized linear models from a formula.

    The model is ``f(y) = sum_k pi_k f_k(y; mu_k, phi_k)`` with
    ``g(mu_k) = x' b_k + offset``, fitted by maximum likelihood with EM.
    Optionally the mixing proportions depend on covariates (``concomitant``),
    some effects are shared by all components (``fixed``, ``equal_scale``)
    and rows come in groups that share a component (``groups``).

    Parameters
    ----------
    formula : str
        Two-sided formulaic formula: ``"y ~ x1 + C(g) + np.log(x2)"``,
        ``"y ~ 0 + x"`` without intercept, ``"successes + failures ~ x"``
        for binomial counts.
    data : pandas.DataFrame or dict of columns
        Never modified. Numbers of any dtype (numpy, nullable, pyarrow,
        ``Decimal``) are numbers, their missing values missing rows; strings
        of any storage and categoricals are factors (unused levels dropped);
        dates and durations are refused (convert them to numbers). See
        README, "Data types".
    family : str or statsmodels family, default "poisson"
        ``"poisson"``, ``"binomial"``, ``"gaussian"``, ``"gamma"``,
        ``"inverse_gaussian"``, ``"negative_binomial"`` or a statsmodels
        family instance with any link it allows.
    K : int, default 2
        Number of components.
    weights, offset, exposure, trials : str or array_like, optional
        Column names or arrays (one value per row of ``data``): frequency
        weights, offset, exposure (``log(exposure)`` joins the offset) and
        the binomial number of trials of a proportion response.
    link : str, optional
        A link for a family given by name.
    start : "auto", "random", results, or dict
        See :meth:`EMGLM.fit`: by default candidate starts of several kinds
        are screened by short EM runs and the best ``n_init`` run to
        convergence, with starts from the nested models (effects shared)
        and from the K-1 fit; :func:`select_best` returns a suitable dict.
    n_init : int, default 10
        Starts run to convergence; the best log-likelihood wins.
        ``results.starts`` records them all.
    max_iter : int, default 5000
    tol : float, default 1e-10
        Relative change of the log-likelihood at convergence.
    random_state : int, numpy Generator or None
        Same value, same result.
    na_action : {"drop", "raise"}
        Rows with missing values are dropped with a warning, or refused.
    scale_floor : float, optional
        Smallest dispersion a component may take.
    context : mapping, optional
        Names the formula may use; by default the caller's namespace. As in
        statsmodels and formulaic, the Python in a formula's terms
        (``I(...)``, ``np.log(x)``, ``f(x)``) is evaluated with ``eval`` in
        that namespace, with Python's builtins: a formula can run any code.
        Never pass a formula from an untrusted source to this function; the
        ``emformula`` command evaluates only column names, numpy functions
        and formulaic's transforms unless given ``--allow-python``
        (``emformula.formula.design.check_safe_formula`` is that check).
    n_jobs : int, default 1
        Processes for the starts (-1: every core); results do not depend on it.
    progress : bool or None
        Progress bar over the starts (``None``: on a terminal or in a notebook, not under CI).
    concomitant : str, optional
        One-sided formula of the mixing proportions, ``"~ z"``: a
        multinomial logit ``log(pi_ik / pi_i1) = w_i' gamma_k`` with
        component 1 as the reference (flexmix's ``FLXPmultinom``). Without
        it the proportions are constant.
    fixed : str, optional
        One-sided formula of effects shared by all components, ``"~ x2"``
        (flexmix's ``FLXMRglmfix(fixed=)``): one coefficient each. Its
        intercept is dropped when ``formula`` has one.
    equal_scale : bool, default False
        One dispersion for all components (flexmix's ``varFix = TRUE``);
        ignored by families without a dispersion.
    groups : str or array_like, optional
        A column (or labels) grouping the rows: all rows of a group belong to
        the same component (flexmix's ``y ~ x | id``). Posteriors are per
        group; weights and concomitant variables must be constant within a
        group; the BIC counts groups.
    cov_type : {"louis", "robust", "cluster"}, default "louis"
        Covariance of the estimates: Louis' observed information, a sandwich
        with per-unit scores (rows, or groups), or clustered by
        ``cov_groups``. See :meth:`EMGLM.fit`.
    cov_groups : str or array_like, optional
        A column (or labels) of clusters for ``cov_type="cluster"``; it may
        also be given for a later ``results.with_cov_type("cluster")``.
    spec : MixtureSpec, optional
        The model keywords above (``family`` and ``K`` too) as one object,
        to reuse across fits; keywords given as well override it.

    The model keywords (``weights`` ... ``cov_groups``, ``link``,
    ``na_action``, ``context``) are those of
    :class:`~emformula.specification.MixtureSpec`, which every entry point
    shares; a misspelt one is refused by name.

    Returns
    -------
    EMGLMResults

    Examples
    --------
    >>> from emformula import emglm, datasets
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm("y ~ 0 + V1 + V2 + V3 + V4 + V5", sim2.data, family="poisson",
    ...             K=2, random_state=1)
    >>> res.params.round(1)                                   # doctest: +SKIP
        comp1  comp2
    V1   -1.6   -1.4
    ...

    Mixing proportions that depend on ``z``, groups of rows, robust errors:

    >>> res = emglm("y ~ x", df, K=2, concomitant="~ z", groups="id",
    ...             cov_type="robust")                        # doctest: +SKIP
    >>> res.predict(new_df, type="prior")                     # doctest: +SKIP
    """
    spec = model_spec("emglm", family, K, spec, model)
    if spec.context is None:
        spec = spec.replace(context=capture_context(1))
    if is_dask_collection(data):
        # Out of core: the engine's EM loop, with the sums of every partition.
        from .dask_model import fit_dask_results

        return fit_dask_results(
            formula,
            data,
            spec,
            start=start,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
            scale_floor=scale_floor,
            cov_type=cov_type,
        )
    mixture = EMGLM.from_formula(formula, data, spec=spec)
    return mixture.fit(
        start=start,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        scale_floor=scale_floor,
        n_jobs=n_jobs,
        progress=progress,
        cov_type=cov_type,
    )


class WarmupTrials:
    """Short EM runs from random starts (what :func:`small_em` returns).

    Attributes
    ----------
    table : DataFrame
        One row per trial: ``trial``, ``llf`` (log-likelihood on the full
        data), ``n_iter``, the mixing proportions and coefficients, and
        ``kind`` (random partition or random regression lines).
    starts : list of dict
        Each trial's estimates, usable as ``emglm(start=...)``.
    """

    def __init__(self, table, starts):
        self.table = table
        self.starts = starts

    def __repr__(self):
        return f"WarmupTrials({len(self.starts)} trials)\n{self.table.to_string()}"

    def _repr_html_(self):
        return self.table.to_html()

    def __len__(self):
        return len(self.starts)


def small_em(
    formula: str,
    data: DataLike,
    family: FamilyLike = DEFAULT_FAMILY,
    K: int = DEFAULT_K,
    *,
    repeats: int = 20,
    max_iter: int = 5,
    sample_size: int | None = None,
    random_state: RandomState = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    spec: MixtureSpec | None = None,
    **model: Any,
) -> WarmupTrials:
    """Short EM trials from random starts: the warm-up of the original package.

    The trials are the screening candidates of the default start strategy
    (:mod:`emformula.engine.starts`): random partitions and random regression
    lines in turn. Each runs ``max_iter`` EM iterations; with ``sample_size``
    each trial runs on its own random subsample of the rows (cheap on large
    data) and its log-likelihood is then scored on the full data, so trials
    are comparable. ``emglm``'s default start (``"auto"``) already screens
    such trials and adds starts that cannot end below the nested models; the
    warm-up is for users who want to see the trials.

    Parameters
    ----------
    formula, data, family, K, spec
        As in :func:`emglm`.
    **model
        The model keywords of :func:`emglm` (``weights``, ``offset``,
        ``exposure``, ``trials``, ``link``, ``na_action``, ``context``,
        ``concomitant``, ``fixed``, ``equal_scale``, ``groups``).
    repeats : int, default 20
        Number of trials.
    max_iter : int, default 5
        EM iterations per trial.
    sample_size : int, optional
        Rows per trial (drawn without replacement); with ``groups``, groups
        per trial.
    random_state : int, numpy Generator or None
    n_jobs : int, default 1
        Processes for the trials (-1: every core); results do not depend on it.
    progress : bool or None
        Progress bar (``None``: on a terminal or in a notebook, not under CI).

    Returns
    -------
    WarmupTrials
        Its ``table`` lists the trials; :func:`select_best` picks the best.

    Examples
    --------
    >>> from emformula import small_em, select_best, emglm, datasets
    >>> sim2 = datasets.load_sim2()
    >>> f = "y ~ 0 + V1 + V2 + V3 + V4 + V5"
    >>> warm = small_em(f, sim2.data, "poisson", K=2, repeats=5, random_state=1)
    >>> res = emglm(f, sim2.data, "poisson", K=2, start=select_best(warm))
    """
    spec = model_spec("small_em", family, K, spec, model)
    if spec.context is None:
        spec = spec.replace(context=capture_context(1))
    if is_dask_collection(data):
        # Warm-up trials are short and many: run them in memory on a random
        # sample of rows; their starts then serve emglm on all of the data.
        from .backends.dask import sample_frame

        data = sample_frame(data, random_state)
    mixture = EMGLM.from_formula(formula, data, spec=spec)
    return _warmup(
        mixture,
        repeats=repeats,
        max_iter=max_iter,
        sample_size=sample_size,
        random_state=random_state,
        n_jobs=n_jobs,
        progress=progress,
    )


def _warmup(model, *, repeats, max_iter, sample_size, random_state, n_jobs=1, progress=None):
    data = model.data
    n = data.n_units
    if sample_size is not None and not (1 <= int(sample_size) <= n):
        what = "groups" if data.groups is not None else "rows"
        raise ValueError(
            f"sample_size must be between 1 and the number of {what} ({n}), got {sample_size}"
        )
    if int(repeats) < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    floor = model._scale_floor(None)
    seeds = _seed_sequence(random_state).spawn(int(repeats))
    shared = (
        data,
        model.K,
        int(max_iter),
        None if sample_size is None else int(sample_size),
        floor,
    )
    tasks = [(_TRIAL_KINDS[i % 2], seed) for i, seed in enumerate(seeds)]
    results = map_tasks(
        _warmup_trial,
        tasks,
        shared=shared,
        n_jobs=n_jobs,
        progress=progress,
        desc=f"warm-up trials (K={model.K})",
    )
    rows, starts = [], []
    components = [f"comp{k + 1}" for k in range(model.K)]
    for trial, (est, llf, n_iter) in enumerate(results, start=1):
        row = {"trial": trial, "llf": llf, "n_iter": n_iter}
        for k in range(model.K):
            row[f"prior_comp{k + 1}"] = est.prior[k]
        for k in range(model.K):
            for j, name in enumerate(model.exog_names):
                row[f"comp{k + 1}:{name}"] = est.coef[j, k]
        row["kind"] = _TRIAL_KINDS[(trial - 1) % 2]
        rows.append(row)
        start = {
            "params": pd.DataFrame(est.coef, index=model.exog_names, columns=components),
            "prior": est.prior.copy(),
            "family_params": pd.DataFrame(
                est.params, columns=components, index=[p.name for p in model.family.parameters]
            ),
        }
        if model.family.estimates_scale:
            start["scale"] = est.params[0].copy()
        if est.fixed_coef is not None:
            start["fixed"] = pd.Series(est.fixed_coef, index=model.fixed_names)
        if est.gamma is not None:
            start["concomitant"] = pd.DataFrame(
                est.gamma, index=model.concomitant_names, columns=components
            )
        starts.append(start)
    return WarmupTrials(pd.DataFrame(rows).set_index("trial"), starts)


#: The kinds of warm-up trials, taken in turn.
_TRIAL_KINDS = ("random partition", "regression lines")


def _warmup_trial(shared, task):
    """One short EM run from a random start, scored on the full data."""
    data, K, max_iter, sample_size, floor = shared
    kind, seed = task
    rng = np.random.default_rng(seed)
    sub = data
    if sample_size is not None and sample_size < data.n_units:
        take = np.sort(rng.choice(data.n_units, size=sample_size, replace=False))
        if data.groups is not None:
            # Whole groups: the rows of the drawn groups.
            take = np.flatnonzero(np.isin(data.groups, take))
        sub = data.take(take)
    est = candidate_start(sub, K, kind, rng, floor)
    run = _em.order_components(
        _em.run_em(sub, est, max_iter=max_iter, tol=0.0, scale_floor=floor, newton=False),
        data.family,
    )
    llf = run.llf if sub is data else _em.e_step(data, run.estimates).llf
    return run.estimates, llf, run.n_iter


def select_best(warm: WarmupTrials) -> dict:
    """The start of the warm-up trial with the highest log-likelihood.

    Parameters
    ----------
    warm : WarmupTrials
        What :func:`small_em` returned.

    Returns
    -------
    dict
        ``params``, ``prior`` and ``family_params`` (with ``scale`` for a
        family with a dispersion), for ``emglm(start=...)``.

    Examples
    --------
    >>> start = select_best(warm)                              # doctest: +SKIP
    >>> res = emglm(formula, data, K=2, start=start)           # doctest: +SKIP
    """
    if not isinstance(warm, WarmupTrials):
        raise TypeError(f"select_best takes what small_em returns, got {type(warm).__name__}")
    llf = warm.table["llf"].to_numpy()
    if not np.any(np.isfinite(llf)):
        raise ValueError("no warm-up trial has a finite log-likelihood")
    best = int(np.nanargmax(np.where(np.isfinite(llf), llf, -np.inf)))
    return warm.starts[best]
