"""Observed information, scores and covariance of the mixture log-likelihood.

For independent units (rows, or whole groups of rows with ``groups=``) with
a discrete latent component (Louis 1982, JRSS B 44:226-233;
``shared/notes/louis.md`` writes it out for this model)

    I_obs = sum_u v_u [ E(B_cu | y_u) - Cov(S_cu | y_u) ],

with ``S_c`` and ``B_c`` the complete-data score and negative Hessian of a
unit and ``v_u`` its frequency weight. This is exactly minus the Hessian of
the observed log-likelihood. The free parameters are, in this order,

    theta = (b_1, [log phi_1], ..., b_K, [log phi_K],      component-specific
             c, [log phi],                                  shared (fixed=, equal_scale=)
             alpha_2, ..., alpha_K  or  gamma_2, ..., gamma_K)   mixing proportions

``b_k`` are component ``k``'s coefficients and ``phi_k`` its dispersion
(only for families that estimate one); ``c`` are the coefficients shared by
every component and ``phi`` the one common dispersion of ``equal_scale``
(which then replaces the per-component ones). Constant mixing proportions
are ``pi_k = softmax(alpha)_k`` with ``alpha_1 = 0``; a concomitant model has
per-unit proportions ``pi_uk = softmax(W_u Gamma)_k`` with a coefficient
vector ``gamma_k`` (one entry per column of the concomitant design ``W``)
for each ``k >= 2`` and ``gamma_1 = 0``: component 1 is the reference, as
in flexmix's ``FLXPmultinom``. Without any of these features the vector is
the original ``(b_1, [log phi_1], ..., alpha_K)``.

Every block is a sandwich product over the rows or units: no ``n x n`` and
no ``n x P x P`` array is formed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ParameterLayout", "louis_information", "observed_score", "unit_scores",
           "sandwich_covariance", "parameter_layout", "pack_theta", "unpack_theta",
           "invert_information", "equilibration", "prior_delta_jacobian", "mean_prior_jacobian",
           "log_softmax", "mean_prior", "unit_prior"]


# ------------------------------------------------------------ the layout
@dataclass(frozen=True)
class ParameterLayout:
    """Where each block of the free parameters sits in theta.

    Parameters
    ----------
    n_coef : int
        Component-specific coefficients per component (``p``).
    n_components : int
    estimates_scale : bool
        Whether the family has a dispersion.
    n_fixed : int, default 0
        Coefficients shared by all components (``r``).
    equal_scale : bool, default False
        One dispersion for all components (only with ``estimates_scale``).
    n_concomitant : int, default 0
        Columns of the concomitant design (``q``); 0 for constant mixing
        proportions.

    Attributes
    ----------
    coef_index : list of ndarray
        For each component, the positions of its coefficients.
    scale_index : list of int or None
        For each component, the position of its log-dispersion (the same
        position for every component with ``equal_scale``).
    fixed_index : ndarray
        Positions of the shared coefficients.
    prior_index : ndarray
        Positions of the mixing parameters: ``alpha_2 .. alpha_K``, or
        ``gamma_2`` (q entries) ... ``gamma_K``.
    size : int
        Number of free parameters.

    Examples
    --------
    >>> lay = ParameterLayout(2, 2, True, n_fixed=1, equal_scale=True, n_concomitant=2)
    >>> lay.coef_index[1].tolist(), lay.fixed_index.tolist(), lay.scale_index
    ([2, 3], [4], [5, 5])
    >>> lay.prior_index.tolist(), lay.size
    ([6, 7], 8)
    """

    n_coef: int
    n_components: int
    estimates_scale: bool
    n_fixed: int = 0
    equal_scale: bool = False
    n_concomitant: int = 0
    coef_index: list = field(init=False, repr=False, compare=False)
    scale_index: list = field(init=False, repr=False, compare=False)
    fixed_index: np.ndarray = field(init=False, repr=False, compare=False)
    prior_index: np.ndarray = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        K, p = self.n_components, self.n_coef
        own_scale = self.estimates_scale and not self.equal_scale
        coef_index, scale_index = [], []
        pos = 0
        for _ in range(K):
            coef_index.append(np.arange(pos, pos + p))
            pos += p
            if own_scale:
                scale_index.append(pos)
                pos += 1
            else:
                scale_index.append(None)
        fixed_index = np.arange(pos, pos + self.n_fixed)
        pos += self.n_fixed
        if self.estimates_scale and self.equal_scale:
            scale_index = [pos] * K
            pos += 1
        n_prior = (K - 1) * (self.n_concomitant if self.n_concomitant else 1)
        prior_index = np.arange(pos, pos + n_prior)
        pos += n_prior
        for name, value in (("coef_index", coef_index), ("scale_index", scale_index),
                            ("fixed_index", fixed_index), ("prior_index", prior_index),
                            ("size", pos)):
            object.__setattr__(self, name, value)

    @classmethod
    def for_data(cls, data, n_components):
        """The layout of a fit of :class:`~emformula._em.EMData` with K components."""
        return cls(data.n_coef, n_components, data.family.estimates_scale,
                   n_fixed=data.n_fixed, equal_scale=data.equal_scale,
                   n_concomitant=data.n_concomitant)

    @property
    def has_concomitant(self):
        return self.n_concomitant > 0

    def eta_index(self, k):
        """Positions of every coefficient in component ``k``'s linear predictor
        (its own, then the shared ones): the columns of ``[X, Z]``."""
        return np.concatenate([self.coef_index[k], self.fixed_index])

    def gamma_index(self, k):
        """Positions of the mixing parameters of component ``k >= 1`` (0-based):
        ``alpha_k`` (one position) or ``gamma_k`` (``q`` positions)."""
        width = self.n_concomitant if self.n_concomitant else 1
        start = self.prior_index[0] + (k - 1) * width if self.prior_index.size else 0
        return np.arange(start, start + width)

    def pack(self, est):
        """The free parameters of ``est`` as one vector (the order above)."""
        theta = np.empty(self.size)
        for k in range(self.n_components):
            theta[self.coef_index[k]] = est.coef[:, k]
            if self.scale_index[k] is not None:
                theta[self.scale_index[k]] = np.log(est.scale[k])
        if self.n_fixed:
            theta[self.fixed_index] = est.fixed_coef
        if self.has_concomitant:
            gamma = np.asarray(est.gamma)
            # Re-based on component 1 in case the caller's gamma is not.
            theta[self.prior_index] = (gamma[:, 1:] - gamma[:, :1]).T.ravel()
        else:
            with np.errstate(divide="ignore"):
                theta[self.prior_index] = np.log(est.prior[1:]) - np.log(est.prior[0])
        return theta

    @np.errstate(over="ignore")  # an extrapolated log-scale may overflow: callers reject it
    def unpack(self, theta, data=None):
        """Estimates from a parameter vector.

        ``data`` (the fit's :class:`~emformula._em.EMData`) is needed for a
        concomitant model: the reported ``prior`` of its estimates is the
        weighted mean over units of the per-unit mixing proportions.
        """
        from ._em import Estimates  # the engine's container; no import cycle at load

        K = self.n_components
        coef = np.column_stack([theta[idx] for idx in self.coef_index])
        scale = np.array([np.exp(theta[i]) if i is not None else 1.0
                          for i in self.scale_index])
        fixed = theta[self.fixed_index].copy() if self.n_fixed else None
        if self.has_concomitant:
            if data is None:
                raise ValueError("unpacking a concomitant model needs the data")
            gamma = np.zeros((self.n_concomitant, K))
            gamma[:, 1:] = theta[self.prior_index].reshape(K - 1, self.n_concomitant).T
            return Estimates(coef, scale, mean_prior(data, gamma), gamma, fixed)
        logits = np.concatenate([[0.0], theta[self.prior_index]])
        prior = np.exp(logits - logits.max())
        return Estimates(coef, scale, prior / prior.sum(), None, fixed)


def parameter_layout(n_coef, n_components, estimates_scale, *, n_fixed=0, equal_scale=False,
                     n_concomitant=0):
    """Positions of each block of theta, as a tuple.

    Returns
    -------
    coef_index, scale_index, alpha_index, size
        See :class:`ParameterLayout` (``alpha_index`` is its ``prior_index``:
        the mixing parameters, concomitant coefficients included); its
        ``fixed_index`` is not in the tuple.
    """
    lay = ParameterLayout(n_coef, n_components, estimates_scale, n_fixed=n_fixed,
                          equal_scale=equal_scale, n_concomitant=n_concomitant)
    return lay.coef_index, lay.scale_index, lay.prior_index, lay.size


def _default_layout(est, estimates_scale):
    n_fixed = 0 if est.fixed_coef is None else len(est.fixed_coef)
    n_conc = 0 if est.gamma is None else est.gamma.shape[0]
    return ParameterLayout(est.coef.shape[0], est.n_components, estimates_scale,
                           n_fixed=n_fixed, n_concomitant=n_conc)


def pack_theta(est, estimates_scale, layout=None):
    """The free parameters of ``est`` as one vector.

    ``layout`` (a :class:`ParameterLayout`) is required with ``equal_scale``;
    otherwise it is inferred from ``est``.
    """
    return (layout or _default_layout(est, estimates_scale)).pack(est)


def unpack_theta(theta, n_coef, n_components, estimates_scale, layout=None, data=None):
    """Coefficients, dispersions and priors from a parameter vector (the
    inverse of :func:`pack_theta`; ``data`` for a concomitant model)."""
    if layout is None:
        layout = ParameterLayout(n_coef, n_components, estimates_scale)
    return layout.unpack(theta, data)


# ----------------------------------------------------- mixing proportions
def log_softmax(logits):
    """Row-wise ``log softmax``: log mixing proportions from logits (n, K)."""
    # Column by column: numpy's reductions along a short last axis are
    # several times slower than K elementwise passes.
    top = logits[:, 0].copy()
    for k in range(1, logits.shape[1]):
        np.maximum(top, logits[:, k], out=top)
    shifted = logits - top[:, None]
    expo = np.exp(shifted)
    total = expo[:, 0].copy()
    for k in range(1, logits.shape[1]):
        total += expo[:, k]
    return shifted - np.log(total)[:, None]


def mean_prior(data, gamma):
    """Weighted mean over the units of the concomitant model's proportions:
    the single ``prior`` a concomitant fit reports (as flexmix's ``prior``)."""
    pi = np.exp(log_softmax(data.unit_concomitant @ gamma))
    v = data.unit_weights
    return (v @ pi) / v.sum()


def unit_prior(data, est):
    """Mixing proportions per unit, ``(n_units, K)``, or ``(1, K)`` when constant."""
    if est.gamma is None:
        return est.prior[None, :]
    return np.exp(log_softmax(data.unit_concomitant @ est.gamma))


# ------------------------------------------------------------ derivatives
def row_derivatives(data, est, mu, posterior):
    """Per row and component: score and information of eta and log(scale).

    Returns ``(score_eta, info_eta, score_logscale, info_logscale)``, each
    ``(K, n)``: component-major, so that the many per-component products of
    the information read contiguous rows. :func:`louis_information` and
    :func:`observed_score` take them as ``derivatives=`` so a caller that
    needs both (a Newton step) computes them once.

    Rows a component cannot explain (posterior exactly 0) contribute nothing
    to its blocks; their derivatives are set to 0 so that an overflow there
    (a mean at the edge of its range) cannot turn 0 * inf into NaN.
    """
    family = data.family
    y = data.endog[None, :]
    trials = data.trials[None, :]
    scale = est.scale[:, None]
    mu = np.ascontiguousarray(mu.T)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score_eta, info_eta, _, _ = family.eta_derivatives(y, mu, trials, observed=True)
        score_eta = score_eta / scale
        info_eta = info_eta / scale
        score_log, info_log = family.logscale_derivatives(y, mu, scale)
    absent = posterior.T <= 0
    values = (score_eta, info_eta, score_log, info_log)
    if not absent.any():
        return values
    return tuple(np.where(absent, 0.0, value) for value in values)


# Rows at the edge of a mean's range (a mean clipped to zero under an identity
# link) can make single terms infinite; the callers check the result for
# finiteness, so numpy's floating-point warnings are noise here.
@np.errstate(all="ignore")
def observed_score(data, est, posterior, mu, layout=None, derivatives=None):
    """Gradient of the mixture log-likelihood in theta (Fisher's identity:
    the posterior expectation of the complete-data score).

    ``derivatives``: :func:`row_derivatives` at the same point, if at hand.
    """
    K = est.n_components
    lay = layout or ParameterLayout.for_data(data, K)
    s, _, t, _ = derivatives or row_derivatives(data, est, mu, posterior)
    design = data.component_design
    weighted = data.weights[:, None] * posterior
    score = np.zeros(lay.size)
    for k in range(K):
        score[lay.eta_index(k)] += (weighted[:, k] * s[k]) @ design
        if lay.scale_index[k] is not None:
            score[lay.scale_index[k]] += np.dot(weighted[:, k], t[k])
    if K > 1:
        v = data.unit_weights
        tau = posterior[data.unit_rows] if data.unit_rows is not None else posterior
        if lay.has_concomitant:
            resid = v[:, None] * (tau - unit_prior(data, est))
            for k in range(1, K):
                score[lay.gamma_index(k)] = data.unit_concomitant.T @ resid[:, k]
        else:
            score[lay.prior_index] = (v[:, None] * tau)[:, 1:].sum(axis=0) - v.sum() * est.prior[1:]
    return score


def _local_scores(data, est, posterior, mu, lay, derivatives=None):
    """Each component's complete-data score per unit, on the parameters it touches.

    Returns ``(scores, tau, v)``: ``scores[k] = (L_k, pos_k)`` with ``L_k`` of
    shape ``(n_units, m_k)`` and ``pos_k`` the positions in theta of its
    columns: the eta scores ``s_ik [x_i, z_i]`` summed within units, the
    log-dispersion score, and for ``k >= 2`` the indicator of the mixing
    block (1, or ``W_u`` for a concomitant model; the ``-pi`` part is the
    same for every component and cancels in a covariance). ``tau`` and ``v``
    are the unit posteriors and weights.
    """
    s, _, t, _ = derivatives or row_derivatives(data, est, mu, posterior)
    design = data.component_design
    n_units = data.n_units
    scores = []
    for k in range(est.n_components):
        parts = [data.unit_sum(design * s[k][:, None])]
        positions = [lay.eta_index(k)]
        if lay.scale_index[k] is not None:
            parts.append(data.unit_sum(t[k])[:, None])
            positions.append([lay.scale_index[k]])
        if k >= 1:
            parts.append(data.unit_concomitant if lay.has_concomitant
                         else np.ones((n_units, 1)))
            positions.append(lay.gamma_index(k))
        scores.append((np.hstack(parts), np.concatenate(positions).astype(np.intp)))
    tau = posterior[data.unit_rows] if data.unit_rows is not None else posterior
    return scores, tau, data.unit_weights


@np.errstate(all="ignore")
def louis_information(data, est, posterior, mu, layout=None, derivatives=None):
    """Observed information matrix of the mixture log-likelihood.

    Parameters
    ----------
    data : EMData
    est : Estimates
    posterior : ndarray (n, K)
        Posterior probabilities at ``est`` (per row; with groups every row
        of a group carries the group's posterior).
    mu : ndarray (n, K)
        Component means at ``est``.
    layout : ParameterLayout, optional
        Default: the layout of ``data``.
    derivatives : tuple, optional
        :func:`row_derivatives` at the same point, if already computed.

    Returns
    -------
    ndarray (P, P)
        Minus the Hessian of ``sum_u v_u log f(y_u)`` in theta.

    Notes
    -----
    The complete-data part ``E(B_c | y)`` is accumulated per row (it is
    linear in the posterior); the missing-information part ``Cov(S_c | y)``
    needs the complete-data score of each *unit*, so with groups the row
    scores are summed within groups first. Its weights
    ``delta_kl tau_uk - tau_uk tau_ul`` are formed per unit, so a unit that
    belongs to one component for certain contributes exactly nothing.
    """
    lay = layout or ParameterLayout.for_data(data, est.n_components)
    if (data.groups is None and not lay.n_fixed and not lay.equal_scale
            and not lay.has_concomitant):
        return _louis_plain(data, est, posterior, mu, derivatives)
    return _louis_general(data, est, posterior, mu, lay, derivatives)


def _louis_general(data, est, posterior, mu, lay, derivatives=None):
    """:func:`louis_information` for any layout (shared effects, common
    dispersion, concomitant variables, groups)."""
    K = est.n_components
    design = data.component_design
    w = data.weights
    tau_rows = posterior
    derivatives = derivatives or row_derivatives(data, est, mu, tau_rows)
    s, h, t, r = derivatives
    info = np.zeros((lay.size, lay.size))

    # E(B_c | y): each component's complete-data information, posterior weighted.
    for k in range(K):
        cols = lay.eta_index(k)
        c = w * tau_rows[:, k]
        info[np.ix_(cols, cols)] += data.component_gram(c * h[k])
        l = lay.scale_index[k]
        if l is not None:
            # (eta, log phi): the complete-data cross term is the eta score itself.
            cross = (c * s[k]) @ design
            info[cols, l] += cross
            info[l, cols] += cross
            info[l, l] += np.dot(c, r[k])
    scores, tau, v = _local_scores(data, est, tau_rows, mu, lay, derivatives)
    if K > 1:
        # The mixing parameters: complete-data information (diag(pi) - pi pi')
        # per unit (times W_u W_u' for a concomitant model); no cross terms.
        if lay.has_concomitant:
            W = data.unit_concomitant
            pi = unit_prior(data, est)
            for k in range(1, K):
                for l in range(1, K):
                    delta = 1.0 if k == l else 0.0
                    c = v * (delta * pi[:, k] - pi[:, k] * pi[:, l])
                    info[np.ix_(lay.gamma_index(k), lay.gamma_index(l))] += W.T @ (c[:, None] * W)
        else:
            prior = est.prior
            complete = v.sum() * (np.diag(prior[1:]) - np.outer(prior[1:], prior[1:]))
            info[np.ix_(lay.prior_index, lay.prior_index)] += complete
    # - Cov(S_c | y) = - sum_u v_u sum_kl (delta_kl tau_uk - tau_uk tau_ul) S_uk S_ul',
    # block by block on the parameters each component touches.
    for k in range(K):
        L_k, pos_k = scores[k]
        for l in range(k, K):
            L_l, pos_l = scores[l]
            delta = 1.0 if k == l else 0.0
            cov_w = v * (delta * tau[:, k] - tau[:, k] * tau[:, l])
            block = L_k.T @ (cov_w[:, None] * L_l)
            info[np.ix_(pos_k, pos_l)] -= block
            if k != l:
                info[np.ix_(pos_l, pos_k)] -= block.T
    return 0.5 * (info + info.T)


def _louis_plain(data, est, posterior, mu, derivatives=None):
    """:func:`louis_information` of a model without shared effects, common
    dispersion, concomitant variables or groups: the row weights of each
    block are combined first, so every block is one weighted Gram product
    (:class:`~emformula._gram.WeightedGram`) or one ``c' X``."""
    family = data.family
    x = data.exog
    w = data.weights
    K = est.n_components
    coef_index, scale_index, alpha_index, size = parameter_layout(
        data.n_coef, K, family.estimates_scale)
    # Components as contiguous rows (K, n), as the derivatives come: the
    # many elementwise products below would otherwise read with a stride.
    s, h, t, r = derivatives or row_derivatives(data, est, mu, posterior)
    tau = np.ascontiguousarray(posterior.T)
    w_tau = w * tau
    info = np.zeros((size, size))

    def cov_weight(k, l):
        # w_i Cov(z_ik, z_il | y_i): the missing-information weights.
        cov_w = w_tau[k] * -tau[l]
        if k == l:
            cov_w += w_tau[k]
        return cov_w

    def set_cross(row, l, weight):
        # A cross term sum_i c_i x_i between an entry of theta and the
        # coefficients of component l.
        info[row, coef_index[l]] = info[coef_index[l], row] = weight @ x

    # Every block is formed as soon as its row weights are: no n x (number
    # of blocks) array, whose fresh pages would cost more than the products.
    for k in range(K):
        for l in range(k, K):
            cov_w = cov_weight(k, l)
            cov_s = cov_w * s[k]
            # E(B_c | y) enters the diagonal blocks only (expected = w tau_k there).
            bb = cov_s * -s[l]
            if k == l:
                bb += w_tau[k] * h[k]
            block = data.gram(bb)
            info[np.ix_(coef_index[k], coef_index[l])] = block
            info[np.ix_(coef_index[l], coef_index[k])] = block.T
            if family.estimates_scale:
                cov_t = cov_w * t[k]
                # (b_k, log phi_l): the complete-data cross term is s_k itself.
                c_bs = cov_s * -t[l]
                c_ss = cov_t * -t[l]
                if k == l:
                    c_bs += w_tau[k] * s[k]
                    c_ss += w_tau[k] * r[k]
                set_cross(scale_index[l], k, c_bs)
                if k != l:
                    set_cross(scale_index[k], l, cov_t * -s[l])
                info[scale_index[k], scale_index[l]] = info[scale_index[l], scale_index[k]] = \
                    c_ss.sum()
    # The mixing logits: complete-data information diag(pi) - pi pi' per row,
    # complete-data score e_k, so Cov(S_c) brings in the posterior covariance.
    prior = est.prior
    for a, k in enumerate(range(1, K)):
        for l in range(K):
            cov_w = cov_weight(k, l)
            set_cross(alpha_index[a], l, cov_w * -s[l])
            if family.estimates_scale:
                info[alpha_index[a], scale_index[l]] = info[scale_index[l], alpha_index[a]] = \
                    -np.dot(cov_w, t[l])
            if l >= 1:
                complete = w.sum() * ((prior[k] if k == l else 0.0) - prior[k] * prior[l])
                info[alpha_index[a], alpha_index[l - 1]] = complete - cov_w.sum()
    return info


@np.errstate(all="ignore")
def unit_scores(data, est, posterior, mu, layout=None):
    """Observed score of every unit (row, or group with ``groups=``).

    ``s_u = sum_k tau_uk S_uk - E_pi(S_u)``: the coefficient and dispersion
    parts are ``sum_k tau_uk u_uk``, the mixing parts ``tau_uk - pi_uk``
    (times ``W_u`` for a concomitant model). Not multiplied by the unit
    weights: ``observed_score = sum_u v_u s_u``.

    Returns
    -------
    ndarray (n_units, P)
    """
    K = est.n_components
    lay = layout or ParameterLayout.for_data(data, K)
    scores, tau, _ = _local_scores(data, est, posterior, mu, lay)
    out = np.zeros((tau.shape[0], lay.size))
    for k in range(K):
        L_k, pos_k = scores[k]
        out[:, pos_k] += tau[:, k:k + 1] * L_k
    if K > 1:
        pi = np.broadcast_to(unit_prior(data, est), tau.shape)
        for k in range(1, K):
            if lay.has_concomitant:
                out[:, lay.gamma_index(k)] -= pi[:, k:k + 1] * data.unit_concomitant
            else:
                out[:, lay.gamma_index(k)] -= pi[:, k:k + 1]
    return out


def score_meat(scores, weights, clusters=None):
    """The meat ``M`` of the sandwich from per-unit scores.

    Without ``clusters`` ``M = sum_u v_u s_u s_u'`` (a unit with frequency
    weight ``v`` stands for ``v`` independent units); with cluster codes
    ``0..C-1`` the weighted scores are summed within clusters first,
    ``M = sum_c (sum_{u in c} v_u s_u)(...)'``. Sums over units, so data in
    pieces (dask partitions) can add the unclustered meat.
    """
    if clusters is None:
        return scores.T @ (weights[:, None] * scores)
    summed = np.zeros((int(clusters.max()) + 1, scores.shape[1]))
    np.add.at(summed, clusters, weights[:, None] * scores)
    return summed.T @ summed


def sandwich_from_meat(cov, meat):
    """Robust covariance ``I^-1 M I^-1`` on the identified parameters.

    ``cov`` is the inverse observed information with NaN rows for
    unidentified parameters, which stay NaN. No small-sample correction.
    """
    keep = np.flatnonzero(np.isfinite(np.diag(cov)))
    out = np.full_like(cov, np.nan)
    if keep.size == 0:
        return out
    bread = cov[np.ix_(keep, keep)]
    out[np.ix_(keep, keep)] = bread @ meat[np.ix_(keep, keep)] @ bread
    return out


def sandwich_covariance(cov, scores, weights, clusters=None):
    """Robust covariance ``I^-1 M I^-1`` from per-unit scores.

    Parameters
    ----------
    cov : ndarray (P, P)
        The inverse observed information (NaN rows for unidentified
        parameters, which stay NaN).
    scores : ndarray (n_units, P)
        Per-unit observed scores (:func:`unit_scores`).
    weights : ndarray (n_units,)
        Frequency weights of the units.
    clusters : ndarray of int (n_units,), optional
        Cluster codes ``0..C-1`` (:func:`score_meat`).

    Returns
    -------
    ndarray (P, P)
        No small-sample correction is applied.
    """
    keep = np.isfinite(np.diag(cov))
    # Scores of unidentified parameters may be NaN: leave them out of M.
    scores = np.where(keep[None, :], scores, 0.0)
    return sandwich_from_meat(cov, score_meat(scores, weights, clusters))


def equilibration(matrix):
    """Symmetric diagonal scaling that makes ``matrix`` independent of units.

    Returns ``s`` such that ``s[:, None] * matrix * s[None, :]`` has a unit
    diagonal in absolute value: for an information matrix, its correlation
    form ``D^-1/2 I D^-1/2``. Rescaling a parameter (a covariate measured in
    dollars instead of thousands) multiplies a row and a column of the
    information by a constant, which changes its eigenvalues by as much but
    leaves the scaled matrix unchanged, so every rank or eigenvalue decision
    made on it, and its inverse, is invariant to units; a spread of column
    scales of more than ~1e5 otherwise puts the smallest eigenvalue of a
    perfectly regular information below any relative cut-off. For a
    positive definite matrix this scaling is within a factor of the size of
    the optimal one for the condition number (van der Sluis 1969).

    A zero diagonal entry (a parameter with no curvature of its own,
    possible where the matrix is indefinite) is scaled so that the largest
    entry of its row, among the other scaled entries, is 1; an all-zero row,
    and a non-finite diagonal entry, keep the scale 1.

    Parameters
    ----------
    matrix : ndarray (P, P)
        Symmetric.

    Returns
    -------
    ndarray (P,)
        Positive and finite.

    Examples
    --------
    >>> a = np.array([[4.0, 1e6], [1e6, 1e12]])
    >>> s = equilibration(a)
    >>> (s[:, None] * a * s[None, :]).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    matrix = np.asarray(matrix, dtype=float)
    diag = np.abs(np.diag(matrix))
    regular = (diag > 0) & (diag < np.inf)  # False for NaN too
    if regular.all():  # the usual case, on every M-step: no more work
        return 1.0 / np.sqrt(diag)
    scale = np.ones(diag.size)
    scale[regular] = 1.0 / np.sqrt(diag[regular])
    for j in np.flatnonzero(diag == 0):
        row = np.abs(matrix[j, regular]) * scale[regular]
        top = row.max(initial=0.0)
        if 0 < top < np.inf:
            scale[j] = 1.0 / top
    return scale


def invert_information(info, rtol=1e-10):
    """Covariance matrix from the observed information, singularity aware.

    Every decision is taken on the equilibrated information (its correlation
    form, :func:`equilibration`), so that neither the detection of a
    singular information nor the covariance depends on the units of the
    covariates: rescaling a column by ``c`` divides its standard errors by
    exactly ``c``.

    Parameters
    ----------
    info : ndarray (P, P)
    rtol : float
        Eigenvalues of the equilibrated information below ``rtol`` times its
        largest count as zero (its largest is between 1 and ``P`` for a
        positive semi-definite information).

    Returns
    -------
    cov : ndarray (P, P)
        NaN in the rows and columns of parameters that the information does
        not identify.
    unidentified : ndarray of int
        Positions of those parameters.
    not_positive : bool
        True when the information had a clearly negative eigenvalue (the
        estimate is a saddle point rather than a maximum).
    """
    info = np.asarray(info, dtype=float)
    size = info.shape[0]
    finite = np.all(np.isfinite(info), axis=1)
    keep = np.flatnonzero(finite)
    cov = np.full((size, size), np.nan)
    not_positive = False
    if keep.size:
        s = equilibration(info[np.ix_(keep, keep)])
        scaled = s[:, None] * info[np.ix_(keep, keep)] * s[None, :]
        # Positions in `scaled` of the parameters still kept.
        inner = np.arange(keep.size)
        for _ in range(size + 1):
            if inner.size == 0:
                break
            eigval, eigvec = np.linalg.eigh(scaled[np.ix_(inner, inner)])
            top = max(abs(eigval).max(), np.finfo(float).tiny)
            small = eigval <= rtol * top
            if not small.any():
                break
            if np.any(eigval < -1e-6 * top):
                not_positive = True
            # Parameters that load on the null directions are the unidentified ones.
            loading = np.abs(eigvec[:, small]).max(axis=1)
            drop = loading >= 0.5 * loading.max()
            inner = inner[~drop]
        if inner.size:
            sub = np.linalg.inv(scaled[np.ix_(inner, inner)])
            cov[np.ix_(keep[inner], keep[inner])] = s[inner, None] * sub * s[None, inner]
        keep = keep[inner]
    unidentified = np.setdiff1d(np.arange(size), keep)
    return cov, unidentified, not_positive


def prior_delta_jacobian(prior):
    """Jacobian of ``pi = softmax(0, alpha_2, ..., alpha_K)`` in alpha.

    Returns an array of shape ``(K, K - 1)``: ``d pi_k / d alpha_j =
    pi_k (delta_kj - pi_j)``.
    """
    prior = np.asarray(prior, dtype=float)
    K = prior.size
    jac = np.zeros((K, K - 1))
    for j in range(1, K):
        jac[:, j - 1] = -prior * prior[j]
        jac[j, j - 1] += prior[j]
    return jac


def mean_prior_jacobian(data, gamma):
    """Jacobian of :func:`mean_prior` in ``(gamma_2, ..., gamma_K)``.

    Returns an array of shape ``(K, (K - 1) q)`` in the order of theta:
    ``d pibar_k / d gamma_j = sum_u v_u pi_uk (delta_kj - pi_uj) W_u / sum v``.
    """
    W, v = data.unit_concomitant, data.unit_weights
    pi = np.exp(log_softmax(W @ gamma))
    K, q = gamma.shape[1], gamma.shape[0]
    jac = np.zeros((K, (K - 1) * q))
    for j in range(1, K):
        cols = slice((j - 1) * q, j * q)
        for k in range(K):
            delta = 1.0 if k == j else 0.0
            jac[k, cols] = (v * pi[:, k] * (delta - pi[:, j])) @ W / v.sum()
    return jac
