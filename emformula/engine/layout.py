"""Where each free parameter sits in the vector theta, and the mixing proportions.

The free parameters are, in this order,

    theta = (b_1, [log phi_1], ..., b_K, [log phi_K],      component-specific
             c, [log phi],                                  shared (fixed=, equal_scale=)
             alpha_2, ..., alpha_K  or  gamma_2, ..., gamma_K)   mixing proportions

(see :mod:`emformula.engine.louis` for what each block means). Packing and
unpacking theta is what SQUAREM, the Newton steps and the covariance share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import Estimates

__all__ = ["ParameterLayout", "parameter_layout", "pack_theta", "unpack_theta", "log_softmax",
           "mean_prior", "unit_prior"]


# ------------------------------------------------------------ the layout
@dataclass(frozen=True)
class ParameterLayout:
    """Where each block of the free parameters sits in theta.

    Parameters
    ----------
    n_coef : int
        Component-specific coefficients per component (``p``).
    n_components : int
    estimates_scale : bool
        Whether the family has a dispersion.
    n_fixed : int, default 0
        Coefficients shared by all components (``r``).
    equal_scale : bool, default False
        One dispersion for all components (only with ``estimates_scale``).
    n_concomitant : int, default 0
        Columns of the concomitant design (``q``); 0 for constant mixing
        proportions.

    Attributes
    ----------
    coef_index : list of ndarray
        For each component, the positions of its coefficients.
    scale_index : list of int or None
        For each component, the position of its log-dispersion (the same
        position for every component with ``equal_scale``).
    fixed_index : ndarray
        Positions of the shared coefficients.
    prior_index : ndarray
        Positions of the mixing parameters: ``alpha_2 .. alpha_K``, or
        ``gamma_2`` (q entries) ... ``gamma_K``.
    size : int
        Number of free parameters.

    Examples
    --------
    >>> lay = ParameterLayout(2, 2, True, n_fixed=1, equal_scale=True, n_concomitant=2)
    >>> lay.coef_index[1].tolist(), lay.fixed_index.tolist(), lay.scale_index
    ([2, 3], [4], [5, 5])
    >>> lay.prior_index.tolist(), lay.size
    ([6, 7], 8)
    """

    n_coef: int
    n_components: int
    estimates_scale: bool
    n_fixed: int = 0
    equal_scale: bool = False
    n_concomitant: int = 0
    coef_index: list = field(init=False, repr=False, compare=False)
    scale_index: list = field(init=False, repr=False, compare=False)
    fixed_index: np.ndarray = field(init=False, repr=False, compare=False)
    prior_index: np.ndarray = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        K, p = self.n_components, self.n_coef
        own_scale = self.estimates_scale and not self.equal_scale
        coef_index, scale_index = [], []
        pos = 0
        for _ in range(K):
            coef_index.append(np.arange(pos, pos + p))
            pos += p
            if own_scale:
                scale_index.append(pos)
                pos += 1
            else:
                scale_index.append(None)
        fixed_index = np.arange(pos, pos + self.n_fixed)
        pos += self.n_fixed
        if self.estimates_scale and self.equal_scale:
            scale_index = [pos] * K
            pos += 1
        n_prior = (K - 1) * (self.n_concomitant if self.n_concomitant else 1)
        prior_index = np.arange(pos, pos + n_prior)
        pos += n_prior
        for name, value in (("coef_index", coef_index), ("scale_index", scale_index),
                            ("fixed_index", fixed_index), ("prior_index", prior_index),
                            ("size", pos)):
            object.__setattr__(self, name, value)

    @classmethod
    def for_data(cls, data, n_components):
        """The layout of a fit of :class:`~emformula._em.EMData` with K components."""
        return cls(data.n_coef, n_components, data.family.estimates_scale,
                   n_fixed=data.n_fixed, equal_scale=data.equal_scale,
                   n_concomitant=data.n_concomitant)

    @property
    def has_concomitant(self):
        return self.n_concomitant > 0

    def eta_index(self, k):
        """Positions of every coefficient in component ``k``'s linear predictor
        (its own, then the shared ones): the columns of ``[X, Z]``."""
        return np.concatenate([self.coef_index[k], self.fixed_index])

    def gamma_index(self, k):
        """Positions of the mixing parameters of component ``k >= 1`` (0-based):
        ``alpha_k`` (one position) or ``gamma_k`` (``q`` positions)."""
        width = self.n_concomitant if self.n_concomitant else 1
        start = self.prior_index[0] + (k - 1) * width if self.prior_index.size else 0
        return np.arange(start, start + width)

    def pack(self, est):
        """The free parameters of ``est`` as one vector (the order above)."""
        theta = np.empty(self.size)
        for k in range(self.n_components):
            theta[self.coef_index[k]] = est.coef[:, k]
            if self.scale_index[k] is not None:
                theta[self.scale_index[k]] = np.log(est.scale[k])
        if self.n_fixed:
            theta[self.fixed_index] = est.fixed_coef
        if self.has_concomitant:
            gamma = np.asarray(est.gamma)
            # Re-based on component 1 in case the caller's gamma is not.
            theta[self.prior_index] = (gamma[:, 1:] - gamma[:, :1]).T.ravel()
        else:
            with np.errstate(divide="ignore"):
                theta[self.prior_index] = np.log(est.prior[1:]) - np.log(est.prior[0])
        return theta

    @np.errstate(over="ignore")  # an extrapolated log-scale may overflow: callers reject it
    def unpack(self, theta, data=None, *, mean_prior_of=None):
        """Estimates from a parameter vector.

        ``data`` (the fit's :class:`~emformula.engine.data.EMData`), or
        ``mean_prior_of`` (a function of gamma, for data not in memory), is
        needed for a concomitant model: the reported ``prior`` of its
        estimates is the weighted mean over units of the per-unit mixing
        proportions.
        """

        K = self.n_components
        coef = np.column_stack([theta[idx] for idx in self.coef_index])
        scale = np.array([np.exp(theta[i]) if i is not None else 1.0
                          for i in self.scale_index])
        fixed = theta[self.fixed_index].copy() if self.n_fixed else None
        if self.has_concomitant:
            if data is None and mean_prior_of is None:
                raise ValueError("unpacking a concomitant model needs the data")
            gamma = np.zeros((self.n_concomitant, K))
            gamma[:, 1:] = theta[self.prior_index].reshape(K - 1, self.n_concomitant).T
            prior = mean_prior(data, gamma) if mean_prior_of is None else mean_prior_of(gamma)
            return Estimates(coef, scale, prior, gamma, fixed)
        logits = np.concatenate([[0.0], theta[self.prior_index]])
        prior = np.exp(logits - logits.max())
        return Estimates(coef, scale, prior / prior.sum(), None, fixed)

def parameter_layout(n_coef, n_components, estimates_scale, *, n_fixed=0, equal_scale=False,
                     n_concomitant=0):
    """Positions of each block of theta, as a tuple.

    Returns
    -------
    coef_index, scale_index, alpha_index, size
        See :class:`ParameterLayout` (``alpha_index`` is its ``prior_index``:
        the mixing parameters, concomitant coefficients included); its
        ``fixed_index`` is not in the tuple.
    """
    lay = ParameterLayout(n_coef, n_components, estimates_scale, n_fixed=n_fixed,
                          equal_scale=equal_scale, n_concomitant=n_concomitant)
    return lay.coef_index, lay.scale_index, lay.prior_index, lay.size

def _default_layout(est, estimates_scale):
    n_fixed = 0 if est.fixed_coef is None else len(est.fixed_coef)
    n_conc = 0 if est.gamma is None else est.gamma.shape[0]
    return ParameterLayout(est.coef.shape[0], est.n_components, estimates_scale,
                           n_fixed=n_fixed, n_concomitant=n_conc)

def pack_theta(est, estimates_scale, layout=None):
    """The free parameters of ``est`` as one vector.

    ``layout`` (a :class:`ParameterLayout`) is required with ``equal_scale``;
    otherwise it is inferred from ``est``.
    """
    return (layout or _default_layout(est, estimates_scale)).pack(est)

def unpack_theta(theta, n_coef, n_components, estimates_scale, layout=None, data=None):
    """Coefficients, dispersions and priors from a parameter vector (the
    inverse of :func:`pack_theta`; ``data`` for a concomitant model)."""
    if layout is None:
        layout = ParameterLayout(n_coef, n_components, estimates_scale)
    return layout.unpack(theta, data)

# ----------------------------------------------------- mixing proportions
def log_softmax(logits):
    """Row-wise ``log softmax``: log mixing proportions from logits (n, K)."""
    # Column by column: numpy's reductions along a short last axis are
    # several times slower than K elementwise passes.
    top = logits[:, 0].copy()
    for k in range(1, logits.shape[1]):
        np.maximum(top, logits[:, k], out=top)
    shifted = logits - top[:, None]
    expo = np.exp(shifted)
    total = expo[:, 0].copy()
    for k in range(1, logits.shape[1]):
        total += expo[:, k]
    return shifted - np.log(total)[:, None]

def mean_prior(data, gamma):
    """Weighted mean over the units of the concomitant model's proportions:
    the single ``prior`` a concomitant fit reports (as flexmix's ``prior``)."""
    pi = np.exp(log_softmax(data.unit_concomitant @ gamma))
    v = data.unit_weights
    return (v @ pi) / v.sum()

def unit_prior(data, est):
    """Mixing proportions per unit, ``(n_units, K)``, or ``(1, K)`` when constant."""
    if est.gamma is None:
        return est.prior[None, :]
    return np.exp(log_softmax(data.unit_concomitant @ est.gamma))
