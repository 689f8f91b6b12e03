"""Predictions with standard errors and confidence intervals (``get_prediction``).

``res.predict`` gives point predictions; a report also needs how precise
they are. :func:`get_prediction` adds delta-method standard errors from
``res.cov_params()`` and Wald intervals formed where a normal approximation
is reasonable, on the scale of the link, and mapped back to the mean's
scale, as statsmodels' ``GLMResults.get_prediction`` does. With one
component every number equals statsmodels' (tests/test_prediction.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.genmod.families import links

from ._delta import (
    check_delta_family,
    covariance,
    eta_gradient,
    link_interval,
    parameters_of,
    prior_gradient,
    quadratic_se,
    rows_of,
)

__all__ = ["get_prediction", "MixturePrediction", "PREDICTION_TYPES"]

#: The quantities :func:`get_prediction` predicts.
PREDICTION_TYPES = ("mean", "component", "prior")

_FRAME_COLUMNS = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]


class MixturePrediction:
    """Predictions of a mixture with their standard errors.

    Made by :func:`get_prediction`. The interval of each prediction is
    formed on a scale where its estimator is close to normal (the link
    scale of the family for means, the logit scale for proportions) and
    mapped back, so that it stays in the range of the quantity (a positive
    mean, a probability in (0, 1)) and is as statsmodels' for one component.

    Attributes
    ----------
    predicted : Series or DataFrame
        The mixture mean (a Series), or one column per component.
    se : Series or DataFrame
        Delta-method standard errors on the scale of ``predicted``.
    type : str
        ``"mean"``, ``"component"`` or ``"prior"``.
    predicted_mean, se_mean
        statsmodels' names for ``predicted`` and ``se``.
    """

    def __init__(self, predicted, se, center, se_center, link, type, alpha=0.05, exact=None):
        self.predicted = predicted
        # Columns known without error (a point mass's mean): their interval
        # is the value itself.
        self._exact = None if exact is None or not np.any(exact) else np.asarray(exact)
        self.se = se
        self.type = type
        self.alpha = alpha
        # Where the intervals are formed: the link (or logit) scale.
        self._center = np.asarray(center, dtype=float)
        self._se_center = np.asarray(se_center, dtype=float)
        self._link = link

    @property
    def predicted_mean(self):
        return self.predicted

    @property
    def se_mean(self):
        return self.se

    def _bounds(self, alpha):
        lower, upper = link_interval(
            self._center, self._se_center, self._link, self.alpha if alpha is None else alpha
        )
        if self._exact is not None:
            values = np.asarray(self.predicted, dtype=float)
            lower = np.where(self._exact, values, lower)
            upper = np.where(self._exact, values, upper)
        return lower, upper

    def conf_int(self, alpha=None):
        """Confidence intervals of the predictions.

        Parameters
        ----------
        alpha : float, optional
            ``1 - alpha`` intervals; default the ``alpha`` of
            :func:`get_prediction`.

        Returns
        -------
        DataFrame
            Columns ``lower``, ``upper`` for the mixture mean; a MultiIndex
            (component, ``lower``/``upper``) for components and proportions,
            as ``res.conf_int()``.
        """
        lower, upper = self._bounds(alpha)
        index = self.predicted.index
        if isinstance(self.predicted, pd.Series):
            return pd.DataFrame({"lower": lower, "upper": upper}, index=index)
        names = list(self.predicted.columns)
        columns = pd.MultiIndex.from_product([names, ["lower", "upper"]])
        values = np.empty((len(index), 2 * len(names)))
        values[:, 0::2], values[:, 1::2] = lower, upper
        return pd.DataFrame(values, index=index, columns=columns)

    def summary_frame(self, alpha=None):
        """The predictions as statsmodels' ``summary_frame``.

        Returns
        -------
        DataFrame
            Columns ``mean``, ``mean_se``, ``mean_ci_lower``,
            ``mean_ci_upper`` for the mixture mean; for components and
            proportions the same frame for each component under a first
            column level (``frame["comp1"]``).

        Examples
        --------
        >>> pred = get_prediction(res, new_df, type="component")  # doctest: +SKIP
        >>> pred.summary_frame()["comp2"]                          # doctest: +SKIP
        """
        lower, upper = self._bounds(alpha)
        index = self.predicted.index
        if isinstance(self.predicted, pd.Series):
            values = [self.predicted.to_numpy(), self.se.to_numpy(), lower, upper]
            return pd.DataFrame(dict(zip(_FRAME_COLUMNS, values)), index=index)
        frames = {}
        for k, name in enumerate(self.predicted.columns):
            values = [
                self.predicted[name].to_numpy(),
                self.se[name].to_numpy(),
                lower[:, k],
                upper[:, k],
            ]
            frames[name] = pd.DataFrame(dict(zip(_FRAME_COLUMNS, values)), index=index)
        return pd.concat(frames, axis=1)

    def __repr__(self):
        return f"<MixturePrediction: type={self.type!r}, {len(self.predicted)} rows>"


def get_prediction(res, exog=None, type="mean", alpha=0.05, *, offset=None, exposure=None):
    """Predictions with delta-method standard errors and confidence intervals.

    Parameters
    ----------
    res : EMGLMResults
        A fit in memory.
    exog : DataFrame, array_like or dict, optional
        New data, as :meth:`EMGLMResults.predict` takes them (a DataFrame
        for a formula fit: its transforms and factor levels are rebuilt as
        for the fit); default the rows of the fit.
    type : {"mean", "component", "prior"}
        ``"mean"``: the mixture mean ``m_i = sum_k pi_ik mu_ik``;
        ``"component"``: each component's mean ``mu_ik``; ``"prior"``: each
        row's mixing proportions ``pi_ik`` (from the concomitant model, or
        the constant proportions).
    alpha : float, default 0.05
        Default level of the intervals of the result.
    offset, exposure : array_like or str, optional
        For new data, when the fit had them as arrays.

    Returns
    -------
    MixturePrediction
        ``predicted``, ``se``, ``conf_int()`` and ``summary_frame()``.

    Notes
    -----
    Standard errors are ``sqrt(g' V g)`` with ``V = res.cov_params()`` (the
    fit's covariance type) and ``g`` the analytic gradient of the predicted
    quantity in the free parameters ``theta``.

    Intervals are Wald intervals on a scale where the estimator is close to
    normal, mapped back:

    * a component's mean: on its linear predictor,
      ``h(eta_ik -+ z se(eta_ik))``, as statsmodels' GLM;
    * a proportion: on the logit scale, ``logit(pi_ik) -+ z se(pi_ik) /
      (pi_ik (1 - pi_ik))``, so it stays in (0, 1);
    * the mixture mean: on the scale of the family's link,
      ``g(m_i) -+ z g'(m_i) se(m_i)``. The mixture mean is not the inverse
      link of any linear predictor, but ``g`` is the transformation that
      maps the mean's range (positive counts, probabilities) onto the real
      line, so the interval keeps to that range; with one component
      ``g(m_i) = eta_i`` and the interval is statsmodels'.

    Examples
    --------
    >>> pred = get_prediction(res, new_df)                     # doctest: +SKIP
    >>> pred.summary_frame(alpha=0.1)                          # doctest: +SKIP
    >>> get_prediction(res, new_df, type="prior").conf_int()   # doctest: +SKIP
    """
    if type not in PREDICTION_TYPES:
        raise ValueError(
            f"type must be one of {', '.join(map(repr, PREDICTION_TYPES))}, got {type!r}"
        )
    rows = rows_of(res, exog, offset, exposure)
    par = parameters_of(res)
    cov = covariance(res)
    family = res.family
    link = family.link
    names = list(res.component_names)
    if type != "prior":
        check_delta_family(res, "get_prediction")
    exact = [not family.has_coefficients_of(k) for k in range(res.n_components)]
    K = len(names)
    eta = par.eta(rows)
    prior = par.prior(rows)
    mu = family.mean(eta)
    slope = link.inverse_deriv(eta)

    def frame(values):
        return pd.DataFrame(values, index=rows.index, columns=names)

    if type == "component":
        se_eta = np.column_stack([quadratic_se(eta_gradient(res, rows, k), cov) for k in range(K)])
        return MixturePrediction(
            frame(mu),
            frame(np.where(exact, 0.0, np.abs(slope) * se_eta)),
            eta,
            se_eta,
            link,
            type,
            alpha,
            exact=exact,
        )
    if type == "prior":
        se = np.column_stack(
            [quadratic_se(prior_gradient(res, rows, prior, k), cov) for k in range(K)]
        )
        logit = links.Logit()
        with np.errstate(divide="ignore", invalid="ignore"):
            center = logit(prior)
            # A proportion known exactly (one component) has no uncertainty.
            se_center = np.where(se > 0, se * np.abs(logit.deriv(prior)), 0.0)
        return MixturePrediction(frame(prior), frame(se), center, se_center, logit, type, alpha)
    mean = np.sum(prior * mu, axis=1)
    gradient = np.zeros((rows.nobs, res.layout.size))
    for k in range(K):
        if not exact[k]:
            gradient += (prior[:, k] * slope[:, k])[:, None] * eta_gradient(res, rows, k)
        if K > 1:
            gradient += mu[:, [k]] * prior_gradient(res, rows, prior, k)
    se = quadratic_se(gradient, cov)
    with np.errstate(divide="ignore", invalid="ignore"):
        center = link(mean)
        se_center = np.abs(link.deriv(mean)) * se
    return MixturePrediction(
        pd.Series(mean, index=rows.index, name="predicted"),
        pd.Series(se, index=rows.index, name="se"),
        center,
        se_center,
        link,
        type,
        alpha,
    )
