"""What EM takes from the rows: sums over one piece of data at one E-step.

Everything the EM loop (:mod:`emformula.engine.loop`), its M-step
(:mod:`emformula.engine.mstep`) and the Newton finish need from the data is
a sum over rows, or over units (groups of rows): normal equations, expected
complete-data log-likelihoods (Q), dispersion statistics, posterior weights,
the multinomial log-likelihood of a concomitant model with its gradient and
Hessian, Louis' information and the observed score. A backend computes them
on each piece of the data (the whole data in memory; each partition on
dask, where a group never spans two partitions) and adds them over the
pieces (:func:`add_sums`); the engine then solves, halves and decides on the
totals, so every backend runs the same algorithm.

Every function here is called as ``function(data, estep, est, *args)``:
``data`` is the piece's :class:`~emformula.engine.data.EMData`, ``estep``
the E-step at the estimates ``est`` on that piece (computed once per piece
and pass by the backend). It returns a dict of sums (floats or arrays, all
additive over pieces). Functions that compute new linear predictors accept
``keep``, a dict that receives them when the piece stays in memory, so that
the next E-step need not compute them again; on dask it is None.
"""

from __future__ import annotations

import numpy as np

from .estep import linear_predictor, unit_posterior
from .layout import log_softmax
from .louis import louis_information, observed_score, row_derivatives

__all__ = [
    "add_sums",
    "weighted_sum",
    "weighted_q",
    "normal_equations",
    "stacked_normal_equations",
    "multinomial_sums",
    "llf_sums",
    "m_step_sums",
    "candidate_sums",
    "shared_candidate_sums",
    "parameter_sums",
    "parameter_candidate_sums",
    "concomitant_sums",
    "mean_prior_sums",
    "information_sums",
    "diagnostic_sums",
    "stepped_coef",
]


def add_sums(results):
    """Add the sums of several pieces (dicts of floats and arrays, nested)."""
    first = results[0]
    if isinstance(first, dict):
        return {key: add_sums([r[key] for r in results]) for key in first}
    return sum(results[1:], first)


# ------------------------------------------------------------- row sums
def weighted_sum(weight, values):
    """``sum_i weight_i values_i`` over the rows with positive weight.

    A plain dot product, unless a row without weight has an infinite value
    (a mean at the edge of its range where the row's posterior is 0): then
    0 * inf is NaN and those rows are left out.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # callers check for +-inf
        return _weighted_sum_quiet(weight, values)


def _weighted_sum_quiet(weight, values):
    """:func:`weighted_sum` for a caller that holds ``np.errstate`` with
    invalid and overflow ignored (entering one costs as much as the sum on
    small data)."""
    total = float(np.dot(weight, values))
    if total == total:  # not NaN
        return total
    positive = weight > 0
    return float(np.dot(weight[positive], values[positive]))


def weighted_q(data, row_weight, eta_k, mu_k, params_k, k=0):
    """Expected complete-data log-likelihood of component ``k``, ``sum_i c_i
    log f`` at the linear predictor ``eta_k``, mean ``mu_k`` and family
    parameters ``params_k`` (a tuple, natural scale); -inf where not finite."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ll = data.family.member(k).log_kernel(data.endog, mu_k, params_k, data.trials, eta=eta_k)
        ll += data.constant_of(k)
        q = _weighted_sum_quiet(row_weight, ll)
    return q if -np.inf < q < np.inf else -np.inf


