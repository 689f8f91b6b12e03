"""Observed information of the mixture log-likelihood by Louis' method.

For independent rows with a discrete latent component (Louis 1982, JRSS B
44:226-233; ``shared/notes/louis.md`` writes it out for this model)

    I_obs = sum_i w_i [ E(B_ci | y_i) - Cov(S_ci | y_i) ],

with ``S_c`` and ``B_c`` the complete-data score and negative Hessian. This
is exactly minus the Hessian of the observed log-likelihood. The free
parameters are, in this order,

    theta = (b_1, [log phi_1], ..., b_K, [log phi_K], alpha_2, ..., alpha_K)

where ``pi_k = softmax(alpha)_k`` with ``alpha_1 = 0``. Every block is a
sandwich product ``A' diag(c) B`` over the rows: no ``n x n`` or
``n x P x P`` array is formed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["louis_information", "observed_score", "parameter_layout", "pack_theta",
           "unpack_theta", "invert_information", "prior_delta_jacobian"]


def parameter_layout(n_coef, n_components, estimates_scale):
    """Positions of each block of theta.

    Returns
    -------
    coef_index : list of ndarray
        For each component, the positions of its coefficients.
    scale_index : list of int or None
        For each component, the position of its log-dispersion.
    alpha_index : ndarray
        Positions of ``alpha_2 .. alpha_K``.
    size : int
    """
    coef_index, scale_index = [], []
    pos = 0
    for _ in range(n_components):
        coef_index.append(np.arange(pos, pos + n_coef))
        pos += n_coef
        if estimates_scale:
            scale_index.append(pos)
            pos += 1
        else:
            scale_index.append(None)
    alpha_index = np.arange(pos, pos + n_components - 1)
    return coef_index, scale_index, alpha_index, pos + n_components - 1


def pack_theta(est, estimates_scale):
    """The free parameters of ``est`` as one vector (the order above)."""
    coef_index, scale_index, alpha_index, size = parameter_layout(
        est.coef.shape[0], est.n_components, estimates_scale)
    theta = np.empty(size)
    for k in range(est.n_components):
        theta[coef_index[k]] = est.coef[:, k]
        if scale_index[k] is not None:
            theta[scale_index[k]] = np.log(est.scale[k])
    with np.errstate(divide="ignore"):
        theta[alpha_index] = np.log(est.prior[1:]) - np.log(est.prior[0])
    return theta


@np.errstate(over="ignore")  # an extrapolated log-scale may overflow: callers reject it
def unpack_theta(theta, n_coef, n_components, estimates_scale):
    """Coefficients, dispersions and priors from a parameter vector."""
    from ._em import Estimates  # the engine's container; no import cycle at load

    coef_index, scale_index, alpha_index, _ = parameter_layout(
        n_coef, n_components, estimates_scale)
    coef = np.column_stack([theta[idx] for idx in coef_index])
    scale = np.array([np.exp(theta[i]) if i is not None else 1.0 for i in scale_index])
    logits = np.concatenate([[0.0], theta[alpha_index]])
    prior = np.exp(logits - logits.max())
    return Estimates(coef, scale, prior / prior.sum())


# Rows at the edge of a mean's range (a mean clipped to zero under an identity
# link) can make single terms infinite; the callers check the result for
# finiteness, so numpy's floating-point warnings are noise here.
@np.errstate(all="ignore")
def observed_score(data, est, posterior, mu):
    """Gradient of the mixture log-likelihood in theta (Fisher's identity:
    the posterior expectation of the complete-data score)."""
    family = data.family
    K = est.n_components
    coef_index, scale_index, alpha_index, size = parameter_layout(
        data.n_coef, K, family.estimates_scale)
    s, _, t, _ = _row_derivatives(data, est, mu, posterior)
    weighted = data.weights[:, None] * posterior
    score = np.zeros(size)
    for k in range(K):
        score[coef_index[k]] = data.exog.T @ (weighted[:, k] * s[:, k])
        if scale_index[k] is not None:
            score[scale_index[k]] = np.dot(weighted[:, k], t[:, k])
    score[alpha_index] = weighted[:, 1:].sum(axis=0) - data.weights.sum() * est.prior[1:]
    return score


def _row_derivatives(data, est, mu, posterior):
    """Per row and component: score and information of eta and log(scale).

    Rows a component cannot explain (posterior exactly 0) contribute nothing
    to its blocks; their derivatives are set to 0 so that an overflow there
    (a mean at the edge of its range) cannot turn 0 * inf into NaN.
    """
    family = data.family
    y = data.endog[:, None]
    trials = data.trials[:, None]
    scale = est.scale[None, :]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score_eta, info_eta, _, _ = family.eta_derivatives(y, mu, trials, observed=True)
        score_eta = score_eta / scale
        info_eta = info_eta / scale
        score_log, info_log = family.logscale_derivatives(y, mu, scale)
    present = posterior > 0
    return tuple(np.where(present, value, 0.0)
                 for value in (score_eta, info_eta, score_log, info_log))


@np.errstate(all="ignore")
def louis_information(data, est, posterior, mu):
    """Observed information matrix of the mixture log-likelihood.

    Parameters
    ----------
    data : EMData
    est : Estimates
    posterior : ndarray (n, K)
        Posterior probabilities at ``est``.
    mu : ndarray (n, K)
        Component means at ``est``.

    Returns
    -------
    ndarray (P, P)
        Minus the Hessian of ``sum_i w_i log f(y_i)`` in theta.
    """
    family = data.family
    x = data.exog
    w = data.weights
    tau = posterior
    K = est.n_components
    coef_index, scale_index, alpha_index, size = parameter_layout(
        data.n_coef, K, family.estimates_scale)
    s, h, t, r = _row_derivatives(data, est, mu, tau)
    info = np.zeros((size, size))

    for k in range(K):
        for l in range(k, K):
            delta = 1.0 if k == l else 0.0
            # w_i Cov(z_ik, z_il | y_i): the missing-information weights.
            cov_w = w * (delta * tau[:, k] - tau[:, k] * tau[:, l])
            expected = w * tau[:, k] * delta
            c_bb = expected * h[:, k] - cov_w * s[:, k] * s[:, l]
            block = x.T @ (c_bb[:, None] * x)
            info[np.ix_(coef_index[k], coef_index[l])] = block
            if family.estimates_scale:
                # (b_k, log phi_l): the complete-data cross term is s_k itself.
                c_bs = expected * s[:, k] - cov_w * s[:, k] * t[:, l]
                info[coef_index[k], scale_index[l]] = x.T @ c_bs
                if k != l:
                    c_sb = -cov_w * t[:, k] * s[:, l]
                    info[scale_index[k], coef_index[l]] = c_sb @ x
                c_ss = expected * r[:, k] - cov_w * t[:, k] * t[:, l]
                info[scale_index[k], scale_index[l]] = c_ss.sum()
    # Only the upper triangle of the (b, log phi) blocks was filled.
    upper = np.triu(info)
    info = upper + upper.T - np.diag(np.diag(info))
    # The mixing logits: complete-data information diag(pi) - pi pi' per row,
    # complete-data score e_k, so Cov(S_c) brings in the posterior covariance.
    prior = est.prior
    for a, k in enumerate(range(1, K)):
        for l in range(K):
            delta = 1.0 if k == l else 0.0
            cov_w = w * (delta * tau[:, k] - tau[:, k] * tau[:, l])
            cross = -(cov_w * s[:, l]) @ x
            info[alpha_index[a], coef_index[l]] = cross
            info[coef_index[l], alpha_index[a]] = cross
            if family.estimates_scale:
                cross = -(cov_w * t[:, l]).sum()
                info[alpha_index[a], scale_index[l]] = cross
                info[scale_index[l], alpha_index[a]] = cross
            if l >= 1:
                complete = w.sum() * (delta * prior[k] - prior[k] * prior[l])
                info[alpha_index[a], alpha_index[l - 1]] = complete - cov_w.sum()
    return info


def invert_information(info, rtol=1e-10):
    """Covariance matrix from the observed information, singularity aware.

    Parameters
    ----------
    info : ndarray (P, P)
    rtol : float
        Eigenvalues below ``rtol`` times the largest count as zero.

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
    not_positive = False
    for _ in range(size + 1):
        if keep.size == 0:
            break
        sub = info[np.ix_(keep, keep)]
        eigval, eigvec = np.linalg.eigh(sub)
        top = max(abs(eigval).max(), np.finfo(float).tiny)
        small = eigval <= rtol * top
        if not small.any():
            break
        if np.any(eigval < -1e-6 * top):
            not_positive = True
        # Parameters that load on the null directions are the unidentified ones.
        loading = np.abs(eigvec[:, small]).max(axis=1)
        drop = loading >= 0.5 * loading.max()
        keep = keep[~drop]
    cov = np.full((size, size), np.nan)
    if keep.size:
        sub = info[np.ix_(keep, keep)]
        cov[np.ix_(keep, keep)] = np.linalg.inv(sub)
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
