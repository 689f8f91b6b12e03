"""EM on a dask DataFrame: one pass over the partitions per iteration.

Everything EM needs from the rows is a sum: the log-likelihood, and for each
component the weighted normal equations ``X'WX`` and ``X'Wz`` of its IRLS
step, its posterior weight and the statistic of its dispersion. Each
iteration maps one function over the partitions (design built with the one
ModelSpec of :mod:`emformula._dask_design`) and adds the results, which is
a dask reduction on any scheduler, the distributed one included. Louis'
information and the observed score are sums over rows too, so the
standard errors and the Newton finish use the same per-partition pattern.

The iteration is EM with its M-step computed from the sums: one IRLS step
per component, the dispersion at the current means (a conditional
maximisation of the same expected log-likelihood) and the mixing
proportions. Its log-likelihood is checked on the next pass; a step that
would lower it is halved (on the free parameters) until it does not, so the
history is monotone as in memory. Near the maximum, safeguarded Newton steps
with Louis' information finish the fit, as in memory, so both paths reach
the same maximum to rounding.

Starts (random or warm-up) are computed in memory on a random sample of
rows (``sample_rows``, default 20000); EM then runs on all rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..engine import em as _em
from ..formula.dask_design import build_dask_design, formula_context, partition_arrays
from ..families import WeightedMoments, as_family, default_scale_floor
from ..engine.layout import ParameterLayout
from ..engine.louis import louis_information, observed_score, unit_scores
from ..covariance.estimators import score_meat
from ..warnings import ConvergenceWarning, LocalMaximumWarning

__all__ = ["fit_dask", "sample_frame"]

SAMPLE_ROWS = 20000


# ------------------------------------------------------------ partitions
def _chunk(part, model_spec, column_args, family, context, equal_scale=False):
    """One partition as the engine's EMData (numpy arrays)."""
    arrays = partition_arrays(part, model_spec, column_args, context)
    endog = arrays["endog"]
    n = arrays["exog"].shape[0]
    trials = arrays["trials"]
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
    return _em.EMData(endog, arrays["exog"], weights, offset, trials, family,
                      equal_scale=equal_scale), \
        arrays["dropped"], arrays["index"], arrays["cov_groups"]


def _counts(chunk):
    """Rows, total weight and dropped rows, and the moments of the values
    that set the default dispersion floor."""
    data, dropped = chunk[0], chunk[1]
    moments = (data.family.floor_moments(data.endog, data.weights)
               if data.family.estimates_scale else WeightedMoments())
    return {"counts": np.array([data.nobs, data.weights.sum(), dropped], dtype=float),
            "moments": moments}


def _em_sums(chunk, est):
    """Log-likelihood and the M-step sums of one partition at ``est``."""
    data = chunk[0]
    estep = _em.e_step(data, est)
    family = data.family
    K = est.n_components
    p = data.n_coef
    xtwx = np.zeros((K, p, p))
    xtwz = np.zeros((K, p))
    weight = np.zeros(K)
    scale_stat = np.zeros(K)
    for k in range(K):
        c = data.weights * estep.posterior[:, k]
        mu = estep.mu[:, k]
        xtwx[k], xtwz[k] = _em.normal_equations(data, c, estep.eta[:, k], mu)
        weight[k] = c.sum()
        if family.estimates_scale:
            scale_stat[k] = family.scale_statistic(data.endog, mu, c)
    return {"llf": estep.llf, "xtwx": xtwx, "xtwz": xtwz, "weight": weight,
            "scale_stat": scale_stat}


def _llf_only(chunk, est):
    return _em.e_step(chunk[0], est).llf


def _newton_sums(chunk, est, meat=False):
    """Log-likelihood, Louis' information and the observed score of one
    partition at ``est``; with ``meat`` also the meat of the robust
    covariance, ``sum_u v_u s_u s_u'`` (it adds over partitions), and with
    cluster labels the weighted scores summed per cluster (a DataFrame by
    label: a cluster may span partitions)."""
    data = chunk[0]
    estep = _em.e_step(data, est)
    sums = {"llf": estep.llf,
            "info": louis_information(data, est, estep.posterior, estep.mu),
            "score": observed_score(data, est, estep.posterior, estep.mu)}
    if meat:
        sums["meat"], clusters = _partition_meat(data, est, estep, chunk[3])
        if chunk[3] is not None:
            size = sums["info"].shape[0]  # an empty partition has no clusters
            sums["cluster_scores"] = (clusters if clusters is not None
                                      else pd.DataFrame(np.zeros((0, size))))
    return sums


