"""A family per component: ``family=["pointmass", "poisson"]``.

:class:`ComponentFamilies` holds one family for each component. The engine
asks any family for the family of component ``k`` (:meth:`member`; a plain
family is every component's) and for each component's parameters and
coefficients, so a list of families needs nothing else from it: every
per-component computation runs with that component's family.
"""

from __future__ import annotations

import numpy as np

from .base import MixtureFamily
from .moments import WeightedMoments

__all__ = ["ComponentFamilies", "check_family_use"]


def check_family_use(family, K, has_fixed=False, equal_scale=False):
    """Refuse, by name, what a family cannot do in a model with ``K``
    components (the memory and dask routes share these checks).

    A point mass alone has nothing to fit; a list of families fixes K (one
    per family), cannot share effects with a point mass (``fixed=``) and
    has no common family parameters (``equal_scale``).
    """
    if family.n_members is None:
        if not family.has_coefficients:
            raise ValueError(
                f"a {family.name} component has no coefficients: use it in a "
                f"list beside a regression family, e.g. "
                f"family=['{family.name}', 'poisson']"
            )
        return
    if K != family.n_members:
        raise ValueError(
            f"K={K} but {family.n_members} families are given, one per "
            "component: leave K out or give as many families"
        )
    if has_fixed and not all(family.has_coefficients_of(k) for k in range(K)):
        raise ValueError(
            f"shared effects (fixed=) need coefficients in every component; "
            f"{family.name} has a component without (a point mass)"
        )
    if equal_scale:
        raise ValueError(
            f"equal_scale=True needs one family in all components, not the list {family.name}"
        )


