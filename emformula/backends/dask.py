"""EM on a dask DataFrame: the engine's one EM loop, with the sums of every partition.

Each partition becomes the engine's :class:`~emformula.engine.data.EMData`
(its design built with the one ModelSpec of
:mod:`emformula.formula.dask_design`). :class:`DaskRows` is the engine's
rows backend for them: every sum the EM loop, its M-step and the Newton
finish ask for (:mod:`emformula.engine.sums`) is computed on each partition
at the E-step there and added in a dask tree reduction (:class:`_Passes`),
on any scheduler, the distributed one included. The loop, SQUAREM, the
Newton finish, the diagnostics and the component order are the engine's, so
a fit here equals the fit in memory from the same start, iteration for
iteration, with concomitant variables, shared effects, groups, one common
dispersion and every covariance type.

Passes over the data (each recomputes the partition's E-step):

* an E-step: one pass, which also forms the normal equations and Q values
  of the M-step that usually follows;
* an M-step: one pass for the Q checks and dispersion statistics of all
  components' steps together (one more per round of step halving, rare),
  one for the dispersions of components whose step was refused (rare),
  and for a concomitant model one per Newton iteration of its M-step. For
  a family without parameters of its own and constant mixing proportions
  the M-step's estimates are known before its check, so the E-step at them
  rides in the check's pass (:meth:`DaskRows.look_ahead`);
* so a plain EM iteration takes one or two passes; a SQUAREM cycle (two EM
  steps, an extrapolation and a stabilising step) four to seven; a Newton
  step one per trial step length, the information at the accepted point
  formed in the same pass; each concomitant parameter vector unpacked
  (SQUAREM, Newton) one more for its mean mixing proportions;
* at the end one pass for everything the results need (information, the
  robust meat, entropies, the diagnostics' counts).

Groups: all rows of a group must sit in one partition (checked, the error
names the group); their unit-level sums then add over partitions.

Starts are computed in memory on the arrays of a random sample of rows
(``sample_rows``, default 20000) with the engine's start strategy; EM then
runs on all rows.
"""

from __future__ import annotations

import numbers
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from .._runtime.seeds import seed_sequence as _seed
from ..covariance.estimators import mean_prior_jacobian, score_meat
from ..covariance.registry import get_estimator
from ..engine.data import EMData, Estimates, check_constant_within_groups
from ..engine.estep import e_step, linear_predictor, unit_posterior
from ..engine.given import checked_start, estimates_from_dict
from ..engine.initial import random_start
from ..engine.layout import ParameterLayout, log_softmax
from ..engine.loop import (
    DEFAULT_TOL,
    component_order,
    diagnose,
    newton_polish,
    order_components,
    run_em,
)
from ..engine.louis import unit_scores
from ..engine.mstep import needs_q
from ..engine.rows import FINAL
from ..engine.starts import StartPlan, search_starts
from ..engine.sums import (
    candidate_sums,
    diagnostic_sums,
    information_sums,
    m_step_sums,
    mean_prior_sums,
)
from ..families import WeightedMoments, as_family, check_family_use, default_scale_floor
from ..formula.dask_design import build_dask_design, formula_context, partition_arrays
from ..specification import MixtureSpec
from ..warnings import ConvergenceWarning, EstimationWarning, warn

__all__ = ["fit_dask", "DaskFit", "sample_frame", "DaskRows", "DaskMixture"]


class DaskFit(NamedTuple):
    """What a fit on dask gives the results object, in the order of
    :class:`emformula.EMGLMResults`' arguments."""

    model: object
    run: object
    fit_options: dict
    problems: list
    cov: dict
    rows: object


SAMPLE_ROWS = 20000


class _Arguments:
    """The fixed arguments of a partition function, with a dask token.

    dask names every graph by hashing its arguments; the formula's namespace
    (a formulaic LayeredMapping) cannot be hashed deterministically, so the
    arguments travel in this holder, which carries its own unique token. It
    also stands for the design in :func:`partition_arrays` (the same
    attributes, without the frame).
    """

    def __init__(self, **values):
        self.__dict__.update(values)
        self._token = uuid.uuid4().hex

    def __dask_tokenize__(self):
        return self._token


def _partition_arguments(design, family, context, equal_scale, columns=None, reused=False):
    return _Arguments(
        model_spec=design.model_spec,
        exog_names=design.exog_names,
        fixed_spec=design.fixed_spec,
        fixed_names=design.fixed_names,
        concomitant_spec=design.concomitant_spec,
        concomitant_names=design.concomitant_names,
        column_args=dict(design.column_args if columns is None else columns),
        context=context,
        family=family,
        equal_scale=equal_scale,
        reused=reused,
    )