def _working(data, row_weight, eta_k, mu_k, params_k=(), k=0):
    """IRLS working weight ``w`` and response ``z`` (offset removed) of
    component ``k`` at its family parameters ``params_k``, in work arrays;
    rows where either is not finite get weight 0."""
    member = data.family.member(k)
    if member.newton_irls:
        # Newton's step as IRLS (a censored response): z = eta + score / h.
        irls_weight, step = member.working_step(data.endog, mu_k, params_k, data.trials)
    else:
        irls_weight, link_deriv = member.irls_terms(data.endog, mu_k, params_k, data.trials)
    # At the edge of the mean's range the IRLS weight can be infinite where
    # the row weight is 0 (0 * inf); such rows are dropped just below.
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.multiply(row_weight, irls_weight, out=data.work_buffer("irls_weight"))
        if member.newton_irls:
            z = np.add(eta_k, step, out=data.work_buffer("irls_response"))
        else:
            z = np.subtract(data.endog, mu_k, out=data.work_buffer("irls_response"))
            z *= link_deriv
            z += eta_k
        z -= data.offset
        # Two sums find a non-finite entry (it makes its sum NaN or
        # infinite) for a fraction of the cost of the elementwise tests;
        # only then are the rows located. (A sum of finite values can
        # overflow: the elementwise test then drops nothing, and the rows
        # without weight get z = 0, which changes no sum.)
        clean = np.isfinite(w.sum()) and np.isfinite(z.sum())
    if not clean:
        ok = np.isfinite(w, out=data.work_buffer("irls_ok", dtype=bool))
        ok &= np.isfinite(z, out=data.work_buffer("irls_ok_z", dtype=bool))
        w[~ok] = 0.0
        z[w <= 0] = 0.0
    return w, z


def normal_equations(data, row_weight, eta_k, mu_k, params_k=(), k=0):
    """``(X'WX, X'Wz)`` of one component's IRLS step at ``eta_k``, ``mu_k``
    and family parameters ``params_k``.

    ``W`` is the row weight times the IRLS weight, ``z`` the working
    response without the offset. Preallocated work arrays hold ``W`` and
    ``z``: they live only until the two sums.
    """
    w, z = _working(data, row_weight, eta_k, mu_k, params_k, k)
    z *= w
    return data.gram(w), data.exog.T @ z


def stacked_normal_equations(data, row_weights, eta, mu, params=None):
    """Normal equations of one IRLS step of all components and the shared effects.

    The shared coefficients ``c`` tie the components together, so the step
    solves the stacked K-fold weighted least-squares problem (row ``i`` once
    per component, weight ``w_i tau_ik`` times its IRLS weight) from its
    block normal equations: ``X'W_k X`` on the diagonal, ``X'W_k Z`` against
    ``c`` and ``sum_k Z'W_k Z``; the stacked matrix is never formed.

    ``params`` (m, K) are the components' family parameters (none by default).

    Returns
    -------
    normal : ndarray (K p + r, K p + r)
    rhs : ndarray (K p + r,)
        In the order ``(b_1, ..., b_K, c)``.
    """
    p, r = data.n_coef, data.n_fixed
    K = row_weights.shape[1]
    size = K * p + r
    shared = slice(K * p, size)
    normal = np.zeros((size, size))
    rhs = np.zeros(size)
    for k in range(K):
        params_k = () if params is None else _own(data.family, params[:, k], k)
        w, z = _working(data, row_weights[:, k], eta[:, k], mu[:, k], params_k, k)
        own = slice(k * p, (k + 1) * p)
        # [X Z]' W [X Z] holds X'WX, X'WZ and Z'WZ at once.
        gram = data.component_gram(w)
        normal[own, own] = gram[:p, :p]
        normal[own, shared] = gram[:p, p:]
        normal[shared, own] = gram[p:, :p]
        normal[shared, shared] += gram[p:, p:]
        both = data.component_design.T @ (w * z)
        rhs[own] = both[:p]
        rhs[shared] += both[p:]
    return normal, rhs


