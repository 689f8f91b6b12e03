"""What the delta-method postestimation modules share: the rows, theta, gradients.

Tests, predictions, margins and class summaries all evaluate a function of
the free parameters ``theta`` (the order of ``res.param_names``) on some
rows and need its gradient in ``theta`` for a standard error,
``se = sqrt(g' V g)`` with ``V = res.cov_params()``. This module holds the
pieces they have in common, written against the results' public attributes
only (``theta``, ``cov_params()``, ``layout``, ``family``, ``model``), so that
this layer never imports the results or model modules (see
docs/architecture.md).

Notation: row ``i`` has the component design ``x_i`` (``exog``), the shared
design ``z_i`` (``fixed=``), the offset ``o_i`` and the concomitant design
``w_i`` (a constant 1 for constant mixing proportions); component ``k`` has
the linear predictor ``eta_ik = x_i' b_k + z_i' c + o_i``, the mean
``mu_ik = h(eta_ik)`` (``h`` the inverse link) and the proportion
``pi_ik = exp(w_i' g_k) / sum_l exp(w_i' g_l)`` with ``g_1 = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "Rows",
    "MixtureParameters",
    "rows_of",
    "parameters_of",
    "quadratic_se",
    "eta_gradient",
    "prior_gradient",
    "central_jacobian",
    "normal_quantile",
    "interval_on_link",
    "link_interval",
    "covariance",
]


@dataclass(frozen=True)
class Rows:
    """The arrays of the rows a quantity is evaluated on.

    ``exog`` (n, p), ``fixed`` (n, r) or None, ``offset`` (n,),
    ``concomitant`` (n, q) or None, ``weights`` (n,) frequency weights (ones
    for new data), ``index`` the labels of the rows.
    """

    exog: np.ndarray
    fixed: np.ndarray | None
    offset: np.ndarray
    concomitant: np.ndarray | None
    weights: np.ndarray
    index: pd.Index

    @property
    def nobs(self):
        return self.exog.shape[0]

    @property
    def mixing_design(self):
        """``w_i``: the concomitant design, or a column of ones."""
        if self.concomitant is None:
            return np.ones((self.nobs, 1))
        return self.concomitant

    @property
    def design(self):
        """``[x_i, z_i]``: every column of a component's linear predictor."""
        if self.fixed is None:
            return self.exog
        return np.hstack([self.exog, self.fixed])

    def replace(self, **arrays):
        values = {
            name: getattr(self, name)
            for name in ("exog", "fixed", "offset", "concomitant", "weights", "index")
        }
        values.update(arrays)
        return Rows(**values)


def rows_of(res, exog=None, offset=None, exposure=None):
    """The fit's rows (``exog=None``) or those of new data.

    New data go through the results' own construction of the design for
    ``predict`` (``res._new_arrays``), so that a formula's transforms,
    factor levels, offsets and exposures are rebuilt exactly as
    ``res.predict`` rebuilds them.
    """
    if exog is None:
        if offset is not None or exposure is not None:
            raise ValueError("offset and exposure are only for new data")
        data = res.model.data
        index = res.model.row_index
        weights = np.asarray(data.weights, dtype=float)
    else:
        new = res._new_arrays(exog, offset, exposure)
        data, index = new["data"], new["index"]
        weights = np.ones(data.nobs)
    fixed = data.fixed if res.layout.n_fixed else None
    concomitant = data.concomitant if res.layout.has_concomitant else None
    return Rows(
        np.asarray(data.exog, dtype=float),
        fixed,
        np.asarray(data.offset, dtype=float),
        concomitant,
        weights,
        pd.Index(index),
    )


@dataclass(frozen=True)
class MixtureParameters:
    """The parameters of a mixture as the formulas above use them.

    ``coef`` (p, K); ``fixed`` (r,); ``mixing`` (q, K) with the reference
    column 0 (``q = 1`` and a row of log-odds for constant proportions).
    """

    coef: np.ndarray
    fixed: np.ndarray
    mixing: np.ndarray

    def eta(self, rows):
        eta = rows.exog @ self.coef + rows.offset[:, None]
        if rows.fixed is not None and self.fixed.size:
            eta += (rows.fixed @ self.fixed)[:, None]
        return eta

    def prior(self, rows):
        logits = rows.mixing_design @ self.mixing
        logits = logits - logits.max(axis=1, keepdims=True)
        expo = np.exp(logits)
        return expo / expo.sum(axis=1, keepdims=True)


def parameters_of(res, theta=None):
    """:class:`MixtureParameters` at ``theta`` (default the estimates).

    Read from the positions of ``res.layout``, so that a perturbed theta
    (finite differences) gives the parameters it stands for.
    """
    lay = res.layout
    theta = np.asarray(res.theta if theta is None else theta, dtype=float)
    # A component without coefficients (a point mass) has a zero column.
    coef = np.column_stack(
        [theta[idx] if idx.size else np.zeros(lay.n_coef) for idx in lay.coef_index]
    )
    fixed = theta[lay.fixed_index]
    width = lay.n_concomitant if lay.has_concomitant else 1
    mixing = np.zeros((width, lay.n_components))
    for k in range(1, lay.n_components):
        mixing[:, k] = theta[lay.gamma_index(k)]
    return MixtureParameters(coef, fixed, mixing)