# ------------------------------------------------------------ partitions
@dataclass
class Chunk:
    """One partition in the engine's terms.

    ``cluster_labels`` are the cluster labels per unit; ``group_labels`` the
    distinct group labels of the partition (for the check that no group
    spans two partitions).
    """

    data: EMData
    dropped: int
    index: object
    cluster_labels: np.ndarray | None = None
    group_labels: np.ndarray | None = None


def _chunk(part, args):
    """One partition as the engine's EMData (numpy arrays)."""
    arrays = partition_arrays(part, args, args.context)
    family = args.family
    endog, trials = arrays["endog"], arrays["trials"]
    n = arrays["exog"].shape[0]
    if endog.ndim == 2:
        trials = endog.sum(axis=1)
        endog = np.divide(endog[:, 0], trials, out=np.zeros(n), where=trials > 0)
    if trials is None:
        trials = np.ones(n)
    weights = np.ones(n) if arrays["weights"] is None else arrays["weights"]
    offset = np.zeros(n) if arrays["offset"] is None else arrays["offset"].copy()
    if arrays["exposure"] is not None:
        offset += np.log(arrays["exposure"])
    family.check_response(endog, trials)
    codes = labels = None
    if arrays["groups"] is not None:
        codes, labels = pd.factorize(arrays["groups"], sort=True)
        codes = codes.astype(np.intp)
        check_constant_within_groups(weights, codes, labels, "weights")
        if arrays["concomitant"] is not None:
            check_constant_within_groups(
                arrays["concomitant"], codes, labels, "the concomitant variables"
            )
    data = EMData(
        endog,
        arrays["exog"],
        weights,
        offset,
        trials,
        family,
        arrays["fixed"],
        arrays["concomitant"],
        codes,
        bool(args.equal_scale and family.parameters),
        # A partition built for one pass only (not persisted) skips
        # the derived arrays that pay back over many passes.
        reused=args.reused,
    )
    clusters = arrays["cov_groups"]
    if clusters is not None and codes is not None:
        first = clusters[data.unit_rows]
        if np.any(first[codes] != clusters):
            raise ValueError(
                "the clusters of cov_groups must contain whole groups: rows of "
                "one group fall into different clusters"
            )
        clusters = first
    return Chunk(
        data,
        arrays["dropped"],
        arrays["index"],
        clusters,
        None if labels is None else np.asarray(labels),
    )


def _counts(chunk):
    """Rows, total weight and dropped rows, the moments of the values that
    set the default dispersion floor, and the partition's group labels."""
    data = chunk.data
    moments = (
        data.family.floor_moments(data.endog, data.weights)
        if data.family.any_dispersion
        else WeightedMoments()
    )
    return {
        "counts": np.array([data.nobs, data.weights.sum(), chunk.dropped], dtype=float),
        "moments": moments,
        "groups": [] if chunk.group_labels is None else [chunk.group_labels],
    }


def _check_groups_in_one_partition(group_sets):
    """Refuse a group whose rows are in more than one partition."""
    seen = Counter()
    for labels in group_sets:
        seen.update(labels.tolist())
    spread = [label for label, count in seen.items() if count > 1]
    if spread:
        raise ValueError(
            f"group {spread[0]!r} has rows in more than one partition: all rows "
            "of a group must be in one partition (set the index to the group "
            "column, or repartition, so that each group sits in one)"
        )
    return len(seen)


# ---------------------------------------------------------- the passes
def _estep_pass(chunk, est, need_q):
    """The log-likelihood at ``est`` and the sums of the M-step from it."""
    data = chunk.data
    estep = e_step(data, est)
    return {"llf": estep.llf, "m_step": m_step_sums(data, estep, est, need_q)}


def _estep_and_sums_pass(chunk, est, need_q, function, args):
    """:func:`_estep_pass` and, at the same E-step, ``function`` of
    :mod:`emformula.engine.sums` (what the caller will ask for next)."""
    data = chunk.data
    estep = e_step(data, est)
    return {
        "llf": estep.llf,
        "m_step": m_step_sums(data, estep, est, need_q),
        "ahead": function(data, estep, est, *args),
    }


def _check_and_estep_pass(chunk, est, args, ahead, need_q):
    """The M-step's check of its full steps (:func:`candidate_sums` at the
    E-step of ``est``) and, in the same pass, :func:`_estep_pass` at
    ``ahead``, the estimates that follow if the full steps hold."""
    data = chunk.data
    checked = candidate_sums(data, e_step(data, est), est, *args)
    return {"checked": checked, "ahead": _estep_pass(chunk, ahead, need_q)}


def _at_estep(chunk, function, est, args):
    """``function`` of :mod:`emformula.engine.sums` at the partition's E-step."""
    data = chunk.data
    return function(data, e_step(data, est), est, *args)


def _data_pass(chunk, function, args):
    return function(chunk.data, *args)


#: Rows whose per-row scores (rows x parameters) are formed at once for the meat.
MEAT_BLOCK_ROWS = 65536


