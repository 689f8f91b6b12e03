"""The EM loop: SQUAREM, the Newton finish with Louis' information, diagnostics, order.

Written once against a rows backend (:mod:`emformula.engine.rows`): the
whole data in memory is one piece, a dask DataFrame one piece per
partition whose sums are added by a dask reduction. The loop decides
everything (convergence, extrapolations, step lengths) on the totals, so
a fit on dask equals the fit in memory from the same start, iteration for
iteration.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .data import EMRun
from .linalg import equilibration
from .mstep import m_step
from .rows import FINAL, as_rows
from .sums import diagnostic_sums, information_sums

__all__ = [
    "run_em",
    "has_converged",
    "newton_steps",
    "newton_polish",
    "diagnose",
    "order_components",
    "component_order",
    "NEWTON_SWITCH",
    "DEFAULT_TOL",
]

#: Default relative tolerance on the change of the log-likelihood, for every
#: backend. Tight enough that the observed score at the returned estimate is
#: negligible against its standard error, which Louis' standard errors rely on.
DEFAULT_TOL = 1e-10

#: Relative change of the log-likelihood per EM iteration below which
#: run_em tries Newton steps.
NEWTON_SWITCH = 1e-6


def has_converged(llf_old, llf_new, tol):
    """Relative change of the log-likelihood below ``tol``."""
    return abs(llf_new - llf_old) <= tol * (abs(llf_new) + 1.0)


def run_em(data, est, *, max_iter, tol, scale_floor, callback=None, accelerate=True, newton=True):
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

    Parameters
    ----------
    data : EMData or rows backend
        Arrays in memory, or any backend of :mod:`emformula.engine.rows`.

    Returns
    -------
    EMRun
        With the final estimates and the posterior of the E-step at them
        (None where the backend does not hold the rows).
    """
    rows = as_rows(data)
    state = rows.e_step(est)
    history = [state.llf]
    converged = False
    stuck = set()
    n_iter = 0
    next_newton = 0
    newton_done = False
    while n_iter < max_iter:
        if accelerate and max_iter - n_iter >= 3:
            state, used, notes = _squarem_cycle(rows, state, scale_floor)
        else:
            new, notes, predictors = m_step(rows, state, scale_floor)
            state, used = rows.e_step(new, predictors), 1
        n_iter += used
        stuck.update(notes)
        history.append(state.llf)
        if callback is not None:
            callback(n_iter, state.llf)
        if has_converged(history[-2], history[-1], tol):
            converged = True
            break
        if (
            newton
            and n_iter >= next_newton
            and has_converged(history[-2], history[-1], NEWTON_SWITCH)
        ):
            state, llfs, done = newton_steps(
                rows, state, scale_floor=scale_floor, max_steps=min(10, max_iter - n_iter)
            )
            history.extend(llfs)
            n_iter += len(llfs)
            if done:
                converged = newton_done = True
                break
            next_newton = n_iter + 25
    notes = tuple(
        f"component {k + 1}: an IRLS step could not improve the fit" for k in sorted(stuck)
    )
    return EMRun(
        state.est,
        state.llf,
        np.asarray(history),
        n_iter,
        converged,
        rows.posterior(state),
        notes,
        newton_converged=newton_done,
    )


def _admissible(est, scale_floor, family):
    """Whether extrapolated or Newton-stepped estimates are worth evaluating:
    finite, mixing proportions positive, family parameters inside their
    bounds (a dispersion at least the floor)."""
    extra = [a for a in (est.gamma, est.fixed_coef) if a is not None]
    if not (
        np.isfinite(est.coef).all()
        and np.isfinite(est.params).all()
        and (est.prior > 0).all()
        and all(np.isfinite(a).all() for a in extra)
    ):
        return False
    for k in range(est.n_components):
        member = family.member(k)
        if member.estimates_scale:
            if not est.params[0, k] >= scale_floor:
                return False
            continue
        for p, value in zip(member.parameters, est.params[:, k]):
            if not p.lower <= value <= p.upper:
                return False
    return True


