"""The models of data not in memory: a mixture fitted on dask.

The dask backend (:mod:`emformula.backends.dask`) runs the engine's EM loop
on per-partition sums and returns the parts of a fit; this module, in the
model layer above it, makes them the package's one results class, for
``emglm`` on a dask DataFrame (:func:`fit_dask_results`) and for the
array-level model on dask arrays (:class:`DaskEMGLM`, what ``EMGLM(endog,
exog)`` returns for dask arrays).
"""

from __future__ import annotations

from .backends.dask import fit_dask
from .engine.loop import DEFAULT_TOL
from .results import EMGLMResults
from .specification import MixtureSpec

__all__ = ["fit_dask_results", "DaskEMGLM"]


def fit_dask_results(formula, data, spec, **fit):
    """:func:`~emformula.backends.dask.fit_dask` as an :class:`EMGLMResults`.

    Parameters
    ----------
    formula : str
    data : dask DataFrame
    spec : MixtureSpec
    **fit
        The keywords of :func:`~emformula.backends.dask.fit_dask`.

    Returns
    -------
    EMGLMResults
    """
    parts = fit_dask(formula, data, spec, **fit)
    res = EMGLMResults(
        parts.model, parts.run, parts.fit_options, parts.problems, parts.cov, parts.rows
    )
    # The covariance's EstimationWarnings with the fit (as in memory).
    res._covariance  # noqa: B018
    return res


class DaskEMGLM:
    """The array-level model for dask arrays: ``EMGLM(endog, exog, ...)``
    with ``endog`` and ``exog`` dask arrays (chunked by rows) returns one.

    The arrays become the columns of a dask DataFrame (``y``, and the exog
    names), so the fit is :func:`fit_dask` with the formula ``y ~ 0 + ...``.
    Weights, offset, exposure and trials may be dask arrays chunked like
    ``exog``.
    """

    def __init__(
        self,
        endog,
        exog,
        family="poisson",
        K=2,
        *,
        weights=None,
        offset=None,
        exposure=None,
        trials=None,
        link=None,
        exog_names=None,
    ):
        import dask.array as da
        import dask.dataframe as dd

        exog = da.asarray(exog)
        endog = da.asarray(endog)
        if exog.ndim == 1:
            exog = exog[:, None]
        p = exog.shape[1]
        names = list(exog_names) if exog_names is not None else [f"x{j}" for j in range(p)]
        if len(names) != p:
            raise ValueError(f"exog_names has {len(names)} names for {p} columns")
        safe = [f"x{j}" for j in range(p)]
        columns = {name: exog[:, j] for j, name in enumerate(safe)}
        if endog.ndim == 2:
            columns["successes"], columns["failures"] = endog[:, 0], endog[:, 1]
            lhs = "successes + failures"
        else:
            columns["y"] = endog
            lhs = "y"
        extra = {}
        for name, value in (
            ("weights", weights),
            ("offset", offset),
            ("exposure", exposure),
            ("trials", trials),
        ):
            if value is not None:
                columns[f"_{name}"] = da.asarray(value)
                extra[name] = f"_{name}"
        stacked = da.stack([a.astype(float) for a in columns.values()], axis=1)
        self.frame = dd.from_dask_array(stacked, columns=list(columns))
        self.formula = f"{lhs} ~ 0 + " + " + ".join(safe)
        self.spec = MixtureSpec(family, K, link=link, **extra)
        self.exog_names = names

    def fit(
        self,
        start="auto",
        *,
        n_init=10,
        max_iter=5000,
        tol=DEFAULT_TOL,
        random_state=None,
        scale_floor=None,
    ):
        """Fit by EM (see :func:`emformula.backends.dask.fit_dask`)."""
        res = fit_dask_results(
            self.formula,
            self.frame,
            self.spec,
            start=start,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
            scale_floor=scale_floor,
        )
        # Report the caller's column names, not the internal ones.
        res.model.exog_names = self.exog_names
        return res
