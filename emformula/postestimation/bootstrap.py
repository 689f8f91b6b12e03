"""The bootstrap of a fitted mixture: replicates, standard errors, intervals.

:meth:`EMGLMResults.bootstrap` draws ``n_boot`` data sets, refits the
mixture to each and collects the free parameters (``cov_params()``'s names
and scale):

* ``kind="nonparametric"``: the independent units (rows, or groups with
  ``groups=``) resampled with replacement. It is done through frequency
  weights (a unit drawn ``c`` times gets ``c`` times its weight), so the
  design is never copied or rebuilt. With whole-number frequency weights
  the individuals they count are resampled (``Multinomial(sum w, w / sum
  w)``); other weights are carried by the units drawn.
* ``kind="parametric"``: a new response drawn from the fitted mixture at
  the fitted design (:func:`~emformula.postestimation.simulation.simulate`);
  with frequency weights other than 1 it is refused (a row of weight ``w``
  stands for ``w`` draws, which one simulated response per row is not).

Each replicate is fitted by EM from the full-data estimates, with the
Newton finish, which keeps its components near theirs; label switching
that remains is undone by matching each replicate's components to the
full-data fit (the assignment with the smallest standardised distance of
the coefficients, :func:`scipy.optimize.linear_sum_assignment`), before
the concomitant coefficients and mixing log-odds are re-based on the
matched reference. Replicates whose fit did not converge (EM settled and
the Newton finish confirmed a maximum) are left out and counted.
Components that differ only in their family parameters or priors are not
told apart by the matching.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import optimize

from .._runtime.parallel import map_tasks
from .._runtime.seeds import seed_sequence as _seed_sequence
from ..engine.loop import newton_polish, run_em
from ..warnings import ConvergenceWarning, warn
from .simulation import simulate

__all__ = ["BootstrapResults", "bootstrap", "match_components"]

#: Default number of bootstrap replicates.
DEFAULT_N_BOOT = 199


class BootstrapResults:
    """Bootstrap replicates of a mixture's free parameters.

    Attributes
    ----------
    replicates : DataFrame (replicates x parameters)
        The free parameters of each converged replicate, components matched
        to the full-data fit, named as :meth:`EMGLMResults.cov_params`.
    estimate : Series
        The full-data estimates.
    kind : str
        ``"nonparametric"`` or ``"parametric"``.
    n_boot : int
        Replicates drawn.
    n_failed : int
        Replicates left out because their fit did not converge.
    n_relabelled : int
        Replicates whose components had to be reordered to match the
        full-data fit (label switching undone).
    llf : ndarray
        Each kept replicate's log-likelihood.
    """

    def __init__(self, replicates, estimate, kind, n_boot, n_failed, n_relabelled, llf):
        self.replicates = replicates
        self.estimate = estimate
        self.kind = kind
        self.n_boot = int(n_boot)
        self.n_failed = int(n_failed)
        self.n_relabelled = int(n_relabelled)
        self.llf = np.asarray(llf, dtype=float)

    @property
    def cov(self):
        """Covariance of the replicates (``ddof=1``)."""
        return self.replicates.cov()

    @property
    def bse(self):
        """Bootstrap standard errors: the standard deviation of the replicates."""
        return self.replicates.std(ddof=1).rename("bse")

    def conf_int(self, alpha=0.05):
        """Percentile intervals: the ``alpha/2`` and ``1 - alpha/2`` quantiles
        of the replicates (columns ``lower`` and ``upper``)."""
        q = self.replicates.quantile([alpha / 2.0, 1.0 - alpha / 2.0]).T
        q.columns = ["lower", "upper"]
        return q

    def summary_frame(self, alpha=0.05):
        """Estimate, bootstrap standard error, bias and percentile interval
        per parameter."""
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "estimate": self.estimate,
                "bse": self.bse,
                "bias": self.replicates.mean() - self.estimate,
                f"ci_lower_{1 - alpha:g}": ci["lower"],
                f"ci_upper_{1 - alpha:g}": ci["upper"],
            }
        )

    def relabelled(self, res, perm):
        """These replicates in the terms of ``res.relabel`` with the
        permutation ``perm``: each unpacked, its components permuted (the
        mixing parameters re-based) and packed again."""
        lay = res.layout
        data = res.model.data
        rows = [
            lay.pack(lay.unpack(theta, data).permuted(perm)) for theta in self.replicates.to_numpy()
        ]
        estimate = lay.pack(res.estimates.permuted(perm))
        return BootstrapResults(
            pd.DataFrame(np.vstack(rows), columns=self.replicates.columns),
            pd.Series(estimate, index=self.estimate.index, name=self.estimate.name),
            self.kind,
            self.n_boot,
            self.n_failed,
            self.n_relabelled,
            self.llf,
        )

    def __repr__(self):
        return (
            f"<BootstrapResults: {self.kind}, {len(self.replicates)} of {self.n_boot} "
            f"replicates kept, {self.n_relabelled} relabelled>"
        )


def match_components(reference, candidate, scale, family=None):
    """The order of ``candidate``'s components that matches ``reference``'s.

    Parameters
    ----------
    reference, candidate : ndarray (p, K)
        Coefficients per component.
    scale : ndarray (p,)
        A standard error per coefficient row (its typical size across
        components); rows are divided by it.
    family : MixtureFamily, optional
        With a list of families only components of the same family match.

    Returns
    -------
    list of int
        New component ``j`` is ``candidate``'s ``order[j]``.
    """
    K = reference.shape[1]
    diff = (candidate[:, None, :] - reference[:, :, None]) / scale[:, None, None]
    cost = np.nansum(diff**2, axis=0)  # (reference j, candidate k)
    if family is not None and family.differs:
        for j in range(K):
            for k in range(K):
                if type(family.member(j)) is not type(family.member(k)):
                    cost[j, k] = np.inf
    cost = np.where(np.isfinite(cost), cost, 1e300)
    rows, cols = optimize.linear_sum_assignment(cost)
    order = np.empty(K, dtype=int)
    order[rows] = cols
    return [int(k) for k in order]


def _resampled_weights(data, rng):
    """Frequency weights of a nonparametric bootstrap sample (see the module)."""
    unit_weights = data.unit_weights
    n_units = unit_weights.size
    whole = np.all(unit_weights == np.round(unit_weights))
    if whole:
        total = int(round(unit_weights.sum()))
        counts = rng.multinomial(total, unit_weights / unit_weights.sum()).astype(float)
    else:
        counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units)) * unit_weights
    return data.to_rows(counts)


def _replicate(shared, seed):
    """One bootstrap replicate: (theta or None, llf, relabelled)."""
    res, data, options = shared
    rng = np.random.default_rng(seed)
    if options["kind"] == "parametric":
        sample = replace(data, endog=simulate(res, rng))
    else:
        sample = replace(data, weights=_resampled_weights(data, rng))
    floor = options["scale_floor"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_em(
            sample,
            res.estimates,
            max_iter=options["max_iter"],
            tol=options["tol"],
            scale_floor=floor,
        )
        if run.converged and not run.newton_converged:
            run = newton_polish(sample, run, scale_floor=floor)
    # As for the fit: converged means the Newton finish confirmed a maximum.
    if not (run.converged and run.newton_converged and np.isfinite(run.llf)):
        return None, np.nan, False
    est = run.estimates
    order = list(range(est.n_components))
    if est.n_components > 1:
        order = match_components(res.estimates.coef, est.coef, options["coef_scale"], res.family)
    relabelled = order != list(range(est.n_components))
    if relabelled:
        est = est.permuted(order)
    return res.layout.pack(est), run.llf, relabelled


def bootstrap(
    res,
    n_boot=DEFAULT_N_BOOT,
    *,
    kind="nonparametric",
    random_state=None,
    n_jobs=1,
    progress=None,
    max_iter=None,
    tol=None,
):
    """Bootstrap replicates of a fit in memory (see the module); the
    arguments are those of :meth:`EMGLMResults.bootstrap`, which calls this.

    Returns
    -------
    BootstrapResults
    """
    if kind not in ("nonparametric", "parametric"):
        raise ValueError(f"kind must be 'nonparametric' or 'parametric', got {kind!r}")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 2):
        raise ValueError(f"n_boot must be a whole number of at least 2, got {n_boot!r}")
    options = res.fit_options
    coef_scale = np.nanmean(np.where(res.bse.to_numpy() > 0, res.bse.to_numpy(), np.nan), axis=1)
    coef_scale = np.where(np.isfinite(coef_scale) & (coef_scale > 0), coef_scale, 1.0)
    settings = {
        "kind": kind,
        "coef_scale": coef_scale,
        "max_iter": int(max_iter if max_iter is not None else options.get("max_iter", 5000)),
        "tol": float(tol if tol is not None else options.get("tol", 1e-10)),
        "scale_floor": float(options.get("scale_floor", 0.0)),
    }
    # A key of its own: the replicates' streams never repeat those of a fit
    # (its starts) seeded with the same random_state.
    seq = _seed_sequence(random_state)
    seeds = np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key + (0xB007,)).spawn(
        int(n_boot)
    )
    outcomes = map_tasks(
        _replicate,
        seeds,
        shared=(res, res.model.data, settings),
        n_jobs=n_jobs,
        progress=progress,
        desc="bootstrap",
    )
    kept = [o for o in outcomes if o[0] is not None]
    n_failed = len(outcomes) - len(kept)
    if len(kept) < 2:
        raise RuntimeError(
            f"only {len(kept)} of {n_boot} bootstrap fits converged (EM settled and Newton "
            "confirmed a maximum): the fit may sit on a boundary or a flat ridge (see "
            "res.problems), where the bootstrap cannot be trusted either"
        )
    if n_failed:
        warn(
            f"{n_failed} of {n_boot} bootstrap fits did not converge and are left out",
            ConvergenceWarning,
        )
    names = res.param_names
    replicates = pd.DataFrame(np.vstack([o[0] for o in kept]), columns=names)
    return BootstrapResults(
        replicates,
        res.theta.copy(),
        kind,
        n_boot,
        n_failed,
        sum(o[2] for o in kept),
        [o[1] for o in kept],
    )
