"""The M-step: every feature, written once against the sums of a rows backend.

One generalised M-step from the E-step at ``est`` (:func:`m_step`):

* **component coefficients**: for each component one step of weighted IRLS
  (Fisher scoring) with row weights ``w_i tau_ik``, warm-started from the
  current coefficients and halved until the component's expected
  complete-data log-likelihood Q does not decrease (Gaussian-identity: the
  exact weighted least-squares step, unchecked). The halvings of all
  components are evaluated together, one evaluation (one pass over the
  data on dask) per round;
* **shared effects** (``fixed=``): one IRLS step of the stacked K-fold
  problem for ``(b_1, ..., b_K, c)``, halved until Q summed over the
  components does not fall;
* **family parameters** (a dispersion, the negative binomial's alpha...):
  their update at the new means from the family's additive statistics, per
  component or one common value (``equal_scale``): the exact maximiser
  where the family has a closed form (the dispersions), else a Newton step
  halved until the component's Q does not fall;
* **mixing proportions**: the weighted mean posterior, or for a concomitant
  model Newton's method on the weighted multinomial log-likelihood
  ``sum_u v_u sum_k tau_uk log pi_uk`` (concave), halved until it rises.

Every M-step increases the expected complete-data log-likelihood, so EM
with it is a generalised EM algorithm: the observed log-likelihood never
decreases (Dempster, Laird and Rubin 1977, theorem 1).

The arrays-level helpers :func:`irls_step`, :func:`shared_irls_step`,
:func:`concomitant_step` and :func:`parameters_from_arrays` serve the starts (which
fit components from scratch, in memory) with the same step rules.
"""

from __future__ import annotations

import numpy as np

from .data import Estimates
from .estep import linear_predictor
from .linalg import equilibration, solve_square
from .sums import (
    candidate_sums,
    concomitant_sums,
    m_step_sums,
    multinomial_sums,
    normal_equations,
    parameter_candidate_sums,
    parameter_sums,
    shared_candidate_sums,
    stacked_normal_equations,
    stepped_coef,
    weighted_q,
)

__all__ = [
    "m_step",
    "needs_q",
    "halve_steps",
    "irls_step",
    "shared_irls_step",
    "concomitant_step",
    "maximise_multinomial",
    "family_parameters",
    "parameters_from_arrays",
    "solve_normal_equations",
]

# Largest number of step halvings in one IRLS step before it is abandoned.
_MAX_HALVINGS = 30
# Newton iterations of the concomitant M-step (each one is cheap: units x q).
_CONCOMITANT_NEWTON = 10
# Largest change of a concomitant coefficient in one Newton step.
_MAX_CONCOMITANT_STEP = 5.0


# ------------------------------------------------------------ the M-step
def needs_q(rows):
    """Whether the M-step checks Q: always, except for the exact
    Gaussian-identity step without shared effects."""
    return not (rows.family.irls_is_exact and rows.n_fixed == 0)


def m_step(rows, state, scale_floor):
    """One generalised M-step from the E-step ``state`` (see the module).

    Parameters
    ----------
    rows : rows backend (:mod:`emformula.engine.rows`)
    state
        ``rows.e_step(est)``.
    scale_floor : float
        Smallest dispersion.

    Returns
    -------
    est : Estimates
    notes : list of int
        Components whose IRLS step could not improve Q or whose system was
        singular.
    predictors
        For ``rows.e_step(est, predictors)`` (None where the backend keeps none).
    """
    sums = rows.sums(state, m_step_sums, needs_q(rows))
    if rows.n_fixed == 0:
        coef, stat, q_new, notes = _component_steps(rows, state, sums)
        fixed_coef = None
    else:
        coef, fixed_coef, stat, q_new, notes = _shared_step(rows, state, sums)
    params = family_parameters(rows, state, coef, fixed_coef, stat, q_new, scale_floor)
    prior, gamma = _mixing_step(rows, state, sums)
    new = Estimates(coef, params, prior, gamma, fixed_coef)
    return new, notes, rows.predictors(state, new)


