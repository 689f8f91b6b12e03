"""Starting estimates fitted from scratch: from a posterior, a random partition.

Every component is fitted by IRLS to posterior-weighted rows until its
expected complete-data log-likelihood settles (:func:`estimates_from_posterior`);
a random start does so for a random partition of the units. These work on
arrays in memory: the start strategy (:mod:`emformula.engine.starts`) runs
in memory, on a sample of the rows where the data are not in memory.
"""

from __future__ import annotations

import numpy as np

from .data import Estimates
from .estep import linear_predictor
from .layout import mean_prior
from .loop import run_em
from .mstep import concomitant_step, irls_step, parameters_from_arrays, shared_irls_step

__all__ = [
    "estimates_from_posterior",
    "random_partition",
    "initial_estimates",
    "random_start",
    "SUBSAMPLE_START_ROWS",
    "SUBSAMPLE_START_SIZE",
]

# IRLS iterations when coefficients are fitted from scratch (a start), and
# their relative tolerance: a start only has to be a reasonable place to
# begin EM, so it is not polished.
_START_IRLS_ITER = 50
_START_TOL = 1e-6


def estimates_from_posterior(data, posterior, scale_floor):
    """Fit every component from scratch to posterior weights (a start).

    ``posterior`` is per row (with groups, every row of a group carries the
    group's posterior).
    """
    family = data.family
    n, K = posterior.shape
    p = data.n_coef
    coef = np.zeros((p, K))
    # The coefficients are fitted at the family's start parameters, then the
    # parameters at the fitted means (rows a component's family lacks hold 1).
    params = np.ones((len(family.parameters), K))
    for k in range(K):
        start = family.member(k).start_parameters()
        params[: len(start), k] = start
    fixed_coef = None
    row_weights = data.weights[:, None] * posterior
    mus = np.empty((n, K))
    if data.fixed is None:
        for k in range(K):
            member = family.member(k)
            if not member.has_coefficients:
                mus[:, k] = member.mean(data.offset)
                continue
            start_mu = member.start_mean(data.endog, data.trials)
            with np.errstate(divide="ignore", invalid="ignore"):
                start_eta = np.asarray(member.link(start_mu), dtype=float)
            c = row_weights[:, k]
            own = tuple(params[: len(member.parameters), k])
            coef_k, eta, mu, q = None, start_eta, start_mu, None
            for _ in range(_START_IRLS_ITER):
                coef_new, eta, mu, q_new, _ = irls_step(data, c, coef_k, eta, mu, q, own, k=k)
                done = (
                    q is not None
                    and q_new is not None
                    and abs(q_new - q) <= _START_TOL * (abs(q_new) + 1.0)
                )
                coef_k, q = coef_new, q_new
                if done:
                    break
            if coef_k is None:
                coef_k = np.zeros(p)
                mu = member.mean(data.offset)
            coef[:, k] = coef_k
            mus[:, k] = mu
    else:
        start_mu = family.start_mean(data.endog, data.trials)
        with np.errstate(divide="ignore", invalid="ignore"):
            start_eta = np.asarray(family.link(start_mu), dtype=float)
        b, c_fixed, q = None, None, None
        eta = np.repeat(start_eta[:, None], K, axis=1)
        mu = np.repeat(start_mu[:, None], K, axis=1)
        for _ in range(_START_IRLS_ITER):
            b_new, c_new, eta, mu, q_new, _ = shared_irls_step(
                data, row_weights, b, c_fixed, eta, mu, q, params
            )
            done = (
                q is not None
                and q_new is not None
                and abs(q_new - q) <= _START_TOL * (abs(q_new) + 1.0)
            )
            b, c_fixed, q = b_new, c_new, q_new
            if done:
                break
        if b is None:
            b, c_fixed = np.zeros((p, K)), np.zeros(data.n_fixed)
            mu = family.mean(linear_predictor(data, b, c_fixed))
        coef, fixed_coef, mus = b.copy(), c_fixed, mu
    params = parameters_from_arrays(data, mus, posterior, params, scale_floor)
    tau_units = posterior if data.groups is None else posterior[data.unit_rows]
    if data.concomitant is None:
        prior = (data.unit_weights[:, None] * tau_units).sum(axis=0) / data.unit_weights.sum()
        prior = np.clip(prior, 1e-300, None)
        return Estimates(coef, params, prior / prior.sum(), None, fixed_coef)
    gamma = concomitant_step(
        data.unit_concomitant,
        data.unit_weights,
        tau_units,
        np.zeros((data.n_concomitant, K)),
        max_steps=25,
    )
    return Estimates(coef, params, mean_prior(data, gamma), gamma, fixed_coef)


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
    return run_em(sub, est, max_iter=500, tol=1e-6, scale_floor=scale_floor, newton=False).estimates
