"""The latent classes of a fit: sizes, means, assignments and how well they separate.

What a latent-class report tabulates beside the coefficients: how large
each class is (Stata's ``estat lcprob``) and what its mean response is
(``estat lcmean``), both with delta-method standard errors; the hard
assignment of each unit (flexmix's ``clusters``) and its cross-table with
known labels; and the diagnostics of separation, the entropy R², the
average posterior probabilities per assigned class and the Kullback-Leibler
divergences between the components (flexmix's ``KLdiv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.genmod.families import links

from ._delta import (
    check_delta_family,
    covariance,
    eta_gradient,
    interval_on_link,
    parameters_of,
    quadratic_se,
    rows_of,
)

__all__ = [
    "class_sizes",
    "class_means",
    "clusters",
    "classification_table",
    "entropy_r2",
    "average_posterior",
    "kl_divergence",
]

_COLUMNS = ["std err", "ci_lower", "ci_upper"]


def class_sizes(res, alpha=0.05):
    """Estimated class proportions with standard errors (``estat lcprob``).

    Parameters
    ----------
    res : EMGLMResults
    alpha : float, default 0.05

    Returns
    -------
    DataFrame
        One row per component: ``proportion`` (``res.prior``: for a
        concomitant model the weighted mean over units of each unit's
        proportions), ``std err`` (``res.prior_bse``, the delta method), and
        a ``1 - alpha`` interval formed on the logit scale and mapped back,
        so that it stays inside (0, 1) for a small class.

    Examples
    --------
    >>> class_sizes(res)   # doctest: +SKIP
           proportion   std err  ci_lower  ci_upper
    comp1       0.62     0.031     0.557     0.679
    """
    proportion = res.prior.to_numpy(dtype=float)
    se = res.prior_bse.to_numpy(dtype=float)
    lower, upper = interval_on_link(proportion, se, links.Logit(), alpha)
    return pd.DataFrame(
        {"proportion": proportion, "std err": se, "ci_lower": lower, "ci_upper": upper},
        index=list(res.component_names),
    )


def class_means(res, alpha=0.05):
    """The mean response in each class, with delta-method standard errors
    (``estat lcmean``).

    The mean of class ``k`` is ``M_k = sum_i v_i mu_ik / sum_i v_i``: the
    component's mean averaged over the fit's rows (``v_i`` the frequency
    weights), what the population's mean response would be if every unit
    belonged to class ``k``. It reads as the class's level of the response
    whatever the covariates, unlike an intercept.

    Parameters
    ----------
    res : EMGLMResults
        A fit in memory.
    alpha : float, default 0.05

    Returns
    -------
    DataFrame
        One row per component: ``mean``, ``std err`` (``sqrt(g' V g)``,
        ``g = sum_i v_i h'(eta_ik) [x_i, z_i] / sum_i v_i`` at the
        component's coefficients and the shared ones), and an interval formed
        on the scale of the family's link and mapped back (a positive mean
        stays positive, a probability in (0, 1)).

    Examples
    --------
    >>> class_means(res)   # doctest: +SKIP
    """
    check_delta_family(res, "class_means")
    rows = rows_of(res)
    par = parameters_of(res)
    eta = par.eta(rows)
    mu = res.family.mean(eta)
    slope = res.family.link.inverse_deriv(eta)
    v = rows.weights / rows.weights.sum()
    cov = covariance(res)
    means = v @ mu
    se = np.empty(len(means))
    for k in range(len(means)):
        gradient = (v * slope[:, k]) @ eta_gradient(res, rows, k)
        se[k] = quadratic_se(gradient, cov)[0]
    lower, upper = interval_on_link(means, se, res.family.link, alpha)
    return pd.DataFrame(
        {"mean": means, "std err": se, "ci_lower": lower, "ci_upper": upper},
        index=list(res.component_names),
    )


def clusters(res):
    """Hard assignment of every row to its most probable component.

    Returns
    -------
    Series of int
        1-based component labels (``1`` is ``comp1``), as flexmix's
        ``clusters``, indexed as the fit's rows; with ``groups=`` every row
        of a group gets the group's component. Ties go to the lower label.

    Examples
    --------
    >>> clusters(res).value_counts()   # doctest: +SKIP
    """
    posterior = res.posterior
    labels = np.argmax(posterior.to_numpy(), axis=1) + 1
    return pd.Series(labels, index=posterior.index, name="cluster")


def classification_table(res, labels):
    """Cross-table of known labels against the hard assignments.

    Parameters
    ----------
    res : EMGLMResults
    labels : array_like or Series
        One label per row of the fit (a Series is aligned on the fit's row
        labels, so it may cover the rows dropped for missing values too).

    Returns
    -------
    DataFrame
        Counts: one row per known label, one column per assigned component
        (1-based, as :func:`clusters`); components no row is assigned to
        appear with zeros.

    Examples
    --------
    >>> classification_table(res, data["true_class"])   # doctest: +SKIP
    """
    assigned = clusters(res)
    if isinstance(labels, pd.Series):
        known = labels.reindex(assigned.index)
    else:
        known = np.asarray(labels)
        if known.shape[0] != assigned.shape[0]:
            raise ValueError(
                f"labels has {known.shape[0]} values for {assigned.shape[0]} rows in the fit"
            )
        known = pd.Series(known, index=assigned.index)
    table = pd.crosstab(known.rename("label"), assigned)
    return table.reindex(columns=range(1, res.n_components + 1), fill_value=0)


def _unit_posterior(res):
    """Posterior per unit (rows, or groups) and the units' weights."""
    data = res.model.data
    tau = res.posterior.to_numpy(dtype=float)
    if data.unit_rows is not None:
        tau = tau[data.unit_rows]
    return tau, np.asarray(data.unit_weights, dtype=float)


def entropy_r2(res):
    """Entropy R² of the classification, ``1 - E / (N log K)``.

    ``E = -sum_u v_u sum_k tau_uk log tau_uk`` is the entropy of the
    posterior (``res.entropy``) and ``N`` the weighted number of units:
    1 when every unit is assigned with certainty, 0 when every posterior is
    uniform. The usual summary of how well the classes separate (Mplus'
    "entropy"). NaN for one component, where there is nothing to classify.

    Examples
    --------
    >>> entropy_r2(res)   # doctest: +SKIP
    0.87
    """
    K = res.n_components
    if K == 1:
        return float("nan")
    return float(1.0 - res.entropy / (res.wnobs * np.log(K)))


def average_posterior(res):
    """Average posterior probabilities among the units assigned to each class.

    Row ``k``, column ``l``: the weighted mean of ``tau_ul`` over the units
    assigned to class ``k`` (their largest posterior). The diagonal is the
    average posterior probability of the assigned class, the usual
    latent-class diagnostic (values above 0.8 or so are read as a clear
    classification); the rows sum to 1.

    Returns
    -------
    DataFrame (K x K)
        Index: the assigned class (1-based, as :func:`clusters`); columns the
        components. A class no unit is assigned to has a row of NaN.

    Examples
    --------
    >>> average_posterior(res)   # doctest: +SKIP
    """
    tau, weights = _unit_posterior(res)
    K = res.n_components
    assigned = np.argmax(tau, axis=1)
    table = np.full((K, K), np.nan)
    for k in range(K):
        members = assigned == k
        if members.any():
            table[k] = weights[members] @ tau[members] / weights[members].sum()
    return pd.DataFrame(
        table, index=pd.Index(range(1, K + 1), name="assigned"), columns=list(res.component_names)
    )


def kl_divergence(res, eps=1e-4):
    """Kullback-Leibler divergences between the fitted components (flexmix's
    ``KLdiv`` of a fit).

    flexmix's definition, on its "unscaled posterior" ``u_ik = pi_ik f_ik``
    (``f_ik`` the density of row ``i``'s response under component ``k`` at
    its fitted mean ``mu_ik`` and dispersion; with ``groups=`` the product
    over the row's group, every row carrying its group's value):

        ``KL(k, l) = sum_i u_ik (log u_ik - log u_il) / sum_i u_ik``,

    the numerator summed over the rows where both ``u_ik`` and ``u_il``
    exceed ``eps``, the denominator over every row. It treats the (prior
    weighted) densities at the observed responses as a distribution over
    the rows: a large ``KL(k, l)`` means that the rows component ``k``
    explains are poorly explained by ``l``, i.e. well separated components.
    The matrix is not symmetric; its diagonal is 0. Rows count once each,
    whatever their frequency weights, as in flexmix.

    Parameters
    ----------
    res : EMGLMResults
        A fit in memory.
    eps : float, default 1e-4
        flexmix's threshold.

    Returns
    -------
    DataFrame (K x K)

    Examples
    --------
    >>> kl_divergence(res)   # doctest: +SKIP
    """
    data = res.model.data
    rows = rows_of(res)
    par = parameters_of(res)
    mu = res.family.mean(par.eta(rows))
    with np.errstate(all="ignore"):
        log_f = res.family.log_density(
            data.endog[:, None], mu, res.estimates.parameter_rows(), data.trials[:, None]
        )
        log_u = data.to_rows(data.unit_sum(log_f)) + np.log(par.prior(rows))
    u = np.exp(log_u)
    K = res.n_components
    table = np.zeros((K, K))
    for k in range(K):
        for l in range(K):
            ok = (u[:, k] > eps) & (u[:, l] > eps)
            if k != l:
                table[k, l] = (
                    np.sum(u[ok, k] * (log_u[ok, k] - log_u[ok, l])) / u[:, k].sum()
                    if ok.any()
                    else np.nan
                )
    return pd.DataFrame(table, index=list(res.component_names), columns=list(res.component_names))