def multinomial_sums(W, v, tau, gamma):
    """The concomitant M-step's objective ``sum_u v_u sum_k tau_uk log pi_uk``
    at ``gamma``, its gradient and negative Hessian in ``gamma_2 .. gamma_K``,
    and ``sum_u v_u pi_uk`` (the mean proportions' numerator).

    The gradient is ``W' v (tau_k - pi_k)`` and the negative Hessian has
    blocks ``W' diag(v (delta_kl pi_k - pi_k pi_l)) W``; sums over units, so
    pieces of the data add them.
    """
    q, K = gamma.shape
    logp = log_softmax(W @ gamma)
    with np.errstate(invalid="ignore"):
        terms = np.where(tau > 0, tau * logp, 0.0)
    pi = np.exp(logp)
    resid = v[:, None] * (tau - pi)
    grad = np.concatenate([W.T @ resid[:, k] for k in range(1, K)]) if K > 1 else np.zeros(0)
    hess = np.zeros(((K - 1) * q, (K - 1) * q))
    for k in range(1, K):
        for l in range(k, K):
            delta = 1.0 if k == l else 0.0
            block = W.T @ ((v * (delta * pi[:, k] - pi[:, k] * pi[:, l]))[:, None] * W)
            hess[(k - 1) * q : k * q, (l - 1) * q : l * q] = block
            hess[(l - 1) * q : l * q, (k - 1) * q : k * q] = block.T
    return {
        "objective": float(v @ terms.sum(axis=1)),
        "gradient": grad,
        "hessian": hess,
        "prior_sum": v @ pi,
        "unit_weight": float(v.sum()),
    }


def stepped_coef(coef_k, solution, step, exact):
    """The coefficients of a step of size ``step`` towards the IRLS solution.

    For a family whose step is exact (:attr:`irls_is_exact`) the solution
    itself; otherwise ``coef_k + step (solution - coef_k)``. The M-step and
    the pieces both use this, so that a piece in memory can recognise the
    coefficients whose linear predictor it kept.
    """
    if exact:
        return solution
    return coef_k + step * (solution - coef_k)


# ------------------------------------------------------ sums of an E-step
def llf_sums(data, estep, est):
    """The log-likelihood of the piece."""
    return {"llf": estep.llf}


def m_step_sums(data, estep, est, need_q):
    """What an M-step from ``est`` needs from the E-step at ``est``.

    Returns
    -------
    dict
        ``weight`` (K: ``sum_i w_i tau_ik``), ``prior_weight`` (K:
        ``sum_u v_u tau_uk``), ``unit_weight`` (``sum_u v_u``), ``q_old``
        (K: each component's Q at ``est``, zeros unless ``need_q``); without
        shared effects ``xtwx`` (K, p, p) and ``xtwz`` (K, p), each
        component's normal equations; with them ``normal`` and ``rhs``, the
        stacked ones (:func:`stacked_normal_equations`).
    """
    K = est.n_components
    p = data.n_coef
    weight, q_old = np.zeros(K), np.zeros(K)
    tau_units = unit_posterior(data, estep)
    sums = {
        "prior_weight": data.unit_weights @ tau_units,
        "unit_weight": data.unit_weight_total,
    }
    if data.fixed is None:
        xtwx, xtwz = np.zeros((K, p, p)), np.zeros((K, p))
        for k in range(K):
            # One component's row weights at a time, in a work array: no
            # n x K array of them.
            c = np.multiply(
                data.weights, estep.posterior[:, k], out=data.work_buffer("m_step_weight")
            )
            weight[k] = c.sum()
            if need_q:
                q_old[k] = weighted_sum(c, estep.loglike[:, k])
            if data.family.has_coefficients_of(k):
                xtwx[k], xtwz[k] = normal_equations(
                    data,
                    c,
                    estep.eta[:, k],
                    estep.mu[:, k],
                    _own(data.family, est.params[:, k], k),
                    k,
                )
        sums.update(xtwx=xtwx, xtwz=xtwz)
    else:
        row_weights = data.weights[:, None] * estep.posterior
        for k in range(K):
            weight[k] = row_weights[:, k].sum()
            q_old[k] = weighted_sum(row_weights[:, k], estep.loglike[:, k])
        sums["normal"], sums["rhs"] = stacked_normal_equations(
            data, row_weights, estep.eta, estep.mu, est.params
        )
    sums.update(weight=weight, q_old=q_old)
    return sums


def _own(family, column, k):
    """Component ``k``'s family parameters from its column of
    ``Estimates.params`` (the rows its family has)."""
    n = len(family.member(k).parameters)
    return tuple(column[:n].tolist()) if n else ()


