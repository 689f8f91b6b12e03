"""Observed information, scores and covariance of the mixture log-likelihood.

For independent units (rows, or whole groups of rows with ``groups=``) with
a discrete latent component (Louis 1982, JRSS B 44:226-233;
``shared/notes/louis.md`` writes it out for this model)

    I_obs = sum_u v_u [ E(B_cu | y_u) - Cov(S_cu | y_u) ],

with ``S_c`` and ``B_c`` the complete-data score and negative Hessian of a
unit and ``v_u`` its frequency weight. This is exactly minus the Hessian of
the observed log-likelihood. The free parameters are, in this order,

    theta = (b_1, [t_1], ..., b_K, [t_K],                  component-specific
             c, [t],                                       shared (fixed=, equal_scale=)
             alpha_2, ..., alpha_K  or  gamma_2, ..., gamma_K)   mixing proportions

``b_k`` are component ``k``'s coefficients and ``t_k`` its family
parameters on their unconstrained scale (``log phi_k`` for a dispersion,
``log alpha_k`` for the negative binomial; none for Poisson); ``c`` are the
coefficients shared by every component and ``t`` the one common value of
``equal_scale`` (which then replaces the per-component ones). A family
parameter enters the complete-data information through its own score and
information and its cross term with the linear predictor
(:class:`~emformula.families.ParameterDerivatives`). Constant mixing proportions
are ``pi_k = softmax(alpha)_k`` with ``alpha_1 = 0``; a concomitant model has
per-unit proportions ``pi_uk = softmax(W_u Gamma)_k`` with a coefficient
vector ``gamma_k`` (one entry per column of the concomitant design ``W``)
for each ``k >= 2`` and ``gamma_1 = 0``: component 1 is the reference, as
in flexmix's ``FLXPmultinom``. Without any of these features the vector is
the original ``(b_1, [t_1], ..., alpha_K)``.

Every block is a sandwich product over the rows or units: no ``n x n`` and
no ``n x P x P`` array is formed.
"""

from __future__ import annotations

import numpy as np

from .layout import ParameterLayout, unit_prior

__all__ = ["louis_information", "observed_score", "unit_scores", "row_derivatives"]


# ------------------------------------------------------------ derivatives
def row_derivatives(data, est, mu, posterior):
    """Per row and component: score and information of eta and of the family
    parameters.

    Returns ``(score_eta, info_eta, score_par, info_par, cross)``: the first
    two ``(K, n)``, then ``(K, m, n)``, ``(K, m, m, n)`` and ``(K, m, n)``
    for the ``m`` family parameters on their unconstrained scale
    (:class:`~emformula.families.ParameterDerivatives`; ``cross`` is
    ``-d^2 log f / d t_j d eta``). Component-major, so that the many
    per-component products of the information read contiguous rows.
    :func:`louis_information` and :func:`observed_score` take them as
    ``derivatives=`` so a caller that needs both (a Newton step) computes
    them once.

    Rows a component cannot explain (posterior exactly 0) contribute nothing
    to its blocks; their derivatives are set to 0 so that an overflow there
    (a mean at the edge of its range) cannot turn 0 * inf into NaN.
    """
    family = data.family
    if family.n_members is not None:
        return _member_derivatives(data, est, mu, posterior)
    y = data.endog[None, :]
    trials = data.trials[None, :]
    params = tuple(row[:, None] for row in est.params)
    mu = np.ascontiguousarray(mu.T)
    K, n = mu.shape
    m = len(params)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score_eta, info_eta, _, _ = family.eta_derivatives_at(y, mu, params, trials, observed=True)
        score_eta = np.broadcast_to(score_eta, (K, n))
        info_eta = np.broadcast_to(info_eta, (K, n))
        if m == 0:
            score_par = np.zeros((K, 0, n))
            info_par, cross = np.zeros((K, 0, 0, n)), np.zeros((K, 0, n))
        elif family.estimates_scale:
            # The dispersion's closed forms; its cross term with eta is the
            # eta score itself (log f depends on phi through 1/phi times a
            # function of eta).
            score_log, info_log = family.logscale_derivatives(y, mu, params[0])
            score_par = np.broadcast_to(score_log, (K, n))[:, None, :]
            info_par = np.broadcast_to(info_log, (K, n))[:, None, None, :]
            cross = score_eta[:, None, :]
        else:
            d = family.parameter_derivatives(y, mu, params, trials)
            score_par = np.moveaxis(np.broadcast_to(d.score, (m, K, n)), 1, 0)
            info_par = np.moveaxis(np.broadcast_to(d.info, (m, m, K, n)), 2, 0)
            cross = np.moveaxis(np.broadcast_to(d.cross_eta, (m, K, n)), 1, 0)
    return _without_absent_rows((score_eta, info_eta, score_par, info_par, cross), posterior)


