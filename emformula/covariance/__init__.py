"""Covariance of the estimates: Louis' (model-based), robust and clustered.

``estimators`` has the matrix algebra (inverting the information whatever
the units of the covariates, the sandwich and its meat, delta-method
Jacobians of the mixing proportions); ``registry`` the one list of
``cov_type`` values and how each is computed and labelled.
"""

from .registry import COVARIANCE_ESTIMATORS, CovarianceEstimator, cov_type_names, get_estimator

__all__ = ["COVARIANCE_ESTIMATORS", "CovarianceEstimator", "cov_type_names", "get_estimator"]
