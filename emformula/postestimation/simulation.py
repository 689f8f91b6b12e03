"""Responses drawn from a fitted mixture at the fitted design.

The parametric bootstrap (:func:`emformula.bootstrap_lrt`,
:meth:`EMGLMResults.bootstrap` with ``kind="parametric"``) refits the model
to such draws.
"""

from __future__ import annotations

import numpy as np

from ..engine.estep import linear_predictor
from ..engine.layout import unit_prior

__all__ = ["simulate"]


def simulate(results, rng=None):
    """Draw a new response from a fitted mixture, at the fitted design.

    Each row's component is drawn from the mixing proportions, then its
    response from that component (binomial: a proportion of the row's trials).
    With groups one component is drawn per group; with a concomitant model
    from each unit's own proportions.

    Returns
    -------
    ndarray (n,)
    """
    rng = np.random.default_rng(rng)
    est = results.estimates
    data = results.model.data
    if not np.all(data.weights == 1.0):
        # A row of weight w stands for w observations: one draw per row would
        # simulate a data set with w identical copies of each response.
        raise ValueError(
            "simulating a response needs unit weights: a row of frequency "
            "weight w stands for w observations, each with its own draw. "
            "Expand the data to one row per observation (or use the "
            "nonparametric bootstrap)"
        )
    if est.gamma is None:
        labels = rng.choice(est.n_components, size=data.n_units, p=est.prior)
    else:
        # Inverse-CDF draw from each unit's own proportions.
        cdf = np.cumsum(unit_prior(data, est), axis=1)
        u = rng.uniform(size=(data.n_units, 1))
        labels = np.minimum((u > cdf).sum(axis=1), est.n_components - 1)
    labels = data.to_rows(labels)
    mu = results.family.mean(linear_predictor(data, est.coef, est.fixed_coef))
    rows = np.arange(data.nobs)
    family = results.family
    if family.n_members is None:
        params = tuple(row[labels] for row in est.params)
        return family.simulate_at(mu[rows, labels], params, data.trials, rng)
    # Each component's rows from its own family.
    y = np.empty(data.nobs)
    trials = np.broadcast_to(data.trials, (data.nobs,))
    for k in range(est.n_components):
        mine = labels == k
        member = family.member(k)
        own = tuple(est.params[: len(member.parameters), k])
        y[mine] = member.simulate_at(mu[mine, k], own, trials[mine], rng)
    return y