def _component_values(data, c, eta_k, params_k, need_q, k=0):
    """Mean, Q (if ``need_q``) and family-parameter statistic of component
    ``k`` at ``eta_k`` (its parameters at ``params_k``)."""
    mu_k = data.family.member(k).mean(eta_k)
    q = weighted_q(data, c, eta_k, mu_k, params_k, k) if need_q else np.nan
    # Formed at every trial step (a refused one may overflow; its statistic
    # is never used), so that a step and its parameters' update take one pass.
    return mu_k, q, _parameter_statistic(data, c, mu_k, params_k, k)


def _parameter_statistic(data, c, mu_k, params_k, k=0):
    """Component ``k``'s family's :meth:`parameter_statistics` (empty for a
    family without parameters)."""
    if not params_k:
        return np.zeros(0)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(
            data.family.member(k).parameter_statistics(data.endog, mu_k, c, params_k, data.trials),
            dtype=float,
        )


def _stack_statistics(stats, family):
    """Per-component statistics (lists of 1-d arrays, None where skipped) as
    one (K, s) array, NaN where skipped (and after a shorter statistic: a
    list of families). ``s`` is the largest statistic any component's family
    has, whichever components were evaluated, so that the arrays of
    different rounds of step halving fit together."""
    K = len(stats)
    if not family.parameters:  # (a list of families: its longest member's)
        return np.zeros((K, 0))  # no family has parameters: nothing to stack
    width = max((family.member(k).statistic_size for k in range(K)), default=0)
    out = np.full((K, width), np.nan)
    for k, value in enumerate(stats):
        if value is not None:
            out[k, : len(value)] = value
    return out


def candidate_sums(data, estep, est, solutions, steps, need_q, keep=None):
    """Q and family-parameter statistic of each component at its candidate step.

    Component ``k`` is evaluated at :func:`stepped_coef` of its IRLS
    ``solutions[:, k]`` with step ``steps[k]`` (skipped where the step is
    NaN), under the posterior of ``estep``, at its current family parameters.

    Returns
    -------
    dict
        ``q`` (K; NaN where skipped or not ``need_q``) and ``param_stat``
        (K, s: the family's :meth:`parameter_statistics` at the new means).
    """
    K = est.n_components
    exact = not need_q
    q, stat = np.full(K, np.nan), [None] * K
    for k in range(K):
        step = steps[k]
        if not step > 0:
            continue
        c = np.multiply(data.weights, estep.posterior[:, k], out=data.work_buffer("m_step_weight"))
        if exact:
            eta_k = data.exog @ solutions[:, k] + data.offset
        else:
            eta_k = estep.eta[:, k] + step * (data.exog @ (solutions[:, k] - est.coef[:, k]))
        mu_k, q[k], stat[k] = _component_values(
            data, c, eta_k, _own(data.family, est.params[:, k], k), need_q, k
        )
        if keep is not None:
            keep["eta"][:, k], keep["mu"][:, k] = eta_k, mu_k
            keep["coef"][k] = stepped_coef(est.coef[:, k], solutions[:, k], step, exact)
    return {"q": q, "param_stat": _stack_statistics(stat, data.family)}


def shared_candidate_sums(data, estep, est, coef, fixed_coef, keep=None):
    """Q and family-parameter statistic of every component at ``(coef,
    fixed_coef)`` (a step of the stacked problem with shared effects)."""
    K = est.n_components
    q, stat = np.zeros(K), [None] * K
    eta = linear_predictor(data, coef, fixed_coef)
    mu = np.empty_like(eta)
    for k in range(K):
        c = data.weights * estep.posterior[:, k]
        mu[:, k], q[k], stat[k] = _component_values(
            data, c, eta[:, k], _own(data.family, est.params[:, k], k), True, k
        )
    if keep is not None:
        keep.update(eta=eta, mu=mu, coef=[coef[:, k] for k in range(K)], fixed_coef=fixed_coef)
    return {"q": q, "param_stat": _stack_statistics(stat, data.family)}


