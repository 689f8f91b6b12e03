"""The results' backend of a fit in memory: the model's arrays.

The data-dependent parts of :class:`~emformula.results.EMGLMResults` (the
posterior, fitted values, predictions on the training or new data, Louis'
information, the per-unit scores behind the robust and clustered
covariances, the entropy, the weighted number of units, the deviance) come
from a backend object; this one computes them from the arrays of the
:class:`~emformula.model.EMGLM` and the final run, when first asked.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import numpy as np
import pandas as pd

from ..covariance.estimators import mean_prior_jacobian, score_meat
from ..covariance.registry import get_estimator
from ..engine.data import EMData
from ..engine.estep import e_step, linear_predictor
from ..engine.layout import unit_prior
from ..engine.louis import louis_information, unit_scores
from ..formula.design import (
    as_frame,
    group_codes,
    new_design_matrix,
    new_response,
    resolve_labels,
    resolve_vector,
)

__all__ = ["MemoryResultRows", "StoredResultRows", "memory_cov_choice"]


def memory_cov_choice(model, cov_type, cov_groups=None):
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
    estimator = get_estimator(cov_type)
    key = estimator.name
    if not estimator.needs_clusters:
        if cov_groups is not None:
            raise ValueError("cov_groups is only used with cov_type='cluster'")
        return {"type": key}
    name = model.cov_groups_name
    if cov_groups is None:
        if model.cov_groups is None:
            raise ValueError(
                "cov_type='cluster' needs cluster labels: pass cov_groups= "
                "(a column name to emglm, or one label per row used)"
            )
        codes = model.cov_groups
    else:
        if isinstance(cov_groups, str):
            if cov_groups != name or model.cov_groups is None:
                raise ValueError(
                    f"cov_groups={cov_groups!r}: give the column to emglm "
                    "(cov_groups=...) or pass the labels themselves"
                )
            codes = model.cov_groups
        else:
            if isinstance(cov_groups, pd.Series) and len(cov_groups) != model.nobs:
                cov_groups = cov_groups.loc[model.row_index]
            values = cov_groups.to_numpy() if isinstance(cov_groups, pd.Series) else cov_groups
            _, codes = group_codes(values, model.nobs, "cov_groups")
            name = getattr(cov_groups, "name", None) or "cov_groups"
    data = model.data
    if data.groups is not None:
        # A group is one unit: all its rows must sit in one cluster.
        first = codes[data.unit_rows]
        if np.any(first[data.groups] != codes):
            raise ValueError(
                "the clusters of cov_groups must contain whole groups: rows of "
                "one group fall into different clusters"
            )
        codes = first
    codes = np.unique(codes, return_inverse=True)[1]
    return {"type": key, "clusters": codes, "n_clusters": int(codes.max()) + 1, "name": name}


class MemoryResultRows:
    """The data-dependent parts of the results of a fit in memory.

    Parameters
    ----------
    model : EMGLM
    run : EMRun
        The final run (its posterior at the estimates).
    """

    in_memory = True

    def __init__(self, model, run):
        self.model = model
        self.run = run

    @property
    def estimates(self):
        return self.run.estimates

    @property
    def data(self):
        return self.model.data

    # ------------------------------------------------------------ counts
    @property
    def wnobs(self):
        return float(self.data.unit_weights.sum())

    @property
    def row_weight(self):
        return float(self.data.weights.sum())

    @property
    def n_groups(self):
        return None if self.data.groups is None else self.data.n_units

    @cached_property
    def entropy(self):
        tau = self.unit_posterior
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(tau > 0, tau * np.log(tau), 0.0)
        return float(-np.dot(self.data.unit_weights, terms.sum(axis=1)))

    @cached_property
    def classification_entropy(self):
        # -sum_u v_u log tau_u,z(u), z(u) the unit's most probable component.
        with np.errstate(divide="ignore"):
            return float(-np.dot(self.data.unit_weights, np.log(self.unit_posterior.max(axis=1))))

    @property
    def deviance(self):
        data = self.data
        unit = data.family.unit_deviance_at(
            data.endog,
            self.component_mean[:, 0],
            tuple(self.run.estimates.params[:, 0]),
            data.trials,
        )
        return float(np.dot(data.weights, unit))

    # ------------------------------------------------------- row results
    def posterior(self, names):
        return pd.DataFrame(self.run.posterior, index=self.model.row_index, columns=names)

    @cached_property
    def unit_posterior(self):
        tau = self.run.posterior
        return tau if self.data.unit_rows is None else tau[self.data.unit_rows]

    @cached_property
    def component_mean(self):
        eta = linear_predictor(self.data, self.estimates.coef, self.estimates.fixed_coef)
        return self.model.family.mean(eta)

    @cached_property
    def row_prior(self):
        """Mixing proportions of each row, ``(n, K)``."""
        data, est = self.data, self.estimates
        prior = unit_prior(data, est)
        if est.gamma is None:
            return np.broadcast_to(prior, (data.nobs, est.n_components))
        return data.to_rows(prior)

    def fittedvalues(self, names):
        # E(y) per component: the mean, or an ordinal family's expected code.
        mean = self.model.family.expected_response(
            self.component_mean, self.estimates.parameter_rows()
        )
        if self.estimates.gamma is None:
            values = mean @ self.estimates.prior
        else:
            values = np.sum(mean * self.row_prior, axis=1)
        return pd.Series(values, index=self.model.row_index, name="fittedvalues")

    def predict(self, data, type, names, *, offset=None, exposure=None, context=None):
        """Predictions (see :meth:`EMGLMResults.predict`), ``names`` the
        component labels."""
        types = ("mean", "component", "linear", "prior", "posterior", "probabilities")
        if type not in types:
            raise ValueError(f"type must be one of {', '.join(map(repr, types))}, got {type!r}")
        names = names
        if data is None:
            if offset is not None or exposure is not None:
                raise ValueError("offset and exposure are only for new data")
            index = self.model.row_index
            if type == "posterior":
                return self.posterior(names)
            if type == "prior":
                return pd.DataFrame(np.array(self.row_prior), index=index, columns=names)
            eta = linear_predictor(self.model.data, self.estimates.coef, self.estimates.fixed_coef)
            prior = self.row_prior
        else:
            new = self.new_arrays(
                data, offset, exposure, response=(type == "posterior"), context=context
            )
            index = new["index"]
            eta = linear_predictor(new["data"], self.estimates.coef, self.estimates.fixed_coef)
            prior = self.new_prior(new["data"])
            if type == "posterior":
                return self.new_posterior(new, names)
            if type == "prior":
                return pd.DataFrame(prior, index=index, columns=names)
        if type == "linear":
            return pd.DataFrame(eta, index=index, columns=names)
        family = self.model.family
        mu = family.mean(eta)
        if type == "probabilities":
            return self._category_probabilities(mu, prior, index)
        mu = family.expected_response(mu, self.estimates.parameter_rows())
        if type == "component":
            return pd.DataFrame(mu, index=index, columns=names)
        if self.estimates.gamma is None:
            return pd.Series(mu @ self.estimates.prior, index=index, name="predicted")
        return pd.Series(np.sum(mu * prior, axis=1), index=index, name="predicted")

    def _category_probabilities(self, mu, prior, index):
        """The mixture's probability of each response category (ordinal)."""
        family = self.model.family
        members = [family.member(k) for k in range(self.estimates.n_components)]
        if not all(hasattr(m, "category_probabilities") for m in members):
            raise ValueError(f"type='probabilities' is for ordinal families, not {family.name}")
        prior = np.broadcast_to(prior, mu.shape)
        total = 0.0
        for k, member in enumerate(members):
            own = tuple(self.estimates.params[: len(member.parameters), k])
            total = total + prior[:, k : k + 1] * member.category_probabilities(mu[:, k], own)
        return pd.DataFrame(
            total, index=index, columns=[f"P(y={j})" for j in range(total.shape[1])]
        )

    def new_prior(self, data):
        """Per-row mixing proportions of new data (NaN where W is missing)."""
        est = self.estimates
        if est.gamma is None:
            return np.broadcast_to(est.prior, (data.nobs, self.estimates.n_components)).copy()
        logits = data.concomitant @ est.gamma
        with np.errstate(invalid="ignore"):
            top = logits.max(axis=1, keepdims=True)
            expo = np.exp(logits - top)
            return expo / expo.sum(axis=1, keepdims=True)

    def new_posterior(self, new, names):
        """Posterior of new data: an E-step on its complete rows (groups kept)."""
        data, endog, trials = new["data"], new["endog"], new["trials"]
        arrays = [endog.reshape(data.nobs, -1), data.exog, data.offset[:, None]]
        arrays += [a for a in (data.fixed, data.concomitant, trials) if a is not None]
        complete = np.all(
            np.column_stack(
                [np.all(np.isfinite(a.reshape(data.nobs, -1)), axis=1) for a in arrays]
            ),
            axis=1,
        )
        out = np.full((data.nobs, self.estimates.n_components), np.nan)
        if complete.any():
            rows = np.flatnonzero(complete)
            y, n_trials = self.model._response(
                endog[rows], None if trials is None else trials[rows], rows.size
            )
            self.model.family.check_response(y, n_trials, name=self.model.endog_names[0])
            sub = replace(data.take(rows), endog=y, trials=n_trials)
            out[rows] = e_step(sub, self.estimates).posterior
        return pd.DataFrame(out, index=new["index"], columns=names)

    def new_arrays(self, data, offset, exposure, response=False, context=None):
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
                raise ValueError(
                    f"new exog has {exog.shape[1]} columns, the model {model.data.n_coef}"
                )
            frame, index = None, pd.RangeIndex(exog.shape[0])
            n = exog.shape[0]
            for name, width in (
                ("fixed", model.data.n_fixed),
                ("concomitant", model.data.n_concomitant),
            ):
                if not width:
                    continue
                if parts.get(name) is None:
                    raise ValueError(
                        f"the model has a {name} design: pass new data as a dict "
                        f"with 'exog' and {name!r} arrays"
                    )
                values = np.asarray(parts[name], dtype=float).reshape(n, -1)
                if values.shape[1] != width:
                    raise ValueError(f"new {name} has {values.shape[1]} columns, the model {width}")
                if name == "fixed":
                    fixed = values
                else:
                    concomitant = values
            if response:
                if parts.get("endog") is None:
                    raise ValueError(
                        "type='posterior' needs the response: pass new data as a "
                        "dict with 'exog' and 'endog'"
                    )
                endog = np.asarray(parts["endog"], dtype=float)
                trials = parts.get("trials")
                if model.data.groups is not None:
                    if parts.get("groups") is None:
                        raise ValueError(
                            "the model groups its rows: pass 'groups' labels for "
                            "the posterior of new data"
                        )
                    groups = resolve_labels(parts["groups"], None, "groups", n)
        else:
            design = model.design
            data = as_frame(data, "new data")
            kinds = getattr(design, "column_kinds", None)
            # The training columns (an ordinal family's design has no intercept).
            exog = new_design_matrix(design.model_spec, data, context, design.exog_names, kinds)
            frame, index = data.reset_index(drop=True), data.index
            n = exog.shape[0]
            offset = design.column_args.get("offset") if offset is None else offset
            exposure = design.column_args.get("exposure") if exposure is None else exposure
            if design.fixed_spec is not None and model.data.fixed is not None:
                fixed = new_design_matrix(
                    design.fixed_spec, data, context, design.fixed_names, kinds
                )
            if design.concomitant_spec is not None:
                concomitant = new_design_matrix(
                    design.concomitant_spec, data, context, design.concomitant_names, kinds
                )
            if response:
                try:
                    endog = new_response(design.model_spec, data, context, kinds)
                except ValueError as exc:
                    raise ValueError(
                        f"type='posterior' needs the response "
                        f"{' + '.join(model.endog_names)} in the new data: "
                        f"{exc}"
                    ) from None
                trials = design.column_args.get("trials")
                if trials is None and design.trials is not None and endog.ndim == 1:
                    raise ValueError(
                        "the model was fitted with trials as an array: the "
                        "posterior of new data needs a trials column"
                    )
                if model.data.groups is not None:
                    column = design.column_args.get("groups")
                    if column is None or column not in frame.columns:
                        raise ValueError(
                            f"the model groups its rows by {model.groups_name!r}: "
                            "new data need that column for the posterior"
                        )
                    groups = resolve_labels(column, frame, "groups", n)
        total = np.zeros(n)
        for name, given, used in (
            ("offset", offset, model.offset),
            ("exposure", exposure, model.exposure),
        ):
            if given is None:
                if used is not None:
                    raise ValueError(
                        f"the model was fitted with an {name}: pass {name}= for the new data"
                    )
                continue
            values = resolve_vector(given, frame, name, n)
            total += np.log(values) if name == "exposure" else values
        if trials is not None:
            trials = resolve_vector(trials, frame, "trials", n)
        codes = None
        if groups is not None:
            codes = group_codes(groups, n, "groups")[1]
        engine = EMData(
            np.zeros(n),
            exog,
            np.ones(n),
            total,
            np.ones(n),
            model.family,
            fixed,
            concomitant,
            codes,
            model.data.equal_scale,
        )
        return {"data": engine, "index": index, "endog": endog, "trials": trials}

    # --------------------------------------------------------- inference
    def information(self, layout):
        return louis_information(
            self.data, self.estimates, self.run.posterior, self.component_mean, layout
        )

    def mean_prior_jacobian(self, gamma):
        return mean_prior_jacobian(self.data, gamma)

    @cached_property
    def unit_scores(self):
        """Observed score of each unit (rows, or groups), ``(n_units, P)``."""
        return unit_scores(
            self.data, self.estimates, self.run.posterior, self.component_mean, self.model.layout
        )

    def cov_choice(self, cov_type, cov_groups=None):
        return memory_cov_choice(self.model, cov_type, cov_groups)

    def cov_meat(self, cov, louis_covariance):
        """The meat of the sandwich for the covariance choice ``cov``; scores
        of parameters the information does not identify are left out."""
        keep = np.isfinite(np.diag(louis_covariance))
        # Scores of unidentified parameters may be NaN: leave them out of M.
        scores = np.where(keep[None, :], self.unit_scores, 0.0)
        return score_meat(scores, self.data.unit_weights, cov.get("clusters"))

    def rows_in_memory(self, what):
        """Nothing to refuse: the rows are in memory."""

    def __getstate__(self):
        # Rebuilt from the results' model and run, which pickle themselves.
        return {"model": self.model, "run": self.run}


