"""The array-level model: ``EMGLM(endog, exog, ...)`` and its ``fit``.

``EMGLM`` validates arrays, turns them into the engine's :class:`EMData`,
runs EM from one or several starts and hands the best run to
:class:`~emformula.results.EMGLMResults`. ``EMGLM.from_formula`` builds the
arrays with the formula layer first, so the formula route and the array route
share everything after the design.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.linalg
from statsmodels.tools.sm_exceptions import DomainWarning

from ._runtime.parallel import map_tasks
from ._runtime.seeds import seed_sequence as _seed_sequence
from ._runtime.threads import blas_threads
from .engine import em as _em
from .engine.data import check_constant_within_groups
from .engine.given import checked_start, estimates_from_dict
from .engine.layout import ParameterLayout, mean_prior
from .engine.loop import DEFAULT_TOL
from .engine.starts import StartPlan, StartRecord, StartSearch, count_replicates, search_starts
from .families import as_family, check_family_use, default_scale_floor
from .formula.design import build_design
from .formula.design import group_codes as _group_codes
from .results import EMGLMResults
from .specification import DEFAULT_FAMILY, DEFAULT_K, MixtureSpec, given
from .warnings import ConvergenceWarning, EstimationWarning, LocalMaximumWarning, warn

__all__ = ["EMGLM"]

# DEFAULT_TOL (the relative tolerance on the change of the log-likelihood)
# is the engine's, one value for every backend.
DEFAULT_MAX_ITER = 5000
DEFAULT_N_INIT = 10


class EMGLM:
    """Finite mixture of generalized linear models, fitted by EM.

    Parameters
    ----------
    endog : array_like, (n,) or (n, 2)
        Response. For the binomial family: 0/1, proportions with
        ``trials``, or two columns (successes, failures).
    exog : array_like (n, p)
        Design matrix (include a column of ones for an intercept).
    family : str or statsmodels family, default "poisson"
        See :func:`emformula.families.as_family`.
    K : int, default 2
        Number of components.
    weights : array_like, optional
        Frequency (case) weights: non-negative, non-integer allowed.
    offset, exposure : array_like, optional
        As in statsmodels: ``eta = X b + offset + log(exposure)``.
    trials : array_like, optional
        Binomial number of trials when ``endog`` is a proportion.
    link : str, optional
        With a family name, a non-canonical link.
    exog_names, endog_names : list of str, optional
        Labels for the tables.
    fixed : array_like (n, r), optional
        Design of effects shared by all components (one coefficient each,
        the same in every component). ``fixed_names`` labels its columns.
    concomitant : array_like (n, q), optional
        Design of the mixing proportions: ``log(pi_ik / pi_i1) = w_i' gamma_k``
        (a multinomial logit with component 1 as reference; include a column
        of ones for an intercept). ``concomitant_names`` labels its columns.
        Without it the mixing proportions are constant.
    groups : array_like (n,), optional
        Group labels: all rows of a group belong to the same component
        (panels, repeated measures). Weights and concomitant variables must
        be constant within a group; a group's weight counts the group once.
    equal_scale : bool, default False
        One value of each family parameter shared by all components (one
        dispersion, one negative binomial alpha; ignored for a family
        without parameters).
    cov_groups : array_like (n,), optional
        Cluster labels for ``fit(cov_type="cluster")``.

    Examples
    --------
    >>> import numpy as np
    >>> from emformula import EMGLM
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([np.ones(400), rng.normal(size=400)])
    >>> z = rng.integers(0, 2, 400)
    >>> y = rng.poisson(np.exp(np.where(z == 0, 0.5 + x[:, 1], 2.0 - x[:, 1])))
    >>> res = EMGLM(y, x, family="poisson", K=2).fit(random_state=0)
    >>> res.params.shape
    (2, 2)
    """

    def __new__(cls, endog=None, exog=None, *args, **kwargs):
        # Dask arrays get the out-of-core model (the engine's loop on per-partition sums).
        if any(type(a).__module__.startswith("dask") for a in (endog, exog)):
            from .dask_model import DaskEMGLM

            return DaskEMGLM(endog, exog, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        endog,
        exog,
        family="poisson",
        K=DEFAULT_K,
        *,
        weights=None,
        offset=None,
        exposure=None,
        trials=None,
        link=None,
        exog_names=None,
        endog_names=None,
        missing_rows=0,
        fixed=None,
        fixed_names=None,
        concomitant=None,
        concomitant_names=None,
        groups=None,
        equal_scale=False,
        cov_groups=None,
    ):
        self.family = as_family(family, link)
        K, k_given = given(K)
        if self.family.n_members is not None and not k_given:
            K = self.family.n_members  # one family per component
        self.K = _check_k(K)
        check_family_use(self.family, self.K, fixed is not None, bool(equal_scale))
        # What with_k() passes to the constructor again (arrays shared).
        self._keywords = dict(
            weights=weights,
            offset=offset,
            exposure=exposure,
            trials=trials,
            exog_names=exog_names,
            endog_names=endog_names,
            missing_rows=missing_rows,
            fixed=fixed,
            fixed_names=fixed_names,
            concomitant=concomitant,
            concomitant_names=concomitant_names,
            groups=groups,
            equal_scale=equal_scale,
            cov_groups=cov_groups,
        )
        safe = getattr(getattr(self.family, "sm_family", None), "safe_links", None)
        if safe and not isinstance(self.family.link, tuple(safe)):
            # As statsmodels' GLM does: the mean may leave the family's domain.
            warn(
                f"The {self.family.link_name} link function does not respect the "
                f"domain of the {self.family.family_name} family.",
                DomainWarning,
            )
        # pandas inputs keep their labels, as in statsmodels' GLM: the
        # columns name the terms, the Series the response, the index the rows.
        index = next(
            (a.index for a in (exog, endog) if isinstance(a, pd.Series | pd.DataFrame)), None
        )
        if exog_names is None and isinstance(exog, pd.DataFrame):
            exog_names = [str(c) for c in exog.columns]
        if exog_names is None and isinstance(exog, pd.Series) and exog.name is not None:
            exog_names = [str(exog.name)]
        if endog_names is None and isinstance(endog, pd.Series) and endog.name is not None:
            endog_names = [str(endog.name)]
        if endog_names is None and isinstance(endog, pd.DataFrame) and endog.shape[1] == 2:
            endog_names = [str(c) for c in endog.columns]
        endog = _as_float_array(endog, "endog")
        exog = _as_float_array(exog, "exog")
        if exog.ndim == 1:
            exog = exog[:, None]
        if exog.ndim != 2:
            raise ValueError(f"exog must be two-dimensional, got shape {exog.shape}")
        n = exog.shape[0]
        if n == 0:
            raise ValueError("exog has no rows")
        if endog.shape[0] != n:
            raise ValueError(f"endog has {endog.shape[0]} rows but exog has {n}")
        if not np.all(np.isfinite(exog)):
            cols = np.flatnonzero(~np.all(np.isfinite(exog), axis=0))
            names = [exog_names[c] for c in cols] if exog_names else cols.tolist()
            raise ValueError(f"exog has missing or infinite values in column(s) {names}")
        self.endog_names = (
            list(endog_names)
            if endog_names is not None
            else (["y"] if endog.ndim == 1 else ["successes", "failures"])
        )
        self.exog_names = (
            list(exog_names) if exog_names is not None else [f"x{j}" for j in range(exog.shape[1])]
        )
        if len(self.exog_names) != exog.shape[1]:
            raise ValueError(
                f"exog_names has {len(self.exog_names)} names for {exog.shape[1]} columns"
            )
        y, n_trials = self._response(endog, trials, n)
        self.weights = _check_weights(weights, n)
        self.offset = _check_vector(offset, n, "offset")
        self.exposure = _check_vector(exposure, n, "exposure")
        if self.exposure is not None and np.any(self.exposure <= 0):
            rows = np.flatnonzero(self.exposure <= 0)
            raise ValueError(
                f"exposure must be positive; {rows.size} row(s) are not, "
                f"first at positions {rows[:5].tolist()}"
            )
        total_offset = np.zeros(n)
        if self.offset is not None:
            total_offset += self.offset
        if self.exposure is not None:
            total_offset += np.log(self.exposure)
        self.family = self.family.for_response(y)
        self.family.check_response(y, n_trials, name=self.endog_names[0])
        if not self.family.has_intercept:
            _check_no_constant(exog, self.exog_names, self.family)
        if self.family.any_dispersion and np.abs(y).max() > _LARGEST_COLUMN:
            # The dispersion is of the order of y squared (gaussian) or more.
            raise ValueError(
                f"the response {self.endog_names[0]!r} reaches "
                f"{np.abs(y).max():.3g}: its dispersion would overflow double "
                "precision; rescale it (e.g. divide by a power of ten)"
            )
        fixed, self.fixed_names = _extra_design(fixed, fixed_names, n, "fixed", "z")
        concomitant, self.concomitant_names = _extra_design(
            concomitant, concomitant_names, n, "concomitant", "w"
        )
        if fixed is None:
            _check_rank(exog, self.exog_names)
        else:
            # Shared and component-specific columns share each linear predictor.
            _check_rank(np.hstack([exog, fixed]), self.exog_names + self.fixed_names)
        if concomitant is not None:
            _check_rank(concomitant, self.concomitant_names)
        self.group_labels, codes = _group_codes(groups, n, "groups")
        if codes is not None:
            check_constant_within_groups(self.weights, codes, self.group_labels, "weights")
            if concomitant is not None:
                check_constant_within_groups(
                    concomitant, codes, self.group_labels, "the concomitant variables"
                )
        self.cov_group_labels, self.cov_groups = _group_codes(cov_groups, n, "cov_groups")
        self.equal_scale = bool(equal_scale)
        self.endog = endog
        self.exog = exog
        self.missing_rows = missing_rows
        self.data = _em.EMData(
            y,
            np.ascontiguousarray(exog),
            self.weights,
            total_offset,
            n_trials,
            self.family,
            fixed,
            concomitant,
            codes,
            bool(self.equal_scale and self.family.parameters),
        )
        n_free = self.layout.size
        n_rows = int(np.count_nonzero(self.weights))
        if n_free > n_rows:
            raise ValueError(
                f"K={self.K} is too large for the data: {n_free} free parameters "
                f"but only {n_rows} rows with positive weight"
            )
        self._index = index if index is not None and len(index) == n else None
        # Filled by from_design: the design, to rebuild X for new data.
        self.design = None
        self.formula = None
        self.context = None
        self.spec = MixtureSpec(self.family, self.K, equal_scale=self.equal_scale)

    # ----------------------------------------------------------- building
    def _response(self, endog, trials, n):
        family = self.family
        if endog.ndim == 2 and endog.shape[1] == 1:
            endog = endog[:, 0]
        if not np.all(np.isfinite(endog)):
            raise ValueError(f"the response {self.endog_names[0]!r} has missing or infinite values")
        if endog.ndim == 2:
            if endog.shape[1] != 2 or not family.takes_trials:
                raise ValueError(
                    "a two-column response (successes, failures) needs the "
                    f"binomial family and two columns, got {endog.shape[1]} "
                    f"columns with the {family.name} family"
                )
            if trials is not None:
                raise ValueError("trials= cannot be combined with a two-column response")
            if np.any(endog < 0):
                raise ValueError("successes and failures must be non-negative")
            n_trials = endog.sum(axis=1)
            y = np.divide(endog[:, 0], n_trials, out=np.zeros(n), where=n_trials > 0)
            return y, n_trials
        if trials is not None:
            if not family.takes_trials:
                raise ValueError(f"trials= is only for the binomial family, not {family.name}")
            n_trials = _check_vector(trials, n, "trials")
            if np.any(n_trials < 0):
                raise ValueError("trials must be non-negative")
            return endog, n_trials
        return endog, np.ones(n)

    @classmethod
    def from_formula(cls, formula, data, family=DEFAULT_FAMILY, K=DEFAULT_K, *, spec=None, **model):
        """Build the model from a formula.

        Parameters
        ----------
        formula : str
        data : DataFrame
        family, K
            As in :func:`emformula.emglm` (or in ``spec``).
        spec : MixtureSpec, optional
            The model keywords at once; keywords given as well override it.
        **model
            The model keywords of :class:`~emformula.specification.MixtureSpec`
            (``weights``, ``offset``, ``exposure``, ``trials``, ``link``,
            ``na_action``, ``context``, ``fixed``, ``concomitant``,
            ``groups``, ``equal_scale``, ``cov_groups``).
        """
        spec = model_spec("EMGLM.from_formula", family, K, spec, model)
        return cls.from_design(build_design(formula, data, spec), spec, formula)

    @classmethod
    def from_design(cls, design, spec, formula=None):
        """The model of a formula layer :class:`~emformula.formula.design.Design`
        under ``spec`` (its family, K, link and equal_scale), through the
        constructor and all of its checks."""
        model = cls(
            design.endog,
            design.exog,
            spec.family,
            spec.K,
            weights=design.weights,
            offset=design.offset,
            exposure=design.exposure,
            trials=design.trials,
            link=spec.link,
            exog_names=design.exog_names,
            endog_names=design.endog_names,
            missing_rows=int((~design.kept).sum()),
            fixed=design.fixed,
            fixed_names=design.fixed_names,
            concomitant=design.concomitant,
            concomitant_names=design.concomitant_names,
            groups=design.groups,
            equal_scale=spec.equal_scale,
            cov_groups=design.cov_groups,
        )
        model.design = design
        model.formula = formula if formula is not None else design.formula
        model.context = spec.context
        model.spec = spec
        return model

    @property
    def layout(self):
        """The :class:`~emformula.engine.layout.ParameterLayout` of the free parameters."""
        return ParameterLayout.for_data(self.data, self.K)

    @property
    def groups_name(self):
        """The name of the grouping column (formula route), else ``"groups"``."""
        if self.design is not None and isinstance(self.design.column_args.get("groups"), str):
            return self.design.column_args["groups"]
        return "groups"

    @property
    def cov_groups_name(self):
        """The name of the cluster column (formula route), else ``"cov_groups"``."""
        if self.design is not None and isinstance(self.design.column_args.get("cov_groups"), str):
            return self.design.column_args["cov_groups"]
        return "cov_groups"

    @property
    def nobs(self):
        """Number of rows used in the fit."""
        return self.__dict__.get("_rows_removed", self.data.nobs)

    def without_rows(self):
        """A copy of the model without the arrays of its rows, for
        :meth:`EMGLMResults.remove_data`.

        The engine's data keep their columns, family and options with zero
        rows (so the parameter layout and predictions on new data still
        work); the response, designs, weights and the formula design's
        arrays and index go. :attr:`nobs` still counts the rows fitted.
        """
        model = copy.copy(self)
        d = model.__dict__
        d["_rows_removed"] = self.nobs
        d["data"] = self.data.take(np.arange(0))
        for name in (
            "endog",
            "exog",
            "weights",
            "offset",
            "exposure",
            "missing_rows",
            "cov_groups",
            "cov_group_labels",
            "_index",
            "_keywords",
        ):
            if name in d:
                d[name] = None
        if self.design is not None:
            d["design"] = replace(
                self.design,
                endog=None,
                exog=None,
                weights=None,
                offset=None,
                exposure=None,
                trials=None,
                row_index=None,
                kept=None,
                fixed=None,
                concomitant=None,
                groups=None,
                cov_groups=None,
            )
        return model

    @property
    def row_index(self):
        """Labels of the rows used: the data's index (formula route, or pandas
        arrays), else a RangeIndex."""
        if self.design is not None:
            return self.design.row_index
        index = self.__dict__.get("_index")
        return index if index is not None else pd.RangeIndex(self.nobs)

    def __getstate__(self):
        state = self.__dict__.copy()
        # The formula's namespace may hold modules and functions that do not
        # pickle; predict() after unpickling then needs them in scope again.
        state["context"] = None
        if state.get("spec") is not None:
            state["spec"] = state["spec"].replace(context=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # Models pickled before the spec existed.
        if self.__dict__.get("spec") is None:
            self.spec = MixtureSpec(self.family, self.K, equal_scale=self.equal_scale)
        # An array-route model pickled before with_k() kept the constructor's
        # keywords cannot be rebuilt faithfully: with_k() then refuses.
        self.__dict__.setdefault("_keywords", None)

    # -------------------------------------------------------------- fit
    def fit(
        self,
        start="auto",
        *,
        n_init=DEFAULT_N_INIT,
        max_iter=DEFAULT_MAX_ITER,
        tol=DEFAULT_TOL,
        random_state=None,
        scale_floor=None,
        polish=True,
        n_jobs=1,
        progress=None,
        cov_type="louis",
        cov_groups=None,
        _related=None,
        _inference=True,
    ):
        """Fit the mixture by EM.

        Parameters
        ----------
        start : "auto", "random", EMGLMResults, dict
            ``"auto"`` (the default; ``"warmup"`` is the same): candidate
            starts of several kinds (random partitions, random regression
            lines, splits of the K-1 fit) screened by short EM runs, the
            best of each kind and others run to convergence (``n_init`` in
            all; every candidate on small data), plus starts from the nested models with the
            component-specific effects shared, which go straight to a full
            run; see :mod:`emformula.engine.starts`. The fit therefore never ends
            below its nested models. ``"random"``: ``n_init`` random
            partitions of the rows, each followed by an M-step and run to
            convergence (on more than 100 000 rows, EM first separates the
            components on a random subsample of 20 000 rows; see
            :func:`emformula.engine.initial.random_start`). A results
            object (same K and design), or a dict with ``params`` (p x K),
            ``prior`` (K) and, for families with a dispersion, ``scale`` (K),
            plus ``fixed`` (r shared coefficients, default 0) and
            ``concomitant`` (q x K, default: the log-odds of ``prior`` on a
            constant column) where the model has them; or a dict with
            ``posterior`` (n x K). :func:`emformula.select_best` returns
            such a dict. A list of results objects and dicts runs each to
            convergence (and counts their replication in ``results.starts``).
        n_init : int
            Starts run to convergence (with ``"auto"`` or ``"random"``;
            ``"auto"`` adds one run from each nested model); the run with
            the highest log-likelihood is kept (the first of equals).
            ``results.starts`` lists every start and
            ``results.n_best`` how many reached the best log-likelihood; a
            warning says when only one of several did.
        max_iter : int
            EM iterations (M-steps and Newton steps) per start.
        tol : float
            Convergence when ``|llf_new - llf_old| <= tol * (|llf_new| + 1)``.
        random_state : int, numpy Generator or None
        scale_floor : float, optional
            Smallest dispersion allowed (default ``1e-8`` times the response
            variance, or that of its log for gamma and inverse Gaussian,
            weighted by the frequency weights), which keeps a Gaussian
            component that collapses onto a
            few points from an unbounded likelihood.
        polish : bool, default True
            After EM has converged, take safeguarded Newton steps on the
            observed log-likelihood (Louis' information as the Hessian) until
            the score vanishes: EM's linear convergence leaves slow directions
            short of the maximum, and standard errors need the maximum.
        n_jobs : int, default 1
            Processes for the starts (-1: every core). Results do not depend
            on it.
        progress : bool or None
            Progress bar over the starts; ``None`` shows it on an interactive
            terminal or in a Jupyter notebook, never under CI.
        cov_type : {"louis", "robust", "cluster", "bootstrap"}, default "louis"
            Covariance of the estimates behind ``bse``, ``cov_params`` and
            the summary: the inverse of Louis' observed information; the
            sandwich ``I^-1 (sum_u v_u s_u s_u') I^-1`` with ``s_u`` the
            observed score of each unit (row, or group with ``groups=``);
            the same with the scores summed within the clusters of
            ``cov_groups`` first; or the covariance of 199 nonparametric
            bootstrap replicates (:meth:`EMGLMResults.bootstrap`, seeded
            from ``random_state``). :meth:`EMGLMResults.with_cov_type`
            switches later without refitting.
        cov_groups : array_like, optional
            Cluster labels for ``cov_type="cluster"``, one per row used;
            default the model's ``cov_groups``.
        _related : dict, optional
            Internal (select_k, the bootstrap): fits at hand that give the
            ``"auto"`` strategy further starts: ``previous`` (estimates of
            the K-1 fit, to split), ``extra`` (``[(label, estimates)]``) and
            ``nested`` (False skips the nested-model starts).
        _inference : bool, default True
            Internal: False leaves the covariance to the first ``bse``
            (the many fits of select_k and the bootstrap test).

        Returns
        -------
        EMGLMResults
        """
        if "_rows_removed" in self.__dict__:
            raise ValueError(
                "remove_data() dropped the rows of this model: build it again to fit it"
            )
        n_init = _check_positive_int(n_init, "n_init")
        max_iter = _check_positive_int(max_iter, "max_iter")
        if not (isinstance(tol, numbers.Real) and tol > 0):
            raise ValueError(f"tol must be a positive number, got {tol!r}")
        floor = self._scale_floor(scale_floor)
        from .results import check_cov_type

        cov = check_cov_type(self, cov_type, cov_groups)
        # One BLAS thread: the engine's products are tall and skinny, where
        # threads gain little on an idle machine and spin against other
        # processes on a busy one (see emformula._runtime.threads).
        # The replicates are drawn once the fit is made; internal fits
        # (select_k, the bootstrap test) skip them (their covariance is Louis').
        wants_replicates = cov["type"] == "bootstrap"
        replicates = wants_replicates and _inference
        with blas_threads():
            res = self._fit(
                start,
                n_init=n_init,
                max_iter=max_iter,
                tol=tol,
                random_state=random_state,
                floor=floor,
                polish=polish,
                n_jobs=n_jobs,
                progress=progress,
                cov={"type": "louis"} if wants_replicates else cov,
                related=_related or {},
            )
        if _inference:
            # The covariance now, so that its EstimationWarnings (parameters
            # the information cannot identify, a saddle point) come with the
            # fit rather than at the first ``bse``.
            res._covariance  # noqa: B018
        if replicates:
            # The replicates' seed follows the fit's, so a seeded fit is
            # reproducible (and equals res.bootstrap(random_state=...)); other
            # settings: res.with_cov_type("bootstrap", ...).
            res = res.with_cov_type(
                "bootstrap",
                random_state=_seed_sequence(random_state),
                n_jobs=n_jobs,
                progress=progress,
            )
        return res

    def _fit(
        self,
        start,
        *,
        n_init,
        max_iter,
        tol,
        random_state,
        floor,
        polish,
        n_jobs,
        progress,
        cov,
        related,
    ):
        """:meth:`fit` after validation."""
        search = self._search(
            start, n_init, random_state, floor, max_iter, tol, n_jobs, progress, related
        )
        runs = search.runs
        runs_llf = np.array([run.llf for run in runs])
        best = runs[_best_run_index(runs_llf, [run.converged for run in runs])]
        # Workers return runs without their n x K posterior; recompute it once.
        best = replace(best, posterior=_em.e_step(self.data, best.estimates).posterior)
        if best.converged and polish and not best.newton_converged:
            best = _em.newton_polish(self.data, best, scale_floor=floor)
        best = _em.order_components(best, self.family)
        problems = _em.diagnose(self.data, best, floor)
        if problems:
            warn("degenerate fit: " + "; ".join(problems), EstimationWarning)
        if not best.converged:
            warn(
                f"EM did not converge in {max_iter} iterations (last change of the "
                f"log-likelihood {np.diff(best.history[-2:])[0]:.3g}); increase max_iter",
                ConvergenceWarning,
            )
        elif polish and not best.newton_converged:
            warn(
                "EM's log-likelihood settled, but Newton steps could not confirm a local "
                "maximum (the observed score is not numerically zero, or the observed "
                "information is not positive definite: a saddle point, a flat ridge or a "
                "boundary); results.converged is False",
                ConvergenceWarning,
            )
        _warn_about_starts(search, best.llf)
        return EMGLMResults(
            self,
            best,
            fit_options=dict(
                start=start if isinstance(start, str) else type(start).__name__,
                n_init=len(runs),
                max_iter=max_iter,
                tol=tol,
                scale_floor=floor,
                polish=polish,
                start_llfs=runs_llf,
                start_records=tuple(search.records),
                start_bounds=dict(search.bounds),
            ),
            problems=problems,
            cov=cov,
        )

    def with_k(self, K):
        """The same model with ``K`` components, built again through the
        constructor (every check of the new K included); the arrays are
        shared, not copied."""
        if "_rows_removed" in self.__dict__:
            raise ValueError(
                "remove_data() dropped the rows of this model: build it again to change K"
            )
        if self.design is not None:
            model = type(self).from_design(self.design, self.spec.replace(K=K), self.formula)
            model.context = self.context
            return model
        if self._keywords is None:
            raise ValueError(
                "this model was pickled by an older version of emformula, which "
                "did not keep the constructor's arguments: build it again to "
                "change K"
            )
        return type(self)(self.endog, self.exog, self.family, K, **self._keywords)

    @property
    def term_columns(self):
        """``[(term, column positions)]`` of ``exog``: the formula's terms
        (a factor's columns together), else one term per column."""
        if self.design is not None and self.design.model_spec is not None:
            try:
                indices = self.design.model_spec.rhs.term_indices
            except AttributeError:
                indices = None
            if indices:
                return [(str(term), list(columns)) for term, columns in indices.items()]
        return [(name, [j]) for j, name in enumerate(self.exog_names)]

    def _search(self, start, n_init, random_state, floor, max_iter, tol, n_jobs, progress, related):
        """Run the starts: a :class:`~emformula.engine.starts.StartSearch`."""
        if isinstance(start, str) and start in ("auto", "warmup"):
            plan = StartPlan.from_n_init(n_init)
            if not related.get("nested", True):
                plan = replace(plan, nested=False)
            if self.family.n_members is not None:
                # The K-1 fit and the nested models are of one family: a list
                # of families starts from partitions and regression lines.
                plan = replace(plan, nested=False, split=False)
            return search_starts(
                self.data,
                self.K,
                plan,
                _seed_sequence(random_state),
                floor,
                max_iter=max_iter,
                tol=tol,
                term_columns=self.term_columns,
                previous=related.get("previous"),
                extra=related.get("extra", ()),
                n_jobs=n_jobs,
                progress=progress,
            )
        tasks = self._start_tasks(start, n_init, random_state, floor)
        runs = map_tasks(
            _run_start,
            tasks,
            shared=(self.data, self.K, max_iter, tol, floor),
            n_jobs=n_jobs,
            progress=progress,
            desc=f"EM starts (K={self.K})",
        )
        kind = "random partition" if start == "random" else "given start"
        records = [
            StartRecord(
                kind if len(runs) == 1 or kind != "given start" else f"given start {i + 1}",
                "full",
                np.nan,
                run.llf,
                run.n_iter,
                run.converged,
            )
            for i, run in enumerate(runs)
        ]
        return StartSearch(list(runs), records, {})

    def _scale_floor(self, scale_floor):
        if scale_floor is not None:
            return float(scale_floor)
        if not self.family.any_dispersion:
            return 0.0
        moments = self.family.floor_moments(self.data.endog, self.data.weights)
        return default_scale_floor(moments.variance)

    def _start_tasks(self, start, n_init, random_state, floor):
        """Each start as a task for :func:`_run_start`: a seed or estimates."""
        data = self.data
        if isinstance(start, str):
            if start == "random":
                return list(_seed_sequence(random_state).spawn(n_init))
            raise ValueError(
                f"start must be 'auto', 'random', 'warmup', a results object or a "
                f"dict, got {start!r}"
            )
        if isinstance(start, list | tuple):
            if not start or any(isinstance(one, str | list | tuple) for one in start):
                raise ValueError(
                    "a list of starts holds results objects or dicts (one "
                    "run each); for random starts use start='auto' or "
                    "'random' with n_init"
                )
            return [
                task for one in start for task in self._start_tasks(one, 1, random_state, floor)
            ]
        if isinstance(start, EMGLMResults):
            return [self._check_start(start.estimates)]
        if isinstance(start, dict):
            if "posterior" in start:
                post = np.asarray(start["posterior"], dtype=float)
                if post.shape != (self.nobs, self.K):
                    raise ValueError(
                        f"start['posterior'] has shape {post.shape}, expected {(self.nobs, self.K)}"
                    )
                return [_em.estimates_from_posterior(data, post, floor)]
            return [self._check_start(estimates_from_dict(start, self.family, self.K))]
        raise TypeError(
            f"start must be 'auto', 'random', 'warmup', a results object or a "
            f"dict, got {type(start).__name__}"
        )

    def _check_start(self, est):
        data = self.data
        return checked_start(
            est,
            family=self.family,
            n_coef=data.n_coef,
            K=self.K,
            equal_scale=data.equal_scale,
            fixed_names=self.fixed_names if data.n_fixed else (),
            concomitant_names=self.concomitant_names if data.n_concomitant else (),
            gamma_from_prior=lambda prior: _gamma_from_prior(data.concomitant, prior),
            mean_prior_of=lambda gamma: mean_prior(data, gamma),
        )


def _run_start(shared, task):
    """One EM run from a seed (a random start) or from given estimates."""
    data, K, max_iter, tol, floor = shared
    if isinstance(task, np.random.SeedSequence):
        task = _em.random_start(data, K, np.random.default_rng(task), floor)
    run = _em.run_em(data, task, max_iter=max_iter, tol=tol, scale_floor=floor)
    return replace(run, posterior=None)


def _warn_about_starts(search, best_llf):
    """Say when the best maximum rests on one start, or the fit ended below
    a nested model's maximum (which EM from that model's point cannot)."""
    full = [r.llf for r in search.records if r.stage == "full"]
    n_best = count_replicates(full)
    if len(full) > 1 and n_best == 1:
        warn(
            f"the best log-likelihood ({best_llf:.4f}) was reached by only 1 of {len(full)} "
            "starts; fit again with more starts (n_init) or other seeds to check that it "
            "is the global maximum",
            LocalMaximumWarning,
        )
    for name, bound in search.bounds.items():
        slack = 1e-6 * (abs(bound) + 1.0)
        if best_llf < bound - slack:
            warn(
                f"the fit ended at log-likelihood {best_llf:.4f}, below its {name} model "
                f"({bound:.4f}), which is nested in it: the estimates are not at the "
                "maximum; fit again with more starts or a larger max_iter",
                LocalMaximumWarning,
            )


def _gamma_from_prior(concomitant, prior):
    """Concomitant coefficients that reproduce constant mixing proportions:
    the log-odds on a constant column of the design (an intercept), else 0."""
    q, K = concomitant.shape[1], prior.size
    gamma = np.zeros((q, K))
    constant = np.flatnonzero(
        np.all(concomitant == concomitant[:1], axis=0) & (concomitant[0] != 0)
    )
    if constant.size:
        j = constant[0]
        with np.errstate(divide="ignore"):
            logits = np.log(np.clip(prior, 1e-300, None))
        gamma[j] = (logits - logits[0]) / concomitant[0, j]
    return gamma


# ------------------------------------------------------------ validation
def model_spec(caller, family, K, spec, model):
    """The :class:`MixtureSpec` of an entry point's arguments.

    ``family`` and ``K`` are the entry point's positional arguments (their
    defaults :data:`~emformula.specification.DEFAULT_FAMILY` and
    ``DEFAULT_K`` say when they were left out); with ``spec`` they must be
    left out (the spec has its own), and keywords in ``model`` override the
    spec's.
    """
    family, family_given = given(family)
    K, k_given = given(K)
    if spec is None:
        if not k_given and isinstance(family, (list, tuple)):
            K = None  # the number of families
        return MixtureSpec.from_keywords(caller, family=family, K=K, **model)
    if family_given or k_given:
        raise TypeError(f"{caller}(): give family and K in spec= or as arguments, not both")
    return MixtureSpec.from_keywords(caller, spec, **model)


def _best_run_index(llfs, converged):
    """The run with the highest log-likelihood; of runs tied with it to
    rounding (1e-11 relative), the first that converged (else the first).

    Starts that find the same maximum differ in their last digits only, and
    which of them wins the ``argmax`` would then change with the platform's
    rounding (another BLAS, another summation order); taking the first keeps
    the reported fit (its iteration count, its start) the same.
    """
    llfs = np.where(np.isnan(llfs), -np.inf, llfs)
    top = llfs.max()
    if not np.isfinite(top):
        return int(np.argmax(llfs))
    tied = np.flatnonzero(llfs >= top - 1e-11 * (abs(top) + 1.0))
    done = tied[np.asarray(converged, dtype=bool)[tied]]
    return int((done if done.size else tied)[0])


#: Largest (and, inverted, smallest) column magnitude a design may have: the
#: normal equations and the information hold products of two columns and
#: the weights, which must stay within double precision (about 1e+-308).
_LARGEST_COLUMN = 1e100


def _check_rank(exog, names):
    """Refuse a rank-deficient design, naming the collinear columns.

    R's glm would report NA coefficients; in a mixture an unidentified
    coefficient poisons every component's information matrix, so emformula
    asks the user to remove the column instead.
    """
    # Scaled by the largest absolute value first: the norm of a column of
    # values near 1e300 overflows, and near 1e-300 underflows to zero.
    peak = np.abs(exog).max(axis=0)
    if np.any(peak == 0):
        zero = [names[j] for j in np.flatnonzero(peak == 0)]
        raise ValueError(f"the design has all-zero column(s) {zero}; remove them")
    extreme = (peak > _LARGEST_COLUMN) | (peak < 1.0 / _LARGEST_COLUMN)
    if np.any(extreme):
        bad = [f"{names[j]} (largest |value| {peak[j]:.3g})" for j in np.flatnonzero(extreme)]
        raise ValueError(
            f"design column(s) {', '.join(bad)} are too large or too small for "
            "double precision: the normal equations square them, which "
            "overflows or underflows; rescale them (e.g. divide by a power of "
            "ten) to magnitudes between 1e-100 and 1e100"
        )
    scaled = exog / peak
    scaled = scaled / np.linalg.norm(scaled, axis=0)
    _, r, pivot = scipy.linalg.qr(scaled, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > diag[0] * max(exog.shape) * np.finfo(float).eps * 10))
    if rank == exog.shape[1]:
        return
    kept, dropped = pivot[:rank], pivot[rank:]
    details = []
    for j in dropped:
        coef = np.linalg.lstsq(scaled[:, kept], scaled[:, j], rcond=None)[0]
        involved = [names[kept[i]] for i in np.flatnonzero(np.abs(coef) > 1e-8)]
        details.append(f"{names[j]!r} = combination of {involved}")
    raise ValueError(
        "the design matrix is rank deficient (collinear columns): "
        + "; ".join(details)
        + ". Remove the redundant column(s)"
    )


def _check_no_constant(exog, names, family):
    """Refuse a design that spans a constant for a family with cut points in
    place of an intercept (the two would not be identified)."""
    with_constant = np.column_stack([np.ones(exog.shape[0]), exog])
    if np.linalg.matrix_rank(with_constant) == np.linalg.matrix_rank(exog):
        raise ValueError(
            f"the {family.name} family has cut points in place of an "
            f"intercept, but the design {names} spans a constant (an intercept "
            "column, or every level of a factor): drop it (a formula drops "
            "its Intercept column itself)"
        )


def _check_k(K):
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        raise TypeError(f"K must be a whole number, got {K!r}")
    if K < 1:
        raise ValueError(f"K must be at least 1, got {K}")
    return int(K)


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _as_float_array(value, name):
    if isinstance(value, pd.Series | pd.DataFrame):
        value = value.to_numpy()
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric") from None


def _check_vector(value, n, name):
    if value is None:
        return None
    array = _as_float_array(value, name)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name} must have one value per row ({n}), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        rows = np.flatnonzero(~np.isfinite(array))
        raise ValueError(
            f"{name} has missing or infinite values at {rows.size} row(s), "
            f"first at positions {rows[:5].tolist()}"
        )
    return array


def _check_weights(weights, n):
    if weights is None:
        return np.ones(n)
    w = _check_vector(weights, n, "weights")
    if np.any(w < 0):
        rows = np.flatnonzero(w < 0)
        raise ValueError(
            f"weights must be non-negative; {rows.size} row(s) are negative, "
            f"first at positions {rows[:5].tolist()}"
        )
    if not w.sum() > 0:
        raise ValueError("weights are all zero")
    return w


def _extra_design(values, names, n, argument, prefix):
    """A shared-effects or concomitant design as a float (n, m) array, or None."""
    if values is None:
        return None, []
    array = _as_float_array(values, argument)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n:
        raise ValueError(
            f"{argument} must have one row per row of exog ({n}), got shape {array.shape}"
        )
    if array.shape[1] == 0:
        if argument == "concomitant":
            raise ValueError(
                "the concomitant design has no columns; leave concomitant out "
                "for constant mixing proportions"
            )
        return None, []
    names = list(names) if names is not None else [f"{prefix}{j}" for j in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(f"{argument}_names has {len(names)} names for {array.shape[1]} columns")
    if not np.all(np.isfinite(array)):
        cols = np.flatnonzero(~np.all(np.isfinite(array), axis=0))
        raise ValueError(
            f"{argument} has missing or infinite values in column(s) {[names[c] for c in cols]}"
        )
    return np.ascontiguousarray(array), names
