"""The one registry of covariance estimators (``cov_type=``).

Every place that accepts, checks, labels or computes a covariance type reads
it from here: the fit's and the results' ``cov_type``, the command line's
``--cov-type`` choices, the summary's "Covariance Type" line, and both
backends. An estimator turns the inverse observed information (Louis') and,
when it needs them, the meat of the per-unit scores into the covariance of
the free parameters; a backend supplies the meat in whatever way suits
where its rows live (in memory from the scores, on dask summed over the
partitions).

A new estimator is one :class:`CovarianceEstimator` passed to
:func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimators import sandwich_from_meat

__all__ = [
    "CovarianceEstimator",
    "COVARIANCE_ESTIMATORS",
    "cov_type_names",
    "get_estimator",
    "register",
]


@dataclass(frozen=True)
class CovarianceEstimator:
    """How one ``cov_type`` is computed and shown.

    Attributes
    ----------
    name : str
        The value of ``cov_type`` (lower case).
    label : str
        Its name in the summary's header.
    needs_meat : bool
        Whether it needs the meat ``M`` of the sandwich ``I^-1 M I^-1``.
    needs_clusters : bool
        Whether the meat sums the scores within clusters (``cov_groups``).
    description : str
        One line for docstrings and ``--help``.
    needs_replicates : bool
        Whether it is the covariance of bootstrap replicates of the free
        parameters (the rows must be in memory to draw them).
    """

    name: str
    label: str
    needs_meat: bool
    needs_clusters: bool
    description: str
    needs_replicates: bool = False

    def covariance(self, louis_covariance, meat=None, replicates=None):
        """The covariance of the free parameters.

        Parameters
        ----------
        louis_covariance : ndarray (P, P)
            The inverse observed information (NaN rows for unidentified
            parameters, which stay NaN).
        meat : ndarray (P, P), optional
            ``sum_u v_u s_u s_u'`` (or over clusters), for estimators that
            need it.
        replicates : ndarray (B, P), optional
            Bootstrap replicates of the free parameters, for estimators that
            need them.
        """
        if self.needs_replicates:
            if replicates is None:
                raise ValueError(f"cov_type={self.name!r} needs bootstrap replicates")
            cov = np.atleast_2d(np.cov(np.asarray(replicates, dtype=float), rowvar=False))
            # Parameters Louis' information cannot identify stay NaN.
            unidentified = ~np.isfinite(np.diag(louis_covariance))
            cov[unidentified, :] = np.nan
            cov[:, unidentified] = np.nan
            return cov
        if not self.needs_meat:
            return louis_covariance
        if meat is None:
            raise ValueError(f"cov_type={self.name!r} needs the meat of the sandwich")
        return sandwich_from_meat(louis_covariance, meat)


#: ``{name: estimator}`` in the order they are listed to users.
COVARIANCE_ESTIMATORS: dict[str, CovarianceEstimator] = {}


def register(estimator):
    """Add a covariance estimator (its ``name`` becomes a ``cov_type``)."""
    if not isinstance(estimator, CovarianceEstimator):
        raise TypeError("register() takes a CovarianceEstimator")
    COVARIANCE_ESTIMATORS[estimator.name] = estimator
    return estimator


def cov_type_names():
    """The accepted values of ``cov_type``, in order."""
    return tuple(COVARIANCE_ESTIMATORS)


def get_estimator(cov_type):
    """The estimator of ``cov_type`` (case-insensitive), or a ValueError
    listing the accepted names.

    Examples
    --------
    >>> get_estimator("Robust").label
    'Robust'
    >>> get_estimator("hc3")
    Traceback (most recent call last):
    ...
    ValueError: cov_type must be one of louis, robust, cluster, bootstrap, got 'hc3'
    """
    key = cov_type.lower() if isinstance(cov_type, str) else cov_type
    if key not in COVARIANCE_ESTIMATORS:
        raise ValueError(f"cov_type must be one of {', '.join(cov_type_names())}, got {cov_type!r}")
    return COVARIANCE_ESTIMATORS[key]


register(
    CovarianceEstimator(
        "louis",
        "Louis",
        needs_meat=False,
        needs_clusters=False,
        description="inverse of Louis' observed information",
    )
)
register(
    CovarianceEstimator(
        "robust",
        "Robust",
        needs_meat=True,
        needs_clusters=False,
        description="sandwich with the observed score of each unit (row, or group)",
    )
)
register(
    CovarianceEstimator(
        "cluster",
        "Cluster",
        needs_meat=True,
        needs_clusters=True,
        description="sandwich with the scores summed within the clusters of cov_groups",
    )
)
register(
    CovarianceEstimator(
        "bootstrap",
        "Bootstrap",
        needs_meat=False,
        needs_clusters=False,
        description="covariance of bootstrap replicates (EMGLMResults.bootstrap)",
        needs_replicates=True,
    )
)
