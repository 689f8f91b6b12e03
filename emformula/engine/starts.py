"""Where EM starts: candidate starts of several kinds, screened, the best run in full.

A mixture likelihood has many local maxima, and which one EM climbs depends
on where it starts. The strategy here combines what the literature and the
established packages found to work:

* **random partitions** of the units, each followed by an M-step (flexmix's
  ``initFlexmix``, the original package);
* **random regression lines**: each component fitted to its own small random
  subset of the units (mixtools' ``regmixEM``);
* **nested fits**: the same mixture with the component-specific effects
  shared by all components (all but the intercept, and each large term on
  its own, a factor with many levels say). Its maximum, written as a point of
  the full model (every component carrying the shared values), has the
  nested log-likelihood exactly, and EM never lowers the log-likelihood: the
  fit cannot end below its nested model;
* **splits of the K-1 fit**: each component of the (K-1)-component fit divided
  in two by the sign of its rows' residuals (the K-1 fit is the mixture's own
  nested model). Should every full run still end below the K-1 fit, EM runs
  from the K-1 fit with a component written twice (the same mixture), so
  with constant proportions the fit never ends below the K-1 fit;
* **short-run EM** ("em-EM", Biernacki, Celeux and Govaert 2003): every
  candidate runs a few EM iterations (on a random subsample of the units when
  the data are large) and only the most promising run to convergence on all
  the data: the best of each kind, then in turn the best of the rest by
  screened log-likelihood and one of the rest at random (where the
  likelihood is flat, leading after a few iterations is a poor guide).
  Nested fits go straight to the full runs, from their exact point.

Every start that ran is recorded (:class:`StartRecord`), so a results
object can say how many full runs replicated the best log-likelihood.

Everything is seeded from one :class:`numpy.random.SeedSequence`: the same
seed gives the same fit for any ``n_jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._runtime.parallel import map_tasks
from . import em as _em

__all__ = [
    "StartPlan",
    "StartRecord",
    "StartSearch",
    "search_starts",
    "candidate_start",
    "replication_tolerance",
    "count_replicates",
    "DEFAULT_PLAN",
    "LIGHT_PLAN",
]

#: Units above which candidates are screened on a random subsample.
SCREEN_SUBSAMPLE_ABOVE = 100_000
#: Units in that subsample.
SCREEN_SUBSAMPLE_SIZE = 20_000
#: EM iterations and relative tolerance of the run on that subsample that
#: brings a chosen start next to its maximum before the full run.
REFINE_MAX_ITER = 500
REFINE_TOL = 1e-6
#: Units x coefficients x components up to which every screened candidate
#: runs in full (an EM iteration there takes well under a millisecond).
SMALL_PROBLEM = 200_000
#: A term with at least this many columns (a factor with many levels) also
#: gets a nested start of its own, with only that term shared.
LARGE_TERM_COLUMNS = 3
#: At most this many such per-term nested starts (the largest terms).
MAX_TERM_NESTED = 2


@dataclass(frozen=True)
class StartPlan:
    """How many starts of each kind, and how long they are screened.

    Attributes
    ----------
    n_full : int
        Screened candidates run to convergence (nested starts come on top).
    n_random : int
        Random partitions screened.
    n_lines : int
        Random regression lines screened.
    screen_iter : int
        EM iterations (M-steps) of a screening run.
    nested : bool
        Fit the nested models with shared effects and start from them.
    split : bool
        Fit the K-1 model (recursively, with :data:`LIGHT_PLAN`) and screen
        splits of its components.
    """

    n_full: int = 10
    n_random: int = 10
    n_lines: int = 10
    screen_iter: int = 5
    nested: bool = True
    split: bool = True

    @classmethod
    def from_n_init(cls, n_init):
        """The default plan with ``n_init`` full runs, chosen from
        ``2 max(2, n_init)`` screened candidates (half random partitions,
        half lines) and the splits of the K-1 fit."""
        n_init = int(n_init)
        return cls(n_full=n_init, n_random=max(2, n_init), n_lines=max(2, n_init))


#: The plan of ``fit()``'s default ``n_init``.
DEFAULT_PLAN = StartPlan.from_n_init(10)
#: The plan of the auxiliary fits (nested models, the K-1 fit): a few starts.
LIGHT_PLAN = StartPlan(n_full=2, n_random=2, n_lines=2, nested=False, split=True)


@dataclass(frozen=True)
class StartRecord:
    """One start that ran: how it was made and where it ended.

    ``screen_llf`` is the log-likelihood after the screening run (on the
    screening subsample when the data are large; NaN for starts that were not
    screened); ``llf``, ``n_iter`` and ``converged`` are those of the full run
    (NaN, the screening iterations and False for a start that was only
    screened).
    """

    kind: str
    stage: str
    screen_llf: float
    llf: float
    n_iter: int
    converged: bool


@dataclass(frozen=True)
class StartSearch:
    """What :func:`search_starts` found.

    Attributes
    ----------
    runs : list of EMRun
        The full runs, in the order of ``records`` (their posteriors dropped).
    records : list of StartRecord
        Every start that ran, the full runs first.
    bounds : dict
        Log-likelihoods the fit must not end below: ``"nested"`` (the best
        nested fit with shared effects) and ``"K-1"`` (the K-1 fit), where
        they were fitted.
    """

    runs: list
    records: list
    bounds: dict


def replication_tolerance(llf):
    """Two runs reached the same maximum when their log-likelihoods differ
    by at most ``max(1e-6 |llf|, 1e-4)``."""
    return max(1e-6 * abs(llf), 1e-4)


def count_replicates(llfs):
    """How many of ``llfs`` are within :func:`replication_tolerance` of the best."""
    llfs = np.asarray(llfs, dtype=float)
    llfs = llfs[np.isfinite(llfs)]
    if llfs.size == 0:
        return 0
    top = llfs.max()
    return int(np.sum(llfs >= top - replication_tolerance(top)))


# ------------------------------------------------------------ candidates
def _regression_lines(data, K, rng, scale_floor):
    """Each component fitted to its own random subset of units.

    A subset has ``max(2 m, m + 10)`` units for ``m`` coefficients of a
    component (no more than a K-th of the units), so the lines differ
    visibly from start to start. The proportions start equal; the screening
    EM that follows re-estimates everything from the first E-step.
    """
    # Only units with weight count: a subset of zero-weight rows fits nothing.
    weighted = np.flatnonzero(data.unit_weights > 0)
    m = data.n_coef + data.n_fixed
    size = int(min(max(2 * m, m + 10), max(weighted.size // K, 1)))
    posterior = np.zeros((data.n_units, K))
    order = rng.permutation(weighted)
    for k in range(K):
        posterior[order[k * size : (k + 1) * size], k] = 1.0
    lines = _em.estimates_from_posterior(data, data.to_rows(posterior), scale_floor)
    if lines.gamma is not None:
        return replace(lines, gamma=np.zeros_like(lines.gamma), prior=np.full(K, 1.0 / K))
    return replace(lines, prior=np.full(K, 1.0 / K))


def candidate_start(data, K, kind, rng, scale_floor):
    """A random start of ``kind``: ``"random partition"`` or ``"regression lines"``."""
    if kind == "random partition":
        return _em.initial_estimates(data, K, rng, scale_floor)
    if kind == "regression lines":
        return _regression_lines(data, K, rng, scale_floor)
    raise ValueError(f"unknown kind of random start {kind!r}")


def _split_start(data, estep, component, scale_floor):
    """The K-1 fit ``previous`` with one component divided in two.

    The units' posterior weights on ``component`` go to one of two new
    components by the sign of the unit's response residual under it (summed
    over a group's rows); every other component keeps its posterior. An
    M-step from that posterior is the start. ``estep`` is the E-step at the
    K-1 fit, computed once for all its components.
    """
    post = estep.posterior
    residual = data.unit_sum(data.weights * (data.endog - estep.mu[:, component]))
    above = data.to_rows(residual > 0)
    split = np.column_stack(
        [
            post[:, :component],
            post[:, component] * above,
            post[:, component] * ~above,
            post[:, component + 1 :],
        ]
    )
    return _em.estimates_from_posterior(data, split, scale_floor)


def _nested_data(data, shared_columns):
    """The same model with the columns ``shared_columns`` of ``exog`` moved
    to the shared effects (appended after any shared effects it has)."""
    keep = np.setdiff1d(np.arange(data.n_coef), shared_columns)
    moved = data.exog[:, shared_columns]
    fixed = moved if data.fixed is None else np.hstack([data.fixed, moved])
    return replace(
        data, exog=np.ascontiguousarray(data.exog[:, keep]), fixed=np.ascontiguousarray(fixed)
    ), keep


def _expand_nested(data, nested_est, keep, shared_columns):
    """A nested fit's estimates as a point of the full model (same mixture)."""
    K = nested_est.n_components
    coef = np.empty((data.n_coef, K))
    coef[keep] = nested_est.coef
    r0 = data.n_fixed
    coef[shared_columns] = nested_est.fixed_coef[r0:, None]
    fixed = None if data.fixed is None else nested_est.fixed_coef[:r0].copy()
    return _em.Estimates(
        coef,
        nested_est.params.copy(),
        nested_est.prior.copy(),
        None if nested_est.gamma is None else nested_est.gamma.copy(),
        fixed,
    )