def _unit_blocks(data):
    """Row positions in blocks of about :data:`MEAT_BLOCK_ROWS` rows, whole units each."""
    if data.groups is None:
        for start in range(0, data.nobs, MEAT_BLOCK_ROWS):
            yield np.arange(start, min(start + MEAT_BLOCK_ROWS, data.nobs))
        return
    rows_per_unit = max(data.nobs / max(data.n_units, 1), 1.0)
    step = max(int(MEAT_BLOCK_ROWS / rows_per_unit), 1)
    for start in range(0, data.n_units, step):
        yield np.flatnonzero((data.groups >= start) & (data.groups < start + step))


def _partition_meat(data, est, estep, labels=None, layout=None):
    """``sum_u v_u s_u s_u'`` of one partition, and with cluster ``labels``
    (one per unit) the weighted scores ``sum_{u in c} v_u s_u`` of each
    cluster (a DataFrame indexed by label), in blocks of whole units: the
    scores of a whole partition (units x parameters) would add to the peak
    memory of every worker."""
    meat, by_cluster = 0.0, []
    for rows in _unit_blocks(data):
        block = data.take(rows)
        scores = unit_scores(block, est, estep.posterior[rows], estep.mu[rows], layout)
        meat = meat + score_meat(scores, block.unit_weights)
        if labels is not None:
            units = rows if data.groups is None else np.unique(data.groups[rows])
            weighted = block.unit_weights[:, None] * scores
            by_cluster.append(_sum_by_label(pd.Index(labels[units]), weighted))
    return meat, (_add(by_cluster) if by_cluster else None)


def _final_pass(chunk, est, layout, with_meat):
    """Everything the results need from the rows at the final estimates,
    and the counts of :func:`~emformula.engine.loop.diagnose`."""
    data = chunk.data
    estep = e_step(data, est)
    sums = information_sums(data, estep, est, layout)
    sums["diagnostics"] = diagnostic_sums(data, estep, est)
    tau = unit_posterior(data, estep)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(tau > 0, tau * np.log(tau), 0.0)
    with np.errstate(divide="ignore"):
        hard = float(-np.dot(data.unit_weights, np.log(tau.max(axis=1)))) if len(tau) else 0.0
    sums.update(
        llf=estep.llf,
        entropy=float(-np.dot(data.unit_weights, terms.sum(axis=1))),
        classification_entropy=hard,
        wnobs=float(data.unit_weights.sum()),
        nobs=float(data.nobs),
        row_weight=float(data.weights.sum()),
    )
    if est.n_components == 1 and data.family.has_deviance:
        unit = data.family.unit_deviance_at(
            data.endog, estep.mu[:, 0], tuple(est.params[:, 0]), data.trials
        )
        sums["deviance"] = float(np.dot(data.weights, unit))
    if est.gamma is not None:
        # The Jacobian of the mean proportions, times this partition's weight.
        sums["prior_jacobian"] = (
            mean_prior_jacobian(data, est.gamma) * data.unit_weights.sum() if data.n_units else 0.0
        )
    if with_meat:
        sums["meat"], clusters = _partition_meat(data, est, estep, chunk.cluster_labels, layout)
        if chunk.cluster_labels is not None:
            size = layout.size  # an empty partition has no clusters
            sums["cluster_scores"] = (
                clusters if clusters is not None else pd.DataFrame(np.zeros((0, size)))
            )
    return sums


def _sum_by_label(labels, values):
    """Rows of ``values`` summed per label, as a DataFrame indexed by label.

    Unlike pandas' groupby sum a NaN is kept (as in memory, where a score
    that cannot be computed makes the covariance NaN)."""
    codes, uniques = pd.factorize(labels)
    summed = np.zeros((len(uniques), values.shape[1]))
    np.add.at(summed, codes, values)
    return pd.DataFrame(summed, index=uniques)


def _add(results):
    """Add the results of several partitions (dicts, arrays, per-cluster frames, lists)."""
    first = results[0]
    if isinstance(first, dict):
        return {key: _add([r[key] for r in results]) for key in first}
    if isinstance(first, pd.DataFrame):
        # Per-cluster sums: a cluster may appear in several pieces.
        frames = [r for r in results if len(r)] or [first]
        return _sum_by_label(
            pd.Index(np.concatenate([f.index.to_numpy() for f in frames])),
            np.vstack([f.to_numpy() for f in frames]),
        )
    if isinstance(first, list):
        return [item for r in results for item in r]
    return sum(results[1:], first)


#: Partial results merged at once in a pass's reduction tree.
MERGE_FAN_IN = 8


