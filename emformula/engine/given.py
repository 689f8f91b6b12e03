"""Starting estimates the user gives: a start dict or a fit, checked against the model.

Both backends take a start as a results object's estimates or as a dict of
arrays; this module turns either into :class:`~emformula.engine.data.Estimates`
of the model at hand, with one message for each thing that does not fit.
The model and the dask backend differ only in how they find the concomitant
coefficients that reproduce a start's constant proportions (the design in
memory, or its column names), which they pass in.
"""

from __future__ import annotations

import numpy as np

from .data import Estimates

__all__ = ["estimates_from_dict", "checked_start"]


def estimates_from_dict(start, family, K):
    """Estimates from a start dict (shapes checked by :func:`checked_start`).

    Keys: ``params`` (p, K) and ``prior`` (K,) required; ``family_params``
    (m, K: one row per family parameter) or, for a family whose one
    parameter is the dispersion, ``scale`` (K,; not read for other
    families); ``fixed`` (r,) and
    ``concomitant`` (q, K) optional. Family parameters left out start at the
    family's :meth:`start_parameters`.

    Examples
    --------
    >>> from emformula.families import as_family
    >>> est = estimates_from_dict({"params": [[0.0, 1.0]], "prior": [0.5, 0.5],
    ...                            "scale": [1.0, 2.0]}, as_family("gaussian"), 2)
    >>> est.params.tolist()
    [[1.0, 2.0]]
    """
    missing = {"params", "prior"} - set(start)
    if missing:
        raise ValueError(f"start dict lacks {sorted(missing)}")
    m = len(family.parameters)
    names = [p.name for p in family.parameters]
    if "family_params" in start:
        params = start["family_params"]
        if hasattr(params, "loc"):  # a DataFrame like res.family_params
            params = params.loc[names].to_numpy()
        params = np.asarray(params, dtype=float).reshape(m, -1) if m else np.zeros((0, K))
    elif start.get("scale") is not None and family.estimates_scale:
        params = np.asarray(start["scale"], dtype=float)[None, :]
    else:
        # (A ``scale`` for a family without a dispersion means nothing and is
        # not read, as before family parameters were general.)
        params = np.tile(np.asarray(family.start_parameters(), dtype=float)[:, None], (1, K))
    if params.shape != (m, K):
        raise ValueError(
            f"start family parameters must have shape {(m, K)} (rows {names}), got {params.shape}"
        )
    # A list of families' results leave NaN where a component's family lacks
    # a parameter (and coefficients of a point mass): those are not read.
    params = params.copy()
    for k in range(K):
        params[len(family.member(k).parameters) :, k] = 1.0
    as_array = lambda key: None if start.get(key) is None else np.asarray(start[key], dtype=float)
    coef = np.asarray(start["params"], dtype=float)
    if coef.ndim != 2 or coef.shape[1] != K:
        raise ValueError(
            f"start params must be a 2-d array with {K} columns (one per "
            f"component), got shape {coef.shape}"
        )
    if coef.ndim == 2 and coef.shape[1] == K:
        coef = coef.copy()
        for k in range(K):
            if not family.has_coefficients_of(k):
                coef[:, k] = 0.0
    return Estimates(
        coef,
        params,
        np.asarray(start["prior"], dtype=float),
        as_array("concomitant"),
        as_array("fixed"),
    )


def checked_start(
    est,
    *,
    family,
    n_coef,
    K,
    equal_scale=False,
    fixed_names=(),
    concomitant_names=(),
    gamma_from_prior=None,
    mean_prior_of=None,
):
    """The start ``est`` as estimates of the model, or a ValueError saying
    what does not fit.

    Parameters
    ----------
    est : Estimates
    family : MixtureFamily
    n_coef, K : int
        Coefficients per component and components of the model.
    equal_scale : bool
        One value per family parameter: the start's are averaged on their
        unconstrained scale (the geometric mean of dispersions).
    fixed_names, concomitant_names : sequence of str
        The shared effects and concomitant terms (empty without them).
    gamma_from_prior : callable, optional
        ``gamma_from_prior(prior)``: concomitant coefficients reproducing
        constant proportions, for a start without concomitant coefficients.
    mean_prior_of : callable, optional
        ``mean_prior_of(gamma)``: the mean mixing proportions of a
        concomitant model.
    """
    est = est.for_family(family)
    p = n_coef
    if est.coef.shape != (p, K):
        raise ValueError(
            f"start params have shape {est.coef.shape}, expected {(p, K)} "
            f"({p} coefficients x {K} components)"
        )
    prior = np.asarray(est.prior, dtype=float)
    if prior.shape != (K,) or np.any(prior < 0) or not np.isclose(prior.sum(), 1):
        raise ValueError(f"start prior must be {K} non-negative numbers summing to 1")
    params = np.array(est.params, dtype=float)
    if params.shape[1:] != (K,):
        raise ValueError(f"start family parameters must have {K} columns, got {params.shape}")
    coef = np.array(est.coef, dtype=float)
    for k in range(K):
        member = family.member(k)
        if not member.has_coefficients:
            coef[:, k] = 0.0  # a point mass: not read
        for j, parameter in enumerate(member.parameters):
            value = params[j, k]
            if not parameter.lower <= value <= parameter.upper:
                raise ValueError(
                    f"start {parameter.name} of component {k + 1} must be in "
                    f"[{parameter.lower}, {parameter.upper}], got {value}"
                )
            if parameter.transform == "log" and value <= 0:
                raise ValueError(
                    f"start {parameter.name} of component {k + 1} must be positive, got {value}"
                )
        params[len(member.parameters) :, k] = 1.0  # rows this component's family lacks
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(params))):
        raise ValueError("start has missing or infinite values")
    prior = prior / prior.sum()
    if equal_scale and params.size:
        # One value per parameter: the mean on the unconstrained scale.
        common = family._natural(
            np.mean([family._unconstrained(params[:, k]) for k in range(K)], axis=0)
        )
        params[:] = common[:, None]
    fixed = None
    if len(fixed_names):
        fixed = (
            np.zeros(len(fixed_names))
            if est.fixed_coef is None
            else np.asarray(est.fixed_coef, dtype=float).ravel()
        )
        if fixed.shape != (len(fixed_names),) or not np.all(np.isfinite(fixed)):
            raise ValueError(
                f"start fixed must be {len(fixed_names)} finite numbers (the "
                f"shared effects {list(fixed_names)})"
            )
    if not len(concomitant_names):
        return Estimates(coef, params, prior, None, fixed)
    q = len(concomitant_names)
    if est.gamma is None:
        gamma = gamma_from_prior(prior)
    else:
        gamma = np.asarray(est.gamma, dtype=float)
        if gamma.shape != (q, K) or not np.all(np.isfinite(gamma)):
            raise ValueError(
                f"start concomitant must be a finite ({q}, {K}) array (one "
                f"row per concomitant term {list(concomitant_names)})"
            )
        gamma = gamma - gamma[:, :1]
    return Estimates(coef, params, mean_prior_of(gamma), gamma, fixed)
