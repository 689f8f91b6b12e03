"""Residuals of mixture fits and of statsmodels GLMs (placeholder, being written)."""


def residuals(res, type="deviance", component=None, random_state=None):
    raise NotImplementedError
