"""The results of a mixture fit: immutable, with cached derived values.

Names follow statsmodels (``params``, ``bse``, ``llf``, ``aic``,
``cov_params()``, ``conf_int()``, ``summary()``), with the component
dimension as columns: ``params`` is a DataFrame with one row per term and
one column per component (``comp1``, ``comp2``, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from .backends.memory import MemoryResultRows, memory_cov_choice
from .covariance.estimators import invert_information, prior_delta_jacobian
from .covariance.registry import cov_type_names, get_estimator
from .engine.starts import replication_tolerance
from .warnings import EstimationWarning, warn

__all__ = ["EMGLMResults", "COV_TYPES", "check_cov_type"]

#: Covariance types of the estimates (``fit(cov_type=...)``).
COV_TYPES = cov_type_names()


def check_cov_type(model, cov_type, cov_groups=None):
    """Validate a covariance choice for a model in memory; returns what the
    results object keeps (:func:`emformula.backends.memory.memory_cov_choice`)."""
    return memory_cov_choice(model, cov_type, cov_groups)


#: Family parameters that statsmodels leaves out of ``df_resid`` (dispersions
#: and shapes); others (an ordinal model's cut points) count as OrderedModel's.
_DISPERSION_LIKE = frozenset({"scale", "alpha", "sigma"})


class EMGLMResults:
    """Results of :func:`emformula.emglm` or :meth:`EMGLM.fit`.

    One class for every backend: what depends on the rows (posterior,
    fitted values, predictions, the information and the scores behind the
    covariances, the entropy, the weighted number of units, the deviance)
    comes from a backend object it holds, the model's arrays in memory or
    the sums of a dask fit's final pass (whose row results are lazy dask
    collections).

    Components are ordered by decreasing mixing proportion (the mean
    proportion for a concomitant model; ties broken by the coefficients), so
    results never depend on label switching. Component 1 is the reference of
    a concomitant model.

    Attributes
    ----------
    model : EMGLM or DaskMixture
        The model fitted (for a dask DataFrame, its formula and design).
    params : DataFrame (terms x components)
        Component-specific coefficients.
    fixed_params : Series
        Coefficients shared by all components (``fixed=``).
    concomitant_params : DataFrame (concomitant terms x components) or None
        Multinomial-logit coefficients of the mixing proportions.
    prior : Series
        Mixing proportions (their mean over units for a concomitant model).
    scale : Series
        Dispersion per component (1 for poisson, binomial, negative binomial).
    family_params, family_bse : DataFrame (family parameters x components)
        The family's own parameters (dispersion, alpha...) and their
        standard errors.
    cov_type : str
        ``"louis"``, ``"robust"`` or ``"cluster"``: what ``bse``,
        ``cov_params`` and the summary use (:meth:`with_cov_type`).
    llf : float
        Mixture log-likelihood with every constant.
    converged : bool
    n_iter : int
    problems : tuple of str
        Degenerate features of the fit (a collapsed component, separation,
        a dispersion at its floor), each also issued as an EstimationWarning.
    """

    def __init__(self, model, run, fit_options=None, problems=(), cov=None, rows=None):
        d = self.__dict__
        d["model"] = model
        d["_run"] = run
        d["fit_options"] = dict(fit_options or {})
        d["problems"] = tuple(problems)
        d["_cov"] = dict(cov or {"type": "louis"})
        # Where the data-dependent parts come from: None for the model's
        # arrays in memory (MemoryResultRows, made when first needed).
        d["_rows"] = rows

    @cached_property
    def _data(self):
        """The backend of the data-dependent parts (posterior, predictions,
        information, scores): :class:`~emformula.backends.memory.MemoryResultRows`
        or that of the dask fit."""
        rows = self.__dict__["_rows"]
        return MemoryResultRows(self.model, self._run) if rows is None else rows

    def __setattr__(self, name, value):
        raise AttributeError("EMGLMResults is immutable; fit again to change it")

    def __delattr__(self, name):
        raise AttributeError("EMGLMResults is immutable")

    # ------------------------------------------------------------- basics
    @property
    def estimates(self):
        """The engine's :class:`Estimates` (coef, family params, prior arrays)."""
        return self._run.estimates

    @property
    def family(self):
        return self.model.family

    @property
    def n_components(self):
        """Number of components K."""
        return self.estimates.n_components

    @property
    def component_names(self):
        return [f"comp{k + 1}" for k in range(self.n_components)]

    @property
    def layout(self):
        """Positions of the free parameters (:class:`~emformula.inference.ParameterLayout`)."""
        return self.model.layout

    @cached_property
    def params(self):
        """Component-specific coefficients: one row per term, one column per
        component (shared effects are in :attr:`fixed_params`); NaN for a
        component without coefficients (a point mass)."""
        return self._frame(self._by_component(self.estimates.coef))

    @cached_property
    def fixed_params(self):
        """Coefficients shared by all components (``fixed=``); empty without them."""
        values = self.estimates.fixed_coef
        return pd.Series(
            np.zeros(0) if values is None else np.array(values, dtype=float),
            index=pd.Index(self.model.fixed_names, dtype=object),
            name="fixed",
        )

    @cached_property
    def concomitant_params(self):
        """Coefficients of the concomitant model, ``log(pi_k / pi_1) = w' gamma_k``:
        one row per concomitant term, one column per component (``comp1``,
        the reference, is 0). ``None`` for constant mixing proportions."""
        gamma = self.estimates.gamma
        if gamma is None:
            return None
        return pd.DataFrame(
            np.array(gamma, dtype=float),
            index=self.model.concomitant_names,
            columns=self.component_names,
        )

    @cached_property
    def prior(self):
        """Mixing proportions (sum to 1). For a concomitant model, the mean
        over the units (rows or groups, weighted) of each unit's proportions;
        ``predict(type="prior")`` gives them per row."""
        return pd.Series(self.estimates.prior, index=self.component_names, name="prior")

    @cached_property
    def scale(self):
        """Dispersion of each component (maximum likelihood; one value
        repeated with ``equal_scale``); ones for a family without a
        dispersion (Poisson, binomial, negative binomial), as statsmodels'
        GLM reports."""
        values = [
            self.estimates.params[0, k] if self.family.member(k).estimates_scale else 1.0
            for k in range(self.n_components)
        ]
        return pd.Series(np.array(values, dtype=float), index=self.component_names, name="scale")

    @cached_property
    def family_params(self):
        """The family's own parameters per component (the dispersion
        ``scale``, the negative binomial's ``alpha``...): one row per
        parameter, one column per component, natural scale; no rows for a
        family without any. With a list of families a row is NaN for the
        components whose family lacks that parameter."""
        names = self._parameter_names
        values = np.full((len(names), self.n_components), np.nan)
        for k in range(self.n_components):
            for j, parameter in enumerate(self.family.member(k).parameters):
                values[names.index(parameter.name), k] = self.estimates.params[j, k]
        return pd.DataFrame(
            values, index=pd.Index(names, dtype=object), columns=self.component_names
        )

    @property
    def _parameter_names(self):
        """The family parameters' names over all components, in order."""
        names = []
        for k in range(self.n_components):
            for parameter in self.family.member(k).parameters:
                if parameter.name not in names:
                    names.append(parameter.name)
        return names

    @property
    def llf(self):
        """Log-likelihood of the mixture at the estimates."""
        return self._run.llf

    @property
    def llf_history(self):
        """Log-likelihood after every EM iteration (the first is the start)."""
        history = self._run.history.copy()
        history.flags.writeable = False
        return history

    @property
    def n_iter(self):
        return self._run.n_iter

    @property
    def converged(self):
        """Whether the fit is at a local maximum: EM's log-likelihood settled
        and the Newton finish drove the observed score to rounding level at a
        positive definite information (with ``polish=False``, EM's criterion
        alone; see :attr:`em_converged`)."""
        if not self.fit_options.get("polish", False):
            return self._run.converged
        return bool(self._run.converged and self._run.newton_converged)

    @property
    def em_converged(self):
        """Whether EM's relative change of the log-likelihood fell below ``tol``."""
        return self._run.converged

    @cached_property
    def starts(self):
        """Every start that ran, one row each (a DataFrame indexed from 1).

        Columns: ``kind`` (how the start was made), ``stage`` (``"full"``:
        run to convergence; ``"screen"``: only a short screening run),
        ``screen_llf`` (after the screening run; on the 20 000-unit
        screening subsample when there are more than 100 000 units),
        ``llf``, ``n_iter`` (screening and full run) and ``converged`` (EM's
        criterion) of the full run, and ``best`` (within
        ``max(1e-6 |llf|, 1e-4)`` of the best full run's log-likelihood).
        Empty for results made before starts were recorded.
        """
        records = self.fit_options.get("start_records", ())
        columns = ["kind", "stage", "screen_llf", "llf", "n_iter", "converged", "best"]
        if not records:
            return pd.DataFrame(columns=columns)
        table = pd.DataFrame(
            [vars(r) if not hasattr(r, "_asdict") else r._asdict() for r in records]
        )
        table["llf"] = table["llf"].astype(float)
        full = table["stage"] == "full"
        top = table.loc[full, "llf"].max()
        table["best"] = full & (table["llf"] >= top - replication_tolerance(top))
        table.index = pd.RangeIndex(1, len(table) + 1, name="start")
        return table[columns]

    @property
    def n_best(self):
        """How many full runs reached the best log-likelihood (to
        ``max(1e-6 |llf|, 1e-4)``): the replication of the maximum that
        latent-class software reports. One of several means the maximum
        rests on a single start."""
        return int(self.starts["best"].sum())

    @property
    def n_full_starts(self):
        """How many starts ran to convergence."""
        return int((self.starts["stage"] == "full").sum())

    @property
    def nobs(self):
        """Number of rows used in the fit."""
        return self.model.nobs

    @property
    def n_groups(self):
        """Number of groups with ``groups=``, else ``None``."""
        return self._data.n_groups

    @property
    def wnobs(self):
        """Sum of the frequency weights of the independent units: rows, or
        groups with ``groups=`` (each group counted once). The sample size
        of the BIC."""
        return self._data.wnobs

    @property
    def df_model(self):
        """Number of free parameters: K p component-specific coefficients,
        the shared ones, one dispersion per component (or one in all with
        ``equal_scale``) where it is estimated, and K - 1 mixing parameters
        (times the number of concomitant terms for a concomitant model)."""
        return self.layout.size

    @property
    def k_params(self):
        """Alias of :attr:`df_model` (the count the information criteria use)."""
        return self.df_model

    @property
    def df_resid(self):
        """Residual degrees of freedom: the weighted number of rows minus
        the free parameters, the dispersion-like family parameters (the
        dispersion ``scale``, the negative binomial's ``alpha``, a censored
        model's ``sigma``) not counted, as statsmodels counts them: its GLM
        (``wnobs - rank``, the scale left out), discrete NegativeBinomial
        (alpha left out) and OrderedModel (the cut points counted). With
        ``groups=`` the rows, not the groups, are counted: residuals are per
        row. The F and t tests (``f_test``, ``t_test(..., use_t)``) use it
        as their denominator's degrees of freedom; descriptive for K > 1,
        where no residual distribution has these degrees of freedom.

        Examples
        --------
        >>> from emformula import datasets, emglm
        >>> sim2 = datasets.load_sim2()
        >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
        >>> res.nobs, res.df_model, res.df_resid   # 2 x 5 coefficients and 1 prior
        (5000, 11, 4989.0)
        """
        lay = self.layout
        nuisance = set()
        for k in range(self.n_components):
            for parameter, i in zip(self.family.member(k).parameters, lay.param_index[k]):
                if parameter.name in _DISPERSION_LIKE:
                    nuisance.add(int(i))
        rows = getattr(self._data, "row_weight", None)
        if rows is None:
            raise NotImplementedError(
                "this dask fit was saved by an older version, which kept no row count: fit again"
            )
        return rows - (self.df_model - len(nuisance))

    @property
    def aic(self):
        """Akaike information criterion: ``-2 llf + 2 df_model``."""
        return -2.0 * self.llf + 2.0 * self.df_model

    @property
    def bic(self):
        """Bayesian information criterion: ``-2 llf + log(n) df_model``,
        ``n`` = :attr:`wnobs`, the weighted number of independent units.

        With ``groups=`` that is the number of groups, not of rows: the
        groups are the independent replicates whose number makes the
        information grow (flexmix uses the number of rows; its BIC is
        ``-2 llf + log(nobs) df_model``)."""
        return -2.0 * self.llf + np.log(self.wnobs) * self.df_model

    @property
    def entropy(self):
        """Entropy of the posterior, ``-sum_u v_u sum_k tau_uk log tau_uk``
        over the units (rows, or groups)."""
        return self._data.entropy

    @property
    def icl(self):
        """Integrated completed likelihood (Biernacki et al. 2000), the
        entropy kind: BIC plus twice the entropy of the posterior
        (:attr:`entropy`). ``info_criteria("icl", kind="classification")``
        gives flexmix's and mclust's hard-classification kind."""
        return self.bic + 2.0 * self.entropy

    def info_criteria(self, crit, *, kind="entropy"):
        """An information criterion by name (smaller is better).

        Parameters
        ----------
        crit : {"aic", "bic", "icl"}
        kind : {"entropy", "classification"}, default "entropy"
            For the ICL: ``"entropy"`` (:attr:`icl`) is BIC ``- 2 sum_u v_u
            sum_k tau_uk log tau_uk``, the expected complete-data
            log-likelihood's penalty; ``"classification"`` is BIC ``- 2
            sum_u v_u log tau_u,z(u)`` with ``z(u)`` each unit's most
            probable component, i.e. ``-2 clogLik + df log n`` with the
            complete-data log-likelihood of the hard classification, as
            flexmix's ``ICL()`` and mclust's ``icl()`` compute it. The
            classification kind is never larger than the entropy kind (a
            row's entropy is at least ``-log max_k tau_k``).

        Returns
        -------
        float

        Examples
        --------
        >>> from emformula import datasets, emglm
        >>> sim2 = datasets.load_sim2()
        >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
        >>> bool(res.info_criteria("icl", kind="classification") <= res.icl)
        True
        """
        crit = str(crit).lower()
        if crit not in ("aic", "bic", "icl"):
            raise ValueError(f"crit must be 'aic', 'bic' or 'icl', got {crit!r}")
        if kind not in ("entropy", "classification"):
            raise ValueError(f"kind must be 'entropy' or 'classification', got {kind!r}")
        if crit != "icl":
            return getattr(self, crit)
        if kind == "entropy":
            return self.icl
        hard = getattr(self._data, "classification_entropy", None)
        if hard is None:
            raise NotImplementedError(
                "this dask fit was saved by an older version, which "
                "kept no classification entropy: fit again"
            )
        return self.bic + 2.0 * hard

    @property
    def deviance(self):
        """Deviance of a one-component fit (as statsmodels' ``GLMResults.deviance``);
        NaN for K > 1, where the saturated model of a mixture is not defined,
        and for a family without a deviance (censored data)."""
        if self.n_components != 1 or not self.family.has_deviance:
            return np.nan
        return self._data.deviance

    # -------------------------------------------------------- row results
    @cached_property
    def posterior(self):
        """Posterior probability of each component for each row (with
        ``groups=``, every row carries its group's posterior); a lazy dask
        DataFrame for a dask fit."""
        return self._data.posterior(self.component_names)

    @property
    def _unit_posterior(self):
        return self._data.unit_posterior

    @property
    def _component_mean(self):
        return self._data.component_mean

    @property
    def _row_prior(self):
        """Mixing proportions of each row, ``(n, K)``."""
        return self._data.row_prior

    @cached_property
    def fittedvalues(self):
        """Mixture mean ``sum_k pi_ik mu_ik`` of each row (a probability for
        the binomial family); a lazy dask Series for a dask fit."""
        return self._data.fittedvalues(self.component_names)

    def predict(self, data=None, type="mean", *, offset=None, exposure=None, context=None):
        """Predictions for the training data or new data.

        Parameters
        ----------
        data : DataFrame, array_like or dict, optional
            New data: a DataFrame for a formula fit; for an array fit the
            exog array, or a dict with ``exog`` and, as the model needs
            them, ``fixed``, ``concomitant``, ``endog``, ``trials`` and
            ``groups`` arrays. Its categorical levels must be the training
            ones.
        type : {"mean", "component", "linear", "prior", "posterior", "probabilities"}
            The mixture mean ``sum_k pi_ik mu_ik`` (a Series; for an ordinal
            family the expected category code), each component's mean, each
            component's linear predictor, the probability of each response
            category under the mixture (ordinal families: columns ``P(y=0)``,
            ``P(y=1)``...), the mixing
            proportions ``pi_ik`` of each row (from the concomitant model;
            the constant proportions repeated otherwise), or the posterior
            probabilities of the components given the response (DataFrames,
            one column per component). ``"posterior"`` needs the response in
            new data (and, with ``groups=``, the group column: the posterior
            is per group); rows with a missing value get NaN.
        offset, exposure : array_like or str, optional
            For new data, when the fit had them as arrays. Columns named in
            the fit are taken from ``data`` automatically.
        context : mapping, optional
            Names the formula uses besides columns (a user's function, say),
            for new data; by default the namespace captured by the fit
            (lost when the results are pickled).

        New data may be a DataFrame or a dict of columns, with the same
        dtypes the fit accepts; its index labels the predictions. A row
        missing a value the formula reads gives NaN in that row only.

        For a dask fit ``data`` is a dask DataFrame (or None) and the
        predictions are lazy dask collections; offsets and exposures come
        from their columns.

        Returns
        -------
        Series or DataFrame

        Examples
        --------
        >>> res.predict(new_df, type="component")  # doctest: +SKIP
        >>> res.predict(new_df, type="prior")      # doctest: +SKIP
        """
        given = {
            name: value
            for name, value in (("offset", offset), ("exposure", exposure), ("context", context))
            if value is not None
        }
        return self._data.predict(data, type, self.component_names, **given)

    # The arrays of new data, for the residuals of new data (rows in memory).
    def _new_prior(self, data):
        return self._data.new_prior(data)

    def _new_posterior(self, new, names):
        return self._data.new_posterior(new, names)

    def _new_arrays(self, data, offset, exposure, response=False, context=None):
        return self._data.new_arrays(data, offset, exposure, response=response, context=context)

    # ---------------------------------------------------------- inference
    @cached_property
    def _information(self):
        return self._data.information(self.layout)

    def information(self):
        """Observed information of the mixture log-likelihood (Louis' method)
        over the free parameters, as a DataFrame."""
        return pd.DataFrame(self._information, index=self.param_names, columns=self.param_names)

    @cached_property
    def param_names(self):
        """Labels of the free parameters, in the order of ``cov_params``:
        ``comp1:x`` (component-specific), ``comp1:log(scale)`` or
        ``comp1:log(alpha)`` (a family parameter on its unconstrained scale),
        ``fixed:x2`` (shared), ``log(scale)`` (one common value with
        ``equal_scale``), ``logit_prior:comp2`` (constant mixing proportions,
        log-odds against comp1; ``alpha:comp2`` before version 0.2) or
        ``concomitant:comp2:z`` (concomitant model)."""
        lay = self.layout
        model = self.model
        labels = [""] * lay.size
        for k in range(lay.n_components):
            for j, pos in enumerate(lay.coef_index[k]):
                labels[pos] = f"comp{k + 1}:{model.exog_names[j]}"
            parameter_labels = [
                f"log({p.name})" if p.transform == "log" else p.name
                for p in self.family.member(k).parameters
            ]
            for label, pos in zip(parameter_labels, lay.param_index[k]):
                labels[pos] = label if lay.equal_scale else f"comp{k + 1}:{label}"
        for j, pos in enumerate(lay.fixed_index):
            labels[pos] = f"fixed:{model.fixed_names[j]}"
        for k in range(1, lay.n_components):
            positions = lay.gamma_index(k)
            if lay.has_concomitant:
                for j, pos in enumerate(positions):
                    labels[pos] = f"concomitant:comp{k + 1}:{model.concomitant_names[j]}"
            else:
                labels[positions[0]] = f"logit_prior:comp{k + 1}"
        return labels

    @cached_property
    def _louis_covariance(self):
        cov, unidentified, not_positive = invert_information(self._information)
        if unidentified.size:
            names = [self.param_names[i] for i in unidentified]
            warn(
                "the observed information is singular: "
                f"{', '.join(names)} cannot be estimated (standard errors set to NaN); "
                "a component may have collapsed or a parameter is not identified",
                EstimationWarning,
            )
        elif not_positive:
            warn(
                "the observed information is not positive definite: the "
                "estimate may be a saddle point",
                EstimationWarning,
            )
        return cov

    @property
    def _unit_scores(self):
        """Observed score of each unit (rows, or groups), ``(n_units, P)``."""
        return self._data.unit_scores

    @cached_property
    def _covariance(self):
        louis = self._louis_covariance
        estimator = get_estimator(self.cov_type)
        if estimator.needs_replicates:
            return estimator.covariance(louis, replicates=self._cov["bootstrap"].replicates)
        if not estimator.needs_meat:
            return louis
        cov = estimator.covariance(louis, self._data.cov_meat(self._cov, louis))
        # I^-1 M I^-1 is positive semi-definite; a negative variance is
        # rounding where the information is nearly singular (a diverging
        # coefficient), where the sandwich says nothing: NaN, and said so.
        negative = np.flatnonzero(np.diag(cov) < 0)
        if negative.size:
            cov = cov.copy()
            cov[negative, :] = np.nan
            cov[:, negative] = np.nan
            names = ", ".join(self.param_names[i] for i in negative)
            warn(
                f"the {estimator.name} covariance has negative variances for {names} (the "
                "observed information is nearly singular there): their standard errors "
                "are set to NaN",
                EstimationWarning,
            )
        return cov

    @property
    def cov_type(self):
        """``"louis"`` (inverse observed information), ``"robust"`` (sandwich
        over units), ``"cluster"`` (sandwich over clusters) or
        ``"bootstrap"`` (covariance of :meth:`bootstrap` replicates)."""
        return self._cov["type"]

    @property
    def bootstrap_results(self):
        """The :class:`~emformula.postestimation.bootstrap.BootstrapResults`
        behind ``cov_type="bootstrap"``, else None."""
        return self._cov.get("bootstrap")

    @property
    def n_clusters(self):
        """Number of clusters of ``cov_type="cluster"``, else ``None``."""
        return self._cov.get("n_clusters")

    def with_cov_type(self, cov_type, cov_groups=None, *, bootstrap=None, **bootstrap_options):
        """The same fit with another covariance of the estimates.

        Parameters
        ----------
        cov_type : {"louis", "robust", "cluster", "bootstrap"}
            See :meth:`EMGLM.fit`.
        cov_groups : array_like or Series, optional
            Cluster labels for ``"cluster"``: one per row used in the fit
            (a Series is aligned on the data's index), or default the
            model's ``cov_groups``.
        bootstrap : BootstrapResults, optional
            For ``"bootstrap"``: replicates already drawn by
            :meth:`bootstrap`; without them they are drawn now, with
            ``bootstrap_options`` (``n_boot``, ``kind``, ``random_state``,
            ``n_jobs``... of :meth:`bootstrap`).

        Returns
        -------
        EMGLMResults
            Shares the estimates; ``bse``, ``cov_params`` and the summary
            follow the new covariance.

        Examples
        --------
        >>> robust = res.with_cov_type("robust")                  # doctest: +SKIP
        >>> clustered = res.with_cov_type("cluster", data["firm"])  # doctest: +SKIP
        """
        estimator = get_estimator(cov_type)
        if estimator.needs_replicates:
            if cov_groups is not None:
                raise ValueError("cov_groups is only used with cov_type='cluster'")
            if bootstrap is None:
                bootstrap = self.bootstrap(**bootstrap_options)
            elif bootstrap_options:
                raise TypeError("give either bootstrap= or the options of a new bootstrap")
            if list(bootstrap.replicates.columns) != list(self.param_names) or not np.array_equal(
                bootstrap.estimate.to_numpy(), self._theta
            ):
                raise ValueError(
                    "these bootstrap replicates belong to another fit (or to "
                    "this one before relabel): draw them from this one"
                )
            cov = {"type": estimator.name, "bootstrap": bootstrap}
        else:
            if bootstrap is not None or bootstrap_options:
                raise TypeError(f"bootstrap options do not apply to cov_type={cov_type!r}")
            cov = self._data.cov_choice(cov_type, cov_groups)
        other = EMGLMResults(
            self.model, self._run, self.fit_options, self.problems, cov, rows=self.__dict__["_rows"]
        )
        # The same estimates: the information (and its warnings, given once)
        # carry over.
        for cached in ("_information", "_louis_covariance"):
            if cached in self.__dict__:
                other.__dict__[cached] = self.__dict__[cached]
        return other

    def bootstrap(
        self,
        n_boot=199,
        *,
        kind="nonparametric",
        random_state=None,
        n_jobs=1,
        progress=None,
        max_iter=None,
        tol=None,
    ):
        """Bootstrap replicates of every free parameter (flexmix's ``boot``).

        Each replicate is refitted by EM from these estimates (with the
        Newton finish) and its components matched to these (label
        switching undone); see :mod:`emformula.postestimation.bootstrap`.
        ``with_cov_type("bootstrap", bootstrap=boot)`` makes the replicates'
        covariance that of ``bse``, the tests and the summary.

        Parameters
        ----------
        n_boot : int, default 199
        kind : {"nonparametric", "parametric"}, default "nonparametric"
            Resample the units (rows, or groups), or draw a new response
            from the fitted mixture.
        random_state : int, Generator or SeedSequence, optional
        n_jobs : int, default 1
            Processes (-1: every core).
        progress : bool, optional
            A progress bar (default: on a terminal or in a notebook, not under CI).
        max_iter, tol : optional
            EM's limits per replicate; default the fit's.

        Returns
        -------
        BootstrapResults
            ``bse``, ``cov``, ``conf_int()`` (percentile), ``replicates``,
            ``summary_frame()``, ``n_failed``, ``n_relabelled``.

        Examples
        --------
        >>> from emformula import datasets, emglm
        >>> sim2 = datasets.load_sim2()
        >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
        >>> boot = res.bootstrap(20, random_state=1)
        >>> boot.replicates.shape
        (20, 11)
        >>> res.with_cov_type("bootstrap", bootstrap=boot).cov_type
        'bootstrap'
        """
        self._data.rows_in_memory("bootstrap")
        from .postestimation.bootstrap import bootstrap

        return bootstrap(
            self,
            n_boot,
            kind=kind,
            random_state=random_state,
            n_jobs=n_jobs,
            progress=progress,
            max_iter=max_iter,
            tol=tol,
        )

    def relabel(self, order=None, *, by=None, ascending=True, reference=None):
        """The same fit with its components in another order (flexmix's ``relabel``).

        Component labels are arbitrary: a fit orders them by decreasing
        prior. Any other order is the same fit; every estimate, standard
        error, test, prediction and summary then follows the new labels. The
        mixing log-odds and the concomitant coefficients are re-based on
        the new first component (the reference), so their estimates and
        errors are those of that parametrisation, not a permutation of the
        old ones.

        Parameters
        ----------
        order : sequence of int or str, optional
            The old components in their new order (1..K or ``"compK"``).
        by : str, optional
            Order by ``"prior"`` or by a parameter: a term of the components'
            coefficients (``"x"``, ``"Intercept"``) or a family parameter.
        ascending : bool, default True
            The direction of ``by``.
        reference : int or str, optional
            Make this component the first (the reference); the others keep
            their order.

        Returns
        -------
        EMGLMResults

        Examples
        --------
        >>> from emformula import datasets, emglm
        >>> sim2 = datasets.load_sim2()
        >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
        >>> by_v1 = res.relabel(by="V1")
        >>> bool(by_v1.params.loc["V1", "comp1"] < by_v1.params.loc["V1", "comp2"])
        True
        >>> bool(res.relabel(order=[2, 1]).llf == res.llf)
        True
        """
        self._data.rows_in_memory("relabel")
        if self.family.differs:
            raise ValueError(
                "relabel would move components away from their families in the "
                "list: fit again with the families in the order wanted"
            )
        from .postestimation.relabel import relabel_order

        perm = relabel_order(self, order, by=by, ascending=ascending, reference=reference)
        run = self._run
        posterior = None if run.posterior is None else run.posterior[:, perm]
        new_run = dataclasses.replace(
            run, estimates=run.estimates.permuted(perm), posterior=posterior
        )
        # Relabelled twice: the order is counted from the fit's own labels.
        before = self.fit_options.get("relabelled", list(range(1, self.n_components + 1)))
        options = dict(self.fit_options, relabelled=[before[k] for k in perm])
        cov = self._cov
        if "bootstrap" in cov:
            # The replicates in the new terms too (re-based mixing parameters).
            cov = dict(cov, bootstrap=cov["bootstrap"].relabelled(self, perm))
        other = EMGLMResults(self.model, new_run, options, self.problems, cov)
        # The same fit in other terms: its EstimationWarnings were given at
        # the fit, not again at the relabelled results' first bse.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)
            other._louis_covariance  # noqa: B018
        return other

    # -------------------------------------------------------- storage
    def remove_data(self):
        """Drop the arrays of the rows from these results and their model,
        in place, as statsmodels' ``remove_data`` does (for a small pickle).

        What needs the rows is computed first and kept: the covariance in
        use (Louis' information, and the meat of a robust or clustered
        covariance), the entropies behind the ICL, the weighted counts, the
        deviance and ``llnull``. Afterwards estimates, standard errors,
        tests, the summary and predictions on new data work; the posterior,
        fitted values, residuals, margins and anything else per row raise
        an error saying the rows were removed, as does another
        ``cov_type`` than Louis' or the one in use.

        Examples
        --------
        >>> from emformula import datasets, emglm
        >>> sim2 = datasets.load_sim2()
        >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
        >>> bse = res.bse.copy()
        >>> res.remove_data()
        >>> bool((res.bse == bse).all().all()), res.nobs
        (True, 5000)
        """
        from .backends.memory import StoredResultRows

        data = self._data
        if not data.in_memory:
            if isinstance(data, StoredResultRows):
                return  # already removed
            raise NotImplementedError("remove_data is for fits in memory: a dask fit keeps no rows")
        estimator = get_estimator(self.cov_type)
        louis = self._louis_covariance
        stored = {
            "information": self._information,
            "wnobs": data.wnobs,
            "row_weight": data.row_weight,
            "n_groups": data.n_groups,
            "entropy": data.entropy,
            "classification_entropy": data.classification_entropy,
            "deviance": (
                data.deviance if self.n_components == 1 and self.family.has_deviance else np.nan
            ),
            "prior_jacobian": (
                None
                if self.estimates.gamma is None
                else data.mean_prior_jacobian(self.estimates.gamma)
            ),
            "cov": self._cov,
            "meat": (data.cov_meat(self._cov, louis) if estimator.needs_meat else None),
        }
        stored["llnull"] = self.llnull
        model = self.model.without_rows()
        run = dataclasses.replace(self._run, posterior=None)
        d = self.__dict__
        for name in ("posterior", "fittedvalues", "_data"):
            d.pop(name, None)
        d.update(model=model, _run=run, _rows=StoredResultRows(model, run, stored))

    def save(self, fname, remove_data=False):
        """Pickle these results to ``fname`` (a path or a writable binary
        file), as statsmodels' ``save``; :func:`emformula.load` reads them.

        ``remove_data=True`` calls :meth:`remove_data` first (in place).
        A pickle runs code when it is loaded: load only files you trust.
        """
        import pickle

        if remove_data:
            self.remove_data()
        if hasattr(fname, "write"):
            pickle.dump(self, fname, protocol=pickle.HIGHEST_PROTOCOL)
            return
        with open(fname, "wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def cov_params(self):
        """Covariance matrix of the free parameters (as :attr:`cov_type`)."""
        return pd.DataFrame(self._covariance, index=self.param_names, columns=self.param_names)

    @cached_property
    def _theta(self):
        """The free parameters as one vector (the order of ``param_names``)."""
        return self.layout.pack(self.estimates)

    @cached_property
    def theta(self):
        """Every free parameter as a Series labelled by :attr:`param_names`."""
        return pd.Series(self._theta, index=self.param_names, name="theta")

    @cached_property
    def theta_bse(self):
        """Standard errors of :attr:`theta`."""
        return pd.Series(np.sqrt(np.diag(self._covariance)), index=self.param_names, name="bse")

    @cached_property
    def bse(self):
        """Standard errors of the coefficients, shaped like ``params``."""
        se = np.sqrt(np.diag(self._covariance))
        return self._frame(self._coef_entries(se))

    @cached_property
    def fixed_bse(self):
        """Standard errors of :attr:`fixed_params`."""
        se = np.sqrt(np.diag(self._covariance))
        return pd.Series(
            se[self.layout.fixed_index], index=self.fixed_params.index, name="fixed_bse"
        )

    @cached_property
    def concomitant_bse(self):
        """Standard errors of :attr:`concomitant_params` (NaN for the reference
        component); ``None`` for constant mixing proportions."""
        if self.estimates.gamma is None:
            return None
        se = np.sqrt(np.diag(self._covariance))
        lay = self.layout
        values = np.full(self.estimates.gamma.shape, np.nan)
        for k in range(1, self.n_components):
            values[:, k] = se[lay.gamma_index(k)]
        return pd.DataFrame(
            values, index=self.model.concomitant_names, columns=self.component_names
        )

    @property
    def tvalues(self):
        """z statistics ``params / bse``."""
        return self.params / self.bse

    @property
    def pvalues(self):
        """Two-sided p-values of the z statistics (normal reference)."""
        return self._frame(2.0 * stats.norm.sf(np.abs(self.tvalues.to_numpy())))

    def conf_int(self, alpha=0.05):
        """Wald confidence intervals of the coefficients.

        Returns
        -------
        DataFrame
            Rows are terms, columns a MultiIndex (component, "lower"/"upper").
        """
        q = stats.norm.ppf(1.0 - alpha / 2.0)
        lower = self.params - q * self.bse
        upper = self.params + q * self.bse
        # Interleave by component in the order of params (a string sort would
        # put comp10 before comp2).
        columns = pd.MultiIndex.from_product([self.component_names, ["lower", "upper"]])
        table = pd.concat({"lower": lower, "upper": upper}, axis=1).swaplevel(axis=1)
        return table.reindex(columns=columns)

    @cached_property
    def prior_bse(self):
        """Standard errors of the mixing proportions (delta method); for a
        concomitant model, of the mean proportions :attr:`prior`."""
        K = self.n_components
        if K == 1:
            return pd.Series([0.0], index=self.component_names, name="prior_bse")
        index = self.layout.prior_index
        if self.estimates.gamma is None:
            jac = prior_delta_jacobian(self.estimates.prior)
        else:
            jac = self._data.mean_prior_jacobian(self.estimates.gamma)
        cov = self._covariance[np.ix_(index, index)]
        return pd.Series(
            np.sqrt(np.diag(jac @ cov @ jac.T)), index=self.component_names, name="prior_bse"
        )

    @cached_property
    def family_bse(self):
        """Standard errors of :attr:`family_params` (delta method from the
        unconstrained scale: ``value * se(log value)`` for a log-transformed
        parameter)."""
        names = self._parameter_names
        values = np.full((len(names), self.n_components), np.nan)
        for k in range(self.n_components):
            for j, (parameter, i) in enumerate(
                zip(self.family.member(k).parameters, self.layout.param_index[k])
            ):
                se = np.sqrt(self._covariance[i, i])
                values[names.index(parameter.name), k] = se * (
                    self.estimates.params[j, k] if parameter.transform == "log" else 1.0
                )
        return pd.DataFrame(
            values, index=pd.Index(names, dtype=object), columns=self.component_names
        )

    @cached_property
    def scale_bse(self):
        """Standard errors of the dispersions (delta method from log scale);
        NaN where the family has no dispersion."""
        bse = self.family_bse
        values = (
            bse.loc["scale"].to_numpy()
            if "scale" in bse.index
            else np.full(self.n_components, np.nan)
        )
        return pd.Series(values, index=self.component_names, name="scale_bse")

    # ------------------------------------------------------ fit measures
    @cached_property
    def llnull(self):
        """Log-likelihood of the intercept-only one-component model (the
        family, weights, offset and exposure of the fit), as statsmodels'
        ``GLMResults.llnull``; see :func:`emformula.postestimation.fit_measures.llnull`."""
        stored = getattr(self._data, "stored", None)  # after remove_data()
        if stored is not None:
            return stored["llnull"]
        self._data.rows_in_memory("llnull")
        from .postestimation.fit_measures import llnull

        return llnull(self)

    def pseudo_rsquared(self, kind="cs"):
        """Cox and Snell (``"cs"``) or McFadden (``"mcf"``) pseudo R² against
        :attr:`llnull`, as statsmodels defines them."""
        from .postestimation.fit_measures import pseudo_rsquared

        return pseudo_rsquared(self, kind)

    @property
    def resid_response(self):
        """Response residuals ``y - E(y)`` of the mixture (statsmodels' name)."""
        return self.residuals("response")

    @property
    def resid_pearson(self):
        """Pearson residuals with the mixture variance (statsmodels' name)."""
        return self.residuals("pearson")

    @property
    def resid_deviance(self):
        """Deviance residuals (statsmodels' name; see :meth:`residuals`)."""
        return self.residuals("deviance")

    # ------------------------------------------------------ postestimation
    # Tests and linear combinations need only the estimates and their
    # covariance, so they work on every backend; predictions, margins and
    # the class diagnostics read the rows, which a dask fit does not hold.
    def t_test(self, r, q=None):
        """t (z) tests of linear constraints ``R theta = q`` on the parameters
        of :meth:`cov_params`; see :func:`emformula.postestimation.hypothesis.t_test`.

        Examples
        --------
        >>> res.t_test("comp1:x = comp2:x")                         # doctest: +SKIP
        """
        from .postestimation.hypothesis import t_test

        return t_test(self, r, q)

    def wald_test(self, r, q=None, scalar=True):
        """Joint Wald test of linear constraints (statsmodels' ``ContrastResults``);
        see :func:`emformula.postestimation.hypothesis.wald_test`."""
        from .postestimation.hypothesis import wald_test

        return wald_test(self, r, q, scalar=scalar)

    def f_test(self, r, q=None, df_denom=None):
        """F test of linear constraints; see
        :func:`emformula.postestimation.hypothesis.f_test`."""
        from .postestimation.hypothesis import f_test

        return f_test(self, r, q, df_denom=df_denom)

    def wald_test_terms(self):
        """For each term, the Wald test that its coefficients are equal in
        every component; see :func:`emformula.postestimation.hypothesis.wald_test_terms`."""
        from .postestimation.hypothesis import wald_test_terms

        return wald_test_terms(self)

    def lincom(self, r, q=None, alpha=0.05):
        """Linear combinations of the parameters with standard errors, z,
        p-values and intervals; see :func:`emformula.postestimation.hypothesis.lincom`."""
        from .postestimation.hypothesis import lincom

        return lincom(self, r, q, alpha=alpha)

    def get_prediction(self, exog=None, type="mean", alpha=0.05, *, offset=None, exposure=None):
        """Predictions with delta-method standard errors and intervals (the
        mixture mean, each component's mean, the mixing proportions); see
        :func:`emformula.postestimation.prediction.get_prediction`."""
        self._data.rows_in_memory("get_prediction")
        from .postestimation.prediction import get_prediction

        return get_prediction(self, exog, type, alpha, offset=offset, exposure=exposure)

    def get_margeff(self, at="overall", method="dydx", dummy=False):
        """Marginal effects of the mixture mean and of each component's mean;
        see :func:`emformula.postestimation.margins.get_margeff`."""
        self._data.rows_in_memory("get_margeff")
        from .postestimation.margins import get_margeff

        return get_margeff(self, at=at, method=method, dummy=dummy)

    def class_sizes(self, alpha=0.05):
        """Class proportions with standard errors and intervals (Stata's
        ``estat lcprob``); see :func:`emformula.postestimation.classes.class_sizes`."""
        from .postestimation.classes import class_sizes

        return class_sizes(self, alpha)

    def class_means(self, alpha=0.05):
        """The mean response of each class with standard errors (``estat
        lcmean``); see :func:`emformula.postestimation.classes.class_means`."""
        self._data.rows_in_memory("class_means")
        from .postestimation.classes import class_means

        return class_means(self, alpha)

    def clusters(self):
        """Hard assignments, 1-based (flexmix's ``clusters``)."""
        self._data.rows_in_memory("clusters")
        from .postestimation.classes import clusters

        return clusters(self)

    def classification_table(self, labels):
        """Assignments against known labels; see
        :func:`emformula.postestimation.classes.classification_table`."""
        self._data.rows_in_memory("classification_table")
        from .postestimation.classes import classification_table

        return classification_table(self, labels)

    def entropy_r2(self):
        """Entropy R^2 of the classification, ``1 - entropy / (N log K)``."""
        self._data.rows_in_memory("entropy_r2")
        from .postestimation.classes import entropy_r2

        return entropy_r2(self)

    def average_posterior(self):
        """Average posterior probability of each class among the units
        assigned to each class (the latent-class diagnostic matrix)."""
        self._data.rows_in_memory("average_posterior")
        from .postestimation.classes import average_posterior

        return average_posterior(self)

    def kl_divergence(self, eps=1e-4):
        """Kullback-Leibler divergences between the components (flexmix's
        ``KLdiv``); see :func:`emformula.postestimation.classes.kl_divergence`."""
        self._data.rows_in_memory("kl_divergence")
        from .postestimation.classes import kl_divergence

        return kl_divergence(self, eps)

    # -------------------------------------------------------- diagnostics
    def residuals(
        self, type="deviance", component=None, random_state=None, data=None, context=None
    ):
        """Residuals of the fit, or of new data with their response (``data=``);
        see :func:`emformula.residuals.residuals`."""
        self._data.rows_in_memory("residuals")
        from .postestimation.residuals import residuals

        return residuals(
            self,
            type=type,
            component=component,
            random_state=random_state,
            data=data,
            context=context,
        )

    def plot_params(self, known=None, alpha=0.05, ax=None, match=True):
        """Estimates with confidence intervals, against known values if given;
        see :func:`emformula.plotting.plot_params`."""
        from .report.plotting import plot_params

        return plot_params(self, known=known, alpha=alpha, ax=ax, match=match)

    def plot_diagnostics(self, type="deviance", random_state=None):
        """Residual panels as R's plot of a glm; see
        :func:`emformula.plotting.plot_diagnostics`."""
        from .report.plotting import plot_diagnostics

        return plot_diagnostics(self, type=type, random_state=random_state)

    def plot_qq(self, type="quantile", ax=None, random_state=None):
        """Normal QQ plot of residuals; see :func:`emformula.plotting.plot_qq`."""
        from .report.plotting import plot_qq

        return plot_qq(self, type=type, ax=ax, random_state=random_state)

    def plot_posterior(self, bins=20):
        """Histogram of the posterior probabilities per component (as flexmix's
        rootogram); see :func:`emformula.plotting.plot_posterior`."""
        from .report.plotting import plot_posterior

        return plot_posterior(self, bins=bins)

    # ----------------------------------------------------------- display
    def summary(self, alpha=0.05):
        """A statsmodels ``Summary``: header, one coefficient table per
        component, and the mixing proportions and dispersions."""
        from .report.summary import summarize

        return summarize(self, alpha=alpha)

    def __repr__(self):
        return (
            f"<EMGLMResults: {self.family.family_name}({self.family.link_name}), "
            f"K={self.n_components}, llf={self.llf:.4f}, converged={self.converged}>"
        )

    def __str__(self):
        return self.summary().as_text()

    def _repr_html_(self):
        return self.summary().as_html()

    # ------------------------------------------------------------ helpers
    def _coef_entries(self, theta_values):
        """Per-coefficient values of theta as (p, K), NaN for a component
        without coefficients."""
        p = len(self.model.exog_names)
        return np.column_stack(
            [
                theta_values[idx] if idx.size else np.full(p, np.nan)
                for idx in self.layout.coef_index
            ]
        )

    def _by_component(self, coef):
        """``coef`` (p, K) with NaN in the columns of components without
        coefficients."""
        coef = np.array(coef, dtype=float)
        for k, idx in enumerate(self.layout.coef_index):
            if not idx.size:
                coef[:, k] = np.nan
        return coef

    def _frame(self, values):
        frame = pd.DataFrame(
            np.array(values, dtype=float), index=self.model.exog_names, columns=self.component_names
        )
        return frame

    def __getstate__(self):
        state = {
            "model": self.model,
            "_run": self._run,
            "fit_options": self.fit_options,
            "problems": self.problems,
            "_cov": self._cov,
            "_rows": self.__dict__["_rows"],
        }
        rows = state["_rows"]
        if rows is not None and hasattr(rows, "meat"):
            # The meats of a dask fit travel at the top of the state: results
            # pickled before they existed have none, and cannot switch to a
            # sandwich covariance.
            state.update(_meat=rows.meat, _clusters=rows.clusters)
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.setdefault("_cov", {"type": "louis"})
        run = state.get("_run")
        if run is not None and "model" in state:
            # Estimates pickled with a unit dispersion row for a family
            # without parameters (before version 0.2) drop it.
            estimates = run.estimates.for_family(state["model"].family)
            if estimates is not run.estimates:
                state["_run"] = dataclasses.replace(run, estimates=estimates)
                held = state.get("_rows")
                if held is not None and getattr(held, "estimates", None) is not None:
                    # A dask fit's result rows hold the estimates too.
                    held = copy.copy(held)
                    held.estimates = estimates
                    state["_rows"] = held
        rows = state.setdefault("_rows", None)
        if rows is not None and hasattr(rows, "meat"):
            rows = copy.copy(rows)
            rows.meat, rows.clusters = state.pop("_meat", None), state.pop("_clusters", None)
            state["_rows"] = rows
        self.__dict__.update(state)


def load(fname):
    """Results saved by :meth:`EMGLMResults.save` (a path or a readable
    binary file).

    A pickle runs code when it is loaded: load only files you trust.

    Examples
    --------
    >>> import io
    >>> from emformula import datasets, emglm, load
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
    >>> buffer = io.BytesIO()
    >>> res.save(buffer)
    >>> _ = buffer.seek(0)
    >>> bool(load(buffer).llf == res.llf)
    True
    """
    import pickle

    if hasattr(fname, "read"):
        obj = pickle.load(fname)
    else:
        with open(fname, "rb") as handle:
            obj = pickle.load(handle)
    if not isinstance(obj, EMGLMResults):
        raise TypeError(f"{fname!r} holds a {type(obj).__name__}, not emformula results")
    return obj