class StoredResultRows(MemoryResultRows):
    """The results' backend after :meth:`EMGLMResults.remove_data`.

    What needed the rows (Louis' information, the meat of the covariance
    in use, the entropies, the weighted counts, the deviance, the Jacobian
    of the mean mixing proportions) was computed before they went and is
    kept in ``stored``; predictions on new data still work (they need the
    model's formula and the estimates only); everything per row is refused.

    Parameters
    ----------
    model : EMGLM
        The model without its rows (:meth:`EMGLM.without_rows`).
    run : EMRun
        Without its posterior.
    stored : dict
    """

    in_memory = False

    def __init__(self, model, run, stored):
        super().__init__(model, run)
        self.stored = stored

    def rows_in_memory(self, what):
        raise NotImplementedError(
            f"{what} needs the rows of the fit, which remove_data() "
            "dropped: fit again (or keep the results before "
            "remove_data())"
        )

    # What was computed before the rows went.
    wnobs = property(lambda self: self.stored["wnobs"])
    row_weight = property(lambda self: self.stored["row_weight"])
    n_groups = property(lambda self: self.stored["n_groups"])
    entropy = property(lambda self: self.stored["entropy"])
    classification_entropy = property(lambda self: self.stored["classification_entropy"])
    deviance = property(lambda self: self.stored["deviance"])

    def information(self, layout):
        return self.stored["information"]

    def mean_prior_jacobian(self, gamma):
        return self.stored["prior_jacobian"]

    def cov_choice(self, cov_type, cov_groups=None):
        kept = self.stored["cov"]
        estimator = get_estimator(cov_type)
        if estimator.name == "louis" and cov_groups is None:
            return {"type": "louis"}
        if estimator.name == kept["type"] and cov_groups is None:
            return kept
        self.rows_in_memory(f"cov_type={cov_type!r}")

    def cov_meat(self, cov, louis_covariance):
        return self.stored["meat"]

    # Per row: refused.
    def posterior(self, names):
        self.rows_in_memory("the posterior")

    def fittedvalues(self, names):
        self.rows_in_memory("fittedvalues")

    @property
    def unit_posterior(self):
        self.rows_in_memory("the posterior")

    @property
    def component_mean(self):
        self.rows_in_memory("the fitted means")

    @property
    def row_prior(self):
        self.rows_in_memory("the rows' mixing proportions")

    @property
    def unit_scores(self):
        self.rows_in_memory("the scores of the units")

    def predict(self, data, type, names, **kwargs):
        if data is None:
            self.rows_in_memory("predict() without new data")
        return super().predict(data, type, names, **kwargs)

    def __getstate__(self):
        return {"model": self.model, "run": self.run, "stored": self.stored}
