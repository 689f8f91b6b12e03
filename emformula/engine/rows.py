"""The rows as the EM loop sees them, and their in-memory backend.

The EM loop, the M-step and the Newton finish are written once, against an
object that supplies everything they need from the rows (a *rows backend*):

``e_step(est, predictors=None, ahead=None) -> state``
    The E-step at ``est``; ``state.est`` and ``state.llf``. ``predictors``
    are what :meth:`predictors` returned for ``est``; ``ahead``, a pair
    ``(function, args)`` of sums the caller will probably ask for at this
    state next, which a backend may form in the same pass (the one in
    memory ignores it), or :data:`FINAL`: ``est`` is probably where the run
    ends, so a backend may form what the results need from the rows there.
``sums(state, function, *args) -> dict``
    A function of :mod:`emformula.engine.sums`, at the E-step of ``state``,
    summed over the pieces of the data.
``data_sums(function, *args) -> dict``
    The same for a function of the data alone (no E-step).
``predictors(state, est)``
    The linear predictors and means of ``est`` the candidate sums kept, or
    None (a backend that keeps none).
``posterior(state)``
    The posterior per row (None where the rows are not in memory).
``look_ahead(state, est)``
    Only where the attribute ``looks_ahead`` is True: a hint from the
    M-step that the next E-step will probably be at ``est`` (None: no
    guess). The backend may compute that E-step in the same pass as the
    M-step's next sums and return it from :meth:`predictors`.
``at(est, posterior=None)``
    A state at ``est`` for sums only (its ``llf`` may be unknown).
``mean_prior(gamma)``, ``layout(K)``, ``unpack(layout, theta)``
    The mean mixing proportions of a concomitant model, the parameter
    layout, estimates from a parameter vector.

and the attributes ``family``, ``n_coef``, ``n_fixed``, ``n_concomitant``,
``equal_scale``, ``looks_ahead``. :class:`MemoryRows` is the backend of arrays in memory:
one piece, whose E-step arrays the state holds, so that nothing is computed
twice. The dask backend (:mod:`emformula.backends.dask`) sums each
partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import EMData, EStep
from .estep import e_step
from .layout import ParameterLayout, mean_prior
from .sums import candidate_sums, shared_candidate_sums

__all__ = ["FINAL", "MemoryRows", "MemoryState", "as_rows"]


class _Final:
    """The type of :data:`FINAL` (its own, so that no pair of sums matches it)."""

    def __repr__(self):
        return "FINAL"


#: ``e_step(est, ahead=FINAL)``: the run probably ends at ``est`` (Newton's
#: last step, at rounding level). A backend whose passes over the rows are
#: costly forms the results' sums in that E-step's pass
#: (:mod:`emformula.backends.dask`); the one in memory keeps the rows anyway.
#: A backend that looks ahead must tell it from a pair ``(function, args)``.
FINAL = _Final()

#: The sums that compute new linear predictors, which a state in memory keeps.
_KEEPS_PREDICTORS = (candidate_sums, shared_candidate_sums)


@dataclass
class MemoryState:
    """An E-step of the rows in memory: the estimates and the E-step's arrays.

    ``kept`` receives the linear predictors and means of the M-step's
    candidates (:func:`emformula.engine.sums.candidate_sums`).
    """

    est: object
    estep: EStep
    kept: dict = field(default_factory=dict)

    @property
    def llf(self):
        return self.estep.llf


class MemoryRows:
    """The rows backend of one :class:`EMData` in memory (see the module).

    ``keep_predictors=False`` for a caller that will not ask for the new
    linear predictors (one M-step on its own): the candidate sums then do
    not copy them into the state.
    """

    #: The candidate sums keep the new predictors: no E-step to guess.
    looks_ahead = False

    def __init__(self, data, keep_predictors=True):
        self.data = data
        self.keep_predictors = keep_predictors
        self._layouts = {}

    # What the engine needs to know of the data's shape.
    @property
    def family(self):
        return self.data.family

    @property
    def n_coef(self):
        return self.data.n_coef

    @property
    def n_fixed(self):
        return self.data.n_fixed

    @property
    def n_concomitant(self):
        return self.data.n_concomitant

    @property
    def equal_scale(self):
        return self.data.equal_scale

    def layout(self, n_components):
        # Asked for by every SQUAREM cycle and Newton step; on small data
        # building it costs as much as an E-step.
        layout = self._layouts.get(n_components)
        if layout is None:
            layout = self._layouts[n_components] = ParameterLayout.for_data(self.data, n_components)
        return layout

    def unpack(self, layout, theta):
        return layout.unpack(theta, self.data)

    def mean_prior(self, gamma):
        return mean_prior(self.data, gamma)

    # The E-step and the sums.
    def e_step(self, est, predictors=None, ahead=None):
        eta, mu = predictors if predictors is not None else (None, None)
        return MemoryState(est, e_step(self.data, est, eta, mu))

    def state(self, est, estep):
        """A state from an E-step computed by the caller."""
        return MemoryState(est, estep)

    def at(self, est, posterior=None):
        if posterior is None:
            return self.e_step(est)
        data = self.data
        unit = None if data.groups is None else posterior[data.unit_rows]
        return MemoryState(est, EStep(None, None, None, posterior, None, np.nan, unit))

    def sums(self, state, function, *args):
        if function in _KEEPS_PREDICTORS and self.keep_predictors:
            return function(self.data, state.estep, state.est, *args, keep=self._kept(state))
        return function(self.data, state.estep, state.est, *args)

    def data_sums(self, function, *args):
        return function(self.data, *args)

    def posterior(self, state):
        return state.estep.posterior

    @staticmethod
    def _kept(state):
        kept = state.kept
        if not kept:
            K = state.est.n_components
            kept.update(
                eta=np.empty_like(state.estep.eta),
                mu=np.empty_like(state.estep.mu),
                coef=[None] * K,
                fixed_coef=None,
            )
        return kept

    def predictors(self, state, est):
        """``(eta, mu)`` of ``est`` from what the candidate sums kept and the
        E-step of ``state`` (for components the M-step left unchanged), or
        None when some component's predictor is not at hand."""
        old, kept = state.est, state.kept

        def unchanged():
            return _same(est.coef, old.coef) and _same(est.fixed_coef, old.fixed_coef)

        if not kept:
            return (state.estep.eta, state.estep.mu) if unchanged() else None
        if est.fixed_coef is not None:
            # The shared step moves every component at once.
            if _same(est.fixed_coef, kept["fixed_coef"]) and all(
                _same(c, est.coef[:, k]) for k, c in enumerate(kept["coef"])
            ):
                return kept["eta"], kept["mu"]
            return (state.estep.eta, state.estep.mu) if unchanged() else None
        eta, mu = kept["eta"], kept["mu"]
        for k, coef_k in enumerate(kept["coef"]):
            if _same(coef_k, est.coef[:, k]):
                continue
            if not _same(old.coef[:, k], est.coef[:, k]):
                return None
            # A component the M-step left where it was.
            eta[:, k], mu[:, k] = state.estep.eta[:, k], state.estep.mu[:, k]
        return eta, mu


def _same(a, b):
    """Equal arrays (NaN differs from itself), or both None. Cheaper than
    :func:`numpy.array_equal` on the few coefficients of each M-step."""
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool((a == b).all())


def as_rows(data):
    """A rows backend: ``data`` itself, or :class:`MemoryRows` of an :class:`EMData`."""
    return MemoryRows(data) if isinstance(data, EMData) else data