def _without_absent_rows(values, posterior):
    """The derivatives with the rows a component cannot explain set to 0."""
    score_eta, info_eta, score_par, info_par, cross = values
    absent = posterior.T <= 0
    if not absent.any():
        return values
    return (
        np.where(absent, 0.0, score_eta),
        np.where(absent, 0.0, info_eta),
        np.where(absent[:, None, :], 0.0, score_par),
        np.where(absent[:, None, None, :], 0.0, info_par),
        np.where(absent[:, None, :], 0.0, cross),
    )


def _member_derivatives(data, est, mu, posterior):
    """:func:`row_derivatives` for a list of families: each component's from
    its own family (parameter rows it lacks, and the eta derivatives of a
    component without coefficients, are 0)."""
    family = data.family
    K, n, m = est.n_components, data.nobs, est.params.shape[0]
    score_eta, info_eta = np.zeros((K, n)), np.zeros((K, n))
    score_par, info_par, cross = np.zeros((K, m, n)), np.zeros((K, m, m, n)), np.zeros((K, m, n))
    for k in range(K):
        member = family.member(k)
        m_k = len(member.parameters)
        own = tuple(est.params[:m_k, k])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if member.has_coefficients:
                s, h, _, _ = member.eta_derivatives_at(
                    data.endog, mu[:, k], own, data.trials, observed=True
                )
                score_eta[k], info_eta[k] = s, h
            if m_k:
                d = member.parameter_derivatives(data.endog, mu[:, k], own, data.trials)
                score_par[k, :m_k] = d.score
                info_par[k, :m_k, :m_k] = d.info
                cross[k, :m_k] = d.cross_eta
    return _without_absent_rows((score_eta, info_eta, score_par, info_par, cross), posterior)


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
    s, _, t, _, _ = derivatives or row_derivatives(data, est, mu, posterior)
    design = data.component_design
    weighted = data.weights[:, None] * posterior
    score = np.zeros(lay.size)
    for k in range(K):
        if lay.eta_index(k).size:
            score[lay.eta_index(k)] += (weighted[:, k] * s[k]) @ design
        m_k = lay.param_index[k].size
        if m_k:
            np.add.at(score, lay.param_index[k], t[k, :m_k] @ weighted[:, k])
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
    family parameters' scores, and for ``k >= 2`` the indicator of the mixing
    block (1, or ``W_u`` for a concomitant model; the ``-pi`` part is the
    same for every component and cancels in a covariance). ``tau`` and ``v``
    are the unit posteriors and weights.
    """
    s, _, t, _, _ = derivatives or row_derivatives(data, est, mu, posterior)
    design = data.component_design
    n_units = data.n_units
    scores = []
    for k in range(est.n_components):
        parts, positions = [], []
        if lay.eta_index(k).size:
            parts.append(data.unit_sum(design * s[k][:, None]))
            positions.append(lay.eta_index(k))
        m_k = lay.param_index[k].size
        if m_k:
            parts.append(data.unit_sum(np.ascontiguousarray(t[k, :m_k].T)))
            positions.append(lay.param_index[k])
        if k >= 1:
            parts.append(data.unit_concomitant if lay.has_concomitant else np.ones((n_units, 1)))
            positions.append(lay.gamma_index(k))
        if not parts:  # component 1 as a point mass: no parameters of its own
            parts, positions = [np.zeros((n_units, 0))], [np.zeros(0)]
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
    if data.groups is None and not lay.n_fixed and not lay.equal_scale and not lay.has_concomitant:
        return _louis_plain(data, est, posterior, mu, lay, derivatives)
    return _louis_general(data, est, posterior, mu, lay, derivatives)


def _louis_general(data, est, posterior, mu, lay, derivatives=None):
    """:func:`louis_information` for any layout (shared effects, common
    family parameters, concomitant variables, groups)."""
    K = est.n_components
    design = data.component_design
    w = data.weights
    tau_rows = posterior
    derivatives = derivatives or row_derivatives(data, est, mu, tau_rows)
    s, h, _, r, cross = derivatives
    info = np.zeros((lay.size, lay.size))

    # E(B_c | y): each component's complete-data information, posterior weighted.
    for k in range(K):
        cols = lay.eta_index(k)
        c = w * tau_rows[:, k]
        if cols.size:
            info[np.ix_(cols, cols)] += data.component_gram(c * h[k])
        own = lay.param_index[k]
        m_k = own.size
        if m_k:
            info[np.ix_(own, own)] += r[k, :m_k, :m_k] @ c
        if m_k and cols.size:
            eta_par = (cross[k, :m_k] * c) @ design  # (m_k, columns of [X, Z])
            info[np.ix_(own, cols)] += eta_par
            info[np.ix_(cols, own)] += eta_par.T
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


def _louis_plain(data, est, posterior, mu, lay, derivatives=None):
    """:func:`louis_information` of a model without shared effects, common
    family parameters, concomitant variables or groups: the row weights of
    each block are combined first, so every block is one weighted Gram
    product (:class:`~emformula.engine.gram.WeightedGram`) or one ``c' X``."""
    x = data.exog
    w = data.weights
    K = est.n_components
    coef_index, param_index, alpha_index = lay.coef_index, lay.param_index, lay.prior_index
    # Components as contiguous rows (K, n), as the derivatives come: the
    # many elementwise products below would otherwise read with a stride.
    s, h, t, r, cross = derivatives or row_derivatives(data, est, mu, posterior)
    tau = np.ascontiguousarray(posterior.T)
    w_tau = w * tau
    info = np.zeros((lay.size, lay.size))

    def cov_weight(k, l):
        # w_i Cov(z_ik, z_il | y_i): the missing-information weights.
        cov_w = w_tau[k] * -tau[l]
        if k == l:
            cov_w += w_tau[k]
        return cov_w

    def set_cross(row, l, weight):
        # A cross term sum_i c_i x_i between an entry of theta and the
        # coefficients of component l (none for a point mass).
        if coef_index[l].size:
            info[row, coef_index[l]] = info[coef_index[l], row] = weight @ x

    def set_pair(a, b, value):
        info[a, b] = info[b, a] = value

    # Every block is formed as soon as its row weights are: no n x (number
    # of blocks) array, whose fresh pages would cost more than the products.
    for k in range(K):
        for l in range(k, K):
            cov_w = cov_weight(k, l)
            cov_s = cov_w * s[k]
            # E(B_c | y) enters the diagonal blocks only (expected = w tau_k there).
            if coef_index[k].size and coef_index[l].size:
                bb = cov_s * -s[l]
                if k == l:
                    bb += w_tau[k] * h[k]
                block = data.gram(bb)
                info[np.ix_(coef_index[k], coef_index[l])] = block
                info[np.ix_(coef_index[l], coef_index[k])] = block.T
            for j in range(param_index[l].size):
                # (b_k, t_lj); the complete-data cross term is -d2 log f / d eta d t.
                c_bt = cov_s * -t[l, j]
                if k == l:
                    c_bt += w_tau[k] * cross[k, j]
                set_cross(param_index[l][j], k, c_bt)
            for j in range(param_index[k].size):
                cov_t = cov_w * t[k, j]
                if k != l:
                    set_cross(param_index[k][j], l, cov_t * -s[l])
                for i in range(param_index[l].size):
                    value = -np.dot(cov_t, t[l, i])
                    if k == l:
                        value += np.dot(w_tau[k], r[k, j, i])
                    set_pair(param_index[k][j], param_index[l][i], value)
    # The mixing logits: complete-data information diag(pi) - pi pi' per row,
    # complete-data score e_k, so Cov(S_c) brings in the posterior covariance.
    prior = est.prior
    for a, k in enumerate(range(1, K)):
        for l in range(K):
            cov_w = cov_weight(k, l)
            set_cross(alpha_index[a], l, cov_w * -s[l])
            for j in range(param_index[l].size):
                set_pair(alpha_index[a], param_index[l][j], -np.dot(cov_w, t[l, j]))
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
        out[:, pos_k] += tau[:, k : k + 1] * L_k
    if K > 1:
        pi = np.broadcast_to(unit_prior(data, est), tau.shape)
        for k in range(1, K):
            if lay.has_concomitant:
                out[:, lay.gamma_index(k)] -= pi[:, k : k + 1] * data.unit_concomitant
            else:
                out[:, lay.gamma_index(k)] -= pi[:, k : k + 1]
    return out
