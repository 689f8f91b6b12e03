"""The EM engine on arrays in memory: the names of its modules in one place.

The model is

    f(y_i) = sum_k pi_k f_k(y_i; mu_ik, phi_k),   g(mu_ik) = x_i' b_k + z_i' c + offset_i

with frequency weights ``w_i``, optionally per-unit mixing proportions
(concomitant variables), shared effects ``c``, one common dispersion and
groups of rows that share one component. Its parts, each in a module of
its own:

* :mod:`~emformula.engine.estep`: the E-step;
* :mod:`~emformula.engine.sums`: what EM takes from the rows, as sums;
* :mod:`~emformula.engine.mstep`: the M-step, on those sums;
* :mod:`~emformula.engine.rows`: the rows backend of arrays in memory;
* :mod:`~emformula.engine.loop`: the EM loop with SQUAREM, the Newton
  finish, diagnostics and the component order;
* :mod:`~emformula.engine.initial`: starting estimates fitted from scratch.

This module keeps the arrays-in, arrays-out names (``e_step(data, est)``,
``m_step(data, est, estep, ...)``, ``run_em(data, est, ...)``) for callers
that hold an :class:`EMData`.
"""

from __future__ import annotations

from . import mstep as _mstep
from .data import EMData, EMRun, EStep, Estimates
from .estep import e_step, linear_predictor, log_prior, unit_posterior
from .initial import (
    SUBSAMPLE_START_ROWS,
    SUBSAMPLE_START_SIZE,
    estimates_from_posterior,
    initial_estimates,
    random_partition,
    random_start,
)
from .loop import (
    DEFAULT_TOL,
    NEWTON_SWITCH,
    _admissible,
    _ascent_direction,
    diagnose,
    has_converged,
    newton_polish,
    newton_steps,
    order_components,
    run_em,
)
from .mstep import concomitant_step, irls_step, shared_irls_step
from .mstep import solve_normal_equations as _solve_normal_equations
from .rows import MemoryRows
from .sums import normal_equations, weighted_sum

__all__ = [
    "EMData",
    "Estimates",
    "EMRun",
    "EStep",
    "e_step",
    "m_step",
    "run_em",
    "newton_steps",
    "newton_polish",
    "initial_estimates",
    "random_partition",
    "random_start",
    "estimates_from_posterior",
    "order_components",
    "diagnose",
    "log_prior",
    "linear_predictor",
    "unit_posterior",
    "concomitant_step",
    "irls_step",
    "shared_irls_step",
    "normal_equations",
    "weighted_sum",
    "has_converged",
    "NEWTON_SWITCH",
    "DEFAULT_TOL",
    "SUBSAMPLE_START_ROWS",
    "SUBSAMPLE_START_SIZE",
    "_admissible",
    "_ascent_direction",
    "_solve_normal_equations",
]


def m_step(data, est, estep, scale_floor, predictors=None):
    """One generalised M-step (:func:`emformula.engine.mstep.m_step`) from the
    E-step ``estep`` at ``est``, on arrays in memory.

    ``predictors``, a dict, receives the linear predictors and means
    (``"eta"``, ``"mu"``, both n x K) of the new coefficients, which the IRLS
    steps computed anyway: the next E-step takes them instead of computing
    them again.

    Returns
    -------
    est, notes
    """
    rows = MemoryRows(data, keep_predictors=predictors is not None)
    new, notes, kept = _mstep.m_step(rows, rows.state(est, estep), scale_floor)
    if predictors is not None:
        if kept is None:
            eta = linear_predictor(data, new.coef, new.fixed_coef)
            kept = eta, data.family.mean(eta)
        predictors["eta"], predictors["mu"] = kept
    return new, notes