class _Passes:
    """Runs one function over every partition and adds the results."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.count = 0

    def __call__(self, function, *args):
        import dask

        self.count += 1
        parts = [dask.delayed(function)(chunk, *args) for chunk in self.chunks]
        # Merged in a tree on the workers, eight at a time, instead of all
        # partitions' results (per-cluster sums can be large) on the client.
        while len(parts) > 1:
            parts = [
                dask.delayed(_add)(parts[i : i + MERGE_FAN_IN])
                for i in range(0, len(parts), MERGE_FAN_IN)
            ]
        return dask.compute(parts[0])[0]


# ------------------------------------------------------- the rows backend
@dataclass
class DaskState:
    """An E-step on dask: the estimates, the log-likelihood and the M-step
    sums formed in the same pass (``None`` for a state made for sums only).

    ``ahead`` is the M-step's guess of the next estimates
    (:meth:`DaskRows.look_ahead`); ``next`` the state at them, formed in the
    pass of the M-step's check. ``formed`` holds ``(function, args,
    sums)`` of sums formed in this state's own pass (``e_step(...,
    ahead=)``).
    """

    est: Estimates
    llf: float
    m_step_sums: dict | None = None
    ahead: Estimates | None = None
    next: DaskState | None = None
    formed: tuple | None = None


class DaskRows:
    """The engine's rows backend of a dask DataFrame (see :mod:`emformula.engine.rows`).

    Parameters
    ----------
    passes : _Passes
        Over the partitions' :class:`Chunk`.
    family : MixtureFamily
    n_coef, n_fixed, n_concomitant : int
    equal_scale : bool
    """

    #: Each pass reads the partitions again: the M-step's check and the next
    #: E-step share one where the next estimates can be guessed, and an
    #: E-step forms the sums asked for next (``e_step(..., ahead=)``).
    looks_ahead = True

    def __init__(self, passes, family, n_coef, n_fixed=0, n_concomitant=0, equal_scale=False):
        self.passes = passes
        self.family = family
        self.n_coef, self.n_fixed, self.n_concomitant = n_coef, n_fixed, n_concomitant
        self.equal_scale = bool(equal_scale and family.parameters)
        #: ``(estimates, sums)`` of :func:`_final_pass` formed in the pass of
        #: an E-step the engine expected to be its last (``ahead=FINAL``),
        #: at the estimates in the documented component order.
        self.final = None

    def layout(self, n_components):
        return ParameterLayout.for_family(
            self.family,
            self.n_coef,
            n_components,
            n_fixed=self.n_fixed,
            equal_scale=self.equal_scale,
            n_concomitant=self.n_concomitant,
        )

    def unpack(self, layout, theta):
        return layout.unpack(theta, mean_prior_of=self.mean_prior)

    def mean_prior(self, gamma):
        sums = self.data_sums(mean_prior_sums, gamma)
        return sums["prior_sum"] / sums["unit_weight"]

    def e_step(self, est, predictors=None, ahead=None):
        if isinstance(predictors, DaskState) and predictors.est is est:
            return predictors  # formed in the pass of the M-step's check
        if ahead is FINAL and self.looks_ahead:
            # The results' pass at the ordered estimates: it holds the
            # log-likelihood (the same in any order), which is all the
            # engine asks of a final state.
            ordered = est.permuted(component_order(est, self.family))
            sums = self.passes(_final_pass, ordered, self.layout(est.n_components), True)
            self.final = ordered, sums
            return DaskState(est, sums["llf"])
        if ahead is not None and self.looks_ahead:
            function, *args = ahead
            sums = self.passes(_estep_and_sums_pass, est, needs_q(self), function, tuple(args))
            return DaskState(
                est, sums["llf"], sums["m_step"], formed=(function, tuple(args), sums["ahead"])
            )
        sums = self.passes(_estep_pass, est, needs_q(self))
        return DaskState(est, sums["llf"], sums["m_step"])

    def at(self, est, posterior=None):
        return DaskState(est, np.nan)

    def look_ahead(self, state, est):
        state.ahead, state.next = est, None

    def sums(self, state, function, *args):
        if function is m_step_sums and state.m_step_sums is not None and args == (needs_q(self),):
            return state.m_step_sums
        formed = state.formed
        if (
            formed is not None
            and function is formed[0]
            and len(args) == len(formed[1])
            and all(a is b for a, b in zip(args, formed[1]))
        ):
            return formed[2]  # formed in the pass of this state's E-step
        if function is candidate_sums and state.ahead is not None and _full_steps(state, *args):
            # The first check of the M-step's full steps: the E-step at the
            # estimates they lead to rides along (see look_ahead).
            sums = self.passes(_check_and_estep_pass, state.est, args, state.ahead, needs_q(self))
            ahead = sums["ahead"]
            state.next = DaskState(state.ahead, ahead["llf"], ahead["m_step"])
            state.ahead = None
            return sums["checked"]
        return self.passes(_at_estep, function, state.est, args)

    def data_sums(self, function, *args):
        return self.passes(_data_pass, function, args)

    def predictors(self, state, est):
        """The state formed ahead (:meth:`look_ahead`) when the M-step ended
        at exactly the guessed estimates, else None."""
        ahead = state.next
        if ahead is None or not _same_estimates(ahead.est, est):
            return None
        # The E-step reads it by identity: the state is for these estimates.
        ahead.est = est
        return ahead

    def posterior(self, state):
        return None

    def __getstate__(self):
        # Pickled with its results: the partitions stay behind.
        state = dict(self.__dict__)
        state["passes"] = None
        return state


# --------------------------------------------------------------- starts
def _full_steps(state, solutions, steps, need_q):
    """Whether a candidate evaluation is the M-step's first: every step 1
    (or skipped), with the Q check."""
    return need_q and bool(np.all((steps == 1.0) | np.isnan(steps)))


def _same_estimates(a, b):
    """Equal estimates, array for array (None matching None)."""
    pairs = (
        (a.coef, b.coef),
        (a.params, b.params),
        (a.prior, b.prior),
        (a.gamma, b.gamma),
        (a.fixed_coef, b.fixed_coef),
    )
    return all(
        (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
        for x, y in pairs
    )


def sample_frame(frame, random_state=None, rows=SAMPLE_ROWS):
    """About ``rows`` rows of a dask DataFrame drawn at random, as pandas."""
    n_rows = len(frame)
    fraction = min(1.0, rows / max(n_rows, 1))
    if fraction >= 1.0:
        return frame.compute()
    seed = _seed(random_state).generate_state(1)[0]
    return frame.sample(frac=fraction, random_state=int(seed)).compute()


def _sample_data(design, args, random_state, sample_rows):
    """The engine's arrays of a random sample of rows (groups kept whole)."""
    frame = design.frame
    groups = design.column_args.get("groups")
    if groups is None:
        sample = sample_frame(frame, random_state, sample_rows)
    else:
        # Whole groups: a sample of their labels, then every row of those.
        labels = frame[groups].drop_duplicates().compute().to_numpy()
        rng = np.random.default_rng(_seed(random_state))
        n_rows = len(frame)
        share = min(1.0, sample_rows / max(n_rows, 1))
        take = rng.choice(labels, size=max(1, int(np.ceil(share * labels.size))), replace=False)
        sample = frame[frame[groups].isin(list(take))].compute()
    data = _chunk(sample, args).data
    empty = [name for name, column in zip(design.exog_names, data.exog.T) if not np.any(column)]
    if empty or data.nobs == 0:
        raise ValueError(
            f"the {data.nobs} sampled rows for the starting values lack design "
            f"column(s) {empty} (a rare level?): pass a larger sample_rows= or "
            "start="
        )
    return data