def _as_nested(previous, data, keep, shared_columns):
    """A one-component fit written in the nested model (where sharing an
    effect changes nothing), so the nested search need not refit it; None
    for more components, whose effects differ."""
    if previous is None or previous.n_components != 1:
        return None
    shared = previous.coef[shared_columns, 0]
    fixed = shared if previous.fixed_coef is None else np.concatenate([previous.fixed_coef, shared])
    return replace(previous, coef=previous.coef[keep].copy(), fixed_coef=fixed)


def nested_structures(data, term_columns):
    """The nested models to start from: ``[(label, shared column positions)]``.

    ``term_columns`` lists ``(term name, column positions)`` of ``exog``. The
    intercept (a constant column) always stays component-specific; without
    one, sharing every effect leaves components that cannot differ, so only
    per-term nested models are used then.
    """
    exog = data.exog
    constant = np.flatnonzero(np.all(exog == exog[:1], axis=0) & (exog[0] != 0))
    structures = []
    if constant.size and data.n_coef > 1:
        others = np.setdiff1d(np.arange(data.n_coef), constant[:1])
        structures.append(("shared effects", others))
    large = sorted(
        (t for t in term_columns if len(t[1]) >= LARGE_TERM_COLUMNS and len(t[1]) < data.n_coef),
        key=lambda t: -len(t[1]),
    )[:MAX_TERM_NESTED]
    for name, columns in large:
        columns = np.asarray(columns)
        if structures and np.array_equal(columns, structures[0][1]):
            continue
        structures.append((f"shared {name}", columns))
    return structures