class ComponentFamilies(MixtureFamily):
    """The families of the K components of one mixture, in order.

    Parameters
    ----------
    members : sequence of MixtureFamily
        One per component (at least two). Components keep this order in the
        results: they are not sorted by their proportions as the components
        of one family are.

    Attributes
    ----------
    members : tuple of MixtureFamily
    parameters : tuple of FamilyParameter
        The parameter rows of ``Estimates.params``: row ``j`` holds each
        component's ``j``-th parameter; a component has
        ``len(member(k).parameters)`` of them (the others are not used).

    Examples
    --------
    >>> from emformula.families import PointMass, Poisson
    >>> fam = ComponentFamilies([PointMass(), Poisson()])
    >>> fam.name, fam.member(1).name, fam.has_coefficients_of(0)
    ('pointmass+poisson', 'poisson', False)
    """

    def __init__(self, members):
        members = tuple(members)
        if len(members) < 2:
            raise ValueError("a list of families needs one family per component, at least two")
        for member in members:
            if not isinstance(member, MixtureFamily) or isinstance(member, ComponentFamilies):
                raise TypeError(f"each component's family must be one family, got {member!r}")
        if not any(m.has_coefficients for m in members):
            raise ValueError(
                "at least one component needs coefficients (a family other than a point mass)"
            )
        kinds = {m.takes_trials for m in members if m.has_coefficients}
        if len(kinds) > 1:
            raise ValueError(
                "binomial components cannot be mixed with components of other "
                "families: their responses differ"
            )
        self.members = members
        longest = max((m.parameters for m in members), key=len)
        self.parameters = longest
        regression = [m for m in members if m.has_coefficients]
        self.takes_trials = regression[0].takes_trials
        self.is_count = any(m.is_count for m in regression)
        self.is_discrete = all(m.is_discrete for m in members)
        self.link = regression[0].link
        self.has_deviance = all(m.has_deviance for m in members)
        self.mean_is_response = all(m.mean_is_response for m in members)
        intercepts = {m.has_intercept for m in regression}
        if len(intercepts) > 1:
            raise ValueError(
                "ordinal components cannot be mixed with components that have "
                "an intercept: their linear predictors differ"
            )
        self.has_intercept = intercepts.pop()

    # ------------------------------------------------------------ names
    @property
    def name(self):
        return "+".join(m.name for m in self.members)

    @property
    def family_name(self):
        return " + ".join(m.family_name for m in self.members)

    @property
    def link_name(self):
        names = [m.link_name for m in self.members if m.has_coefficients]
        return names[0] if len(set(names)) == 1 else " / ".join(names)

    def __repr__(self):
        return f"ComponentFamilies([{', '.join(map(repr, self.members))}])"

    def _identity(self):
        return tuple((type(m), m._identity()) for m in self.members)

    # ------------------------------------------------------- the engine
    @property
    def n_members(self):
        return len(self.members)

    def member(self, k):
        return self.members[k]

    @property
    def differs(self):
        """Whether the members are not all one family (then components keep
        their order)."""
        return any(m != self.members[0] for m in self.members[1:])

    @property
    def estimates_scale(self):
        return False

    @property
    def any_dispersion(self):
        return any(m.estimates_scale for m in self.members)

    @property
    def parameters_exact(self):
        return all(m.parameters_exact for m in self.members)

    @property
    def irls_is_exact(self):
        return all(m.irls_is_exact or not m.has_coefficients for m in self.members)

    def for_response(self, y):
        return ComponentFamilies([m.for_response(y) for m in self.members])

    def check_response(self, y, trials, name="response"):
        for member in self.members:
            if member.has_coefficients:
                member.check_response(y, trials, name)

    def loglike_constant(self, y, trials=1.0):
        """Each component's constant, one column per component (n, K)."""
        return np.column_stack(
            [np.broadcast_to(m.loglike_constant(y, trials), np.shape(y)) for m in self.members]
        )

    def floor_moments(self, y, weights):
        for member in self.members:
            if member.estimates_scale:
                return member.floor_moments(y, weights)
        return WeightedMoments()

    def start_mean(self, y, trials):
        regression = [m for m in self.members if m.has_coefficients]
        return regression[0].start_mean(y, trials)

    # Whole-matrix forms: component k's column from component k's family.
    def mean(self, eta):
        eta = np.asarray(eta, dtype=float)
        return _by_column(eta.shape, lambda k, cols: self.members[k].mean(eta[..., cols]))

    def log_kernel(self, y, mu, params, trials=1.0, eta=None):
        mu = np.asarray(mu, dtype=float)
        shape = np.broadcast_shapes(np.shape(y), mu.shape)

        def column(k, cols):
            member = self.members[k]
            own = tuple(
                np.broadcast_to(p, (1,) * (len(shape) - 1) + (shape[-1],))[..., cols]
                for p in params[: len(member.parameters)]
            )
            e = None if eta is None else np.asarray(eta)[..., cols]
            y_k = y if np.ndim(y) < len(shape) or np.shape(y)[-1] == 1 else np.asarray(y)[..., cols]
            t_k = trials
            return member.log_kernel(y_k, mu[..., cols], own, t_k, eta=e)

        return _by_column(shape, column)

    def has_coefficients_of(self, k):
        return self.members[k].has_coefficients

    # Residuals' forms, one column per component (means and parameters
    # (n, K) and (1, K) as the residuals pass them).
    def _columns(self, method, y, mu, params, *args):
        mu = np.asarray(mu, dtype=float)

        def column(k, cols):
            member = self.members[k]
            own = tuple(np.asarray(p)[..., cols] for p in params[: len(member.parameters)])
            y_k = np.asarray(y)[..., cols] if np.shape(y)[-1:] == mu.shape[-1:] else y
            return getattr(member, method)(y_k, mu[..., cols], own, *args)

        return column

    def expected_response(self, mu, params):
        mu = np.asarray(mu, dtype=float)
        return _by_column(
            mu.shape,
            lambda k, cols: self.members[k].expected_response(
                mu[..., cols],
                tuple(np.asarray(p)[..., cols] for p in params[: len(self.members[k].parameters)]),
            ),
        )

    def variance_at(self, mu, params, trials=1.0):
        mu = np.asarray(mu, dtype=float)
        return _by_column(
            mu.shape,
            lambda k, cols: self.members[k].variance_at(
                mu[..., cols],
                tuple(np.asarray(p)[..., cols] for p in params[: len(self.members[k].parameters)]),
                trials,
            ),
        )

    def scaled_deviance_at(self, y, mu, params, trials=1.0):
        shape = np.broadcast_shapes(np.shape(y), np.shape(mu))
        return _by_column(shape, self._columns("scaled_deviance_at", y, mu, params, trials))

    def cdf_bounds_at(self, y, mu, params, trials=1.0, var_weights=1.0):
        shape = np.broadcast_shapes(np.shape(y), np.shape(mu))
        parts = [np.empty(shape, order="F") for _ in range(4)]
        column = self._columns("cdf_bounds_at", y, mu, params, trials, var_weights)
        for k in range(shape[-1]):
            cols = slice(k, k + 1)
            for part, value in zip(parts, column(k, cols)):
                part[..., cols] = value
        return tuple(parts)


def _by_column(shape, column):
    """An array of ``shape`` whose last-axis column ``k`` is ``column(k,
    slice(k, k + 1))`` (column-major, as the engine's n x K arrays)."""
    out = np.empty(shape, order="F" if len(shape) > 1 else "C")
    for k in range(shape[-1]):
        cols = slice(k, k + 1)
        out[..., cols] = column(k, cols)
    return out
