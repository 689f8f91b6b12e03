"""The results of a mixture fit: immutable, with cached derived values.

Names follow statsmodels (``params``, ``bse``, ``llf``, ``aic``,
``cov_params()``, ``conf_int()``, ``summary()``), with the component
dimension as columns: ``params`` is a DataFrame with one row per term and
one column per component (``comp1``, ``comp2``, ...).
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from . import _em
from ._design import new_design_matrix, resolve_vector
from .inference import (invert_information, louis_information, pack_theta, parameter_layout,
                        prior_delta_jacobian)
from .warnings import EstimationWarning

__all__ = ["EMGLMResults"]


class EMGLMResults:
    """Results of :func:`emformula.emglm` or :meth:`EMGLM.fit`.

    Components are ordered by decreasing mixing proportion (ties broken by
    the coefficients), so results never depend on label switching.

    Attributes
    ----------
    model : EMGLM
    params : DataFrame (terms x components)
    prior : Series
        Mixing proportions.
    scale : Series
        Dispersion per component (1 for poisson, binomial, negative binomial).
    llf : float
        Mixture log-likelihood with every constant.
    converged : bool
    n_iter : int
    problems : tuple of str
        Degenerate features of the fit (a collapsed component, separation,
        a dispersion at its floor), each also issued as an EstimationWarning.
    """

    def __init__(self, model, run, fit_options=None, problems=()):
        d = self.__dict__
        d["model"] = model
        d["_run"] = run
        d["fit_options"] = dict(fit_options or {})
        d["problems"] = tuple(problems)

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

    @cached_property
    def params(self):
        """Coefficients: one row per term, one column per component."""
        return self._frame(self.estimates.coef)

    @cached_property
    def prior(self):
        """Mixing proportions (sum to 1)."""
        return pd.Series(self.estimates.prior, index=self.component_names, name="prior")

    @cached_property
    def scale(self):
        """Dispersion of each component (maximum likelihood)."""
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
        return self._run.converged

    @property
    def nobs(self):
        """Number of rows used in the fit."""
        return self.model.nobs

    @property
    def wnobs(self):
        """Sum of the frequency weights (the sample size of the BIC)."""
        return float(self.model.data.weights.sum())

    @property
    def df_model(self):
        """Number of free parameters: K p coefficients, K-1 mixing
        proportions and one dispersion per component where it is estimated."""
        K, p = self.n_components, self.model.data.n_coef
        return K * p + (K - 1) + (K if self.family.estimates_scale else 0)

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
        ``n`` the sum of the frequency weights."""
        return -2.0 * self.llf + np.log(self.wnobs) * self.df_model

    @cached_property
    def entropy(self):
        """Entropy of the posterior, ``-sum_i w_i sum_k tau_ik log tau_ik``."""
        tau = self._run.posterior
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(tau > 0, tau * np.log(tau), 0.0)
        return float(-np.dot(self.model.data.weights, terms.sum(axis=1)))

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
        """Posterior probability of each component for each row."""
        return pd.DataFrame(self._run.posterior, index=self.model.row_index,
                            columns=self.component_names)

    @cached_property
    def _component_mean(self):
        eta = _em.linear_predictor(self.model.data, self.estimates.coef)
        return self.family.mean(eta)

    @cached_property
    def fittedvalues(self):
        """Mixture mean ``sum_k pi_k mu_ik`` of each row (a probability for
        the binomial family)."""
        return pd.Series(self._component_mean @ self.estimates.prior,
                         index=self.model.row_index, name="fittedvalues")

    def predict(self, data=None, type="mean", *, offset=None, exposure=None):
        """Predictions for the training data or new data.

        Parameters
        ----------
        data : DataFrame or array_like, optional
            New data (a DataFrame for a formula fit, an exog array for an
            array fit). Its categorical levels must be the training ones.
        type : {"mean", "component", "linear"}
            The mixture mean ``sum_k pi_k mu_k`` (a Series), each
            component's mean (a DataFrame), or each component's linear
            predictor (a DataFrame).
        offset, exposure : array_like or str, optional
            For new data, when the fit had them as arrays. Columns named in
            the fit are taken from ``data`` automatically.

        Returns
        -------
        Series or DataFrame

        Examples
        --------
        >>> res.predict(new_df, type="component")  # doctest: +SKIP
        """
        if type not in ("mean", "component", "linear"):
            raise ValueError(f"type must be 'mean', 'component' or 'linear', got {type!r}")
        if data is None:
            if offset is not None or exposure is not None:
                raise ValueError("offset and exposure are only for new data")
            eta = _em.linear_predictor(self.model.data, self.estimates.coef)
            index = self.model.row_index
        else:
            exog, total_offset, index = self._new_arrays(data, offset, exposure)
            eta = exog @ self.estimates.coef + total_offset[:, None]
        if type == "linear":
            return pd.DataFrame(eta, index=index, columns=self.component_names)
        mu = self.family.mean(eta)
        if type == "component":
            return pd.DataFrame(mu, index=index, columns=self.component_names)
        return pd.Series(mu @ self.estimates.prior, index=index, name="predicted")

    def _new_arrays(self, data, offset, exposure):
        model = self.model
        if model.design is None:
            exog = np.asarray(data, dtype=float)
            if exog.ndim == 1:
                exog = exog[:, None]
            if exog.shape[1] != model.data.n_coef:
                raise ValueError(f"new exog has {exog.shape[1]} columns, the model "
                                 f"{model.data.n_coef}")
            frame, index = None, pd.RangeIndex(exog.shape[0])
        else:
            design = model.design
            exog = new_design_matrix(design.model_spec, data, getattr(model, "context", None))
            frame, index = data.reset_index(drop=True), data.index
            offset = design.column_args.get("offset") if offset is None else offset
            exposure = design.column_args.get("exposure") if exposure is None else exposure
        n = exog.shape[0]
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
        return exog, total, index

    # ---------------------------------------------------------- inference
    @cached_property
    def _information(self):
        return louis_information(self.model.data, self.estimates, self._run.posterior,
                                 self._component_mean)

    def information(self):
        """Observed information of the mixture log-likelihood (Louis' method)
        over the free parameters, as a DataFrame."""
        return pd.DataFrame(self._information, index=self.param_names,
                            columns=self.param_names)

    @cached_property
    def param_names(self):
        """Labels of the free parameters, in the order of ``cov_params``."""
        K, names = self.n_components, self.model.exog_names
        coef_index, scale_index, alpha_index, size = parameter_layout(
            len(names), K, self.family.estimates_scale)
        labels = [""] * size
        for k in range(K):
            for j, pos in enumerate(coef_index[k]):
                labels[pos] = f"comp{k + 1}:{names[j]}"
            if scale_index[k] is not None:
                labels[scale_index[k]] = f"comp{k + 1}:log(scale)"
        for a, pos in enumerate(alpha_index):
            labels[pos] = f"alpha:comp{a + 2}"
        return labels

    @cached_property
    def _covariance(self):
        cov, unidentified, not_positive = invert_information(self._information)
        if unidentified.size:
            names = [self.param_names[i] for i in unidentified]
            warnings.warn(
                "the observed information is singular: "
                f"{', '.join(names)} cannot be estimated (standard errors set to NaN); "
                "a component may have collapsed or a parameter is not identified",
                EstimationWarning, stacklevel=3)
        elif not_positive:
            warnings.warn("the observed information is not positive definite: the "
                          "estimate may be a saddle point", EstimationWarning, stacklevel=3)
        return cov

    def cov_params(self):
        """Covariance matrix of the free parameters (inverse observed information)."""
        return pd.DataFrame(self._covariance, index=self.param_names,
                            columns=self.param_names)

    @cached_property
    def _theta(self):
        """The free parameters as one vector (the order of ``param_names``)."""
        return pack_theta(self.estimates, self.family.estimates_scale)

    @cached_property
    def bse(self):
        """Standard errors of the coefficients, shaped like ``params``."""
        se = np.sqrt(np.diag(self._covariance))
        coef_index, _, _, _ = parameter_layout(
            self.model.data.n_coef, self.n_components, self.family.estimates_scale)
        return self._frame(np.column_stack([se[idx] for idx in coef_index]))

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
        """Standard errors of the mixing proportions (delta method)."""
        K = self.n_components
        if K == 1:
            return pd.Series([0.0], index=self.component_names, name="prior_bse")
        _, _, alpha_index, _ = parameter_layout(
            self.model.data.n_coef, K, self.family.estimates_scale)
        jac = prior_delta_jacobian(self.estimates.prior)
        cov = self._covariance[np.ix_(alpha_index, alpha_index)]
        return pd.Series(np.sqrt(np.diag(jac @ cov @ jac.T)), index=self.component_names,
                         name="prior_bse")

    @cached_property
    def scale_bse(self):
        """Standard errors of the dispersions (delta method from log scale);
        NaN where the dispersion is fixed."""
        _, scale_index, _, _ = parameter_layout(
            self.model.data.n_coef, self.n_components, self.family.estimates_scale)
        values = [self.estimates.scale[k] * np.sqrt(self._covariance[i, i])
                  if i is not None else np.nan for k, i in enumerate(scale_index)]
        return pd.Series(values, index=self.component_names, name="scale_bse")

    # -------------------------------------------------------- diagnostics
    def residuals(self, type="deviance", component=None, random_state=None):
        """Residuals of the fit; see :func:`emformula.residuals.residuals`."""
        from .residuals import residuals
        return residuals(self, type=type, component=component, random_state=random_state)

    def plot_params(self, known=None, alpha=0.05, ax=None, match=True):
        """Estimates with confidence intervals, against known values if given;
        see :func:`emformula.plotting.plot_params`."""
        from .plotting import plot_params
        return plot_params(self, known=known, alpha=alpha, ax=ax, match=match)

    def plot_diagnostics(self, type="deviance", random_state=None):
        """Residual panels as R's plot of a glm; see
        :func:`emformula.plotting.plot_diagnostics`."""
        from .plotting import plot_diagnostics
        return plot_diagnostics(self, type=type, random_state=random_state)

    def plot_qq(self, type="quantile", ax=None, random_state=None):
        """Normal QQ plot of residuals; see :func:`emformula.plotting.plot_qq`."""
        from .plotting import plot_qq
        return plot_qq(self, type=type, ax=ax, random_state=random_state)

    def plot_posterior(self, bins=20):
        """Histogram of the posterior probabilities per component (as flexmix's
        rootogram); see :func:`emformula.plotting.plot_posterior`."""
        from .plotting import plot_posterior
        return plot_posterior(self, bins=bins)

    # ----------------------------------------------------------- display
    def summary(self, alpha=0.05):
        """A statsmodels ``Summary``: header, one coefficient table per
        component, and the mixing proportions and dispersions."""
        from .summary import summarize
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
                "problems": self.problems}

    def __setstate__(self, state):
        self.__dict__.update(state)