# ------------------------------------------------------------- the search
def _screen_task(shared, task):
    """Make one candidate (from a seed, or given) and run a short EM."""
    data, K, scale_floor, screen_iter = shared
    kind, seed, est = task
    if est is None:
        est = candidate_start(data, K, kind, np.random.default_rng(seed), scale_floor)
    run = _em.run_em(
        data, est, max_iter=screen_iter, tol=1e-12, scale_floor=scale_floor, newton=False
    )
    return run.estimates, run.llf, run.n_iter


def _refine_task(shared, est):
    """EM on the screening subsample to a loose tolerance (large data)."""
    data, scale_floor = shared
    return _em.run_em(
        data, est, max_iter=REFINE_MAX_ITER, tol=REFINE_TOL, scale_floor=scale_floor, newton=False
    ).estimates


def _full_task(shared, est):
    """One EM run to convergence (its n x K posterior dropped)."""
    data, max_iter, tol, scale_floor = shared
    run = _em.run_em(data, est, max_iter=max_iter, tol=tol, scale_floor=scale_floor)
    return replace(run, posterior=None)


def _single_component(data, scale_floor, max_iter, tol):
    """K = 1: a GLM, whose likelihood has one maximum for the usual links."""
    est = _em.estimates_from_posterior(data, np.ones((data.nobs, 1)), scale_floor)
    run = _em.run_em(data, est, max_iter=max_iter, tol=tol, scale_floor=scale_floor)
    return replace(run, posterior=None)


def _screening_data(data, rng):
    """All the data, or a random subsample of units when they are many."""
    if data.n_units <= SCREEN_SUBSAMPLE_ABOVE:
        return data
    take = np.sort(rng.choice(data.n_units, size=SCREEN_SUBSAMPLE_SIZE, replace=False))
    if data.groups is not None:
        take = np.flatnonzero(np.isin(data.groups, take))
    return data.take(take)


