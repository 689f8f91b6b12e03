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

import numpy as np

from .layout import ParameterLayout, parameter_layout, unit_prior

__all__ = ['louis_information', 'observed_score', 'unit_scores', 'row_derivatives']


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
