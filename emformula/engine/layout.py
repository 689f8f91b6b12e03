"""Where each free parameter sits in the vector theta, and the mixing proportions.

The free parameters are, in this order,

    theta = (b_1, [t_1], ..., b_K, [t_K],                  component-specific
             c, [t],                                       shared (fixed=, equal_scale=)
             alpha_2, ..., alpha_K  or  gamma_2, ..., gamma_K)   mixing proportions

``t_k`` are component ``k``'s family parameters on their unconstrained
scale (``log phi_k`` for a dispersion, ``log alpha_k`` for the negative
binomial; none for Poisson), ``t`` their one common value with
``equal_scale`` (see :mod:`emformula.engine.louis` for what each block
means). Packing and unpacking theta is what SQUAREM, the Newton steps and
the covariance share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import Estimates

__all__ = [
    "ParameterLayout",
    "parameter_layout",
    "pack_theta",
    "unpack_theta",
    "log_softmax",
    "mean_prior",
    "unit_prior",
]


# ------------------------------------------------------------ the layout
@dataclass(frozen=True)
class ParameterLayout:
    """Where each block of the free parameters sits in theta.

    Parameters
    ----------
    n_coef : int
        Component-specific coefficients per component (``p``).
    n_components : int
    n_params : int or tuple of int
        Family parameters per component (``m``; a bool reads as 0 or 1:
        whether the family has a dispersion), or one count per component
        (a list of families).
    n_fixed : int, default 0
        Coefficients shared by all components (``r``).
    equal_scale : bool, default False
        One value of each family parameter for all components.
    n_concomitant : int, default 0
        Columns of the concomitant design (``q``); 0 for constant mixing
        proportions.
    transforms : tuple of str, optional
        Each family parameter's map to theta (``"log"`` or ``"identity"``,
        :class:`~emformula.families.FamilyParameter`); ``"log"`` for all by
        default (a dispersion). With counts per component, one tuple per
        component.
    coefficients : tuple of bool, optional
        Whether each component has coefficients (a point mass has none);
        all by default.

    Attributes
    ----------
    counts, component_transforms : tuple
        Each component's number of family parameters and their transforms
        (``n_params`` is then the largest count: the rows of
        ``Estimates.params``).
    coef_index : list of ndarray
        For each component, the positions of its coefficients (none for a
        component without coefficients).
    param_index : list of ndarray
        For each component, the positions of its family parameters (the
        same positions for every component with ``equal_scale``).
    fixed_index : ndarray
        Positions of the shared coefficients.
    prior_index : ndarray
        Positions of the mixing parameters: ``alpha_2 .. alpha_K``, or
        ``gamma_2`` (q entries) ... ``gamma_K``.
    size : int
        Number of free parameters.

    Examples
    --------
    >>> lay = ParameterLayout(2, 2, 1, n_fixed=1, equal_scale=True, n_concomitant=2)
    >>> lay.coef_index[1].tolist(), lay.fixed_index.tolist(), lay.scale_index
    ([2, 3], [4], [5, 5])
    >>> lay.prior_index.tolist(), lay.size
    ([6, 7], 8)
    """

    n_coef: int
    n_components: int
    n_params: int
    n_fixed: int = 0
    equal_scale: bool = False
    n_concomitant: int = 0
    transforms: tuple | None = None
    coefficients: tuple | None = None
    counts: tuple = field(init=False, repr=False, compare=False)
    component_transforms: tuple = field(init=False, repr=False, compare=False)
    coef_index: list = field(init=False, repr=False, compare=False)
    param_index: list = field(init=False, repr=False, compare=False)
    fixed_index: np.ndarray = field(init=False, repr=False, compare=False)
    prior_index: np.ndarray = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        K, p = self.n_components, self.n_coef
        if isinstance(self.n_params, (tuple, list)):
            counts = tuple(int(c) for c in self.n_params)
            transforms = (
                tuple(tuple(t) for t in self.transforms)
                if self.transforms is not None
                else tuple(("log",) * c for c in counts)
            )
        else:
            counts = (int(self.n_params),) * K
            shared = ("log",) * counts[0] if self.transforms is None else tuple(self.transforms)
            transforms = (shared,) * K
        if len(counts) != K or any(len(t) != c for t, c in zip(transforms, counts)):
            raise ValueError(
                f"family parameter counts {counts} and transforms {transforms} "
                f"do not fit {K} components"
            )
        if self.equal_scale and len(set(counts)) > 1:
            raise ValueError("equal_scale needs the same family parameters in every component")
        coefficients = (True,) * K if self.coefficients is None else tuple(self.coefficients)
        m = max(counts, default=0)
        object.__setattr__(self, "n_params", m)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "component_transforms", transforms)
        object.__setattr__(self, "transforms", transforms[0] if K else ())
        object.__setattr__(self, "coefficients", coefficients)
        coef_index, param_index = [], []
        pos = 0
        own = not self.equal_scale
        for k in range(K):
            width = p if coefficients[k] else 0
            coef_index.append(np.arange(pos, pos + width))
            pos += width
            width = counts[k] if own else 0
            param_index.append(np.arange(pos, pos + width))
            pos += width
        fixed_index = np.arange(pos, pos + self.n_fixed)
        pos += self.n_fixed
        if not own:
            param_index = [np.arange(pos, pos + m)] * K
            pos += m
        n_prior = (K - 1) * (self.n_concomitant if self.n_concomitant else 1)
        prior_index = np.arange(pos, pos + n_prior)
        pos += n_prior
        for name, value in (
            ("coef_index", coef_index),
            ("param_index", param_index),
            ("fixed_index", fixed_index),
            ("prior_index", prior_index),
            ("size", pos),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def for_data(cls, data, n_components):
        """The layout of a fit of :class:`~emformula.engine.data.EMData` with K components."""
        return cls.for_family(
            data.family,
            data.n_coef,
            n_components,
            n_fixed=data.n_fixed,
            equal_scale=data.equal_scale,
            n_concomitant=data.n_concomitant,
        )

    @classmethod
    def for_family(
        cls, family, n_coef, n_components, *, n_fixed=0, equal_scale=False, n_concomitant=0
    ):
        """The layout of ``family`` (one family, or one per component)."""
        members = [family.member(k) for k in range(n_components)]
        if family.n_members is None:
            return cls(
                n_coef,
                n_components,
                len(family.parameters),
                n_fixed=n_fixed,
                equal_scale=equal_scale,
                n_concomitant=n_concomitant,
                transforms=tuple(p.transform for p in family.parameters),
                coefficients=(family.has_coefficients,) * n_components,
            )
        return cls(
            n_coef,
            n_components,
            tuple(len(m.parameters) for m in members),
            n_fixed=n_fixed,
            equal_scale=equal_scale,
            n_concomitant=n_concomitant,
            transforms=tuple(tuple(p.transform for p in m.parameters) for m in members),
            coefficients=tuple(m.has_coefficients for m in members),
        )

    @property
    def scale_index(self):
        """For each component, the position of its one family parameter (the
        log-dispersion), or None for a family without parameters; the form
        of a layout with at most one family parameter."""
        if self.n_params > 1:
            raise ValueError(
                "scale_index is the view of a layout with at most one family "
                "parameter; use param_index"
            )
        return [int(idx[0]) if idx.size else None for idx in self.param_index]

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
            if self.coefficients[k]:
                theta[self.coef_index[k]] = est.coef[:, k]
            for j, position in enumerate(self.param_index[k]):
                theta[position] = _to_theta(self.component_transforms[k][j], est.params[j, k])
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

    @np.errstate(over="ignore")  # an extrapolated log-parameter may overflow: callers reject it
    def unpack(self, theta, data=None, *, mean_prior_of=None):
        """Estimates from a parameter vector.

        ``data`` (the fit's :class:`~emformula.engine.data.EMData`), or
        ``mean_prior_of`` (a function of gamma, for data not in memory), is
        needed for a concomitant model: the reported ``prior`` of its
        estimates is the weighted mean over units of the per-unit mixing
        proportions.
        """

        K = self.n_components
        coef = np.zeros((self.n_coef, K))
        for k, idx in enumerate(self.coef_index):
            if self.coefficients[k]:
                coef[:, k] = theta[idx]
        # Rows a component does not use (a list of families) hold 1.
        params = np.ones((self.n_params, K))
        for k in range(K):
            for j, position in enumerate(self.param_index[k]):
                params[j, k] = _from_theta(self.component_transforms[k][j], theta[position])
        fixed = theta[self.fixed_index].copy() if self.n_fixed else None
        if self.has_concomitant:
            if data is None and mean_prior_of is None:
                raise ValueError("unpacking a concomitant model needs the data")
            gamma = np.zeros((self.n_concomitant, K))
            gamma[:, 1:] = theta[self.prior_index].reshape(K - 1, self.n_concomitant).T
            prior = mean_prior(data, gamma) if mean_prior_of is None else mean_prior_of(gamma)
            return Estimates(coef, params, prior, gamma, fixed)
        logits = np.concatenate([[0.0], theta[self.prior_index]])
        prior = np.exp(logits - logits.max())
        return Estimates(coef, params, prior / prior.sum(), None, fixed)


def _to_theta(transform, value):
    if transform == "log":
        with np.errstate(divide="ignore"):
            return np.log(value)
    return value


def _from_theta(transform, value):
    return np.exp(value) if transform == "log" else value


def parameter_layout(
    n_coef, n_components, n_params, *, n_fixed=0, equal_scale=False, n_concomitant=0
):
    """Positions of each block of theta, as a tuple (a layout with at most
    one family parameter, a log-dispersion).

    Returns
    -------
    coef_index, scale_index, alpha_index, size
        See :class:`ParameterLayout` (``alpha_index`` is its ``prior_index``:
        the mixing parameters, concomitant coefficients included); its
        ``fixed_index`` is not in the tuple.
    """
    lay = ParameterLayout(
        n_coef,
        n_components,
        n_params,
        n_fixed=n_fixed,
        equal_scale=equal_scale,
        n_concomitant=n_concomitant,
    )
    return lay.coef_index, lay.scale_index, lay.prior_index, lay.size


def _default_layout(est):
    n_fixed = 0 if est.fixed_coef is None else len(est.fixed_coef)
    n_conc = 0 if est.gamma is None else est.gamma.shape[0]
    return ParameterLayout(
        est.coef.shape[0],
        est.n_components,
        est.params.shape[0],
        n_fixed=n_fixed,
        n_concomitant=n_conc,
    )


def pack_theta(est, n_params=None, layout=None):
    """The free parameters of ``est`` as one vector.

    ``n_params`` (the family parameters per component; a bool reads as 0 or
    1) is checked against ``est`` when given. ``layout`` (a
    :class:`ParameterLayout`) is required with ``equal_scale`` or parameters
    that are not log-transformed; otherwise it is inferred from ``est``.
    """
    if n_params is not None and int(n_params) != est.params.shape[0]:
        raise ValueError(
            f"the estimates have {est.params.shape[0]} family parameter(s), not {int(n_params)}"
        )
    return (layout or _default_layout(est)).pack(est)


def unpack_theta(theta, n_coef, n_components, n_params, layout=None, data=None):
    """Coefficients, family parameters and priors from a parameter vector
    (the inverse of :func:`pack_theta`; ``data`` for a concomitant model)."""
    if layout is None:
        layout = ParameterLayout(n_coef, n_components, n_params)
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
