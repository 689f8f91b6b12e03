"""Results of a fit on a dask DataFrame.

:class:`DaskEMGLMResults` is an :class:`~emformula.results.EMGLMResults`
whose row-wise results stay lazy: ``posterior``, ``fittedvalues`` and
``predict`` return dask collections; the estimates, standard errors (Louis'
information summed over the partitions), the summary and ``compare`` are
the in-memory ones, Louis', robust or clustered (their meats summed over the
partitions in the final pass). Residual plots need the rows in memory:
compute a sample (``ddf.sample(...).compute()``) and refit or use ``EMGLM``
on it.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..engine import em as _em
from ..formula.dask_design import partition_arrays
from ..engine.layout import ParameterLayout
from ..covariance.estimators import sandwich_from_meat
from ..results import EMGLMResults

__all__ = ["DaskEMGLMResults"]


class _DataShape:
    """What the results need to know of the data without holding it."""

    def __init__(self, n_coef, family, equal_scale=False):
        self.n_coef = n_coef
        self.family = family
        self.n_fixed = 0
        self.n_concomitant = 0
        self.equal_scale = equal_scale
        self.groups = None
        self.concomitant = None


class _DaskModel:
    """The model behind a dask fit: names, family and the partition design."""

    def __init__(self, design, family, K, nobs, context, equal_scale=False):
        self.design = design
        self.family = family
        self.K = K
        self.nobs = nobs
        self.context = context
        self.formula = design.formula
        self.exog_names = design.exog_names
        self.endog_names = design.endog_names
        self.fixed_names = []
        self.concomitant_names = None
        self.groups_name = "groups"
        self.data = _DataShape(len(design.exog_names), family, equal_scale)

    @property
    def layout(self):
        return ParameterLayout(len(self.exog_names), self.K, self.family.estimates_scale,
                               equal_scale=self.data.equal_scale)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["context"] = None
        return state


class _Arguments:
    """The fixed arguments of a partition function, with a dask token.

    dask names every graph by hashing its arguments; the formula's namespace
    (a formulaic LayeredMapping) cannot be hashed deterministically, so the
    arguments travel in this holder, which carries its own unique token.
    """

    def __init__(self, **values):
        import uuid

        self.__dict__.update(values)
        self._token = uuid.uuid4().hex

    def __dask_tokenize__(self):
        return self._token


def _partition_frame(part, args, what):
    model_spec, column_args, context = args.model_spec, args.column_args, args.context
    est, family, names = args.estimates, args.family, args.names
    arrays = partition_arrays(part, model_spec, column_args, context)
    offset = np.zeros(arrays["exog"].shape[0])
    if arrays["offset"] is not None:
        offset += arrays["offset"]
    if arrays["exposure"] is not None:
        offset += np.log(arrays["exposure"])
    eta = arrays["exog"] @ est.coef + offset[:, None]
    index = arrays["index"]
    if what == "linear":
        return pd.DataFrame(eta, index=index, columns=names)
    mu = family.mean(eta)
    if what == "component":
        return pd.DataFrame(mu, index=index, columns=names)
    if what == "mean":
        return pd.Series(mu @ est.prior, index=index, name="predicted")
    # posterior: needs the response
    endog = arrays["endog"]
    trials = arrays["trials"]
    if endog.ndim == 2:
        trials = endog.sum(axis=1)
        endog = np.divide(endog[:, 0], trials, out=np.zeros(len(trials)), where=trials > 0)
    n = endog.shape[0]
    data = _em.EMData(endog, arrays["exog"], np.ones(n), offset,
                      np.ones(n) if trials is None else trials, family)
    return pd.DataFrame(_em.e_step(data, est).posterior, index=index, columns=names)


def _dask_cov_type(cov_type):
    """The covariance type, checked: "louis", "robust" or "cluster"."""
    key = str(cov_type).lower()
    if key not in ("louis", "robust", "cluster"):
        raise ValueError(f"cov_type must be 'louis', 'robust' or 'cluster', got {cov_type!r}")
    return key


class DaskEMGLMResults(EMGLMResults):
    """Results of :func:`emformula.emglm` on a dask DataFrame (see the module)."""

    def __init__(self, *, design, family, estimates, llf, history, n_iter, converged,
                 information, entropy, nobs, wnobs, chunks, context, passes, scale_floor,
                 meat=None, cluster_scores=None, cluster_name=None, cov_type="louis",
                 equal_scale=False):
        model = _DaskModel(design, family, estimates.n_components, nobs, context, equal_scale)
        run = _em.EMRun(estimates, llf, np.asarray(history), n_iter, converged, None)
        clusters = None
        if cluster_scores is not None:
            summed = np.asarray(cluster_scores, dtype=float)
            clusters = {"meat": summed.T @ summed, "n_clusters": summed.shape[0],
                        "name": cluster_name}
        d = self.__dict__
        d["_meat"] = None if meat is None else np.asarray(meat)
        d["_clusters"] = clusters
        super().__init__(model, run, fit_options={"passes": passes, "backend": "dask",
                                                  "scale_floor": scale_floor},
                         cov=self._cov_choice(cov_type))
        d["_information"] = np.asarray(information)
        d["entropy"] = float(entropy)
        d["_wnobs"] = float(wnobs)

    def _cov_choice(self, cov_type):
        """What :attr:`_cov` keeps for ``cov_type`` (see :func:`_dask_cov_type`)."""
        key = _dask_cov_type(cov_type)
        if key == "robust" and self._meat is None:
            raise NotImplementedError("this dask fit has no robust meat (pickled by an "
                                      "older version): fit again")
        if key != "cluster":
            return {"type": key}
        if self._clusters is None:
            raise NotImplementedError("a clustered covariance of a dask fit needs the "
                                      "cluster column at fit time: emglm(..., "
                                      "cov_type='cluster', cov_groups='column')")
        return {"type": "cluster", "n_clusters": self._clusters["n_clusters"],
                "name": self._clusters["name"]}

    @property
    def wnobs(self):
        return self._wnobs

    @property
    def n_groups(self):
        return None

    @property
    def deviance(self):
        return np.nan

    @cached_property
    def _covariance(self):
        if self.cov_type == "louis":
            return self._louis_covariance
        # The meats were summed over the partitions in the final pass.
        meat = self._clusters["meat"] if self.cov_type == "cluster" else self._meat
        return sandwich_from_meat(self._louis_covariance, meat)

    def _lazy(self, data, what, meta):
        import dask.dataframe as dd

        design = self.model.design
        frame = design.frame if data is None else data
        if not hasattr(frame, "map_partitions"):
            raise TypeError("predict on a dask fit takes a dask DataFrame (or no data)")
        if data is not None and design.frame is not data:
            # New data: the training categories, so every partition encodes alike.
            cats = {c: t for c, t in design.frame.dtypes.items()
                    if isinstance(t, pd.CategoricalDtype) and c in frame.columns}
            frame = frame.astype(cats) if cats else frame
        # Predictions need the offset, exposure and trials columns only (not
        # the weights or the cluster labels of the fit).
        needed = {name: column for name, column in design.column_args.items()
                  if name in ("offset", "exposure", "trials")}
        args = _Arguments(model_spec=design.model_spec, column_args=needed,
                          context=self.model.context, estimates=self.estimates,
                          family=self.family, names=self.component_names)
        return frame.map_partitions(_partition_frame, args, what, meta=meta)

    @property
    def posterior(self):
        """Posterior probabilities, a lazy dask DataFrame (one column per component)."""
        return self._lazy(None, "posterior", self._meta_frame())

    @property
    def fittedvalues(self):
        """Mixture mean of each row, a lazy dask Series."""
        return self._lazy(None, "mean", pd.Series(dtype=float, name="predicted"))

    def _meta_frame(self):
        return pd.DataFrame({name: pd.Series(dtype=float) for name in self.component_names})

    def predict(self, data=None, type="mean", **kwargs):
        """Lazy predictions: ``type`` "mean" (Series), "component", "linear"
        or "posterior" (DataFrames; "posterior" needs the response)."""
        if kwargs:
            raise TypeError(f"predict on a dask fit takes no {sorted(kwargs)}: offsets and "
                            "exposures come from their columns")
        if type not in ("mean", "component", "linear", "posterior"):
            raise ValueError(f"type must be 'mean', 'component', 'linear' or 'posterior', "
                             f"got {type!r}")
        meta = (pd.Series(dtype=float, name="predicted") if type == "mean"
                else self._meta_frame())
        return self._lazy(data, type, meta)

    def residuals(self, *args, **kwargs):
        raise NotImplementedError("residuals need the rows in memory: fit EMGLM to a computed "
                                  "sample, or compute predict() and the response")

    def with_cov_type(self, cov_type, cov_groups=None):
        """The same fit with Louis' (``"louis"``), the robust sandwich
        (``"robust"``) or, when the fit was given ``cov_groups``, the
        clustered (``"cluster"``) covariance; new cluster labels would need
        another pass over the data."""
        if cov_groups is not None:
            if _dask_cov_type(cov_type) != "cluster":
                raise ValueError("cov_groups is only used with cov_type='cluster'")
            own = (self._clusters or {}).get("name")
            if not (isinstance(cov_groups, str) and cov_groups == own):
                raise NotImplementedError("new cluster labels for a dask fit: fit again "
                                          "with cov_type='cluster', cov_groups='column'")
        state = self.__getstate__()
        state["fit_options"] = dict(state["fit_options"])
        state["_cov"] = self._cov_choice(cov_type)
        new = object.__new__(type(self))
        new.__setstate__(state)
        return new

    def __getstate__(self):
        state = super().__getstate__()
        state.update(_information=self._information, entropy=self.entropy,
                     _wnobs=self._wnobs, _meat=self._meat, _clusters=self._clusters)
        return state

    def __setstate__(self, state):
        # Results pickled before the robust and clustered meats existed.
        state.setdefault("_meat", None)
        state.setdefault("_clusters", None)
        super().__setstate__(state)
