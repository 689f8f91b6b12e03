"""The EM engine: numpy arrays in, numpy arrays out.

Nothing here knows about formulas or pandas. The model is

    f(y_i) = sum_k pi_k f_k(y_i; mu_ik, phi_k),   g(mu_ik) = x_i' b_k + offset_i

with frequency weights ``w_i``. One EM iteration is

* E-step: ``log(pi_k) + log f_k(y_i)`` for all rows and components, the
  posterior by a log-sum-exp (counts in the tens of thousands underflow a
  plain ``exp``), and the log-likelihood ``sum_i w_i logsumexp_k(...)``;
* M-step: for each component one step of weighted IRLS (Fisher scoring) with
  row weights ``w_i tau_ik``, warm-started from the current coefficients and
  halved until the expected complete-data log-likelihood of the component
  does not decrease; then the maximum likelihood dispersion and the mixing
  proportions ``pi_k = sum_i w_i tau_ik / sum_i w_i``.

Because every M-step increases the expected complete-data log-likelihood,
this is a generalised EM algorithm: the observed log-likelihood never
decreases (Dempster, Laird and Rubin 1977, theorem 1).

Extensions (all optional, all in the same arrays-in, arrays-out style):

* **concomitant variables**: per-unit mixing proportions
  ``pi_uk = softmax(W_u Gamma)_k`` with ``gamma_1 = 0``; their M-step is
  Newton's method on the weighted multinomial log-likelihood
  ``sum_u v_u sum_k tau_uk log pi_uk`` (concave), halved until it rises;
* **shared effects**: ``eta_ik = x_i' b_k + z_i' c + offset_i``; the M-step
  for ``(b_1, ..., b_K, c)`` is one IRLS step of the stacked K-fold problem,
  solved from its block normal equations without stacking the rows;
* **one common dispersion** (``equal_scale``): its ML value over all
  components (posterior weighted);
* **grouped data**: all rows of a group share one latent component, so the
  E-step sums the component log-densities within groups before the
  log-sum-exp, and "units" (whose weights, posteriors and log-likelihood
  contributions the mixing part sees) are groups instead of rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .data import EMData, EMRun, Estimates, EStep
from .layout import ParameterLayout, log_softmax, mean_prior
from .linalg import equilibration
from .louis import louis_information, observed_score, row_derivatives

__all__ = ["EMData", "Estimates", "EMRun", "e_step", "m_step", "run_em", "newton_steps", "newton_polish",
           "initial_estimates", "random_partition", "order_components", "log_prior",
           "concomitant_step"]

# Largest number of step halvings in one IRLS step before it is abandoned.
_MAX_HALVINGS = 30
# IRLS iterations when coefficients are fitted from scratch (a start), and
# their relative tolerance: a start only has to be a reasonable place to
# begin EM, so it is not polished.
_START_IRLS_ITER = 50
_START_TOL = 1e-6
# Newton iterations of the concomitant M-step (each one is cheap: units x q).
_CONCOMITANT_NEWTON = 10
# Largest change of a concomitant coefficient in one Newton step.
_MAX_CONCOMITANT_STEP = 5.0










# ---------------------------------------------------------------- E-step
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
        with np.errstate(divide="ignore"):
            return np.log(est.prior)[None, :]
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
        loglike = family.loglike_kernel(y, mu, est.scale[None, :], data.trials[:, None],
                                        eta=eta)
        loglike += data.loglike_constant[:, None]
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


# ---------------------------------------------------------------- M-step
def _solve_normal_equations(xtwx, xtwz):
    """Solve ``A b = c`` for a symmetric positive semi-definite ``A``.

    A singular ``A`` (a component with almost no weight, collinear columns
    within a component) gets the minimum-norm least-squares solution.
    """
    # Solved in equilibrated form (unit diagonal): lstsq's rank cut-off is
    # relative to the largest singular value, so on the raw matrix a column
    # in small units (x * 1e-12) would count as null (issue 14).
    s = equilibration(xtwx)
    scaled = s[:, None] * xtwx * s[None, :]
    try:
        return s * np.linalg.solve(scaled, s * xtwz), True
    except np.linalg.LinAlgError:
        return s * np.linalg.lstsq(scaled, s * xtwz, rcond=None)[0], False


def weighted_sum(weight, values):
    """``sum_i weight_i values_i`` over the rows with positive weight.

    A plain dot product, unless a row without weight has an infinite value
    (a mean at the edge of its range where the row's posterior is 0): then
    0 * inf is NaN and those rows are left out.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # callers check for +-inf
        total = float(np.dot(weight, values))
        if not np.isnan(total):
            return total
        positive = weight > 0
        return float(np.dot(weight[positive], values[positive]))


def _weighted_q(data, row_weight, eta_k, scale_k):
    """Expected complete-data log-likelihood of one component: sum c_i log f."""
    family = data.family
    mu = family.mean(eta_k)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ll = family.loglike_kernel(data.endog, mu, scale_k, data.trials, eta=eta_k)
        ll += data.loglike_constant
    q = weighted_sum(row_weight, ll)
    return (q if np.isfinite(q) else -np.inf), mu


def normal_equations(data, row_weight, eta_k, mu_k):
    """``(X'WX, X'Wz)`` of one component's IRLS step at ``eta_k``, ``mu_k``.

    ``W`` is the row weight times the IRLS weight, ``z`` the working
    response without the offset. Sums over rows, so data in pieces (dask
    partitions) can add them.
    """
    _, _, irls_weight, link_deriv = data.family.eta_derivatives(
        data.endog, mu_k, data.trials, observed=False)
    # At the edge of the mean's range the IRLS weight can be infinite where
    # the row weight is 0 (0 * inf); such rows are dropped just below.
    # Working weight and response go into preallocated work arrays: they
    # live only until the two sums below.
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.multiply(row_weight, irls_weight, out=data.work_buffer("irls_weight"))
        z = np.subtract(data.endog, mu_k, out=data.work_buffer("irls_response"))
        z *= link_deriv
        z += eta_k
        z -= data.offset
    ok = np.isfinite(w, out=data.work_buffer("irls_ok", dtype=bool))
    ok &= np.isfinite(z, out=data.work_buffer("irls_ok_z", dtype=bool))
    if not ok.all():
        w[~ok] = 0.0
        z[w <= 0] = 0.0
    z *= w
    return data.gram(w), data.exog.T @ z


def irls_step(data, row_weight, coef_k, eta_k, mu_k, q_old, scale_k, need_q=True):
    """One Fisher-scoring step for one component, halved until Q rises
    (Gaussian-identity with ``need_q=False``: the exact step, unchecked).

    Parameters
    ----------
    row_weight : ndarray (n,)
        ``w_i * tau_ik``.
    coef_k, eta_k, mu_k : current coefficients, linear predictor and mean.
    q_old : float
        ``sum_i row_weight_i log f_k(y_i)`` at the current coefficients, or
        ``None`` to accept the full step (a start with no coefficients).
    need_q : bool, default True
        False when the caller does not use the returned Q: for a family
        whose step is exact (Gaussian-identity, :attr:`irls_is_exact`) the
        step is then taken without evaluating Q (``q`` is returned as None).

    Returns
    -------
    coef, eta, mu, q, ok
        ``ok`` is False when no step improved Q or the system was singular.
    """
    x = data.exog
    candidate, regular = _solve_normal_equations(*normal_equations(data, row_weight, eta_k,
                                                                   mu_k))
    if not np.all(np.isfinite(candidate)):
        return coef_k, eta_k, mu_k, q_old, False
    if data.family.irls_is_exact and not need_q:
        # Weighted least squares maximises Q exactly: no check, no halving.
        eta = x @ candidate + data.offset
        return candidate, eta, data.family.mean(eta), None, regular
    if coef_k is None or q_old is None:
        eta = x @ candidate + data.offset
        q, mu = _weighted_q(data, row_weight, eta, scale_k)
        return candidate, eta, mu, q, regular
    direction = candidate - coef_k
    eta_direction = x @ direction
    step = 1.0
    # The tolerance absorbs rounding only: Q must not fall.
    slack = 1e-13 * (abs(q_old) + 1.0)
    for _ in range(_MAX_HALVINGS):
        eta = eta_k + step * eta_direction
        q, mu = _weighted_q(data, row_weight, eta, scale_k)
        if q >= q_old - slack:
            if q < q_old:  # rounding-level loss: keep the old point exactly
                return coef_k, eta_k, mu_k, q_old, regular
            return coef_k + step * direction, eta, mu, q, regular
        step *= 0.5
    return coef_k, eta_k, mu_k, q_old, False


def shared_irls_step(data, row_weights, coef, fixed_coef, eta, mu, q_old, scale):
    """One Fisher-scoring step of all components and the shared effects at once.

    The shared coefficients ``c`` tie the components together, so the step
    solves the stacked K-fold weighted least-squares problem (row ``i`` once
    per component, weight ``w_i tau_ik`` times its IRLS weight) from its
    block normal equations: ``X'W_k X`` on the diagonal, ``X'W_k Z`` against
    ``c`` and ``sum_k Z'W_k Z``; the stacked matrix is never formed. The step
    is halved until the expected complete-data log-likelihood summed over
    the components does not fall.

    Parameters
    ----------
    row_weights : ndarray (n, K)
        ``w_i * tau_ik``.
    coef, fixed_coef : ndarray (p, K), (r,) or None
        Current coefficients; ``None`` to accept the full step from ``eta``
        and ``mu`` (a start).
    eta, mu : ndarray (n, K)
    q_old : float or None
        ``sum_k sum_i row_weights_ik log f_k(y_i)`` at the current point.
    scale : ndarray (K,)

    Returns
    -------
    coef, fixed_coef, eta, mu, q, ok
    """
    family = data.family
    p, r = data.n_coef, data.n_fixed
    K = row_weights.shape[1]
    size = K * p + r
    shared = slice(K * p, size)
    normal = np.zeros((size, size))
    rhs = np.zeros(size)
    for k in range(K):
        _, _, irls_weight, link_deriv = family.eta_derivatives(
            data.endog, mu[:, k], data.trials, observed=False)
        with np.errstate(invalid="ignore", over="ignore"):
            w = row_weights[:, k] * irls_weight
            work = (eta[:, k] - data.offset) + (data.endog - mu[:, k]) * link_deriv
        w = np.where(np.isfinite(w) & np.isfinite(work), w, 0.0)
        work = np.where(w > 0, work, 0.0)
        own = slice(k * p, (k + 1) * p)
        # [X Z]' W [X Z] holds X'WX, X'WZ and Z'WZ at once.
        gram = data.component_gram(w)
        normal[own, own] = gram[:p, :p]
        normal[own, shared] = gram[:p, p:]
        normal[shared, own] = gram[p:, :p]
        normal[shared, shared] += gram[p:, p:]
        both = data.component_design.T @ (w * work)
        rhs[own] = both[:p]
        rhs[shared] += both[p:]
    candidate, regular = _solve_normal_equations(normal, rhs)
    if not np.all(np.isfinite(candidate)):
        return coef, fixed_coef, eta, mu, q_old, False
    new_coef = candidate[:K * p].reshape(K, p).T
    new_fixed = candidate[shared]

    def evaluate(b, c):
        eta_new = linear_predictor(data, b, c)
        q, mus = 0.0, np.empty_like(eta_new)
        for k in range(K):
            q_k, mus[:, k] = _weighted_q(data, row_weights[:, k], eta_new[:, k], scale[k])
            q += q_k
        return q, eta_new, mus

    if coef is None or q_old is None:
        q, eta_new, mu_new = evaluate(new_coef, new_fixed)
        return new_coef, new_fixed, eta_new, mu_new, q, regular
    d_coef, d_fixed = new_coef - coef, new_fixed - fixed_coef
    step = 1.0
    slack = 1e-13 * (abs(q_old) + 1.0)
    for _ in range(_MAX_HALVINGS):
        b, c = coef + step * d_coef, fixed_coef + step * d_fixed
        q, eta_new, mu_new = evaluate(b, c)
        if q >= q_old - slack:
            if q < q_old:  # rounding-level loss: keep the old point exactly
                return coef, fixed_coef, eta, mu, q_old, regular
            return b, c, eta_new, mu_new, q, regular
        step *= 0.5
    return coef, fixed_coef, eta, mu, q_old, False


def _common_scale(data, mu, posterior, scale_floor):
    """ML dispersion shared by all components: the family's dispersion update
    on the stacked K-fold data (rows repeated per component, weights w tau),
    its statistic summed one component at a time."""
    family = data.family
    statistic = total = 0.0
    for k in range(mu.shape[1]):
        c = np.multiply(data.weights, posterior[:, k], out=data.work_buffer("m_step_weight"))
        total += c.sum()
        statistic += family.scale_statistic(data.endog, mu[:, k], c)
    if not total > 0:
        return 1.0
    return max(family.scale_from_statistic(statistic / total), scale_floor)


def _multinomial_objective(W, v, tau, gamma):
    logp = log_softmax(W @ gamma)
    with np.errstate(invalid="ignore"):
        terms = np.where(tau > 0, tau * logp, 0.0)
    return float(v @ terms.sum(axis=1)), logp


def concomitant_step(W, v, tau, gamma, max_steps=_CONCOMITANT_NEWTON):
    """M-step of a concomitant model: Newton on ``sum_u v_u sum_k tau_uk log pi_uk``.

    The weighted multinomial log-likelihood is concave in ``Gamma`` (columns
    ``2..K``; column 1 stays 0), so Newton's method converges from any start
    where the maximum exists; each step is halved until the objective rises,
    which keeps the M-step a GEM step even where it does not (separated
    posteriors). The gradient is ``W' v (tau_k - pi_k)`` and the negative
    Hessian has blocks ``W' diag(v (delta_kl pi_k - pi_k pi_l)) W``.

    Parameters
    ----------
    W : ndarray (n_units, q)
    v : ndarray (n_units,)
    tau : ndarray (n_units, K)
    gamma : ndarray (q, K)
        Start (the current coefficients).

    Returns
    -------
    ndarray (q, K)
    """
    q, K = gamma.shape
    if K == 1:
        return gamma.copy()
    gamma = gamma - gamma[:, :1]
    objective, logp = _multinomial_objective(W, v, tau, gamma)
    for _ in range(max_steps):
        pi = np.exp(logp)
        resid = v[:, None] * (tau - pi)
        grad = np.concatenate([W.T @ resid[:, k] for k in range(1, K)])
        hess = np.zeros(((K - 1) * q, (K - 1) * q))
        for k in range(1, K):
            for l in range(k, K):
                delta = 1.0 if k == l else 0.0
                block = W.T @ ((v * (delta * pi[:, k] - pi[:, k] * pi[:, l]))[:, None] * W)
                hess[(k - 1) * q:k * q, (l - 1) * q:l * q] = block
                hess[(l - 1) * q:l * q, (k - 1) * q:k * q] = block.T
        direction, _ = _solve_normal_equations(hess, grad)
        if not np.all(np.isfinite(direction)):
            break
        decrement = float(grad @ direction)
        if not decrement > 1e-14 * (abs(objective) + 1.0):
            break
        step_matrix = np.zeros_like(gamma)
        step_matrix[:, 1:] = direction.reshape(K - 1, q).T
        # Where the concomitant variables separate the posteriors the maximum
        # is at infinity and Newton steps explode; a bounded step lets the
        # coefficients diverge slowly (diagnose() reports it) without overflow.
        largest = np.abs(step_matrix).max()
        if largest > _MAX_CONCOMITANT_STEP:
            step_matrix *= _MAX_CONCOMITANT_STEP / largest
        step, accepted = 1.0, False
        for _ in range(_MAX_HALVINGS):
            candidate = gamma + step * step_matrix
            value, cand_logp = _multinomial_objective(W, v, tau, candidate)
            if value >= objective:
                gamma, objective, logp, accepted = candidate, value, cand_logp, True
                break
            step *= 0.5
        if not accepted:
            break
    return gamma


def _prior_update(data, est, tau_units):
    """Mixing parameters from the unit posteriors: ``(prior, gamma)``."""
    v = data.unit_weights
    if data.concomitant is None:
        # Closed form: the weighted mean posterior.
        return (v @ tau_units) / v.sum(), None
    gamma = est.gamma if est.gamma is not None else np.zeros(
        (data.n_concomitant, tau_units.shape[1]))
    gamma = concomitant_step(data.unit_concomitant, v, tau_units, gamma)
    return mean_prior(data, gamma), gamma


def m_step(data, est, estep, scale_floor, predictors=None):
    """One generalised M-step from the E-step at ``est``.

    ``predictors``, a dict, receives the linear predictors and means
    (``"eta"``, ``"mu"``, both n x K) of the new coefficients, which the IRLS
    steps computed anyway: the next E-step takes them instead of computing
    them again.
    """
    family = data.family
    K = est.n_components
    coef = est.coef.copy()
    scale = est.scale.copy()
    fixed_coef = est.fixed_coef
    notes = []
    common = family.estimates_scale and data.equal_scale
    if data.fixed is None:
        etas = np.empty_like(estep.eta)
        mus = np.empty_like(estep.mu)
        for k in range(K):
            # One component's row weights at a time, in a work array: no
            # n x K array of them.
            c = np.multiply(data.weights, estep.posterior[:, k],
                            out=data.work_buffer("m_step_weight"))
            q_old = None if family.irls_is_exact else weighted_sum(c, estep.loglike[:, k])
            coef_k, etas[:, k], mus[:, k], _, ok = irls_step(
                data, c, est.coef[:, k], estep.eta[:, k], estep.mu[:, k], q_old, est.scale[k],
                need_q=False)
            coef[:, k] = coef_k
            if not ok:
                notes.append(k)
            if family.estimates_scale and not common and c.sum() > 0:
                scale[k] = max(family.mle_scale(data.endog, mus[:, k], c), scale_floor)
    else:
        row_weights = data.weights[:, None] * estep.posterior
        q_old = sum(weighted_sum(row_weights[:, k], estep.loglike[:, k]) for k in range(K))
        coef, fixed_coef, etas, mus, _, ok = shared_irls_step(
            data, row_weights, est.coef, est.fixed_coef, estep.eta, estep.mu, q_old, est.scale)
        coef = coef.copy()
        if not ok:
            notes.extend(range(K))
        if family.estimates_scale and not common:
            for k in range(K):
                c = row_weights[:, k]
                if c.sum() > 0:
                    scale[k] = max(family.mle_scale(data.endog, mus[:, k], c), scale_floor)
    if common:
        scale[:] = _common_scale(data, mus, estep.posterior, scale_floor)
    prior, gamma = _prior_update(data, est, unit_posterior(data, estep))
    if predictors is not None:
        predictors["eta"], predictors["mu"] = etas, mus
    return Estimates(coef, scale, prior, gamma, fixed_coef), notes


def estimates_from_posterior(data, posterior, scale_floor):
    """Fit every component from scratch to posterior weights (a start).

    ``posterior`` is per row (with groups, every row of a group carries the
    group's posterior).
    """
    family = data.family
    n, K = posterior.shape
    p = data.n_coef
    coef = np.zeros((p, K))
    scale = np.ones(K)
    fixed_coef = None
    start_mu = family.start_mean(data.endog, data.trials)
    with np.errstate(divide="ignore", invalid="ignore"):
        start_eta = np.asarray(family.link(start_mu), dtype=float)
    row_weights = data.weights[:, None] * posterior
    mus = np.empty((n, K))
    if data.fixed is None:
        for k in range(K):
            c = row_weights[:, k]
            coef_k, eta, mu, q = None, start_eta, start_mu, None
            for _ in range(_START_IRLS_ITER):
                coef_new, eta, mu, q_new, _ = irls_step(data, c, coef_k, eta, mu, q, 1.0)
                done = (q is not None and q_new is not None
                        and abs(q_new - q) <= _START_TOL * (abs(q_new) + 1.0))
                coef_k, q = coef_new, q_new
                if done:
                    break
            if coef_k is None:
                coef_k = np.zeros(p)
                mu = family.mean(data.offset)
            coef[:, k] = coef_k
            mus[:, k] = mu
    else:
        b, c_fixed, q = None, None, None
        eta = np.repeat(start_eta[:, None], K, axis=1)
        mu = np.repeat(start_mu[:, None], K, axis=1)
        ones = np.ones(K)
        for _ in range(_START_IRLS_ITER):
            b_new, c_new, eta, mu, q_new, _ = shared_irls_step(
                data, row_weights, b, c_fixed, eta, mu, q, ones)
            done = (q is not None and q_new is not None
                    and abs(q_new - q) <= _START_TOL * (abs(q_new) + 1.0))
            b, c_fixed, q = b_new, c_new, q_new
            if done:
                break
        if b is None:
            b, c_fixed = np.zeros((p, K)), np.zeros(data.n_fixed)
            mu = family.mean(linear_predictor(data, b, c_fixed))
        coef, fixed_coef, mus = b.copy(), c_fixed, mu
    if family.estimates_scale:
        if data.equal_scale:
            scale[:] = _common_scale(data, mus, posterior, scale_floor)
        else:
            for k in range(K):
                c = row_weights[:, k]
                if c.sum() > 0:
                    scale[k] = max(family.mle_scale(data.endog, mus[:, k], c), scale_floor)
    tau_units = posterior if data.groups is None else posterior[data.unit_rows]
    if data.concomitant is None:
        prior = (data.unit_weights[:, None] * tau_units).sum(axis=0) / data.unit_weights.sum()
        prior = np.clip(prior, 1e-300, None)
        return Estimates(coef, scale, prior / prior.sum(), None, fixed_coef)
    gamma = concomitant_step(data.unit_concomitant, data.unit_weights, tau_units,
                             np.zeros((data.n_concomitant, K)), max_steps=25)
    return Estimates(coef, scale, mean_prior(data, gamma), gamma, fixed_coef)


def random_partition(rng, n, K):
    """One-hot posterior of a random partition of ``n`` rows into ``K`` groups."""
    labels = rng.integers(0, K, size=n)
    posterior = np.zeros((n, K))
    posterior[np.arange(n), labels] = 1.0
    return posterior


def initial_estimates(data, K, rng, scale_floor):
    """A random start: a random partition of the units, then an M-step."""
    posterior = data.to_rows(random_partition(rng, data.n_units, K))
    return estimates_from_posterior(data, posterior, scale_floor)


#: Rows above which a random start first runs EM on a random subsample.
SUBSAMPLE_START_ROWS = 100_000
#: Rows of that subsample.
SUBSAMPLE_START_SIZE = 20_000


def random_start(data, K, rng, scale_floor):
    """A random start, separated on a subsample when the data are large.

    From a random partition every component first fits roughly the whole
    data, and EM spends its first iterations pulling them apart. On large
    data those iterations are run on a random subsample of
    ``SUBSAMPLE_START_SIZE`` rows (to a loose tolerance), which costs a
    fraction of one full-data iteration; EM on all rows then starts from
    separated components. Grouped data keep the plain start.
    """
    if data.nobs <= SUBSAMPLE_START_ROWS or data.groups is not None:
        return initial_estimates(data, K, rng, scale_floor)
    rows = np.sort(rng.choice(data.nobs, size=SUBSAMPLE_START_SIZE, replace=False))
    sub = data.take(rows)
    est = initial_estimates(sub, K, rng, scale_floor)
    return run_em(sub, est, max_iter=500, tol=1e-6, scale_floor=scale_floor,
                  newton=False).estimates


# -------------------------------------------------------------- the loop
def has_converged(llf_old, llf_new, tol):
    """Relative change of the log-likelihood below ``tol``."""
    return abs(llf_new - llf_old) <= tol * (abs(llf_new) + 1.0)


def run_em(data, est, *, max_iter, tol, scale_floor, callback=None, accelerate=True,
           newton=True):
    """Iterate EM from ``est`` until the log-likelihood settles.

    Plain EM converges linearly, and very slowly where components overlap
    (an over-fitted K can take thousands of iterations). Two safeguarded
    accelerations keep the log-likelihood monotone:

    * ``accelerate``: SQUAREM (Varadhan and Roland 2008, scheme S3) on the
      free parameters; an extrapolated point is kept only when, after one
      more EM step, it beats two plain EM steps;
    * ``newton``: once the relative change per iteration falls below
      ``NEWTON_SWITCH``, Newton steps with Louis' information
      (:func:`newton_steps`); when they drive the Newton decrement to rounding
      level the run has converged. Where the information is not yet positive
      definite EM goes on and Newton is tried again later.

    ``max_iter`` counts M-steps and Newton steps.

    Returns
    -------
    EMRun
        With the final estimates and the posterior of the E-step at them.
    """
    estep = e_step(data, est)
    history = [estep.llf]
    converged = False
    stuck = set()
    n_iter = 0
    next_newton = 0
    newton_done = False
    while n_iter < max_iter:
        if accelerate and max_iter - n_iter >= 3:
            est, estep, used, notes = _squarem_cycle(data, est, estep, scale_floor)
        else:
            new = {}
            est, notes = m_step(data, est, estep, scale_floor, new)
            estep, used = e_step(data, est, new["eta"], new["mu"]), 1
        n_iter += used
        stuck.update(notes)
        history.append(estep.llf)
        if callback is not None:
            callback(n_iter, estep.llf)
        if has_converged(history[-2], history[-1], tol):
            converged = True
            break
        if (newton and n_iter >= next_newton
                and has_converged(history[-2], history[-1], NEWTON_SWITCH)):
            est, estep, llfs, done = newton_steps(data, est, estep, scale_floor=scale_floor,
                                                  max_steps=min(10, max_iter - n_iter))
            history.extend(llfs)
            n_iter += len(llfs)
            if done:
                converged = newton_done = True
                break
            next_newton = n_iter + 25
    notes = tuple(f"component {k + 1}: an IRLS step could not improve the fit"
                  for k in sorted(stuck))
    return EMRun(est, estep.llf, np.asarray(history), n_iter, converged,
                 estep.posterior, notes, newton_converged=newton_done)


def _admissible(est, scale_floor):
    """Whether extrapolated or Newton-stepped estimates are worth evaluating."""
    extra = [a for a in (est.gamma, est.fixed_coef) if a is not None]
    return bool(np.all(np.isfinite(est.coef)) and np.all(np.isfinite(est.scale))
                and np.all(est.scale >= scale_floor) and np.all(est.prior > 0)
                and all(np.all(np.isfinite(a)) for a in extra))


def _squarem_cycle(data, est0, estep0, scale_floor):
    """One SQUAREM cycle: two EM steps, an extrapolation, one stabilising step.

    Returns ``(est, estep, m_steps_used, notes)``; the result is never worse
    than the two plain EM steps.
    """
    layout = ParameterLayout.for_data(data, est0.n_components)
    new = {}
    # Each E-step holds four n x K arrays: one is let go as soon as its M-step
    # is done, which keeps the peak memory of a cycle at three of them.
    est1, notes1 = m_step(data, est0, estep0, scale_floor, new)
    estep1 = e_step(data, est1, new["eta"], new["mu"])
    est2, notes2 = m_step(data, est1, estep1, scale_floor, new)
    del estep1
    estep2 = e_step(data, est2, new["eta"], new["mu"])
    notes = notes1 + notes2
    if np.any(est0.prior <= 0) or np.any(est1.prior <= 0) or np.any(est2.prior <= 0):
        return est2, estep2, 2, notes
    theta0 = layout.pack(est0)
    r = layout.pack(est1) - theta0
    v = layout.pack(est2) - theta0 - 2.0 * r
    with np.errstate(over="ignore", invalid="ignore"):  # diverging coefficients: no step
        norm_v, norm_r = np.linalg.norm(v), np.linalg.norm(r)
    if not (norm_v > 0 and np.isfinite(norm_v) and np.isfinite(norm_r)):
        return est2, estep2, 2, notes
    alpha = -norm_r / norm_v
    used = 2
    # alpha = -1 reproduces est2; only a longer step is worth the extra E-step.
    while alpha < -1.0:
        cand = layout.unpack(theta0 - 2.0 * alpha * r + alpha ** 2 * v, data)
        if _admissible(cand, scale_floor):
            cand_estep = None  # a rejected candidate's arrays go before the next
            cand_estep = e_step(data, cand)
            if np.isfinite(cand_estep.llf) and cand_estep.llf >= estep0.llf:
                est3, notes3 = m_step(data, cand, cand_estep, scale_floor, new)
                del cand_estep
                estep3 = e_step(data, est3, new["eta"], new["mu"])
                used += 1
                if estep3.llf >= estep2.llf:
                    return est3, estep3, used, notes + notes3
                break
        alpha = (alpha - 1.0) / 2.0
    return est2, estep2, used, notes


#: Relative change of the log-likelihood per EM iteration below which
#: run_em tries Newton steps.
NEWTON_SWITCH = 1e-6


def newton_steps(data, est, estep, *, scale_floor, max_steps=20):
    """Safeguarded Newton steps on the observed log-likelihood.

    Louis' information is the exact negative Hessian of the observed
    log-likelihood, so near a maximum Newton converges quadratically where EM
    crawls. A step is taken only when the information is positive definite,
    and halved until the log-likelihood does not decrease, so a history that
    includes Newton steps stays monotone.

    Returns
    -------
    est, estep, llfs, converged
        ``llfs`` lists the log-likelihood after each accepted step;
        ``converged`` is True when the predicted gain of a further step is at
        rounding level.
    """
    layout = ParameterLayout.for_data(data, est.n_components)
    llfs = []
    if np.any(est.prior <= 0):
        return est, estep, llfs, False
    for _ in range(max_steps):
        derivatives = row_derivatives(data, est, estep.mu, estep.posterior)
        info = louis_information(data, est, estep.posterior, estep.mu, layout, derivatives)
        score = observed_score(data, est, estep.posterior, estep.mu, layout, derivatives)
        del derivatives  # four n x K arrays, not needed during the line search
        if not (np.all(np.isfinite(info)) and np.all(np.isfinite(score))):
            return est, estep, llfs, False
        direction, definite = _ascent_direction(info, score)
        if direction is None:
            return est, estep, llfs, False
        theta = layout.pack(est)
        # Half the Newton decrement: the predicted gain of the full step.
        if definite and 0.5 * score @ direction <= 1e-15 * (abs(estep.llf) + 1.0):
            # The gain is at rounding level but the parameters, whose error
            # is the square root of it, are not: one last full step, taken
            # unless the log-likelihood visibly falls.
            cand = layout.unpack(theta + direction, data)
            if _admissible(cand, scale_floor):
                cand_estep = e_step(data, cand)
                if cand_estep.llf >= estep.llf - 1e-13 * (abs(estep.llf) + 1.0):
                    est, estep = cand, cand_estep
                    llfs.append(estep.llf)
            return est, estep, llfs, True
        step, accepted = 1.0, None
        for _ in range(30):
            cand = layout.unpack(theta + step * direction, data)
            if _admissible(cand, scale_floor):
                cand_estep = e_step(data, cand)
                if cand_estep.llf >= estep.llf:
                    accepted = cand, cand_estep
                    break
            step *= 0.5
        if accepted is None:
            # No step gains anything: the maximum is reached to rounding,
            # if the information is positive definite there (a duplicated
            # component is a saddle point where no step gains either).
            return est, estep, llfs, definite and step < 1e-6
        est, estep = accepted
        llfs.append(estep.llf)
    return est, estep, llfs, False


def _ascent_direction(info, score):
    """Newton direction, or a saddle-free one where the information is indefinite.

    Away from the maximum of an over-fitted mixture the observed information
    is often indefinite; replacing its eigenvalues by their absolute values
    (floored) still gives an ascent direction that follows the curvature,
    which moves along flat ridges far faster than EM. Returns
    ``(direction, positive_definite)``, or ``(None, False)`` when the
    information is unusable.
    """
    try:
        chol = np.linalg.cholesky(info)
        return np.linalg.solve(chol.T, np.linalg.solve(chol, score)), True
    except np.linalg.LinAlgError:
        pass
    # The eigenvalue floor is relative to the largest: on the equilibrated
    # information (unit diagonal), so that it does not depend on the units
    # of the covariates (issue 14).
    s = equilibration(info)
    eigval, eigvec = np.linalg.eigh(s[:, None] * info * s[None, :])
    top = np.abs(eigval).max()
    if not top > 0:
        return None, False
    modified = np.maximum(np.abs(eigval), 1e-8 * top)
    return s * (eigvec @ ((eigvec.T @ (s * score)) / modified)), False


def newton_polish(data, run, *, scale_floor, max_steps=20):
    """Finish a converged EM run with :func:`newton_steps`.

    A run stopped by a relative tolerance can sit short of the maximum along
    slow directions (often the mixing proportions); standard errors need the
    maximum. Returns the run extended by the accepted steps, with
    ``newton_converged`` saying whether the score reached rounding level at
    a positive definite information (a strict local maximum).
    """
    estep = e_step(data, run.estimates)
    est, estep, llfs, done = newton_steps(data, run.estimates, estep, scale_floor=scale_floor,
                                          max_steps=max_steps)
    if not llfs:
        return replace(run, newton_converged=done)
    return replace(run, estimates=est, llf=estep.llf,
                   history=np.concatenate([run.history, llfs]),
                   n_iter=run.n_iter + len(llfs), posterior=estep.posterior,
                   newton_converged=done)


def diagnose(data, run, scale_floor):
    """Messages about degenerate features of a finished run.

    A component whose prior vanishes, a dispersion held at its floor (a
    Gaussian component collapsing onto a few points, where the likelihood is
    unbounded), fitted binomial probabilities of exactly 0 or 1 (separation
    within a component), a linear predictor at the overflow clip, IRLS
    steps that could not improve a component, and concomitant variables that
    separate the components (mixing proportions of 0 or 1).
    """
    est, family = run.estimates, data.family
    messages = list(run.notes)
    tau = run.posterior
    eta = linear_predictor(data, est.coef, est.fixed_coef)
    mu = family.mean(eta)
    for k in range(est.n_components):
        name = f"component {k + 1}"
        weight = float(np.dot(data.weights, tau[:, k]))
        if est.prior[k] < 1e-8 or weight < data.n_coef:
            messages.append(f"{name} has collapsed: prior {est.prior[k]:.3g}, posterior "
                            f"weight {weight:.3g} for {data.n_coef} coefficients")
        if family.estimates_scale and est.scale[k] <= scale_floor * (1 + 1e-6):
            messages.append(f"{name} has its dispersion at the floor {scale_floor:.3g}: it "
                            "sits on a few points, where the likelihood is unbounded")
        owned = tau[:, k] > 0.5
        if family.name == "binomial" and owned.any():
            edge = np.minimum(mu[owned, k], 1.0 - mu[owned, k]) <= 1e-10
            if edge.any():
                messages.append(f"{name} fits probabilities of 0 or 1 to {edge.sum()} row(s): "
                                "perfect separation, its coefficients diverge")
        if est.gamma is not None and k >= 1:
            logits = data.unit_concomitant @ (est.gamma[:, k] - est.gamma[:, 0])
            if np.abs(logits).max() > 35.0:
                messages.append(f"{name}: the concomitant model gives mixing proportions of "
                                "0 or 1 (log-odds beyond +-35): the concomitant variables "
                                "separate the components and their coefficients diverge")
        if family.link_name == "Log" and np.any(np.abs(eta[tau[:, k] > 0, k]) >= 700.0):
            messages.append(f"{name} has linear predictors beyond +-700, where exp overflows; "
                            "its means were clipped")
    return tuple(messages)


def order_components(run):
    """Put components in the documented order: decreasing prior.

    Ties in the prior (to 1e-10) are broken by the coefficient vectors in
    lexicographic order, so the order is a function of the estimates alone.
    """
    est = run.estimates
    keys = [tuple(np.round(est.coef[:, k], 10)) for k in range(est.n_components)]
    order = sorted(range(est.n_components),
                   key=lambda k: (-round(float(est.prior[k]), 10), keys[k]))
    if order == list(range(est.n_components)):
        return run
    return replace(run, estimates=est.permuted(order), posterior=run.posterior[:, order])
