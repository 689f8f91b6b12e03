"""Measures of fit that statsmodels users expect: ``llnull`` and pseudo R².

The null model is the one statsmodels' ``GLMResults.llnull`` fits: one
component with an intercept only, the same family, frequency weights,
offset and exposure (and, for the binomial, the same trials), by maximum
likelihood. For a one-component fit the numbers are statsmodels' own; for a
mixture they compare the mixture with the ordinary intercept-only GLM, the
baseline a report puts beside both.
"""

from __future__ import annotations

import numpy as np

from ..engine.data import EMData
from ..engine.initial import estimates_from_posterior
from ..engine.loop import run_em

__all__ = ["llnull", "pseudo_rsquared"]

#: Tolerance and iterations of the null model's fit (one component, one
#: coefficient: EM is IRLS here and converges in a few steps).
_NULL_TOL = 1e-13
_NULL_MAX_ITER = 1000


def llnull(res):
    """Log-likelihood of the intercept-only one-component model.

    Parameters
    ----------
    res : EMGLMResults
        A fit whose rows are in memory.

    Returns
    -------
    float

    Examples
    --------
    >>> from emformula import datasets, emglm
    >>> sim2 = datasets.load_sim2()
    >>> res = emglm(sim2.formula, sim2.data, "poisson", 2, random_state=1)
    >>> bool(res.llnull < res.llf)
    True
    """
    data = res.model.data
    null = EMData(
        data.endog, np.ones((data.nobs, 1)), data.weights, data.offset, data.trials, data.family
    )
    floor = float(res.fit_options.get("scale_floor", 0.0) or 0.0)
    start = estimates_from_posterior(null, np.ones((data.nobs, 1)), floor)
    return float(run_em(null, start, max_iter=_NULL_MAX_ITER, tol=_NULL_TOL, scale_floor=floor).llf)


def pseudo_rsquared(res, kind="cs"):
    """Pseudo R² against the intercept-only model, as statsmodels defines it.

    Parameters
    ----------
    res : EMGLMResults
    kind : {"cs", "mcf"}
        ``"cs"`` (Cox and Snell, the default as in statsmodels):
        ``1 - exp(2 (llnull - llf) / n)`` with ``n`` the weighted number of
        units (:attr:`EMGLMResults.wnobs`); ``"mcf"`` (McFadden):
        ``1 - llf / llnull``, meaningful for discrete responses.

    Returns
    -------
    float
    """
    key = str(kind).lower()
    null = res.llnull
    if key.startswith("mcf"):
        return 1.0 - res.llf / null
    if key.startswith("cox") or key in ("cs", "lr"):
        return float(1.0 - np.exp((null - res.llf) * (2.0 / res.wnobs)))
    raise ValueError(f"kind must be 'cs' (Cox and Snell) or 'mcf' (McFadden), got {kind!r}")