def parameter_sums(data, estep, est):
    """Each component's family-parameter statistic at the means of ``estep``
    (for components whose coefficients the M-step left where they were)."""
    stat = []
    for k in range(est.n_components):
        c = data.weights * estep.posterior[:, k]
        stat.append(
            _parameter_statistic(data, c, estep.mu[:, k], _own(data.family, est.params[:, k], k), k)
        )
    return {"param_stat": _stack_statistics(stat, data.family)}


def parameter_candidate_sums(data, estep, est, coef, fixed_coef, candidates):
    """Q and family-parameter statistic of every component at the
    coefficients ``coef``, ``fixed_coef`` and each of the family parameters ``candidates``
    (a list of (m, K) arrays), under the posterior of ``estep``: the check
    of an M-step for parameters without a closed form.

    Returns
    -------
    dict
        ``q`` (n_candidates, K) and ``param_stat`` (n_candidates, K, s).
    """
    K = est.n_components
    eta = linear_predictor(data, coef, fixed_coef)
    mu = data.family.mean(eta)
    q = np.zeros((len(candidates), K))
    stats = []
    for i, params in enumerate(candidates):
        stat = []
        for k in range(K):
            c = data.weights * estep.posterior[:, k]
            params_k = _own(data.family, params[:, k], k)
            q[i, k] = weighted_q(data, c, eta[:, k], mu[:, k], params_k, k)
            stat.append(_parameter_statistic(data, c, mu[:, k], params_k, k))
        stats.append(_stack_statistics(stat, data.family))
    return {"q": q, "param_stat": np.stack(stats)}


def concomitant_sums(data, estep, est, gamma):
    """:func:`multinomial_sums` at ``gamma`` under the unit posterior of ``estep``."""
    return multinomial_sums(
        data.unit_concomitant, data.unit_weights, unit_posterior(data, estep), gamma
    )


def mean_prior_sums(data, gamma):
    """``sum_u v_u pi_uk(gamma)`` and ``sum_u v_u``: the mean mixing proportions
    of a concomitant model (no E-step needed)."""
    pi = np.exp(log_softmax(data.unit_concomitant @ gamma))
    return {"prior_sum": data.unit_weights @ pi, "unit_weight": data.unit_weight_total}


def information_sums(data, estep, est, layout):
    """Louis' observed information and the observed score at ``est``."""
    derivatives = row_derivatives(data, est, estep.mu, estep.posterior)
    return {
        "information": louis_information(data, est, estep.posterior, estep.mu, layout, derivatives),
        "score": observed_score(data, est, estep.posterior, estep.mu, layout, derivatives),
    }


def diagnostic_sums(data, estep, est):
    """Counts behind the messages of :func:`emformula.engine.loop.diagnose`.

    Per component: posterior weight; rows it owns (posterior > 1/2) whose
    fitted mean is on the boundary of the family's range (a binomial
    probability of 0 or 1); units with concomitant log-odds against
    component 1 beyond +-35; rows it can explain whose linear predictor the
    family's mean clips; and the total unit weight. (``separated`` counts
    unit weight.)
    """
    family = data.family
    K = est.n_components
    tau = estep.posterior
    eta = linear_predictor(data, est.coef, est.fixed_coef)
    mu = family.mean(eta)
    sums = {name: np.zeros(K) for name in ("weight", "edge", "separated", "overflow")}
    sums["unit_weight"] = data.unit_weight_total
    for k in range(K):
        sums["weight"][k] = float(np.dot(data.weights, tau[:, k]))
        owned = tau[:, k] > 0.5
        member = family.member(k)
        sums["edge"][k] = np.sum(member.mean_on_boundary(mu[owned, k]))
        if est.gamma is not None and k >= 1 and data.n_units:
            logits = data.unit_concomitant @ (est.gamma[:, k] - est.gamma[:, 0])
            sums["separated"][k] = data.unit_weights @ (np.abs(logits) > 35.0)
        sums["overflow"][k] = np.sum(member.eta_clipped(eta[tau[:, k] > 0, k]))
    return sums