def _component_steps(rows, state, sums):
    """Each component's IRLS step (halved until its Q holds), all at once.

    Returns the coefficients, each component's family-parameter statistic
    and Q at its new means, and the components whose step failed.
    """
    est = state.est
    K = est.n_components
    exact = not needs_q(rows)
    solutions = est.coef.copy()
    usable, regular = np.zeros(K, dtype=bool), np.ones(K, dtype=bool)
    for k in range(K):
        if not rows.family.has_coefficients_of(k):
            continue  # a point mass: nothing to step
        solution, regular[k] = solve_normal_equations(sums["xtwx"][k], sums["xtwz"][k])
        if np.isfinite(solution).all():
            solutions[:, k], usable[k] = solution, True
    if exact:
        # Weighted least squares maximises Q exactly: no check, no halving.
        values = rows.sums(state, candidate_sums, solutions, np.where(usable, 1.0, np.nan), False)
        steps, failed = np.where(usable, 1.0, 0.0), np.zeros(K, dtype=bool)
    else:
        if rows.looks_ahead:
            rows.look_ahead(state, _full_step_estimates(rows, est, solutions, usable, sums))
        steps, values, failed = halve_steps(
            sums["q_old"],
            usable,
            lambda trial: rows.sums(state, candidate_sums, solutions, trial, True),
        )
    coef = est.coef.copy()
    moved = steps > 0
    for k in np.flatnonzero(moved):
        coef[:, k] = stepped_coef(est.coef[:, k], solutions[:, k], steps[k], exact)
    q_new = np.where(moved, values["q"] if "q" in values else np.nan, sums["q_old"])
    if "param_stat" not in values or not moved.all():
        # A component left where it was keeps the statistic of its old means.
        still = rows.sums(state, parameter_sums)["param_stat"]
        stat = np.array(values.get("param_stat", still), dtype=float)
        stat[~moved] = still[~moved]
    else:
        stat = np.array(values["param_stat"], dtype=float)
    stuck = [k for k in range(K) if not usable[k] or failed[k] or not regular[k]]
    notes = [k for k in stuck if rows.family.has_coefficients_of(k)]
    return coef, stat, q_new, notes


def _full_step_estimates(rows, est, solutions, usable, sums):
    """The estimates this M-step returns if every component's full IRLS step
    holds, where they are known before its Q check: a family without
    parameters of its own and mixing proportions in closed form (else None).

    A backend whose passes over the data are costly computes the E-step at
    them in the same pass as the check (:meth:`look_ahead`), which saves one
    pass per M-step in the usual case that the full steps hold.
    """
    if rows.n_concomitant or est.params.shape[0]:
        return None
    coef = est.coef.copy()
    for k in np.flatnonzero(usable):
        coef[:, k] = stepped_coef(est.coef[:, k], solutions[:, k], 1.0, False)
    prior, _ = _mixing_step(rows, None, sums)
    return Estimates(coef, est.params.copy(), prior, None, None)


def _shared_step(rows, state, sums):
    """The stacked IRLS step of all components and the shared effects,
    halved until Q summed over the components holds."""
    est = state.est
    K, p = est.n_components, rows.n_coef
    solution, regular = solve_normal_equations(sums["normal"], sums["rhs"])
    evaluated = {}

    def evaluate(trial):
        step = trial[0]
        b, c = est.coef + step * d_coef, est.fixed_coef + step * d_fixed
        result = rows.sums(state, shared_candidate_sums, b, c)
        evaluated[step] = b, c, result["param_stat"], result["q"]
        return {"q": np.array([result["q"].sum()])}

    if np.all(np.isfinite(solution)):
        d_coef = solution[: K * p].reshape(K, p).T - est.coef
        d_fixed = solution[K * p :] - est.fixed_coef
        steps, _, failed = halve_steps(
            np.array([sums["q_old"].sum()]), np.ones(1, dtype=bool), evaluate
        )
        if steps[0] > 0:
            b, c, stat, q_new = evaluated[steps[0]]
            return b.copy(), c, stat, q_new, ([] if regular else list(range(K)))
        ok = regular and not failed[0]
    else:
        ok = False
    stat = rows.sums(state, parameter_sums)["param_stat"]
    return (est.coef.copy(), est.fixed_coef, stat, sums["q_old"], ([] if ok else list(range(K))))


def _mixing_step(rows, state, sums):
    """Mixing proportions (and concomitant coefficients) from the posterior."""
    if rows.n_concomitant == 0:
        # Closed form: the weighted mean posterior.
        return sums["prior_weight"] / sums["unit_weight"], None
    est = state.est
    K = est.n_components
    gamma = est.gamma if est.gamma is not None else np.zeros((rows.n_concomitant, K))
    if K == 1:
        return np.ones(1), gamma.copy()
    gamma, at_gamma = maximise_multinomial(
        lambda candidate: rows.sums(state, concomitant_sums, candidate), gamma
    )
    return at_gamma["prior_sum"] / at_gamma["unit_weight"], gamma