def _squarem_cycle(rows, state0, scale_floor):
    """One SQUAREM cycle: two EM steps, an extrapolation, one stabilising step.

    Returns ``(state, m_steps_used, notes)``; the result is never worse than
    the two plain EM steps.
    """
    est0 = state0.est
    layout = rows.layout(est0.n_components)
    est1, notes1, predictors = m_step(rows, state0, scale_floor)
    state1 = rows.e_step(est1, predictors)
    est2, notes2, predictors = m_step(rows, state1, scale_floor)
    # Each E-step in memory holds four n x K arrays: one is let go as soon
    # as its M-step is done, which keeps the peak memory of a cycle low.
    del state1
    state2 = rows.e_step(est2, predictors)
    notes = notes1 + notes2
    if (est0.prior <= 0).any() or (est1.prior <= 0).any() or (est2.prior <= 0).any():
        return state2, 2, notes
    theta0 = layout.pack(est0)
    r = layout.pack(est1) - theta0
    v = layout.pack(est2) - theta0 - 2.0 * r
    with np.errstate(over="ignore", invalid="ignore"):  # diverging coefficients: no step
        # numpy.linalg.norm of a vector, without its dispatch (a cycle on
        # small data costs about as much as it)
        norm_v, norm_r = np.sqrt(v @ v), np.sqrt(r @ r)
    if not (norm_v > 0 and np.isfinite(norm_v) and np.isfinite(norm_r)):
        return state2, 2, notes
    alpha = -norm_r / norm_v
    used = 2
    # alpha = -1 reproduces est2; only a longer step is worth the extra E-step.
    while alpha < -1.0:
        cand = rows.unpack(layout, theta0 - 2.0 * alpha * r + alpha**2 * v)
        if _admissible(cand, scale_floor, rows.family):
            cand_state = None  # a rejected candidate's arrays go before the next
            cand_state = rows.e_step(cand)
            if np.isfinite(cand_state.llf) and cand_state.llf >= state0.llf:
                est3, notes3, predictors = m_step(rows, cand_state, scale_floor)
                del cand_state
                state3 = rows.e_step(est3, predictors)
                used += 1
                if state3.llf >= state2.llf:
                    return state3, used, notes + notes3
                break
        alpha = (alpha - 1.0) / 2.0
    return state2, used, notes


def newton_steps(rows, state, *, scale_floor, max_steps=20):
    """Safeguarded Newton steps on the observed log-likelihood.

    Louis' information is the exact negative Hessian of the observed
    log-likelihood, so near a maximum Newton converges quadratically where EM
    crawls. A step is taken only when the information is positive definite,
    and halved until the log-likelihood does not decrease, so a history that
    includes Newton steps stays monotone. Each step takes one evaluation of
    the information and score and one E-step per trial length.

    Returns
    -------
    state, llfs, converged
        ``llfs`` lists the log-likelihood after each accepted step;
        ``converged`` is True when the predicted gain of a further step is at
        rounding level.
    """
    rows = as_rows(rows)
    est = state.est
    layout = rows.layout(est.n_components)
    llfs = []
    if np.any(est.prior <= 0):
        return state, llfs, False
    for _ in range(max_steps):
        sums = rows.sums(state, information_sums, layout)
        info, score = sums["information"], sums["score"]
        if not (np.all(np.isfinite(info)) and np.all(np.isfinite(score))):
            return state, llfs, False
        direction, definite = _ascent_direction(info, score)
        if direction is None:
            return state, llfs, False
        theta = layout.pack(state.est)
        # Half the Newton decrement: the predicted gain of the full step.
        if definite and 0.5 * score @ direction <= 1e-15 * (abs(state.llf) + 1.0):
            # The gain is at rounding level but the parameters, whose error
            # is the square root of it, are not: one last full step, taken
            # unless the log-likelihood visibly falls.
            cand = rows.unpack(layout, theta + direction)
            if _admissible(cand, scale_floor, rows.family):
                # The run ends here unless the step is refused: a backend may
                # form the results' sums in this E-step's pass.
                cand_state = rows.e_step(cand, ahead=FINAL)
                if cand_state.llf >= state.llf - 1e-13 * (abs(state.llf) + 1.0):
                    state = cand_state
                    llfs.append(state.llf)
            return state, llfs, True
        step, accepted = 1.0, None
        for _ in range(30):
            cand = rows.unpack(layout, theta + step * direction)
            if _admissible(cand, scale_floor, rows.family):
                # The next step needs the information at an accepted point:
                # a backend may form it in the pass of this E-step.
                cand_state = rows.e_step(cand, ahead=(information_sums, layout))
                if cand_state.llf >= state.llf:
                    accepted = cand_state
                    break
            step *= 0.5
        if accepted is None:
            # No step gains anything: the maximum is reached to rounding,
            # if the information is positive definite there (a duplicated
            # component is a saddle point where no step gains either).
            return state, llfs, definite and step < 1e-6
        state = accepted
        llfs.append(state.llf)
    return state, llfs, False


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
    rows = as_rows(data)
    state = rows.e_step(run.estimates)
    state, llfs, done = newton_steps(rows, state, scale_floor=scale_floor, max_steps=max_steps)
    if not llfs:
        return replace(run, newton_converged=done)
    return replace(
        run,
        estimates=state.est,
        llf=state.llf,
        history=np.concatenate([run.history, llfs]),
        n_iter=run.n_iter + len(llfs),
        posterior=rows.posterior(state),
        newton_converged=done,
    )


