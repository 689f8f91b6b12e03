"""The results of a mixture fit: immutable, with cached derived values.

Names follow statsmodels (``params``, ``bse``, ``llf``, ``aic``,
``cov_params()``, ``conf_int()``, ``summary()``), with the component
dimension as columns: ``params`` is a DataFrame with one row per term and
one column per component (``comp1``, ``comp2``, ...).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from .engine import em as _em
from .formula.design import as_frame, new_design_matrix, new_response, resolve_labels, resolve_vector
from .covariance.estimators import invert_information, mean_prior_jacobian, prior_delta_jacobian, sandwich_covariance
from .engine.louis import louis_information, unit_scores
from .engine.layout import unit_prior
from .engine.starts import replication_tolerance
from .warnings import EstimationWarning

__all__ = ["EMGLMResults", "COV_TYPES", "check_cov_type"]

#: Covariance types of the estimates (``fit(cov_type=...)``).
COV_TYPES = ("louis", "robust", "cluster")


def check_cov_type(model, cov_type, cov_groups=None):
    """Validate a covariance choice; returns what the results object keeps.

    Parameters
    ----------
    model : EMGLM
    cov_type : {"louis", "robust", "cluster"}
    cov_groups : array_like or pandas Series, optional
        Cluster labels, one per row used in the fit (a Series is aligned on
        the data's index); default the model's ``cov_groups``.

    Returns
    -------
    dict
        ``type``; for ``"cluster"`` also ``clusters`` (codes per unit),
        ``n_clusters`` and ``name``.
    """
    key = str(cov_type).lower() if isinstance(cov_type, str) else cov_type
    if key not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {', '.join(COV_TYPES)}, got {cov_type!r}")
    if key != "cluster":
        if cov_groups is not None:
            raise ValueError("cov_groups is only used with cov_type='cluster'")
        return {"type": key}
    from .model import _group_codes
    name = model.cov_groups_name
    if cov_groups is None:
        if model.cov_groups is None:
            raise ValueError("cov_type='cluster' needs cluster labels: pass cov_groups= "
                             "(a column name to emglm, or one label per row used)")
        codes = model.cov_groups
    else:
        if isinstance(cov_groups, str):
            if cov_groups != name or model.cov_groups is None:
                raise ValueError(f"cov_groups={cov_groups!r}: give the column to emglm "
                                 "(cov_groups=...) or pass the labels themselves")
            codes = model.cov_groups
        else:
            if isinstance(cov_groups, pd.Series) and len(cov_groups) != model.nobs:
                cov_groups = cov_groups.loc[model.row_index]
            values = cov_groups.to_numpy() if isinstance(cov_groups, pd.Series) else cov_groups
            _, codes = _group_codes(values, model.nobs, "cov_groups")
            name = getattr(cov_groups, "name", None) or "cov_groups"
    data = model.data
    if data.groups is not None:
        # A group is one unit: all its rows must sit in one cluster.
        first = codes[data.unit_rows]
        if np.any(first[data.groups] != codes):
            raise ValueError("the clusters of cov_groups must contain whole groups: rows of "
                             "one group fall into different clusters")
        codes = first
    codes = np.unique(codes, return_inverse=True)[1]
    return {"type": key, "clusters": codes, "n_clusters": int(codes.max()) + 1, "name": name}


class EMGLMResults:
    """Results of :func:`emformula.emglm` or :meth:`EMGLM.fit`.

    Components are ordered by decreasing mixing proportion (the mean
    proportion for a concomitant model; ties broken by the coefficients), so
    results never depend on label switching. Component 1 is the reference of
    a concomitant model.

    Attributes
    ----------
    model : EMGLM
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

    def __init__(self, model, run, fit_options=None, problems=(), cov=None):
        d = self.__dict__
        d["model"] = model
        d["_run"] = run
        d["fit_options"] = dict(fit_options or {})
        d["problems"] = tuple(problems)
        d["_cov"] = dict(cov or {"type": "louis"})

    def __setattr__(self, name, value):
        raise AttributeError("EMGLMResults is immutable; fit again to change it")

    def __delattr__(self, name):
        raise AttributeError("EMGLMResults is immutable")

    # ------------------------------------------------------------- basics
    @property
    def estimates(self):
        """The engine's :class:`Estimates` (coef, scale, prior arrays)."""
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
        component (shared effects are in :attr:`fixed_params`)."""
        return self._frame(self.estimates.coef)

    @cached_property
    def fixed_params(self):
        """Coefficients shared by all components (``fixed=``); empty without them."""
        values = self.estimates.fixed_coef
        return pd.Series(np.zeros(0) if values is None else np.array(values, dtype=float),
                         index=pd.Index(self.model.fixed_names, dtype=object), name="fixed")

    @cached_property
    def concomitant_params(self):
        """Coefficients of the concomitant model, ``log(pi_k / pi_1) = w' gamma_k``:
        one row per concomitant term, one column per component (``comp1``,
        the reference, is 0). ``None`` for constant mixing proportions."""
        gamma = self.estimates.gamma
        if gamma is None:
            return None
        return pd.DataFrame(np.array(gamma, dtype=float), index=self.model.concomitant_names,
                            columns=self.component_names)

    @cached_property
    def prior(self):
        """Mixing proportions (sum to 1). For a concomitant model, the mean
        over the units (rows or groups, weighted) of each unit's proportions;
        ``predict(type="prior")`` gives them per row."""
        return pd.Series(self.estimates.prior, index=self.component_names, name="prior")

    @cached_property
    def scale(self):
        """Dispersion of each component (maximum likelihood; one value
        repeated with ``equal_scale``)."""
        return pd.Series(self.estimates.scale, index=self.component_names, name="scale")

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
        table = pd.DataFrame([vars(r) if not hasattr(r, "_asdict") else r._asdict()
                              for r in records])
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
        data = self.model.data
        return None if data.groups is None else data.n_units

    @property
    def wnobs(self):
        """Sum of the frequency weights of the independent units: rows, or
        groups with ``groups=`` (each group counted once). The sample size
        of the BIC."""
        return float(self.model.data.unit_weights.sum())

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

    @cached_property
    def entropy(self):
        """Entropy of the posterior, ``-sum_u v_u sum_k tau_uk log tau_uk``
        over the units (rows, or groups)."""
        tau = self._unit_posterior
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(tau > 0, tau * np.log(tau), 0.0)
        return float(-np.dot(self.model.data.unit_weights, terms.sum(axis=1)))

    @property
    def icl(self):
        """Integrated completed likelihood (Biernacki et al. 2000):
        BIC plus twice the entropy of the posterior."""
        return self.bic + 2.0 * self.entropy

    @property
    def deviance(self):
        """Deviance of a one-component fit (as statsmodels' ``GLMResults.deviance``);
        NaN for K > 1, where the saturated model of a mixture is not defined."""
        if self.n_components != 1:
            return np.nan
        data = self.model.data
        unit = self.family.unit_deviance(data.endog, self._component_mean[:, 0], data.trials)
        return float(np.dot(data.weights, unit))

    # -------------------------------------------------------- row results
    @cached_property
    def posterior(self):
        """Posterior probability of each component for each row (with
        ``groups=``, every row carries its group's posterior)."""
        return pd.DataFrame(self._run.posterior, index=self.model.row_index,
                            columns=self.component_names)

    @cached_property
    def _unit_posterior(self):
        data = self.model.data
        tau = self._run.posterior
        return tau if data.unit_rows is None else tau[data.unit_rows]

    @cached_property
    def _component_mean(self):
        eta = _em.linear_predictor(self.model.data, self.estimates.coef,
                                   self.estimates.fixed_coef)
        return self.family.mean(eta)

    @cached_property
    def _row_prior(self):
        """Mixing proportions of each row, ``(n, K)``."""
        data = self.model.data
        prior = unit_prior(data, self.estimates)
        if self.estimates.gamma is None:
            return np.broadcast_to(prior, (data.nobs, self.n_components))
        return data.to_rows(prior)

    @cached_property
    def fittedvalues(self):
        """Mixture mean ``sum_k pi_ik mu_ik`` of each row (a probability for
        the binomial family)."""
        if self.estimates.gamma is None:
            values = self._component_mean @ self.estimates.prior
        else:
            values = np.sum(self._component_mean * self._row_prior, axis=1)
        return pd.Series(values, index=self.model.row_index, name="fittedvalues")

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
        type : {"mean", "component", "linear", "prior", "posterior"}
            The mixture mean ``sum_k pi_ik mu_ik`` (a Series), each
            component's mean, each component's linear predictor, the mixing
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

        Returns
        -------
        Series or DataFrame

        Examples
        --------
        >>> res.predict(new_df, type="component")  # doctest: +SKIP
        >>> res.predict(new_df, type="prior")      # doctest: +SKIP
        """
        types = ("mean", "component", "linear", "prior", "posterior")
        if type not in types:
            raise ValueError(f"type must be one of {', '.join(map(repr, types))}, got {type!r}")
        names = self.component_names
        if data is None:
            if offset is not None or exposure is not None:
                raise ValueError("offset and exposure are only for new data")
            index = self.model.row_index
            if type == "posterior":
                return self.posterior.copy()
            if type == "prior":
                return pd.DataFrame(np.array(self._row_prior), index=index, columns=names)
            eta = _em.linear_predictor(self.model.data, self.estimates.coef,
                                       self.estimates.fixed_coef)
            prior = self._row_prior
        else:
            new = self._new_arrays(data, offset, exposure, response=(type == "posterior"),
                                   context=context)
            index = new["index"]
            eta = _em.linear_predictor(new["data"], self.estimates.coef,
                                       self.estimates.fixed_coef)
            prior = self._new_prior(new["data"])
            if type == "posterior":
                return self._new_posterior(new, names)
            if type == "prior":
                return pd.DataFrame(prior, index=index, columns=names)
        if type == "linear":
            return pd.DataFrame(eta, index=index, columns=names)
        mu = self.family.mean(eta)
        if type == "component":
            return pd.DataFrame(mu, index=index, columns=names)
        if self.estimates.gamma is None:
            return pd.Series(mu @ self.estimates.prior, index=index, name="predicted")
        return pd.Series(np.sum(mu * prior, axis=1), index=index, name="predicted")

    def _new_prior(self, data):
        """Per-row mixing proportions of new data (NaN where W is missing)."""
        est = self.estimates
        if est.gamma is None:
            return np.broadcast_to(est.prior, (data.nobs, self.n_components)).copy()
        logits = data.concomitant @ est.gamma
        with np.errstate(invalid="ignore"):
            top = logits.max(axis=1, keepdims=True)
            expo = np.exp(logits - top)
            return expo / expo.sum(axis=1, keepdims=True)

    def _new_posterior(self, new, names):
        """Posterior of new data: an E-step on its complete rows (groups kept)."""
        data, endog, trials = new["data"], new["endog"], new["trials"]
        arrays = [endog.reshape(data.nobs, -1), data.exog, data.offset[:, None]]
        arrays += [a for a in (data.fixed, data.concomitant, trials) if a is not None]
        complete = np.all(np.column_stack([np.all(np.isfinite(a.reshape(data.nobs, -1)), axis=1)
                                           for a in arrays]), axis=1)
        out = np.full((data.nobs, self.n_components), np.nan)
        if complete.any():
            rows = np.flatnonzero(complete)
            y, n_trials = self.model._response(endog[rows], None if trials is None
                                               else trials[rows], rows.size)
            self.family.check_response(y, n_trials, name=self.model.endog_names[0])
            sub = replace(data.take(rows), endog=y, trials=n_trials)
            out[rows] = _em.e_step(sub, self.estimates).posterior
        return pd.DataFrame(out, index=new["index"], columns=names)

    def _new_arrays(self, data, offset, exposure, response=False, context=None):
        """The engine's arrays for new data: ``{"data": EMData, "index": Index}``.

        The response (``response=True``) and the groups are only looked for
        when a posterior is asked for.
        """
        model = self.model
        if context is None:
            context = getattr(model, "context", None)
        fixed = concomitant = groups = endog = trials = None
        if model.design is None:
            parts = dict(data) if isinstance(data, dict) else {"exog": data}
            exog = np.asarray(parts.get("exog"), dtype=float)
            if exog.ndim == 1:
                exog = exog[:, None]
            if exog.shape[1] != model.data.n_coef:
                raise ValueError(f"new exog has {exog.shape[1]} columns, the model "
                                 f"{model.data.n_coef}")
            frame, index = None, pd.RangeIndex(exog.shape[0])
            n = exog.shape[0]
            for name, width in (("fixed", model.data.n_fixed),
                                ("concomitant", model.data.n_concomitant)):
                if not width:
                    continue
                if parts.get(name) is None:
                    raise ValueError(f"the model has a {name} design: pass new data as a dict "
                                     f"with 'exog' and {name!r} arrays")
                values = np.asarray(parts[name], dtype=float).reshape(n, -1)
                if values.shape[1] != width:
                    raise ValueError(f"new {name} has {values.shape[1]} columns, the model "
                                     f"{width}")
                if name == "fixed":
                    fixed = values
                else:
                    concomitant = values
            if response:
                if parts.get("endog") is None:
                    raise ValueError("type='posterior' needs the response: pass new data as a "
                                     "dict with 'exog' and 'endog'")
                endog = np.asarray(parts["endog"], dtype=float)
                trials = parts.get("trials")
                if model.data.groups is not None:
                    if parts.get("groups") is None:
                        raise ValueError("the model groups its rows: pass 'groups' labels for "
                                         "the posterior of new data")
                    groups = resolve_labels(parts["groups"], None, "groups", n)
        else:
            design = model.design
            data = as_frame(data, "new data")
            kinds = getattr(design, "column_kinds", None)
            exog = new_design_matrix(design.model_spec, data, context, kinds=kinds)
            frame, index = data.reset_index(drop=True), data.index
            n = exog.shape[0]
            offset = design.column_args.get("offset") if offset is None else offset
            exposure = design.column_args.get("exposure") if exposure is None else exposure
            if design.fixed_spec is not None and model.data.fixed is not None:
                fixed = new_design_matrix(design.fixed_spec, data, context, design.fixed_names,
                                          kinds)
            if design.concomitant_spec is not None:
                concomitant = new_design_matrix(design.concomitant_spec, data, context,
                                                design.concomitant_names, kinds)
            if response:
                try:
                    endog = new_response(design.model_spec, data, context, kinds)
                except ValueError as exc:
                    raise ValueError(f"type='posterior' needs the response "
                                     f"{' + '.join(model.endog_names)} in the new data: "
                                     f"{exc}") from None
                trials = design.column_args.get("trials")
                if trials is None and design.trials is not None and endog.ndim == 1:
                    raise ValueError("the model was fitted with trials as an array: the "
                                     "posterior of new data needs a trials column")
                if model.data.groups is not None:
                    column = design.column_args.get("groups")
                    if column is None or column not in frame.columns:
                        raise ValueError(f"the model groups its rows by {model.groups_name!r}: "
                                         "new data need that column for the posterior")
                    groups = resolve_labels(column, frame, "groups", n)
        total = np.zeros(n)
        for name, given, used in (("offset", offset, model.offset),
                                  ("exposure", exposure, model.exposure)):
            if given is None:
                if used is not None:
                    raise ValueError(f"the model was fitted with an {name}: pass {name}= "
                                     "for the new data")
                continue
            values = resolve_vector(given, frame, name, n)
            total += np.log(values) if name == "exposure" else values
        if trials is not None:
            trials = resolve_vector(trials, frame, "trials", n)
        codes = None
        if groups is not None:
            from .model import _group_codes
            codes = _group_codes(groups, n, "groups")[1]
        engine = _em.EMData(np.zeros(n), exog, np.ones(n), total, np.ones(n), model.family,
                            fixed, concomitant, codes, model.data.equal_scale)
        return {"data": engine, "index": index, "endog": endog, "trials": trials}

    # ---------------------------------------------------------- inference
    @cached_property
    def _information(self):
        return louis_information(self.model.data, self.estimates, self._run.posterior,
                                 self._component_mean, self.layout)

    def information(self):
        """Observed information of the mixture log-likelihood (Louis' method)
        over the free parameters, as a DataFrame."""
        return pd.DataFrame(self._information, index=self.param_names,
                            columns=self.param_names)

    @cached_property
    def param_names(self):
        """Labels of the free parameters, in the order of ``cov_params``:
        ``comp1:x`` (component-specific), ``comp1:log(scale)``, ``fixed:x2``
        (shared), ``log(scale)`` (one common dispersion), ``alpha:comp2``
        (constant mixing proportions, log-odds against comp1) or
        ``concomitant:comp2:z`` (concomitant model)."""
        lay = self.layout
        model = self.model
        labels = [""] * lay.size
        for k in range(lay.n_components):
            for j, pos in enumerate(lay.coef_index[k]):
                labels[pos] = f"comp{k + 1}:{model.exog_names[j]}"
            if lay.scale_index[k] is not None:
                labels[lay.scale_index[k]] = ("log(scale)" if lay.equal_scale
                                              else f"comp{k + 1}:log(scale)")
        for j, pos in enumerate(lay.fixed_index):
            labels[pos] = f"fixed:{model.fixed_names[j]}"
        for k in range(1, lay.n_components):
            positions = lay.gamma_index(k)
            if lay.has_concomitant:
                for j, pos in enumerate(positions):
                    labels[pos] = f"concomitant:comp{k + 1}:{model.concomitant_names[j]}"
            else:
                labels[positions[0]] = f"alpha:comp{k + 1}"
        return labels

    @cached_property
    def _louis_covariance(self):
        cov, unidentified, not_positive = invert_information(self._information)
        if unidentified.size:
            names = [self.param_names[i] for i in unidentified]
            warnings.warn(
                "the observed information is singular: "
                f"{', '.join(names)} cannot be estimated (standard errors set to NaN); "
                "a component may have collapsed or a parameter is not identified",
                EstimationWarning, stacklevel=4)
        elif not_positive:
            warnings.warn("the observed information is not positive definite: the "
                          "estimate may be a saddle point", EstimationWarning, stacklevel=4)
        return cov

    @cached_property
    def _unit_scores(self):
        """Observed score of each unit (rows, or groups), ``(n_units, P)``."""
        return unit_scores(self.model.data, self.estimates, self._run.posterior,
                           self._component_mean, self.layout)

    @cached_property
    def _covariance(self):
        louis = self._louis_covariance
        if self.cov_type == "louis":
            return louis
        return sandwich_covariance(louis, self._unit_scores, self.model.data.unit_weights,
                                   self._cov.get("clusters"))

    @property
    def cov_type(self):
        """``"louis"`` (inverse observed information), ``"robust"`` (sandwich
        over units) or ``"cluster"`` (sandwich over clusters)."""
        return self._cov["type"]

    @property
    def n_clusters(self):
        """Number of clusters of ``cov_type="cluster"``, else ``None``."""
        return self._cov.get("n_clusters")

    def with_cov_type(self, cov_type, cov_groups=None):
        """The same fit with another covariance of the estimates.

        Parameters
        ----------
        cov_type : {"louis", "robust", "cluster"}
            See :meth:`EMGLM.fit`.
        cov_groups : array_like or Series, optional
            Cluster labels for ``"cluster"``: one per row used in the fit
            (a Series is aligned on the data's index), or default the
            model's ``cov_groups``.

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
        cov = check_cov_type(self.model, cov_type, cov_groups)
        return EMGLMResults(self.model, self._run, self.fit_options, self.problems, cov)

    def cov_params(self):
        """Covariance matrix of the free parameters (as :attr:`cov_type`)."""
        return pd.DataFrame(self._covariance, index=self.param_names,
                            columns=self.param_names)

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
        return pd.Series(np.sqrt(np.diag(self._covariance)), index=self.param_names,
                         name="bse")

    @cached_property
    def bse(self):
        """Standard errors of the coefficients, shaped like ``params``."""
        se = np.sqrt(np.diag(self._covariance))
        return self._frame(np.column_stack([se[idx] for idx in self.layout.coef_index]))

    @cached_property
    def fixed_bse(self):
        """Standard errors of :attr:`fixed_params`."""
        se = np.sqrt(np.diag(self._covariance))
        return pd.Series(se[self.layout.fixed_index], index=self.fixed_params.index,
                         name="fixed_bse")

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
        return pd.DataFrame(values, index=self.model.concomitant_names,
                            columns=self.component_names)

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
            jac = mean_prior_jacobian(self.model.data, self.estimates.gamma)
        cov = self._covariance[np.ix_(index, index)]
        return pd.Series(np.sqrt(np.diag(jac @ cov @ jac.T)), index=self.component_names,
                         name="prior_bse")

    @cached_property
    def scale_bse(self):
        """Standard errors of the dispersions (delta method from log scale);
        NaN where the dispersion is fixed."""
        values = [self.estimates.scale[k] * np.sqrt(self._covariance[i, i])
                  if i is not None else np.nan for k, i in enumerate(self.layout.scale_index)]
        return pd.Series(values, index=self.component_names, name="scale_bse")

    # -------------------------------------------------------- diagnostics
    def residuals(self, type="deviance", component=None, random_state=None, data=None,
                  context=None):
        """Residuals of the fit, or of new data with their response (``data=``);
        see :func:`emformula.residuals.residuals`."""
        from .postestimation.residuals import residuals
        return residuals(self, type=type, component=component, random_state=random_state,
                         data=data, context=context)

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
        return (f"<EMGLMResults: {self.family.family_name}({self.family.link_name}), "
                f"K={self.n_components}, llf={self.llf:.4f}, converged={self.converged}>")

    def __str__(self):
        return self.summary().as_text()

    def _repr_html_(self):
        return self.summary().as_html()

    # ------------------------------------------------------------ helpers
    def _frame(self, values):
        frame = pd.DataFrame(np.array(values, dtype=float), index=self.model.exog_names,
                             columns=self.component_names)
        return frame

    def __getstate__(self):
        return {"model": self.model, "_run": self._run, "fit_options": self.fit_options,
                "problems": self.problems, "_cov": self._cov}

    def __setstate__(self, state):
        state.setdefault("_cov", {"type": "louis"})
        self.__dict__.update(state)