# ------------------------------------------------------- shared pieces
def solve_normal_equations(xtwx, xtwz):
    """Solve ``A b = c`` for a symmetric positive semi-definite ``A``.

    A singular ``A`` (a component with almost no weight, collinear columns
    within a component) gets the minimum-norm least-squares solution.
    Returns ``(solution, regular)``.
    """
    # Solved in equilibrated form (unit diagonal): lstsq's rank cut-off is
    # relative to the largest singular value, so on the raw matrix a column
    # in small units (x * 1e-12) would count as null (issue 14).
    s = equilibration(xtwx)
    scaled = s[:, None] * xtwx * s[None, :]
    try:
        return s * solve_square(scaled, s * xtwz), True
    except np.linalg.LinAlgError:
        return s * np.linalg.lstsq(scaled, s * xtwz, rcond=None)[0], False


def halve_steps(q_old, active, evaluate):
    """Step halving for several problems at once: the first of the steps
    1, 1/2, 1/4, ... at which each problem's Q does not fall.

    Parameters
    ----------
    q_old : ndarray (m,)
        Each problem's Q at its current point.
    active : ndarray of bool (m,)
        Problems to step (the others keep their point).
    evaluate : callable
        ``evaluate(steps)`` with ``steps`` NaN for problems already settled;
        returns a dict with ``q`` (m,) and further per-problem arrays.

    Returns
    -------
    steps : ndarray (m,)
        The accepted step; 0 where the current point is kept (a loss of Q
        at rounding level, or no step found).
    values : dict
        The arrays ``evaluate`` returned (``q`` included; first axis the
        problems), each problem's from the round its step was accepted in
        (not defined where the step is 0).
    failed : ndarray of bool (m,)
        Problems for which no step kept Q within ``_MAX_HALVINGS``.
    """
    m = q_old.size
    pending = np.array(active, dtype=bool)
    if not pending.any():
        return np.zeros(m), {}, np.zeros(m, dtype=bool)
    result = evaluate(np.where(pending, 1.0, np.nan))
    gains = pending & (result["q"] >= q_old)  # (NaN compares False, silently)
    if (gains == pending).all():
        # The usual case: every full step gains. Nothing to merge across
        # rounds (this is most M-steps, and on small data its cost shows).
        return gains.astype(float), result, np.zeros(m, dtype=bool)
    step = np.ones(m)
    accepted = np.zeros(m)
    values = {}
    # The tolerance absorbs rounding only: Q must not fall.
    floor = q_old - 1e-13 * (np.abs(q_old) + 1.0)
    for halving in range(_MAX_HALVINGS):
        if halving and not pending.any():
            break
        if halving:
            result = evaluate(np.where(pending, step, np.nan))
        q = result["q"]
        holds = pending & (q >= floor)
        gains = holds & (q >= q_old)  # a rounding-level loss keeps the old point
        accepted[gains] = step[gains]
        for key, value in result.items():
            value = np.asarray(value, dtype=float)
            values.setdefault(key, np.full(value.shape, np.nan))[gains] = value[gains]
        pending &= ~holds
        step[pending] *= 0.5
    return accepted, values, pending


def family_parameters(rows, state, coef, fixed_coef, statistic, q_new, scale_floor):
    """The family parameters' M-step at the new coefficients.

    Parameters
    ----------
    rows, state
        The rows backend and the E-step the M-step started from.
    coef, fixed_coef
        The new coefficients.
    statistic : ndarray (K, s)
        Each component's :meth:`parameter_statistics` at its new means and
        current parameters.
    q_new : ndarray (K,)
        Each component's Q there.
    scale_floor : float
        Smallest dispersion.

    Returns
    -------
    ndarray (m, K)
        The family's :meth:`parameters_from_statistics`, per component or
        from the summed statistics with ``equal_scale``; a dispersion is kept
        above the floor. For a family without a closed form
        (:attr:`parameters_exact` False) the update is a Newton step on the
        unconstrained scale, halved until each component's Q at the new
        means does not fall (the sum of the components' with
        ``equal_scale``), so the M-step stays a GEM step.
    """
    family = rows.family
    old = state.est.params
    m, K = old.shape
    if m == 0:
        return old.copy()
    members = [family.member(k) for k in range(K)]
    counts = [len(member.parameters) for member in members]
    statistic = np.asarray(statistic, dtype=float)
    proposal = old.copy()
    if rows.equal_scale:
        # One family for all components (a list of families is refused).
        width = family.statistic_size
        proposal[:] = np.asarray(
            family.parameters_from_statistics(statistic[:, :width].sum(axis=0), tuple(old[:, 0])),
            dtype=float,
        )[:, None]
    else:
        for k, member in enumerate(members):
            if counts[k]:
                proposal[: counts[k], k] = member.parameters_from_statistics(
                    statistic[k, : member.statistic_size], tuple(old[: counts[k], k])
                )
    for k, member in enumerate(members):
        if member.estimates_scale:
            proposal[0, k] = max(proposal[0, k], scale_floor)
    checked = [k for k in range(K) if counts[k] and not members[k].parameters_exact]
    if not checked:
        return proposal
    # Newton proposals: on each component's unconstrained scale, halved until
    # its Q at the new means does not fall.
    theta_old = [members[k]._unconstrained(old[: counts[k], k]) for k in range(K)]
    direction = [
        members[k]._unconstrained(proposal[: counts[k], k]) - theta_old[k] for k in range(K)
    ]
    moving = np.array([k in checked and bool(np.all(np.isfinite(direction[k]))) for k in range(K)])
    common = rows.equal_scale

    def at(steps):
        steps = np.nan_to_num(np.asarray(steps, dtype=float), nan=0.0)
        if common:
            steps = np.full(K, steps[0])
        params = proposal.copy()
        for k in checked:
            params[: counts[k], k] = (
                members[k]._natural(theta_old[k] + steps[k] * direction[k])
                if moving[k]
                else old[: counts[k], k]
            )
        return params

    def evaluate(steps):
        q = rows.sums(state, parameter_candidate_sums, coef, fixed_coef, [at(steps)])["q"][0]
        return {"q": np.array([q.sum()]) if common else q}

    q_start = np.array([np.sum(q_new)]) if common else np.asarray(q_new, dtype=float)
    active = np.array([moving.any()]) if common else moving
    steps, _, _ = halve_steps(q_start, active, evaluate)
    return at(steps)