def search_starts(
    data,
    K,
    plan,
    seed,
    scale_floor,
    *,
    max_iter,
    tol,
    term_columns=(),
    previous=None,
    extra=(),
    n_jobs=1,
    progress=None,
):
    """Screen candidate starts and run the most promising to convergence.

    Parameters
    ----------
    data : EMData
    K : int
    plan : StartPlan
    seed : numpy.random.SeedSequence
    scale_floor : float
    max_iter, tol
        Of the full runs (see :func:`emformula._em.run_em`).
    term_columns : sequence of (str, sequence of int)
        The terms of ``exog`` and their columns, for the per-term nested
        starts.
    previous : Estimates, optional
        A fit of the same data with K - 1 components to split (``select_k``
        passes its previous K); fitted here with :data:`LIGHT_PLAN` when
        ``plan.split`` and not given.
    extra : sequence of (str, Estimates)
        Further candidates to screen (a warm start from a related fit).
    n_jobs, progress
        As in :func:`emformula._parallel.map_tasks`.

    Returns
    -------
    StartSearch
    """
    seeds = iter(seed.spawn(10))
    if K == 1:
        run = _single_component(data, scale_floor, max_iter, tol)
        return StartSearch(
            [run],
            [StartRecord("single component", "full", np.nan, run.llf, run.n_iter, run.converged)],
            {},
        )
    bounds = {}
    if plan.split and previous is None:
        found = search_starts(
            data, K - 1, LIGHT_PLAN, next(seeds), scale_floor, max_iter=max_iter, tol=tol
        )
        best = _best(found.runs)
        previous = None if best is None else best.estimates
    # Starts that go to the full runs from their exact point.
    direct = []
    if plan.nested:
        for label, shared_columns in nested_structures(data, term_columns):
            nested, keep = _nested_data(data, shared_columns)
            # Auxiliary fits run in this process: a pool per small search
            # would cost more than it saves.
            found = search_starts(
                nested,
                K,
                LIGHT_PLAN,
                next(seeds),
                scale_floor,
                max_iter=max_iter,
                tol=tol,
                previous=_as_nested(previous, data, keep, shared_columns),
            )
            best = _best(found.runs)
            if best is None:
                continue
            bounds["nested"] = max(bounds.get("nested", -np.inf), best.llf)
            direct.append(
                (f"nested: {label}", _expand_nested(data, best.estimates, keep, shared_columns))
            )
    candidates = []
    if previous is not None and plan.split:
        previous_estep = _em.e_step(data, previous)
        bounds["K-1"] = previous_estep.llf
        for j in range(previous.n_components):
            candidates.append(
                (
                    f"split of K-1 component {j + 1}",
                    None,
                    _split_start(data, previous_estep, j, scale_floor),
                )
            )
        del previous_estep
    candidates += [(label, None, est) for label, est in extra]
    kinds = [("random partition", plan.n_random), ("regression lines", plan.n_lines)]
    for kind, count in kinds:
        candidates += [(kind, s, None) for s in next(seeds).spawn(count)]
    # Candidates made on all the data (splits, warm starts) are screened on
    # the subsample too, so that their screened log-likelihoods compare.
    screen_data = _screening_data(data, np.random.default_rng(next(seeds)))
    screened = map_tasks(
        _screen_task,
        candidates,
        shared=(screen_data, K, scale_floor, plan.screen_iter),
        n_jobs=n_jobs,
        progress=progress,
        desc=f"screening starts (K={K})",
    )
    screen_llf = np.array([llf if np.isfinite(llf) else -np.inf for _, llf, _ in screened])
    n_full = plan.n_full
    if data.n_units * (data.n_coef + data.n_fixed) * K <= SMALL_PROBLEM:
        # Full runs on small data cost little more than their screening, and
        # which screened start ends highest is hard to tell where the
        # likelihood is flat: run them all.
        n_full = max(n_full, len(candidates))
    chosen = _choose(candidates, screen_llf, n_full, np.random.default_rng(next(seeds)))
    chosen_starts = [screened[i][0] for i in chosen]
    if screen_data is not data:
        # On large data the chosen starts first converge (loosely) on the
        # subsample, at a fiftieth of the cost of an iteration on all rows,
        # so that the full runs begin next to their maximum.
        chosen_starts = map_tasks(
            _refine_task,
            chosen_starts,
            shared=(screen_data, scale_floor),
            n_jobs=n_jobs,
            progress=progress,
            desc=f"refining starts (K={K})",
        )
    full_starts = [est for _, est in direct] + chosen_starts
    runs = map_tasks(
        _full_task,
        full_starts,
        shared=(data, max_iter, tol, scale_floor),
        n_jobs=n_jobs,
        progress=progress,
        desc=f"EM starts (K={K})",
    )
    records = [
        StartRecord(label, "full", np.nan, run.llf, run.n_iter, run.converged)
        for (label, _), run in zip(direct, runs)
    ]
    records += [
        StartRecord(
            candidates[i][0],
            "full",
            float(screen_llf[i]),
            run.llf,
            run.n_iter + screened[i][2],
            run.converged,
        )
        for i, run in zip(chosen, runs[len(direct) :])
    ]
    records += [
        StartRecord(candidates[i][0], "screen", float(screen_llf[i]), np.nan, screened[i][2], False)
        for i in range(len(candidates))
        if i not in set(chosen)
    ]
    runs = list(runs)
    best = _best(runs)
    if "K-1" in bounds and previous.gamma is None and (best is None or best.llf < bounds["K-1"]):
        # Every run ended below the K-1 fit. The K-1 fit with a component
        # written twice (its proportion halved) is the same mixture: EM from
        # there keeps at least its log-likelihood, so the fit is not below
        # the K-1 fit (and says that it is degenerate, which it then is).
        run = replace(
            _em.run_em(
                data, _duplicated(previous), max_iter=max_iter, tol=tol, scale_floor=scale_floor
            ),
            posterior=None,
        )
        runs.append(run)
        records.insert(
            len(runs) - 1,
            StartRecord(
                "K-1 fit, a component duplicated",
                "full",
                np.nan,
                run.llf,
                run.n_iter,
                run.converged,
            ),
        )
    return StartSearch(runs, records, bounds)