def _given_start(start, K, rows, exog_names, fixed_names, concomitant_names):
    """Estimates from a results object or a start dict, checked against the
    model (:func:`~emformula.engine.given.checked_start`; a concomitant
    model's coefficients default to the start's proportions, as log-odds on
    the design's intercept)."""
    est = getattr(start, "estimates", None)
    if est is None:
        if "posterior" in start:
            raise ValueError(
                "start['posterior'] needs the rows in memory: with dask data give "
                "params and prior (and the family parameters), or a results "
                "object"
            )
        est = estimates_from_dict(start, rows.family, K)

    def gamma_from_prior(prior):
        gamma = np.zeros((len(concomitant_names), K))
        if "Intercept" in concomitant_names:
            with np.errstate(divide="ignore"):
                logits = np.log(np.clip(prior, 1e-300, None))
            gamma[list(concomitant_names).index("Intercept")] = logits - logits[0]
        return gamma

    return checked_start(
        est,
        family=rows.family,
        n_coef=len(exog_names),
        K=K,
        equal_scale=rows.equal_scale,
        fixed_names=fixed_names,
        concomitant_names=concomitant_names,
        gamma_from_prior=gamma_from_prior,
        mean_prior_of=rows.mean_prior,
    )


def _start(
    design, args, rows, K, start, *, n_init, random_state, sample_rows, scale_floor, max_iter, tol
):
    """Starting estimates: given, or found in memory on a sample of rows by
    the engine's start strategy (``"auto"``) or random starts (``"random"``)."""
    if not isinstance(start, str):
        return _given_start(
            start,
            K,
            rows,
            design.exog_names,
            design.fixed_names or [],
            design.concomitant_names or [],
        )
    if start not in ("auto", "warmup", "random"):
        raise ValueError(
            f"start must be 'auto', 'random', 'warmup', a results object or a dict, got {start!r}"
        )
    sample = _sample_data(design, args, random_state, sample_rows)
    with warnings.catch_warnings():
        # The sample's own convergence says nothing about the fit to all rows.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if start == "random":
            runs = [
                run_em(
                    sample,
                    random_start(sample, K, np.random.default_rng(seed), scale_floor),
                    max_iter=max_iter,
                    tol=tol,
                    scale_floor=scale_floor,
                )
                for seed in _seed(random_state).spawn(n_init)
            ]
        else:
            runs = search_starts(
                sample,
                K,
                StartPlan.from_n_init(n_init),
                _seed(random_state),
                scale_floor,
                max_iter=max_iter,
                tol=tol,
                term_columns=design.term_columns,
            ).runs
    llfs = np.array([run.llf for run in runs], dtype=float)
    best = runs[int(np.argmax(np.where(np.isfinite(llfs), llfs, -np.inf)))].estimates
    if best.gamma is not None:
        best = replace(best, prior=rows.mean_prior(best.gamma))
    return best


