"""A point mass: a component that puts all its probability on one value.

Beside a count component it makes the zero-inflated models:
``family=["pointmass", "poisson"]`` is the zero-inflated Poisson (with
``concomitant="~ z"`` the model of ``pscl::zeroinfl(y ~ x | z)``). The
component has no coefficients and no parameters; its density is 1 at
``value`` and 0 elsewhere (a probability mass, so the mixture's likelihood
is a likelihood for a discrete response).
"""

from __future__ import annotations

import numpy as np

from .base import MixtureFamily

__all__ = ["PointMass"]


class PointMass(MixtureFamily):
    """All of the component's mass at ``value``.

    Parameters
    ----------
    value : float, default 0
        Where the mass sits (0 for zero inflation).

    Examples
    --------
    >>> import numpy as np
    >>> PointMass().log_kernel(np.array([0.0, 2.0]), np.zeros(2), ()).tolist()
    [0.0, -inf]
    """

    name = "pointmass"
    has_coefficients = False
    is_discrete = True

    def __init__(self, value=0.0):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"a point mass needs a finite value, got {value}")
        self.value = value

    def __repr__(self):
        return f"PointMass(value={self.value:g})"

    @property
    def family_name(self):
        return "PointMass"

    def _identity(self):
        return (self.value,)

    # The component has no linear predictor; its "mean" is the value.
    def mean(self, eta):
        return np.full(np.shape(eta), self.value)

    def start_mean(self, y, trials):
        return np.full(np.shape(y), self.value)

    def log_kernel(self, y, mu, params, trials=1.0, eta=None):
        y = np.asarray(y, dtype=float)
        shape = np.broadcast_shapes(y.shape, np.shape(mu))
        return np.where(np.broadcast_to(y == self.value, shape), 0.0, -np.inf)

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        return self.log_kernel(y, mu, (), trials, eta)

    def eta_derivatives(self, y, mu, trials=1.0, observed=True):
        zeros = np.zeros(np.broadcast_shapes(np.shape(y), np.shape(mu)))
        return zeros, zeros, zeros, np.ones_like(zeros)

    def unit_deviance(self, y, mu, trials=1.0):
        return np.where(np.asarray(y, dtype=float) == self.value, 0.0, np.inf)

    def variance_at(self, mu, params, trials=1.0):
        return np.zeros(np.shape(mu))

    def simulate(self, mu, scale, trials, rng):
        return np.full(np.shape(mu), self.value)

    def cdf_bounds(self, y, mu, scale=1.0, trials=1.0, var_weights=1.0):
        y = np.broadcast_to(
            np.asarray(y, dtype=float), np.broadcast_shapes(np.shape(y), np.shape(mu))
        )
        below, at_or_below = (y > self.value).astype(float), (y >= self.value).astype(float)
        return below, at_or_below, 1.0 - below, 1.0 - at_or_below
