"""Covariance of the estimates: Louis' (model-based), robust and clustered."""