#: Rows whose per-row scores (rows x parameters) are formed at once for the meat.
MEAT_BLOCK_ROWS = 65536


def _partition_meat(data, est, estep, labels=None):
    """``sum_u v_u s_u s_u'`` of one partition, and with cluster ``labels``
    the weighted scores ``sum_{u in c} v_u s_u`` of each cluster (a
    DataFrame indexed by label), in blocks of rows: the scores of a whole
    partition (rows x parameters) would add to the peak memory of every
    worker."""
    meat, by_cluster = 0.0, []
    for start in range(0, data.nobs, MEAT_BLOCK_ROWS):
        rows = np.arange(start, min(start + MEAT_BLOCK_ROWS, data.nobs))
        block = data.take(rows)
        scores = unit_scores(block, est, estep.posterior[rows], estep.mu[rows])
        meat = meat + score_meat(scores, block.unit_weights)
        if labels is not None:
            weighted = block.unit_weights[:, None] * scores
            by_cluster.append(_sum_by_label(pd.Index(labels[rows]), weighted))
    return meat, (_add(by_cluster) if by_cluster else None)


def _sum_by_label(labels, values):
    """Rows of ``values`` summed per label, as a DataFrame indexed by label.

    Unlike pandas' groupby sum a NaN is kept (as in memory, where a score
    that cannot be computed makes the covariance NaN)."""
    codes, uniques = pd.factorize(labels)
    summed = np.zeros((len(uniques), values.shape[1]))
    np.add.at(summed, codes, values)
    return pd.DataFrame(summed, index=uniques)


def _entropy(chunk, est):
    data = chunk[0]
    tau = _em.e_step(data, est).posterior
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(tau > 0, tau * np.log(tau), 0.0)
    return float(-np.dot(data.weights, terms.sum(axis=1)))


def _add(results):
    first = results[0]
    if isinstance(first, dict):
        return {key: _add([r[key] for r in results]) for key in first}
    if isinstance(first, pd.DataFrame):
        # Per-cluster sums: a cluster may appear in several pieces.
        frames = [r for r in results if len(r)] or [first]
        return _sum_by_label(pd.Index(np.concatenate([f.index.to_numpy() for f in frames])),
                             np.vstack([f.to_numpy() for f in frames]))
    return sum(results)


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
            parts = [dask.delayed(_add)(parts[i:i + MERGE_FAN_IN])
                     for i in range(0, len(parts), MERGE_FAN_IN)]
        return dask.compute(parts[0])[0]


# -------------------------------------------------------------- the fit
def _m_step_from_sums(family, sums, total, est, scale_floor, equal_scale=False):
    K = est.n_components
    coef = est.coef.copy()
    scale = est.scale.copy()
    common = family.estimates_scale and equal_scale
    for k in range(K):
        if sums["weight"][k] <= 0:
            continue
        solution, _ = _em._solve_normal_equations(sums["xtwx"][k], sums["xtwz"][k])
        if np.all(np.isfinite(solution)):
            coef[:, k] = solution
        if family.estimates_scale and not common:
            mean_stat = sums["scale_stat"][k] / sums["weight"][k]
            scale[k] = max(family.scale_from_statistic(mean_stat), scale_floor)
    if common and sums["weight"].sum() > 0:
        # One dispersion: the statistic of the stacked K-fold data.
        mean_stat = sums["scale_stat"].sum() / sums["weight"].sum()
        scale[:] = max(family.scale_from_statistic(mean_stat), scale_floor)
    prior = np.clip(sums["weight"] / total, 1e-300, None)
    return _em.Estimates(coef, scale, prior / prior.sum())


