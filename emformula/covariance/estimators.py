"""Covariance matrices of the estimates from the observed information and scores.

Louis' information (:mod:`emformula.engine.louis`) gives the model-based
covariance; the sandwich ``I^-1 M I^-1`` with the meat ``M`` from per-unit
scores (summed within clusters for the clustered one) the robust ones.
"""

from __future__ import annotations

import numpy as np

from ..engine.layout import log_softmax
from ..engine.linalg import equilibration

__all__ = [
    "score_meat",
    "sandwich_from_meat",
    "sandwich_covariance",
    "invert_information",
    "prior_delta_jacobian",
    "mean_prior_jacobian",
]


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
