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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .inference import louis_information, observed_score, pack_theta, unpack_theta

__all__ = ["EMData", "Estimates", "EMRun", "e_step", "m_step", "run_em", "newton_steps", "newton_polish",
           "initial_estimates", "random_partition", "order_components"]

# Largest number of step halvings in one IRLS step before it is abandoned.
_MAX_HALVINGS = 30
# IRLS iterations when coefficients are fitted from scratch (a start).
_START_IRLS_ITER = 50


@dataclass(frozen=True)
class EMData:
    """The arrays of one fit.

    Attributes
    ----------
    endog : ndarray (n,)
        Response; for the binomial family the proportion of successes.
    exog : ndarray (n, p)
        Design matrix.
    weights : ndarray (n,)
        Frequency weights (non-negative).
    offset : ndarray (n,)
        Offset of the linear predictor (including log exposure).
    trials : ndarray (n,)
        Binomial number of trials; ones for every other family.
    family : MixtureFamily
    """

    endog: np.ndarray
    exog: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    trials: np.ndarray
    family: object

    @property
    def nobs(self):
        return self.exog.shape[0]

    @property
    def n_coef(self):
        return self.exog.shape[1]


@dataclass(frozen=True)
class Estimates:
    """Parameters of a mixture: ``coef (p, K)``, ``scale (K,)``, ``prior (K,)``."""

    coef: np.ndarray
    scale: np.ndarray
    prior: np.ndarray

    @property
    def n_components(self):
        return self.coef.shape[1]

    def permuted(self, order):
        """The same mixture with its components in ``order``."""
        order = np.asarray(order)
        return Estimates(self.coef[:, order].copy(), self.scale[order].copy(),
                         self.prior[order].copy())


@dataclass(frozen=True)
class EStep:
    """What one E-step computes; reused by the next M-step."""

    eta: np.ndarray         # (n, K) linear predictors
    mu: np.ndarray          # (n, K) component means
    loglike: np.ndarray     # (n, K) log f_k(y_i), all constants included
    posterior: np.ndarray   # (n, K)
    row_llf: np.ndarray     # (n,) log of the mixture density per row
    llf: float              # sum_i w_i row_llf_i


@dataclass(frozen=True)
class EMRun:
    """The outcome of one EM run from one start."""

    estimates: Estimates
    llf: float
    history: np.ndarray
    n_iter: int
    converged: bool
    posterior: np.ndarray
    notes: tuple = field(default=())


# ---------------------------------------------------------------- E-step
def linear_predictor(data, coef):
    """``X b_k + offset`` for every component, shape ``(n, K)``."""
    eta = data.exog @ coef
    eta += data.offset[:, None]
    return eta