# --------------------------------------------------------------- the model
class DaskMixture:
    """A mixture of GLMs on a dask DataFrame: formula, design and model keywords.

    What :attr:`EMGLMResults.model` is for a dask fit (the in-memory fit's is
    an :class:`~emformula.model.EMGLM`). ``data`` is the engine's view of
    the partitions (:class:`DaskRows`).
    """

    def __init__(self, formula, design, spec, family, context, rows, nobs):
        self.formula = formula
        self.design = design
        self.spec = spec
        self.family = family
        self.K = spec.K
        self.context = context
        self.data = rows
        self.nobs = nobs
        self.endog_names = design.endog_names
        self.exog_names = list(design.exog_names)
        self.fixed_names = list(design.fixed_names)
        self.concomitant_names = design.concomitant_names

    @property
    def layout(self):
        return self.data.layout(self.K)

    @property
    def groups_name(self):
        return self.design.column_args.get("groups", "groups")

    @property
    def cov_groups_name(self):
        return self.design.column_args.get("cov_groups", "cov_groups")

    def __getstate__(self):
        state = self.__dict__.copy()
        # The formula's namespace may hold modules and functions that do not pickle.
        state["context"] = None
        state["spec"] = self.spec.replace(context=None)
        return state


# ------------------------------------------------- the results' backend
class DaskResultRows:
    """The data-dependent parts of the results of a dask fit.

    Row-wise results stay lazy (``posterior``, ``fittedvalues`` and
    ``predict`` return dask collections); Louis' information, the meats of
    the robust and clustered covariances, the entropy and the weighted
    number of units were summed over the partitions in the final pass.
    """

    in_memory = False
    #: Absent from fits pickled before they were kept (read as unknown).
    classification_entropy = None
    row_weight = None

    def __init__(self, model, estimates, sums, cluster_name=None):
        self.model = model
        self.estimates = estimates
        self.information_matrix = np.asarray(sums["information"])
        self.entropy = float(sums["entropy"])
        self.classification_entropy = float(sums["classification_entropy"])
        self.wnobs = float(sums["wnobs"])
        self.row_weight = float(sums["row_weight"])
        self.deviance = float(sums.get("deviance", np.nan))
        self.n_groups = sums.get("n_groups")
        self.prior_jacobian = (
            None
            if sums.get("prior_jacobian") is None
            else np.asarray(sums["prior_jacobian"]) / self.wnobs
        )
        self.meat = None if sums.get("meat") is None else np.asarray(sums["meat"])
        self.clusters = None
        if sums.get("cluster_scores") is not None:
            summed = np.asarray(sums["cluster_scores"], dtype=float)
            self.clusters = {
                "meat": summed.T @ summed,
                "n_clusters": summed.shape[0],
                "name": cluster_name,
            }

    def cov_choice(self, cov_type, cov_groups=None):
        """What the results keep for ``cov_type`` (a new cluster column would
        need another pass over the data)."""
        estimator = get_estimator(cov_type)
        if estimator.needs_replicates:
            raise NotImplementedError("cov_type='bootstrap' needs the rows in memory")
        if cov_groups is not None:
            if not estimator.needs_clusters:
                raise ValueError("cov_groups is only used with cov_type='cluster'")
            own = (self.clusters or {}).get("name")
            if not (isinstance(cov_groups, str) and cov_groups == own):
                raise NotImplementedError(
                    "new cluster labels for a dask fit: fit again "
                    "with cov_type='cluster', cov_groups='column'"
                )
        if estimator.needs_clusters:
            if self.clusters is None:
                raise NotImplementedError(
                    "a clustered covariance of a dask fit needs the "
                    "cluster column at fit time: emglm(..., "
                    "cov_type='cluster', cov_groups='column')"
                )
            return {
                "type": estimator.name,
                "n_clusters": self.clusters["n_clusters"],
                "name": self.clusters["name"],
            }
        if estimator.needs_meat and self.meat is None:
            raise NotImplementedError(
                "this dask fit has no robust meat (pickled by an older version): fit again"
            )
        return {"type": estimator.name}

    def cov_meat(self, cov, louis_covariance):
        """The meat of the sandwich of the covariance choice ``cov`` (summed
        over the partitions in the final pass)."""
        return self.clusters["meat"] if get_estimator(cov["type"]).needs_clusters else self.meat

    def information(self, layout):
        return self.information_matrix

    def mean_prior_jacobian(self, gamma):
        return self.prior_jacobian

    @property
    def unit_posterior(self):
        return self.rows_in_memory("the posterior of the units")

    @property
    def component_mean(self):
        return self.rows_in_memory("the component means")

    @property
    def row_prior(self):
        return self.rows_in_memory("the mixing proportions of the rows")

    @property
    def unit_scores(self):
        return self.rows_in_memory("the scores of the units")

    def rows_in_memory(self, what):
        raise NotImplementedError(
            f"{what} needs the rows in memory: fit EMGLM to a computed "
            "sample, or compute predict() and the response"
        )

    # Lazy row results.
    def _lazy(self, data, what, meta, names):
        import dask.dataframe as dd  # noqa: F401  (a dask fit has dask)

        model = self.model
        design = model.design
        frame = design.frame if data is None else data
        if not hasattr(frame, "map_partitions"):
            raise TypeError("predict on a dask fit takes a dask DataFrame (or no data)")
        if data is not None and design.frame is not data:
            # New data: the training categories, so every partition encodes alike.
            cats = {
                c: t
                for c, t in design.frame.dtypes.items()
                if isinstance(t, pd.CategoricalDtype) and c in frame.columns
            }
            frame = frame.astype(cats) if cats else frame
        # Predictions need the offset, exposure and trials columns only (not
        # the weights or the cluster labels of the fit); the posterior the groups.
        wanted = ("offset", "exposure", "trials") + (("groups",) if what == "posterior" else ())
        needed = {name: column for name, column in design.column_args.items() if name in wanted}
        args = _partition_arguments(
            design, model.family, model.context, model.data.equal_scale, needed
        )
        args.estimates, args.names = self.estimates, names
        return frame.map_partitions(_partition_frame, args, what, meta=meta)

    def posterior(self, names):
        return self._lazy(None, "posterior", _meta_frame(names), names)

    def fittedvalues(self, names):
        return self._lazy(None, "mean", pd.Series(dtype=float, name="predicted"), names)

    def predict(self, data, type, names, **kwargs):
        if kwargs:
            raise TypeError(
                f"predict on a dask fit takes no {sorted(kwargs)}: offsets and "
                "exposures come from their columns"
            )
        types = ("mean", "component", "linear", "prior", "posterior")
        if type not in types:
            raise ValueError(f"type must be one of {', '.join(map(repr, types))}, got {type!r}")
        meta = pd.Series(dtype=float, name="predicted") if type == "mean" else _meta_frame(names)
        return self._lazy(data, type, meta, names)

    def __getstate__(self):
        return dict(self.__dict__)


