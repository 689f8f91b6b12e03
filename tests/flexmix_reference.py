"""The R flexmix 2.3-18 reference fits of tests/reference, and emformula's
estimates put in flexmix's terms so the two can be compared row by row.

flexmix's parametrisation (tests/reference/README.md): coefficients as ours
(``(Intercept)`` for ``Intercept``), ``sigma`` = sqrt(our Gaussian scale)
and ``log(sigma)`` = log(scale) / 2, ``concomitant:alpha`` = log(pi_k / pi_1)
for constant proportions, ``concomitant:<term>`` the multinomial logit with
component 1 as reference. Components there are in the order of truth.csv;
ours are matched to them by the coefficients, and the mixing parameters are
re-based on the matched reference component (a linear map of theta, so the
standard errors follow from our covariance exactly).
"""

from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent / "reference"


def load_data(name):
    """One of the simulated data sets (``concomitant_poisson`` ...)."""
    return pd.read_csv(HERE / f"{name}.csv")


def reference(name, polish=False):
    """The flexmix fit (or its ML polish) of one model, one row per
    (component, parameter)."""
    table = pd.read_csv(
        HERE / ("flexmix_ml_polish.csv" if polish else "flexmix_extension_fits.csv")
    )
    return table[table.model == name].reset_index(drop=True)


def _term(parameter):
    return "Intercept" if parameter == "(Intercept)" else parameter


def component_order(res, ref):
    """Our component matched to each reference component (0-based list)."""
    terms = [t for t in res.params.index]
    wanted = ref[ref.parameter.map(_term).isin(terms)]
    table = (
        wanted.assign(term=wanted.parameter.map(_term))
        .pivot(index="term", columns="component", values="estimate")
        .loc[terms]
    )
    ours = res.params.to_numpy()
    target = table.to_numpy()
    return list(
        min(
            permutations(range(ours.shape[1])),
            key=lambda order: np.abs(ours[:, list(order)] - target).sum(),
        )
    )


def in_flexmix_terms(res, ref):
    """Our estimate and standard error for every row of ``ref``.

    Returns ``ref`` with two more columns, ``ours`` and ``ours_se``.
    """
    order = component_order(res, ref)
    lay = res.layout
    theta = res._theta
    cov = res.cov_params().to_numpy()
    size = lay.size

    def mixing_vector(component, j):
        """Coefficients on theta of the reference's mixing parameter j."""
        vec = np.zeros(size)
        for sign, ours in ((1.0, order[component - 1]), (-1.0, order[0])):
            if ours >= 1:
                vec[lay.gamma_index(ours)[j]] += sign
        return vec

    estimates, ses = [], []
    for row in ref.itertuples():
        k = order[row.component - 1]
        name = row.parameter
        vec = None
        if _term(name) in res.params.index:
            est, se = res.params.loc[_term(name)].iloc[k], res.bse.loc[_term(name)].iloc[k]
        elif name in res.fixed_params.index:
            est, se = res.fixed_params[name], res.fixed_bse[name]
        elif name == "sigma":
            est, se = np.sqrt(res.scale.iloc[k]), np.nan
        elif name == "log(sigma)":
            vec = np.zeros(size)
            vec[lay.scale_index[k]] = 0.5
            est = 0.5 * np.log(res.scale.iloc[k])
        elif name == "concomitant:alpha":
            vec = mixing_vector(row.component, 0)
        elif name.startswith("concomitant:"):
            term = _term(name.split(":", 1)[1])
            vec = mixing_vector(row.component, res.model.concomitant_names.index(term))
        else:
            raise KeyError(name)
        if vec is not None:
            if name != "log(sigma)":
                est = float(vec @ theta)
            se = float(np.sqrt(vec @ cov @ vec)) if np.any(vec) else np.nan
        estimates.append(est)
        ses.append(se)
    return ref.assign(ours=estimates, ours_se=ses)


def assert_matches_flexmix(res, name, *, est_atol=1e-3, se_rtol=0.02, gaussian=False):
    """The acceptance checks: log-likelihood at least flexmix's (relative
    1e-6), estimates within ``est_atol`` (of the ML polish for Gaussian
    models, whose flexmix sigma is not ML), standard errors within
    ``se_rtol`` of refit(), the same number of free parameters.

    Returns the comparison table (reference rows with ``ours``, ``ours_se``).
    """
    ref = reference(name)
    polish = reference(name, polish=True)
    loglik = float(ref.loglik.iloc[0])
    assert res.llf >= loglik - 1e-6 * abs(loglik), (res.llf, loglik)
    assert res.llf >= float(polish.loglik.iloc[0]) - 1e-6 * abs(loglik)
    assert res.df_model == int(ref.df.iloc[0])
    table = in_flexmix_terms(res, ref)
    target = in_flexmix_terms(res, polish) if gaussian else table
    np.testing.assert_allclose(target.ours, target.estimate, atol=est_atol, err_msg=name)
    has_se = table.se.notna()
    np.testing.assert_allclose(table.ours_se[has_se], table.se[has_se], rtol=se_rtol, err_msg=name)
    return table