def _run(passes, family, est, total, layout, *, max_iter, tol, scale_floor):
    """EM from ``est`` with one pass per iteration, then Newton.

    ``layout`` (:class:`~emformula.inference.ParameterLayout`) places the
    free parameters for the step halving and the Newton steps."""
    sums = passes(_em_sums, est)
    history = [sums["llf"]]
    n_iter, converged = 0, False
    while n_iter < max_iter:
        n_iter += 1
        candidate = _m_step_from_sums(family, sums, total, est, scale_floor,
                                      layout.equal_scale)
        new_sums = passes(_em_sums, candidate)
        # Monotone safeguard: halve the step on the free parameters.
        step = 1.0
        theta0 = layout.pack(est)
        direction = layout.pack(candidate) - theta0
        while new_sums["llf"] < sums["llf"] and step > 1e-6:
            step *= 0.5
            candidate = layout.unpack(theta0 + step * direction)
            new_sums = passes(_em_sums, candidate)
        if new_sums["llf"] < sums["llf"]:
            break
        est, sums = candidate, new_sums
        history.append(sums["llf"])
        if _em.has_converged(history[-2], history[-1], _em.NEWTON_SWITCH):
            est, llfs, done = _newton(passes, layout, est, sums["llf"], scale_floor,
                                      max_steps=min(20, max_iter - n_iter))
            history.extend(llfs)
            n_iter += len(llfs)
            if done or _em.has_converged(history[-2], history[-1], tol):
                converged = True
                break
            sums = passes(_em_sums, est)
    return est, np.asarray(history), n_iter, converged


def _newton(passes, layout, est, llf, scale_floor, max_steps):
    llfs = []
    for _ in range(max_steps):
        sums = passes(_newton_sums, est)
        direction, definite = _em._ascent_direction(sums["info"], sums["score"])
        if direction is None:
            return est, llfs, False
        theta = layout.pack(est)
        decrement = 0.5 * sums["score"] @ direction
        step = 1.0
        for _ in range(30):
            cand = layout.unpack(theta + step * direction)
            if _em._admissible(cand, scale_floor):
                cand_llf = passes(_llf_only, cand)
                floor = llf - (1e-13 * (abs(llf) + 1.0) if decrement <= 1e-15 * (abs(llf) + 1)
                               else 0.0)
                if cand_llf >= floor:
                    break
            step *= 0.5
        else:
            return est, llfs, definite
        est, llf = cand, cand_llf
        llfs.append(llf)
        if definite and decrement <= 1e-15 * (abs(llf) + 1.0):
            return est, llfs, True
    return est, llfs, False


def sample_frame(frame, random_state=None, rows=SAMPLE_ROWS):
    """About ``rows`` rows of a dask DataFrame drawn at random, as pandas."""
    n_rows = len(frame)
    fraction = min(1.0, rows / max(n_rows, 1))
    if fraction >= 1.0:
        return frame.compute()
    seed = np.random.SeedSequence(random_state).generate_state(1)[0]
    return frame.sample(frac=fraction, random_state=int(seed)).compute()


def _start(design, family, K, start, n_init, random_state, context, sample_rows,
           scale_floor, equal_scale=False):
    """Starting estimates: given, or fitted in memory on a sample of rows."""
    from ..model import EMGLM, _start_estimates
    from ..results import EMGLMResults

    if isinstance(start, EMGLMResults):
        return start.estimates
    if isinstance(start, dict):
        return _start_estimates(start, K)
    sample = sample_frame(design.frame, random_state, sample_rows)
    model = EMGLM.from_formula(design.formula, sample, family, K, context=context,
                               equal_scale=equal_scale, **design.column_args)
    lacking = [name for name in design.exog_names if name not in model.exog_names]
    if lacking or len(model.exog_names) != len(design.exog_names):
        raise ValueError(f"the {len(sample)} sampled rows for the starting values lack "
                         f"design column(s) {lacking} (a rare level?): pass a larger "
                         "sample_rows= or start=")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # The sample's own replication says nothing about the fit to all rows.
        warnings.simplefilter("ignore", LocalMaximumWarning)
        fitted = model.fit(start=start, n_init=n_init, random_state=random_state,
                           scale_floor=scale_floor)
    return fitted.estimates