def _duplicated(previous):
    """A K-1 fit as a K-component mixture: its largest component twice, each
    copy with half its proportion. Constant proportions only (a concomitant
    model's halved odds need an intercept in its design)."""
    j = int(np.argmax(previous.prior))
    coef = np.insert(previous.coef, j + 1, previous.coef[:, j], axis=1)
    params = np.insert(previous.params, j + 1, previous.params[:, j], axis=1)
    prior = np.insert(previous.prior, j + 1, previous.prior[j] / 2)
    prior[j] /= 2
    return replace(
        previous,
        coef=coef,
        params=params,
        prior=prior,
        gamma=None,
        fixed_coef=None if previous.fixed_coef is None else previous.fixed_coef.copy(),
    )


def _choose(candidates, screen_llf, n_full, rng):
    """Which screened candidates run in full, ``n_full`` in all.

    The best split of the K-1 fit always (the start that keeps the fit from
    ending below the K-1 fit), then the best of each other kind as far as
    ``n_full`` allows; the remaining places go in turn to the best of the
    rest by screened log-likelihood and to one of the rest at random. A
    short run's log-likelihood is a poor guide where the likelihood is flat
    (an over-fitted K): there the starts that lead after five iterations are
    often those drawn fastest into a lesser maximum, so half of the full runs
    keep the diversity of plain random starts.
    """
    order = [int(i) for i in np.argsort(-screen_llf, kind="stable") if np.isfinite(screen_llf[i])]
    chosen, seen = [], set()
    splits = [i for i in order if candidates[i][0].startswith("split")]
    if splits:
        chosen.append(splits[0])
        seen.add("split")
    for i in order:
        kind = candidates[i][0].split(" of ")[0]
        if kind not in seen and len(chosen) < n_full:
            seen.add(kind)
            chosen.append(i)
    rest = [i for i in order if i not in chosen]
    by_rank = True
    while rest and len(chosen) < n_full:
        pick = rest[0] if by_rank else rest[int(rng.integers(len(rest)))]
        chosen.append(pick)
        rest.remove(pick)
        by_rank = not by_rank
    return chosen[: max(n_full, 1)]


def _best(runs):
    llfs = np.array([run.llf for run in runs], dtype=float)
    llfs = np.where(np.isfinite(llfs), llfs, -np.inf)
    if not np.isfinite(llfs.max()):
        return None
    return runs[int(np.argmax(llfs))]