def diagnose(data, run, scale_floor, counts=None):
    """Messages about degenerate features of a finished run.

    A component whose prior vanishes, a dispersion held at its floor (a
    Gaussian component collapsing onto a few points, where the likelihood is
    unbounded), fitted binomial probabilities of exactly 0 or 1 (separation
    within a component), a linear predictor at the overflow clip, IRLS
    steps that could not improve a component, and concomitant variables that
    separate the components (mixing proportions of 0 or 1).

    ``counts`` are :func:`~emformula.engine.sums.diagnostic_sums` at the
    run's estimates when the caller has them (a backend that formed them in
    another pass over the data); else they are summed here.
    """
    rows = as_rows(data)
    est, family = run.estimates, rows.family
    if counts is None:
        counts = rows.sums(rows.at(est, run.posterior), diagnostic_sums)
    messages = list(run.notes)
    for k in range(est.n_components):
        name = f"component {k + 1}"
        weight = counts["weight"][k]
        n_coef = rows.n_coef if family.has_coefficients_of(k) else 0
        if est.prior[k] < 1e-8 or weight < n_coef:
            messages.append(
                f"{name} has collapsed: prior {est.prior[k]:.3g}, posterior "
                f"weight {weight:.3g} for {n_coef} coefficients"
            )
        if family.member(k).estimates_scale and est.params[0, k] <= scale_floor * (1 + 1e-6):
            messages.append(
                f"{name} has its dispersion at the floor {scale_floor:.3g}: it "
                "sits on a few points, where the likelihood is unbounded"
            )
        if counts["edge"][k]:
            messages.append(
                f"{name} fits probabilities of 0 or 1 to {int(counts['edge'][k])} "
                "row(s): perfect separation, its coefficients diverge"
            )
        # Separation sends the log-odds of most units beyond any bound; a few
        # units with extreme concomitant values at log-odds beyond +-35 in a
        # fit the Newton finish confirmed are the fit's own (the zero model
        # of a zero-inflated count model on bioChemists' mentors), not
        # diverging coefficients.
        separated = counts["separated"][k]
        if separated and (not run.converged or separated > 0.05 * counts["unit_weight"]):
            messages.append(
                f"{name}: the concomitant model gives mixing proportions of "
                "0 or 1 (log-odds beyond +-35): the concomitant variables "
                "separate the components and their coefficients diverge"
            )
        if counts["overflow"][k]:
            messages.append(
                f"{name} has linear predictors beyond +-700, where exp overflows; "
                "its means were clipped"
            )
    return tuple(messages)


def order_components(run, family=None):
    """Put components in the documented order: decreasing prior.

    Ties in the prior (to 1e-10) are broken by the coefficient vectors in
    lexicographic order, so the order is a function of the estimates alone,
    the same on every backend. Components of different families (a list of
    families, ``family.differs``) keep the order of the list.
    """
    est = run.estimates
    order = component_order(est, family)
    if order == list(range(est.n_components)):
        return run
    posterior = None if run.posterior is None else run.posterior[:, order]
    return replace(run, estimates=est.permuted(order), posterior=posterior)


def component_order(est, family=None):
    """The documented order of the components of ``est`` (see
    :func:`order_components`), as a list of their positions."""
    if family is not None and family.differs:
        return list(range(est.n_components))
    keys = [tuple(np.round(est.coef[:, k], 10)) for k in range(est.n_components)]
    return sorted(range(est.n_components), key=lambda k: (-round(float(est.prior[k]), 10), keys[k]))