def covariance(res):
    """``cov_params()`` as an array in the order of ``theta``."""
    cov = res.cov_params()
    return cov.loc[list(res.param_names), list(res.param_names)].to_numpy(dtype=float)


def check_delta_family(res, what):
    """Refuse, by name, a fit whose component means the delta method here
    cannot differentiate: a latent mean (censored, ordinal responses) or
    components with different links."""
    family = res.family
    if not family.mean_is_response:
        raise NotImplementedError(
            f"{what} differentiates the mean E(y) through the link; "
            f"for the {family.name} family the linear predictor is a "
            "latent location: use predict() for E(y)"
        )
    links = {
        type(family.member(k).link).__name__
        for k in range(res.n_components)
        if family.has_coefficients_of(k)
    }
    if len(links) > 1:
        raise NotImplementedError(
            f"{what} needs one link in all components; {family.name} has {', '.join(sorted(links))}"
        )


def quadratic_se(gradient, cov):
    """Row-wise ``sqrt(g_i' V g_i)`` of a gradient ``(n, P)`` (never ``n x n``)."""
    gradient = np.atleast_2d(gradient)
    variance = np.einsum("ij,ij->i", gradient @ cov, gradient)
    return np.sqrt(np.maximum(variance, 0.0))


def eta_gradient(res, rows, k):
    """``d eta_ik / d theta``, ``(n, P)``: ``x_i`` at component ``k``'s
    coefficients, ``z_i`` at the shared ones."""
    lay = res.layout
    grad = np.zeros((rows.nobs, lay.size))
    if lay.coef_index[k].size:  # none for a point mass: its mean is fixed
        grad[:, lay.coef_index[k]] = rows.exog
    if rows.fixed is not None:
        grad[:, lay.fixed_index] = rows.fixed
    return grad


def prior_gradient(res, rows, prior, k):
    """``d pi_ik / d theta``, ``(n, P)``: ``pi_ik (1[k = l] - pi_il) w_i`` at
    the mixing parameters of each component ``l >= 2`` (the softmax's
    derivative; the reference component has no parameters)."""
    lay = res.layout
    grad = np.zeros((rows.nobs, lay.size))
    w = rows.mixing_design
    for l in range(1, lay.n_components):
        factor = prior[:, k] * ((1.0 if l == k else 0.0) - prior[:, l])
        grad[:, lay.gamma_index(l)] = factor[:, None] * w
    return grad


def central_jacobian(func, theta, relative_step=None):
    """Jacobian of a vector function of theta by central differences.

    The step of parameter ``j`` is ``eps^(1/3) max(|theta_j|, 1)``, the
    step that balances truncation (``O(h^2)``) and rounding (``O(eps/h)``)
    errors, so the derivatives are good to about ``eps^(2/3)`` (1e-10
    relative) for the smooth functions of theta used here.
    """
    theta = np.asarray(theta, dtype=float)
    step = np.finfo(float).eps ** (1.0 / 3.0) if relative_step is None else relative_step
    base = np.asarray(func(theta), dtype=float)
    jac = np.empty(base.shape + theta.shape)
    for j in range(theta.size):
        h = step * max(abs(theta[j]), 1.0)
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        jac[..., j] = (np.asarray(func(up)) - np.asarray(func(down))) / (2.0 * h)
    return jac


def normal_quantile(alpha):
    """``z_{1 - alpha/2}``, with the check that ``alpha`` is a level."""
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    return stats.norm.ppf(1.0 - float(alpha) / 2.0)


def interval_on_link(value, se, link, alpha):
    """A Wald interval formed on the scale ``link(value)`` and mapped back.

    ``se`` is the standard error of ``value`` itself; on the link scale it
    is ``|link'(value)| se`` (the delta method). The interval maps back
    inside the range of the link's inverse (positive means, probabilities
    in (0, 1)), as statsmodels' GLM ``get_prediction`` forms its intervals;
    a decreasing link (the inverse power) gives the bounds in order.
    """
    value = np.asarray(value, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return link_interval(
            link(value), np.abs(link.deriv(value)) * np.asarray(se, float), link, alpha
        )


def link_interval(center, se_center, link, alpha):
    """``link.inverse(center -+ z se_center)``: a Wald interval on the link
    scale mapped back, the bounds in order whatever the link's direction."""
    half = normal_quantile(alpha) * np.asarray(se_center, dtype=float)
    center = np.asarray(center, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        ends = np.stack([link.inverse(center - half), link.inverse(center + half)])
    return np.min(ends, axis=0), np.max(ends, axis=0)