def e_step(data, est, eta=None):
    """Posterior probabilities and log-likelihood at ``est``."""
    if eta is None:
        eta = linear_predictor(data, est.coef)
    family = data.family
    mu = family.mean(eta)
    y = data.endog[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loglike = family.loglike(y, mu, est.scale[None, :], data.trials[:, None])
        log_joint = loglike + np.log(est.prior)[None, :]
    # A row impossible under a component (log f = -inf) is fine as long as
    # another component can explain it; NaN would poison everything.
    log_joint[np.isnan(log_joint)] = -np.inf
    # Log-sum-exp by hand: the shifted exponentials are the unnormalised
    # posterior, so one exp pass serves both (scipy's logsumexp would need a
    # second one for the posterior).
    top = log_joint.max(axis=1)
    finite = np.isfinite(top)
    top[~finite] = 0.0
    log_joint -= top[:, None]
    posterior = np.exp(log_joint, out=log_joint)
    total = posterior.sum(axis=1)
    with np.errstate(divide="ignore"):
        row_llf = top + np.log(total)
    posterior /= np.where(total > 0, total, 1.0)[:, None]
    if not finite.all():
        # A row no component can explain: llf -inf, posterior uniform.
        row_llf[~finite] = -np.inf
        posterior[~finite] = 1.0 / est.n_components
    llf = float(np.dot(data.weights, row_llf))
    return EStep(eta, mu, loglike, posterior, row_llf, llf)


# ---------------------------------------------------------------- M-step
def _solve_normal_equations(xtwx, xtwz):
    """Solve ``A b = c`` for a symmetric positive semi-definite ``A``.

    A singular ``A`` (a component with almost no weight, collinear columns
    within a component) gets the minimum-norm least-squares solution.
    """
    try:
        return np.linalg.solve(xtwx, xtwz), True
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(xtwx, xtwz, rcond=None)[0], False


def _weighted_q(data, row_weight, eta_k, scale_k):
    """Expected complete-data log-likelihood of one component: sum c_i log f."""
    family = data.family
    mu = family.mean(eta_k)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ll = family.loglike(data.endog, mu, scale_k, data.trials)
    positive = row_weight > 0
    q = float(np.dot(row_weight[positive], ll[positive]))
    return (q if np.isfinite(q) else -np.inf), mu


def irls_step(data, row_weight, coef_k, eta_k, mu_k, q_old, scale_k):
    """One Fisher-scoring step for one component, halved until Q rises.

    Parameters
    ----------
    row_weight : ndarray (n,)
        ``w_i * tau_ik``.
    coef_k, eta_k, mu_k : current coefficients, linear predictor and mean.
    q_old : float
        ``sum_i row_weight_i log f_k(y_i)`` at the current coefficients, or
        ``None`` to accept the full step (a start with no coefficients).

    Returns
    -------
    coef, eta, mu, q, ok
        ``ok`` is False when no step improved Q or the system was singular.
    """
    family = data.family
    x = data.exog
    _, _, irls_weight, link_deriv = family.eta_derivatives(
        data.endog, mu_k, data.trials, observed=False)
    w = row_weight * irls_weight
    z = (eta_k - data.offset) + (data.endog - mu_k) * link_deriv
    w = np.where(np.isfinite(w) & np.isfinite(z), w, 0.0)
    z = np.where(w > 0, z, 0.0)
    xtw = x.T * w
    candidate, regular = _solve_normal_equations(xtw @ x, xtw @ z)
    if not np.all(np.isfinite(candidate)):
        return coef_k, eta_k, mu_k, q_old, False
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


def m_step(data, est, estep, scale_floor):
    """One generalised M-step from the E-step at ``est``."""
    family = data.family
    K = est.n_components
    row_weights = data.weights[:, None] * estep.posterior
    coef = est.coef.copy()
    scale = est.scale.copy()
    notes = []
    for k in range(K):
        c = row_weights[:, k]
        positive = c > 0
        q_old = float(np.dot(c[positive], estep.loglike[positive, k]))
        coef_k, _, mu_k, _, ok = irls_step(
            data, c, est.coef[:, k], estep.eta[:, k], estep.mu[:, k], q_old, est.scale[k])
        coef[:, k] = coef_k
        if not ok:
            notes.append(k)
        if family.estimates_scale and c.sum() > 0:
            scale[k] = max(family.mle_scale(data.endog, mu_k, c), scale_floor)
    total = data.weights.sum()
    prior = row_weights.sum(axis=0) / total
    return Estimates(coef, scale, prior), notes


def estimates_from_posterior(data, posterior, scale_floor):
    """Fit every component from scratch to posterior weights (a start)."""
    family = data.family
    n, K = posterior.shape
    p = data.n_coef
    coef = np.zeros((p, K))
    scale = np.ones(K)
    start_mu = family.start_mean(data.endog, data.trials)
    with np.errstate(divide="ignore", invalid="ignore"):
        start_eta = np.asarray(family.link(start_mu), dtype=float)
    for k in range(K):
        c = data.weights * posterior[:, k]
        coef_k, eta, mu, q = None, start_eta, start_mu, None
        for _ in range(_START_IRLS_ITER):
            coef_new, eta, mu, q_new, _ = irls_step(data, c, coef_k, eta, mu, q, 1.0)
            done = (q is not None and q_new is not None
                    and abs(q_new - q) <= 1e-10 * (abs(q_new) + 1.0))
            coef_k, q = coef_new, q_new
            if done:
                break
        if coef_k is None:
            coef_k = np.zeros(p)
            mu = family.mean(data.offset)
        coef[:, k] = coef_k
        if family.estimates_scale and c.sum() > 0:
            scale[k] = max(family.mle_scale(data.endog, mu, c), scale_floor)
    prior = (data.weights[:, None] * posterior).sum(axis=0) / data.weights.sum()
    prior = np.clip(prior, 1e-300, None)
    return Estimates(coef, scale, prior / prior.sum())


def random_partition(rng, n, K):
    """One-hot posterior of a random partition of ``n`` rows into ``K`` groups."""
    labels = rng.integers(0, K, size=n)
    posterior = np.zeros((n, K))
    posterior[np.arange(n), labels] = 1.0
    return posterior


def initial_estimates(data, K, rng, scale_floor):
    """A random start: a random partition of the rows, then an M-step."""
    return estimates_from_posterior(data, random_partition(rng, data.nobs, K), scale_floor)


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
    while n_iter < max_iter:
        if accelerate and max_iter - n_iter >= 3:
            est, estep, used, notes = _squarem_cycle(data, est, estep, scale_floor)
        else:
            est, notes = m_step(data, est, estep, scale_floor)
            estep, used = e_step(data, est), 1
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
                converged = True
                break
            next_newton = n_iter + 25
    notes = tuple(f"component {k + 1}: an IRLS step could not improve the fit"
                  for k in sorted(stuck))
    return EMRun(est, estep.llf, np.asarray(history), n_iter, converged,
                 estep.posterior, notes)


def _admissible(est, scale_floor):
    """Whether extrapolated or Newton-stepped estimates are worth evaluating."""
    return bool(np.all(np.isfinite(est.coef)) and np.all(np.isfinite(est.scale))
                and np.all(est.scale >= scale_floor) and np.all(est.prior > 0))


def _squarem_cycle(data, est0, estep0, scale_floor):
    """One SQUAREM cycle: two EM steps, an extrapolation, one stabilising step.

    Returns ``(est, estep, m_steps_used, notes)``; the result is never worse
    than the two plain EM steps.
    """
    family = data.family
    est1, notes1 = m_step(data, est0, estep0, scale_floor)
    estep1 = e_step(data, est1)
    est2, notes2 = m_step(data, est1, estep1, scale_floor)
    estep2 = e_step(data, est2)
    notes = notes1 + notes2
    if np.any(est0.prior <= 0) or np.any(est1.prior <= 0) or np.any(est2.prior <= 0):
        return est2, estep2, 2, notes
    theta0 = pack_theta(est0, family.estimates_scale)
    r = pack_theta(est1, family.estimates_scale) - theta0
    v = pack_theta(est2, family.estimates_scale) - theta0 - 2.0 * r
    norm_v = np.linalg.norm(v)
    if not (norm_v > 0 and np.all(np.isfinite(v))):
        return est2, estep2, 2, notes
    alpha = -np.linalg.norm(r) / norm_v
    used = 2
    # alpha = -1 reproduces est2; only a longer step is worth the extra E-step.
    while alpha < -1.0:
        cand = unpack_theta(theta0 - 2.0 * alpha * r + alpha ** 2 * v, data.n_coef,
                            est0.n_components, family.estimates_scale)
        if _admissible(cand, scale_floor):
            cand_estep = e_step(data, cand)
            if np.isfinite(cand_estep.llf) and cand_estep.llf >= estep0.llf:
                est3, notes3 = m_step(data, cand, cand_estep, scale_floor)
                estep3 = e_step(data, est3)
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
    family = data.family
    llfs = []
    if np.any(est.prior <= 0):
        return est, estep, llfs, False
    for _ in range(max_steps):
        info = louis_information(data, est, estep.posterior, estep.mu)
        score = observed_score(data, est, estep.posterior, estep.mu)
        if not (np.all(np.isfinite(info)) and np.all(np.isfinite(score))):
            return est, estep, llfs, False
        direction, definite = _ascent_direction(info, score)
        if direction is None:
            return est, estep, llfs, False
        theta = pack_theta(est, family.estimates_scale)
        # Half the Newton decrement: the predicted gain of the full step.
        if definite and 0.5 * score @ direction <= 1e-15 * (abs(estep.llf) + 1.0):
            # The gain is at rounding level but the parameters, whose error
            # is the square root of it, are not: one last full step, taken
            # unless the log-likelihood visibly falls.
            cand = unpack_theta(theta + direction, data.n_coef, est.n_components,
                                family.estimates_scale)
            if _admissible(cand, scale_floor):
                cand_estep = e_step(data, cand)
                if cand_estep.llf >= estep.llf - 1e-13 * (abs(estep.llf) + 1.0):
                    est, estep = cand, cand_estep
                    llfs.append(estep.llf)
            return est, estep, llfs, True
        step, accepted = 1.0, None
        for _ in range(30):
            cand = unpack_theta(theta + step * direction, data.n_coef, est.n_components,
                                family.estimates_scale)
            if _admissible(cand, scale_floor):
                cand_estep = e_step(data, cand)
                if cand_estep.llf >= estep.llf:
                    accepted = cand, cand_estep
                    break
            step *= 0.5
        if accepted is None:
            # No step gains anything: the maximum is reached to rounding.
            return est, estep, llfs, step < 1e-6
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
    eigval, eigvec = np.linalg.eigh(info)
    top = np.abs(eigval).max()
    if not top > 0:
        return None, False
    modified = np.maximum(np.abs(eigval), 1e-8 * top)
    return eigvec @ ((eigvec.T @ score) / modified), False


def newton_polish(data, run, *, scale_floor, max_steps=20):
    """Finish a converged EM run with :func:`newton_steps`.

    A run stopped by a relative tolerance can sit short of the maximum along
    slow directions (often the mixing proportions); standard errors need the
    maximum. Returns the run extended by the accepted steps.
    """
    estep = e_step(data, run.estimates)
    est, estep, llfs, _ = newton_steps(data, run.estimates, estep, scale_floor=scale_floor,
                                       max_steps=max_steps)
    if not llfs:
        return run
    return replace(run, estimates=est, llf=estep.llf,
                   history=np.concatenate([run.history, llfs]),
                   n_iter=run.n_iter + len(llfs), posterior=estep.posterior)


def diagnose(data, run, scale_floor):
    """Messages about degenerate features of a finished run.

    A component whose prior vanishes, a dispersion held at its floor (a
    Gaussian component collapsing onto a few points, where the likelihood is
    unbounded), fitted binomial probabilities of exactly 0 or 1 (separation
    within a component), a linear predictor at the overflow clip, and IRLS
    steps that could not improve a component.
    """
    est, family = run.estimates, data.family
    messages = list(run.notes)
    tau = run.posterior
    eta = linear_predictor(data, est.coef)
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
