"""The E-step: posterior probabilities and log-likelihood of one piece of data.

For every row and component ``log(pi_k) + log f_k(y_i)``; the posterior by a
log-sum-exp (counts in the tens of thousands underflow a plain ``exp``), and
the log-likelihood ``sum_u v_u logsumexp_k(...)`` over the units (rows, or
groups of rows with ``groups=``, whose component log-densities are summed
within the group first).

The E-step works on one :class:`~emformula.engine.data.EMData`: the whole
data in memory, or one partition of it (a group never spans two). Backends
call it on each piece; the sums the EM loop needs are then formed from its
arrays (:mod:`emformula.engine.sums`).
"""

from __future__ import annotations

import numpy as np

from .data import EStep
from .layout import log_softmax

__all__ = ["linear_predictor", "log_prior", "e_step", "unit_posterior"]


def linear_predictor(data, coef, fixed_coef=None):
    """``X b_k + Z c + offset`` for every component, shape ``(n, K)``.

    Column-major (each component's column contiguous), as every n x K array
    of the engine: the M-step and the information work one component at a
    time, and a row-major array would be read with a stride of K.
    """
    eta = (coef.T @ data.exog.T).T
    if fixed_coef is not None and data.fixed is not None:
        eta += (data.fixed @ fixed_coef)[:, None]
    eta += data.offset[:, None]
    return eta


def log_prior(data, est):
    """Log mixing proportions: ``(n_units, K)`` for a concomitant model,
    else ``(1, K)`` (broadcasts over the units)."""
    if est.gamma is None:
        prior = np.asarray(est.prior)
        if (prior > 0).all():
            return np.log(prior)[None, :]
        with np.errstate(divide="ignore"):  # a vanished component: log 0 = -inf
            return np.log(prior)[None, :]
    # (W gamma) formed column-major, like every n x K array of the engine.
    return log_softmax((est.gamma.T @ data.unit_concomitant.T).T)


def _row_max(values, out=None):
    """``values.max(axis=1)`` for a tall (n, K) array with few columns.

    numpy reduces along a short trailing axis an order of magnitude slower
    than it combines K whole columns elementwise.
    """
    if out is None:
        out = values[:, 0].copy()
    else:
        out[:] = values[:, 0]
    for k in range(1, values.shape[1]):
        np.maximum(out, values[:, k], out=out)
    return out


def _row_sum(values, out=None):
    """``values.sum(axis=1)`` for a tall (n, K) array (see :func:`_row_max`)."""
    if out is None:
        out = values[:, 0].copy()
    else:
        out[:] = values[:, 0]
    for k in range(1, values.shape[1]):
        out += values[:, k]
    return out


def e_step(data, est, eta=None, mu=None):
    """Posterior probabilities and log-likelihood at ``est``.

    ``eta`` and ``mu`` (n x K), when the caller has them for ``est`` (the
    M-step computes them), save computing them again.
    """
    if eta is None:
        eta = linear_predictor(data, est.coef, est.fixed_coef)
        mu = None
    family = data.family
    if mu is None:
        mu = family.mean(eta)
    y = data.endog[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loglike = family.log_kernel(y, mu, est.parameter_rows(), data.trials[:, None], eta=eta)
        constant = data.loglike_constant
        loglike += constant[:, None] if constant.ndim == 1 else constant
        if data.groups is None:
            log_joint = loglike + log_prior(data, est)
        else:
            # A group's density under component k is the product over its
            # rows: sum the log-densities within the group.
            finite_ll = np.where(np.isnan(loglike), -np.inf, loglike)
            log_joint = data.unit_sum(finite_ll) + log_prior(data, est)
    # Log-sum-exp by hand: the shifted exponentials are the unnormalised
    # posterior, so one exp pass serves both (scipy's logsumexp would need a
    # second one for the posterior).
    units = log_joint.shape[0]
    top = _row_max(log_joint, out=data.work_buffer("e_step_max", units))
    if np.isnan(top).any():  # np.maximum propagates NaN: a row's max finds it
        # A row impossible under a component (log f = -inf) is fine as long
        # as another component can explain it; NaN would poison everything.
        log_joint[np.isnan(log_joint)] = -np.inf
        _row_max(log_joint, out=top)
    finite = np.isfinite(top, out=data.work_buffer("e_step_finite", units, bool))
    all_finite = finite.all()
    if not all_finite:
        top[~finite] = 0.0
    log_joint -= top[:, None]
    posterior = np.exp(log_joint, out=log_joint)
    # At least 1 (the largest term is exp(0)) where the row's max is finite.
    total = _row_sum(posterior, out=data.work_buffer("e_step_total", units))
    if all_finite:  # every total is at least 1: no log of 0 to silence
        unit_llf = np.log(total)
    else:
        with np.errstate(divide="ignore"):
            unit_llf = np.log(total)
    unit_llf += top
    if not all_finite:
        # A unit no component can explain: llf -inf, posterior uniform.
        unit_llf[~finite] = -np.inf
        total[~finite] = 1.0
        posterior[~finite] = 1.0 / est.n_components
    posterior /= total[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        llf = float(np.dot(data.unit_weights, unit_llf))
    if np.isnan(llf) or llf == np.inf:
        # Log-densities beyond the float range (a mean far outside the data
        # at an extrapolated point): treat the point as impossible.
        llf = -np.inf
    if data.groups is None:
        return EStep(eta, mu, loglike, posterior, unit_llf, llf)
    return EStep(eta, mu, loglike, data.to_rows(posterior), unit_llf, llf, posterior)


def unit_posterior(data, estep):
    """The posterior per unit (groups, else rows)."""
    return estep.posterior if estep.unit_posterior is None else estep.unit_posterior