def parameters_from_arrays(data, mu, posterior, params, scale_floor):
    """Maximum likelihood family parameters given the means, from arrays in
    memory (the starts): each component's :meth:`mle_parameters` with row
    weights ``w tau_k`` from ``params`` (m, K), or with ``equal_scale`` one
    value from the stacked K-fold data (rows repeated per component).
    Components without weight keep their parameters; a dispersion is kept
    above the floor."""
    family = data.family
    params = np.array(params, dtype=float)
    m, K = params.shape
    if m == 0:
        return params
    weights = data.weights[:, None] * posterior
    if data.equal_scale:
        if weights.sum() > 0:
            trials = np.broadcast_to(data.trials, data.endog.shape)
            params[:] = np.asarray(
                family.mle_parameters(
                    np.tile(data.endog, K),
                    mu.T.ravel(),
                    weights.T.ravel(),
                    tuple(params[:, 0]),
                    np.tile(trials, K),
                ),
                dtype=float,
            )[:, None]
    else:
        for k in range(K):
            member = family.member(k)
            m_k = len(member.parameters)
            if m_k and weights[:, k].sum() > 0:
                params[:m_k, k] = member.mle_parameters(
                    data.endog, mu[:, k], weights[:, k], tuple(params[:m_k, k]), data.trials
                )
    for k in range(K):
        if family.member(k).estimates_scale:
            params[0, k] = max(params[0, k], scale_floor)
    return params


def maximise_multinomial(evaluate, gamma, max_steps=_CONCOMITANT_NEWTON):
    """Newton's method on the concomitant M-step's objective.

    The weighted multinomial log-likelihood is concave in ``Gamma`` (columns
    ``2..K``; column 1 stays 0), so Newton's method converges from any start
    where the maximum exists; each step is halved until the objective rises,
    which keeps the M-step a GEM step even where it does not (separated
    posteriors).

    Parameters
    ----------
    evaluate : callable
        ``evaluate(gamma)`` -> :func:`emformula.engine.sums.multinomial_sums`
        at ``gamma`` (summed over the pieces of the data).
    gamma : ndarray (q, K)
        Start (the current coefficients), K >= 2.

    Returns
    -------
    gamma : ndarray (q, K)
    sums : dict
        ``evaluate(gamma)`` at the returned ``gamma``.
    """
    q, K = gamma.shape
    gamma = gamma - gamma[:, :1]
    current = evaluate(gamma)
    for _ in range(max_steps):
        direction, _ = solve_normal_equations(current["hessian"], current["gradient"])
        if not np.all(np.isfinite(direction)):
            break
        decrement = float(current["gradient"] @ direction)
        if not decrement > 1e-14 * (abs(current["objective"]) + 1.0):
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
            value = evaluate(candidate)
            if value["objective"] >= current["objective"]:
                gamma, current, accepted = candidate, value, True
                break
            step *= 0.5
        if not accepted:
            break
    return gamma, current