def _meta_frame(names):
    return pd.DataFrame({name: pd.Series(dtype=float) for name in names})


def _partition_frame(part, args, what):
    """One partition's predictions (``what``: linear, component, mean, prior, posterior)."""
    chunk = _chunk(part, args)
    data, est = chunk.data, args.estimates
    names, index = args.names, chunk.index
    if what == "posterior":
        return pd.DataFrame(e_step(data, est).posterior, index=index, columns=names)
    eta = linear_predictor(data, est.coef, est.fixed_coef)
    if what == "linear":
        return pd.DataFrame(eta, index=index, columns=names)
    # E(y) per component, as in memory (an ordinal or censored family's mean
    # is a latent location).
    mu = data.family.expected_response(data.family.mean(eta), est.parameter_rows())
    if what == "component":
        return pd.DataFrame(mu, index=index, columns=names)
    prior = (
        np.broadcast_to(est.prior, mu.shape)
        if est.gamma is None
        else np.exp(log_softmax(data.concomitant @ est.gamma))
    )
    if what == "prior":
        return pd.DataFrame(np.array(prior), index=index, columns=names)
    return pd.Series(np.sum(mu * prior, axis=1), index=index, name="predicted")


# --------------------------------------------------------------- the fit
def fit_dask(
    formula,
    data,
    spec,
    *,
    start="auto",
    n_init=10,
    max_iter=5000,
    tol=DEFAULT_TOL,
    random_state=None,
    scale_floor=None,
    sample_rows=SAMPLE_ROWS,
    cov_type="louis",
    persist=False,
    polish=True,
):
    """Fit a mixture to a dask DataFrame (see the module docstring).

    Parameters
    ----------
    formula : str
    data : dask DataFrame
    spec : MixtureSpec
        The model keywords; their column keywords must name columns.
    start, n_init, max_iter, tol, random_state, scale_floor, cov_type, polish
        As in :meth:`emformula.EMGLM.fit`; the starts (``"auto"``,
        ``"random"``) run in memory on ``sample_rows`` random rows.
    persist : bool, default False
        Keep the partitions' arrays in the cluster's memory between passes.

    Returns
    -------
    DaskFit
        The parts of the results object (:class:`emformula.EMGLMResults`
        takes them as its arguments), which the layer above builds.
    """
    import dask

    if not isinstance(spec, MixtureSpec):
        raise TypeError(f"spec must be a MixtureSpec, got {type(spec).__name__}")
    estimator = get_estimator(cov_type)
    # Checked before any pass over the data, as in memory.
    if estimator.needs_replicates:
        raise NotImplementedError(
            "cov_type='bootstrap' refits the mixture to resampled "
            "rows, which needs them in memory: fit a computed frame"
        )
    if estimator.needs_clusters and spec.cov_groups is None:
        raise ValueError(
            "cov_type='cluster' needs cluster labels: pass cov_groups= (a column name)"
        )
    if spec.na_action != "drop":
        raise NotImplementedError(
            "with dask data rows with missing values are dropped (na_action='drop')"
        )
    K = spec.K
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or K < 1:
        raise ValueError(f"K must be a whole number of at least 1, got {K!r}")
    family = as_family(spec.family, spec.link)
    check_family_use(family, K, spec.fixed is not None, spec.equal_scale)
    members = [family.member(k) for k in range(family.n_members or 1)]
    if any(getattr(member, "n_categories", 0) is None for member in members):
        # In memory the response sets the number of categories; here it
        # would take a pass of its own.
        raise ValueError(
            "an ordinal family on dask data needs its number of categories: "
            "pass emformula.families.OrdinalFamily('logit', n_categories=J)"
        )
    context = formula_context(formula, spec.context)
    design = build_dask_design(formula, data, spec.replace(context=context))
    args = _partition_arguments(design, family, context, spec.equal_scale, reused=persist)
    chunks = [dask.delayed(_chunk)(part, args) for part in design.partitions()]
    if persist:
        chunks = list(dask.persist(*chunks))
    passes = _Passes(chunks)
    counted = passes(_counts)
    nobs, total, dropped = counted["counts"]
    # Refused before any further pass, as in memory.
    if nobs == 0:
        raise ValueError(f"every row has a missing value in the variables of {formula!r}")
    if not total > 0:
        raise ValueError("weights are all zero")
    n_groups = (
        _check_groups_in_one_partition(counted["groups"])
        if "groups" in design.column_args
        else None
    )
    if dropped:
        warn(f"dropped {int(dropped)} rows with missing values", UserWarning)
    if scale_floor is None:
        # As in memory, from the weighted variance (merged over partitions).
        scale_floor = (
            default_scale_floor(counted["moments"].variance) if family.any_dispersion else 0.0
        )
    rows = DaskRows(
        passes,
        family,
        len(design.exog_names),
        len(design.fixed_names),
        len(design.concomitant_names or ()),
        spec.equal_scale,
    )
    est0 = _start(
        design,
        args,
        rows,
        K,
        start,
        n_init=n_init,
        random_state=random_state,
        sample_rows=sample_rows,
        scale_floor=scale_floor,
        max_iter=max_iter,
        tol=tol,
    )
    # The same sequence as EMGLM.fit in memory: EM, the Newton polish, the order.
    run = run_em(rows, est0, max_iter=max_iter, tol=tol, scale_floor=scale_floor)
    if run.converged and polish and not run.newton_converged:
        run = newton_polish(rows, run, scale_floor=scale_floor)
    run = order_components(run, family)
    layout = rows.layout(K)
    if rows.final is not None and _same_estimates(rows.final[0], run.estimates):
        sums = rows.final[1]  # formed in the pass of the last E-step
    else:
        sums = passes(_final_pass, run.estimates, layout, True)
    rows.final = None
    problems = diagnose(rows, run, scale_floor, counts=sums.pop("diagnostics"))
    if problems:
        warn("degenerate fit: " + "; ".join(problems), EstimationWarning)
    if not run.converged:
        warn(f"EM on dask data did not converge in {max_iter} iterations", ConvergenceWarning)
    sums["n_groups"] = n_groups
    run = replace(run, llf=sums["llf"])
    model = DaskMixture(formula, design, spec, family, context, rows, int(nobs))
    result_rows = DaskResultRows(model, run.estimates, sums, spec.cov_groups)
    fit_options = {
        "passes": passes.count,
        "backend": "dask",
        "scale_floor": scale_floor,
        "tol": tol,
        "max_iter": max_iter,
        "polish": polish,
        "start": start if isinstance(start, str) else type(start).__name__,
    }
    return DaskFit(
        model, run, fit_options, problems, result_rows.cov_choice(estimator.name), result_rows
    )
