"""Declarations of a family's own per-component parameters.

A family lists its parameters (the dispersion, an overdispersion, cut
points...) as :class:`FamilyParameter` records in its ``parameters``
attribute; :class:`ParameterDerivatives` is what its
``parameter_derivatives`` returns. The Newton step here is the default
M-step of parameters without a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["FamilyParameter", "ParameterDerivatives", "DISPERSION", "TRANSFORMS"]

#: Transforms from a parameter's natural scale to the unconstrained scale on
#: which its derivatives, information and standard errors are taken.
TRANSFORMS = ("identity", "log")


@dataclass(frozen=True)
class FamilyParameter:
    """Declaration of one per-component parameter of a family.

    The record says what the parameter is; the family's methods
    (:meth:`MixtureFamily.mle_parameters`,
    :meth:`MixtureFamily.parameter_statistics`,
    :meth:`MixtureFamily.parameter_derivatives`) compute with all of a
    family's parameters together, because some are only estimable jointly
    (the cut points of an ordinal model).

    Parameters
    ----------
    name : str
        The label in tables and in the parameter vector (``"scale"``,
        ``"alpha"``, ``"cut1"``...).
    transform : {"identity", "log"}
        The map to the unconstrained scale: derivatives, the information
        and the engine's parameter vector are on that scale (``log(scale)``
        for the dispersion). An ordered set of cut points is declared as a
        first cut point (identity) and positive gaps (log).
    lower, upper : float
        Bounds on the natural scale (open where the transform makes them
        unreachable: a log-transformed parameter is above 0).
    description : str
        One line for documentation and summaries.
    start : float
        The value before any fit (natural scale), where the starts begin.

    Examples
    --------
    >>> p = FamilyParameter("scale", "log", lower=0.0)
    >>> float(p.to_unconstrained(1.0)), float(p.from_unconstrained(0.0))
    (0.0, 1.0)
    """

    name: str
    transform: str = "identity"
    lower: float = -np.inf
    upper: float = np.inf
    description: str = ""
    start: float = 1.0

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ValueError(
                f"transform of parameter {self.name!r} must be one of "
                f"{', '.join(TRANSFORMS)}, got {self.transform!r}"
            )
        if not self.lower < self.upper:
            raise ValueError(
                f"parameter {self.name!r} needs lower < upper, got [{self.lower}, {self.upper}]"
            )
        if self.transform == "log" and self.lower < 0:
            raise ValueError(
                f"parameter {self.name!r} is log-transformed, so its lower "
                f"bound must be at least 0, got {self.lower}"
            )

    def to_unconstrained(self, value):
        """The parameter on the scale of its derivatives (``log`` or as is)."""
        value = np.asarray(value, dtype=float)
        if self.transform == "log":
            with np.errstate(divide="ignore"):
                return np.log(value)
        return value

    def from_unconstrained(self, theta):
        """Inverse of :meth:`to_unconstrained`, kept inside the bounds."""
        theta = np.asarray(theta, dtype=float)
        with np.errstate(over="ignore"):  # a runaway Newton step: clipped to the bound
            value = np.exp(theta) if self.transform == "log" else theta
        return self.clip(value)

    def clip(self, value):
        """``value`` moved into ``[lower, upper]``."""
        return np.clip(value, self.lower, self.upper)


#: The dispersion of an exponential dispersion family, ``Var(y) = scale V(mu) / a``;
#: the engine works on ``log(scale)``.
DISPERSION = FamilyParameter(
    "scale", "log", lower=0.0, description="dispersion: Var(y) = scale * V(mu) / trials"
)


class ParameterDerivatives(NamedTuple):
    """Per-row derivatives of the log-density in a family's parameters.

    With ``m`` parameters on their unconstrained scale ``theta`` and the
    rows' broadcast shape ``shape``:

    score : ndarray (m, *shape)
        ``d log f / d theta_j``.
    info : ndarray (m, m, *shape)
        ``-d^2 log f / d theta_j d theta_l`` (observed).
    cross_eta : ndarray (m, *shape)
        ``-d^2 log f / d theta_j d eta``, the block Louis' information
        couples with the coefficients (``score_eta / scale`` for the
        dispersion of every exponential dispersion family).
    """

    score: np.ndarray
    info: np.ndarray
    cross_eta: np.ndarray


def newton_step(statistics, m):
    """``info^-1 score`` from ``[score (m), info (m*m)]``; a gradient step
    scaled by the diagonal where the information is not positive definite
    (far from the maximum)."""
    score, info = statistics[:m], statistics[m:].reshape(m, m)
    try:
        np.linalg.cholesky(info)
        return np.linalg.solve(info, score)
    except np.linalg.LinAlgError:
        return score / np.maximum(np.abs(np.diag(info)), 1.0)


def rows_of(values, keep):
    """``values[keep]`` for per-row arrays; numbers as they are."""
    values = np.asarray(values, dtype=float)
    return values[keep] if values.shape == keep.shape else values