def fit_dask(formula, data, family="poisson", K=2, *, weights=None, offset=None,
             exposure=None, trials=None, link=None, start="auto", n_init=10,
             max_iter=5000, tol=1e-8, random_state=None, scale_floor=None, context=None,
             sample_rows=SAMPLE_ROWS, persist=False, cov_type="louis", cov_groups=None,
             equal_scale=False):
    """Fit a mixture to a dask DataFrame (see the module docstring).

    Returns
    -------
    DaskEMGLMResults
    """
    import dask

    from .dask_results import _dask_cov_type

    # Checked before any pass over the data, as in memory.
    if _dask_cov_type(cov_type) == "cluster" and cov_groups is None:
        raise ValueError("cov_type='cluster' needs cluster labels: pass cov_groups= "
                         "(a column name)")
    family = as_family(family, link)
    context = formula_context(formula, context)
    design = build_dask_design(formula, data, context=context, weights=weights,
                               offset=offset, exposure=exposure, trials=trials,
                               cov_groups=cov_groups)
    chunks = [dask.delayed(_chunk)(part, design.model_spec, design.column_args, family,
                                   context, equal_scale) for part in design.partitions()]
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
    if dropped:
        warnings.warn(f"dropped {int(dropped)} rows with missing values", UserWarning,
                      stacklevel=3)
    if scale_floor is None:
        # As in memory, from the weighted variance (merged over partitions).
        scale_floor = (default_scale_floor(counted["moments"].variance)
                       if family.estimates_scale else 0.0)
    est0 = _start(design, family, K, start, n_init, random_state, context, sample_rows,
                  scale_floor, equal_scale)
    layout = ParameterLayout(len(design.exog_names), K, family.estimates_scale,
                             equal_scale=equal_scale)
    est, history, n_iter, converged = _run(passes, family, est0, total, layout,
                                           max_iter=max_iter, tol=tol, scale_floor=scale_floor)
    if not converged:
        warnings.warn(f"EM on dask data did not converge in {max_iter} iterations",
                      ConvergenceWarning, stacklevel=3)
    order = np.lexsort((np.round(est.coef[0], 10), -np.round(est.prior, 10)))
    est = est.permuted(order)
    sums = passes(_newton_sums, est, True)
    entropy = passes(_entropy, est)
    from .dask_results import DaskEMGLMResults

    return DaskEMGLMResults(
        design=design, family=family, estimates=est, llf=sums["llf"], history=history,
        n_iter=n_iter, converged=converged, information=sums["info"], entropy=entropy,
        nobs=int(nobs), wnobs=float(total), chunks=chunks, context=context,
        passes=passes.count, scale_floor=scale_floor, meat=sums["meat"],
        cluster_scores=sums.get("cluster_scores"), cluster_name=cov_groups, cov_type=cov_type,
        equal_scale=equal_scale)


class DaskEMGLM:
    """The array-level model for dask arrays: ``EMGLM(endog, exog, ...)``
    with ``endog`` and ``exog`` dask arrays (chunked by rows) returns one.

    The arrays become the columns of a dask DataFrame (``y``, and the exog
    names), so the fit is :func:`fit_dask` with the formula ``y ~ 0 + ...``.
    Weights, offset, exposure and trials may be dask arrays chunked like
    ``exog``.
    """

    def __init__(self, endog, exog, family="poisson", K=2, *, weights=None, offset=None,
                 exposure=None, trials=None, link=None, exog_names=None):
        import dask.array as da
        import dask.dataframe as dd

        exog = da.asarray(exog)
        endog = da.asarray(endog)
        if exog.ndim == 1:
            exog = exog[:, None]
        p = exog.shape[1]
        names = list(exog_names) if exog_names is not None else [f"x{j}" for j in range(p)]
        if len(names) != p:
            raise ValueError(f"exog_names has {len(names)} names for {p} columns")
        safe = [f"x{j}" for j in range(p)]
        columns = {name: exog[:, j] for j, name in enumerate(safe)}
        if endog.ndim == 2:
            columns["successes"], columns["failures"] = endog[:, 0], endog[:, 1]
            lhs = "successes + failures"
        else:
            columns["y"] = endog
            lhs = "y"
        extra = {}
        for name, value in (("weights", weights), ("offset", offset), ("exposure", exposure),
                            ("trials", trials)):
            if value is not None:
                columns[f"_{name}"] = da.asarray(value)
                extra[name] = f"_{name}"
        arrays = list(columns.values())
        stacked = da.stack([a.astype(float) for a in arrays], axis=1)
        self.frame = dd.from_dask_array(stacked, columns=list(columns))
        self.formula = f"{lhs} ~ 0 + " + " + ".join(safe)
        self.family, self.K, self.link, self.extra = family, K, link, extra
        self.exog_names = names

    def fit(self, start="auto", *, n_init=10, max_iter=5000, tol=1e-8, random_state=None,
            scale_floor=None):
        """Fit by EM with one pass over the chunks per iteration."""
        res = fit_dask(self.formula, self.frame, self.family, self.K, link=self.link,
                       start=start, n_init=n_init, max_iter=max_iter, tol=tol,
                       random_state=random_state, scale_floor=scale_floor, **self.extra)
        # Report the caller's column names, not the internal ones.
        res.model.exog_names = self.exog_names
        return res