def concomitant_step(W, v, tau, gamma, max_steps=_CONCOMITANT_NEWTON):
    """The concomitant M-step on arrays in memory (:func:`maximise_multinomial`).

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
    if gamma.shape[1] == 1:
        return gamma.copy()
    return maximise_multinomial(lambda g: multinomial_sums(W, v, tau, g), gamma, max_steps)[0]


# ------------------------------------------ IRLS on arrays (the starts)
def irls_step(data, row_weight, coef_k, eta_k, mu_k, q_old, params_k, need_q=True, k=0):
    """One Fisher-scoring step for one component on arrays in memory, halved
    until Q rises (Gaussian-identity with ``need_q=False``: the exact step,
    unchecked). The starts fit components from scratch with it.

    Parameters
    ----------
    row_weight : ndarray (n,)
        ``w_i * tau_ik``.
    coef_k, eta_k, mu_k : current coefficients, linear predictor and mean.
    q_old : float
        ``sum_i row_weight_i log f_k(y_i)`` at the current coefficients, or
        ``None`` to accept the full step (a start with no coefficients).
    params_k : tuple
        The component's family parameters (natural scale), held fixed.
    k : int
        The component (its family, with a list of families).
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
    family = data.family.member(k)
    candidate, regular = solve_normal_equations(
        *normal_equations(data, row_weight, eta_k, mu_k, params_k, k)
    )
    if not np.all(np.isfinite(candidate)):
        return coef_k, eta_k, mu_k, q_old, False
    if family.irls_is_exact and not need_q:
        eta = x @ candidate + data.offset
        return candidate, eta, family.mean(eta), None, regular
    if coef_k is None or q_old is None:
        eta = x @ candidate + data.offset
        mu = family.mean(eta)
        return candidate, eta, mu, weighted_q(data, row_weight, eta, mu, params_k, k), regular
    direction = candidate - coef_k
    eta_direction = x @ direction
    last = {}

    def evaluate(trial):
        eta = eta_k + trial[0] * eta_direction
        mu = family.mean(eta)
        last.update(eta=eta, mu=mu, q=weighted_q(data, row_weight, eta, mu, params_k, k))
        return {"q": np.array([last["q"]])}

    steps, _, failed = halve_steps(np.array([q_old]), np.ones(1, dtype=bool), evaluate)
    if steps[0] > 0:  # the last step evaluated is the accepted one
        return coef_k + steps[0] * direction, last["eta"], last["mu"], last["q"], regular
    return coef_k, eta_k, mu_k, q_old, regular and not failed[0]


def shared_irls_step(data, row_weights, coef, fixed_coef, eta, mu, q_old, params):
    """One Fisher-scoring step of all components and the shared effects on
    arrays in memory (:func:`~emformula.engine.sums.stacked_normal_equations`),
    halved until Q summed over the components does not fall; the starts fit
    models with shared effects from scratch with it.

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
    params : ndarray (m, K)
        The components' family parameters, held fixed.

    Returns
    -------
    coef, fixed_coef, eta, mu, q, ok
    """
    p = data.n_coef
    K = row_weights.shape[1]
    candidate, regular = solve_normal_equations(
        *stacked_normal_equations(data, row_weights, eta, mu, params)
    )
    if not np.all(np.isfinite(candidate)):
        return coef, fixed_coef, eta, mu, q_old, False
    new_coef = candidate[: K * p].reshape(K, p).T
    new_fixed = candidate[K * p :]

    def at(b, c):
        eta_new = linear_predictor(data, b, c)
        mu_new = data.family.mean(eta_new)
        q = sum(
            weighted_q(
                data,
                row_weights[:, k],
                eta_new[:, k],
                mu_new[:, k],
                tuple(params[: len(data.family.member(k).parameters), k]),
                k,
            )
            for k in range(K)
        )
        return q, eta_new, mu_new

    if coef is None or q_old is None:
        q, eta_new, mu_new = at(new_coef, new_fixed)
        return new_coef, new_fixed, eta_new, mu_new, q, regular
    d_coef, d_fixed = new_coef - coef, new_fixed - fixed_coef
    last = {}

    def evaluate(trial):
        b, c = coef + trial[0] * d_coef, fixed_coef + trial[0] * d_fixed
        q, eta_new, mu_new = at(b, c)
        last.update(point=(b, c, eta_new, mu_new, q))
        return {"q": np.array([q])}

    steps, _, failed = halve_steps(np.array([q_old]), np.ones(1, dtype=bool), evaluate)
    if steps[0] > 0:
        b, c, eta_new, mu_new, q = last["point"]
        return b, c, eta_new, mu_new, q, regular
    return coef, fixed_coef, eta, mu, q_old, regular and not failed[0]
