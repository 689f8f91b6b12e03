"""The containers of the engine: the data of a fit, its estimates, one E-step, one run.

Plain frozen dataclasses of numpy arrays, shared by every engine module and
by the backends; nothing here computes more than a cached derived array.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse

from .gram import MAX_EXPANSION, WeightedGram

__all__ = ["EMData", "Estimates", "EStep", "EMRun", "check_constant_within_groups"]


@dataclass(frozen=True)
class EMData:
    """The arrays of one fit.

    Attributes
    ----------
    endog : ndarray (n,)
        Response; for the binomial family the proportion of successes.
    exog : ndarray (n, p)
        Design matrix of the component-specific coefficients.
    weights : ndarray (n,)
        Frequency weights (non-negative). With ``groups`` they are the same
        for all rows of a group and weight the group as a whole.
    offset : ndarray (n,)
        Offset of the linear predictor (including log exposure).
    trials : ndarray (n,)
        Binomial number of trials; ones for every other family.
    family : MixtureFamily
    fixed : ndarray (n, r) or None
        Design of the coefficients shared by all components.
    concomitant : ndarray (n, q) or None
        Design of the multinomial logit of the mixing proportions; ``None``
        for constant proportions. With ``groups`` it is constant within groups.
    groups : ndarray of int (n,) or None
        Group codes ``0..G-1``: the rows of a group share one component.
    equal_scale : bool
        One dispersion for all components (only meaningful for families
        with a dispersion).
    reused : bool
        Whether these arrays serve many passes (a fit in memory, a persisted
        dask partition). Derived arrays that cost about a pass to build and
        pay back over many (the Gram helper's column products) are formed
        only then: a dask partition rebuilt from its source for every pass
        needs the Gram matrix twice per pass, so building them there would
        double its cost.
    """

    endog: np.ndarray
    exog: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    trials: np.ndarray
    family: object
    fixed: np.ndarray | None = None
    concomitant: np.ndarray | None = None
    groups: np.ndarray | None = None
    equal_scale: bool = False
    reused: bool = True

    @property
    def nobs(self):
        return self.exog.shape[0]

    @property
    def n_coef(self):
        return self.exog.shape[1]

    @property
    def n_fixed(self):
        return 0 if self.fixed is None else self.fixed.shape[1]

    @property
    def n_concomitant(self):
        return 0 if self.concomitant is None else self.concomitant.shape[1]

    # Units are what the latent component is attached to: groups, else rows.
    @cached_property
    def unit_rows(self):
        """First row of each group (``None`` without groups)."""
        if self.groups is None:
            return None
        return np.unique(self.groups, return_index=True)[1]

    @property
    def n_units(self):
        return self.nobs if self.groups is None else self.unit_rows.size

    @cached_property
    def unit_weights(self):
        """Frequency weight of each unit."""
        return self.weights if self.groups is None else self.weights[self.unit_rows]

    @cached_property
    def unit_weight_total(self):
        """``sum_u v_u``, the units' total frequency weight (every M-step
        divides by it)."""
        return float(self.unit_weights.sum())

    @cached_property
    def unit_concomitant(self):
        """Concomitant design per unit."""
        if self.concomitant is None or self.groups is None:
            return self.concomitant
        return self.concomitant[self.unit_rows]

    @cached_property
    def _group_matrix(self):
        n = self.nobs
        return scipy.sparse.csr_matrix(
            (np.ones(n), (self.groups, np.arange(n))), shape=(self.n_units, n)
        )

    def unit_sum(self, values):
        """Sum a per-row array (n, ...) within units (a sparse product, never n x n)."""
        if self.groups is None:
            return values
        return np.asarray(self._group_matrix @ values)

    def to_rows(self, values):
        """Broadcast a per-unit array to the rows of each unit."""
        return values if self.groups is None else values[self.groups]

    def constant_of(self, k):
        """Component ``k``'s :attr:`loglike_constant` (n,)."""
        constant = self.loglike_constant
        return constant if constant.ndim == 1 else constant[:, k]

    @cached_property
    def loglike_constant(self):
        """The data-only part of each row's log-density, computed once
        (:meth:`MixtureFamily.loglike_constant`): (n,), or (n, K) for a
        list of families."""
        with np.errstate(all="ignore"):
            return self.family.loglike_constant(self.endog, self.trials)

    @cached_property
    def component_design(self):
        """``[X, Z]``: the columns of a component's linear predictor."""
        if self.fixed is None:
            return self.exog
        return np.hstack([self.exog, self.fixed])

    @cached_property
    def gram(self):
        """``X' diag(w) X`` of ``exog`` for any ``w``
        (:class:`~emformula.engine.gram.WeightedGram`)."""
        return WeightedGram(self.exog, MAX_EXPANSION if self.reused else 0.0)

    @cached_property
    def component_gram(self):
        """:attr:`gram` of :attr:`component_design` (``[X, Z]``)."""
        if self.fixed is None:
            return self.gram
        return WeightedGram(self.component_design, MAX_EXPANSION if self.reused else 0.0)

    @cached_property
    def _work_buffers(self):
        # One set per thread: a model fitted from several threads at once
        # (numpy releases the GIL while filling them) must not share them.
        return threading.local()

    def work_buffer(self, name, size=None, dtype=float):
        """A preallocated work array of ``size`` (default: the rows), the
        same one on every call with the same name.

        For temporaries that do not outlive the function that fills them
        (the E-step's row maxima, the IRLS working weights and response):
        every EM iteration would otherwise allocate them afresh, and fresh
        memory costs page faults that showed up as a tenth of an iteration.
        Each thread gets its own.
        """
        # Called a dozen times per M-step: the lookup is kept to one dict
        # access in the usual case.
        buffers = self._work_buffers.__dict__
        key = (name, size, dtype)
        try:
            return buffers[key]
        except KeyError:
            buffer = buffers[key] = np.empty(self.nobs if size is None else size, dtype=dtype)
            return buffer

    def __getstate__(self):
        # Derived arrays (the Gram helper's column products can be several
        # times the design) are rebuilt rather than shipped to worker
        # processes.
        state = dict(self.__dict__)
        for derived in ("gram", "component_gram", "_work_buffers"):
            state.pop(derived, None)
        return state

    def take(self, rows):
        """The same model on a subset of the rows (groups recoded)."""
        rows = np.asarray(rows)
        groups = None
        if self.groups is not None:
            groups = np.unique(self.groups[rows], return_inverse=True)[1]
        pick = lambda a: None if a is None else a[rows]
        return EMData(
            self.endog[rows],
            self.exog[rows],
            self.weights[rows],
            self.offset[rows],
            self.trials[rows],
            self.family,
            pick(self.fixed),
            pick(self.concomitant),
            groups,
            self.equal_scale,
            self.reused,
        )


@dataclass(frozen=True)
class Estimates:
    """Parameters of a mixture.

    Attributes
    ----------
    coef : ndarray (p, K)
        Component-specific coefficients.
    params : ndarray (m, K)
        The family's own parameters per component, one row per entry of the
        family's ``parameters`` (the dispersion of the Gaussian family, the
        negative binomial's alpha...), on their natural scale; ``m = 0`` for
        a family without any (Poisson, binomial). With ``equal_scale`` every
        row is constant.
    prior : ndarray (K,)
        Mixing proportions; for a concomitant model the weighted mean over
        units of the per-unit proportions.
    gamma : ndarray (q, K) or None
        Concomitant coefficients, column 1 (the reference) zero.
    fixed_coef : ndarray (r,) or None
        Coefficients shared by all components.

    Examples
    --------
    >>> est = Estimates(np.zeros((2, 3)), np.ones((1, 3)), np.full(3, 1 / 3))
    >>> est.n_components, est.params.shape
    (3, (1, 3))
    """

    coef: np.ndarray
    params: np.ndarray
    prior: np.ndarray
    gamma: np.ndarray | None = None
    fixed_coef: np.ndarray | None = None

    def __post_init__(self):
        params = np.asarray(self.params, dtype=float)
        if params.ndim != 2 or params.shape[1] != self.coef.shape[1]:
            raise ValueError(
                f"family parameters must have shape (m, {self.coef.shape[1]}): "
                f"one row per parameter, one column per component; got "
                f"{params.shape}"
            )
        object.__setattr__(self, "params", params)

    def __setstate__(self, state):
        # Estimates pickled before family parameters were general held the
        # dispersion as ``scale`` (K,): it is the one parameter row. The
        # results that hold them drop the row for a family without a
        # dispersion (:meth:`for_family`).
        state = dict(state)
        if "scale" in state and "params" not in state:
            state["params"] = np.asarray(state.pop("scale"), dtype=float)[None, :]
        self.__dict__.update(state)

    @property
    def n_components(self):
        return self.coef.shape[1]

    def for_family(self, family):
        """These estimates with as many parameter rows as ``family`` has
        parameters: an old pickle's unit dispersion row dropped for a family
        without parameters; missing rows (a Poisson fit as the start of a
        negative binomial one) at each component's start values."""
        m = len(family.parameters)
        have = self.params.shape[0]
        if have == m:
            return self
        if have > m:
            if np.all(self.params[m:] == 1.0):
                return Estimates(
                    self.coef, self.params[:m], self.prior, self.gamma, self.fixed_coef
                )
            raise ValueError(
                f"estimates with {have} family parameter(s) do not fit the "
                f"{family.name} family's {m}"
            )
        params = np.ones((m, self.n_components))
        params[:have] = self.params
        for k in range(self.n_components):
            start = family.member(k).start_parameters()
            params[have : len(start), k] = start[have:]
        return Estimates(self.coef, params, self.prior, self.gamma, self.fixed_coef)

    def parameter_values(self, k):
        """Component ``k``'s family parameters as a tuple (natural scale), as
        the family's methods take them."""
        return tuple(self.params[:, k])

    def parameter_rows(self):
        """Every component's family parameters as a tuple of ``(1, K)`` rows,
        which broadcast against ``(n, K)`` means in the family's methods."""
        return tuple(row[None, :] for row in self.params)

    def permuted(self, order):
        """The same mixture with its components in ``order``.

        Concomitant coefficients are re-based on the new first component,
        which becomes the reference.
        """
        order = np.asarray(order)
        gamma = None
        if self.gamma is not None:
            gamma = self.gamma[:, order] - self.gamma[:, order[:1]]
        fixed = None if self.fixed_coef is None else self.fixed_coef.copy()
        return Estimates(
            self.coef[:, order].copy(),
            self.params[:, order].copy(),
            self.prior[order].copy(),
            gamma,
            fixed,
        )


@dataclass(frozen=True)
class EStep:
    """What one E-step computes; reused by the next M-step."""

    eta: np.ndarray  # (n, K) linear predictors
    mu: np.ndarray  # (n, K) component means
    loglike: np.ndarray  # (n, K) log f_k(y_i), all constants included
    posterior: np.ndarray  # (n, K) per row (a group's posterior on each of its rows)
    row_llf: np.ndarray  # (n_units,) log of the mixture density per unit
    llf: float  # sum_u v_u row_llf_u
    unit_posterior: np.ndarray | None = None  # (n_units, K); None: same as posterior


@dataclass(frozen=True)
class EMRun:
    """The outcome of one EM run from one start."""

    estimates: Estimates
    llf: float
    history: np.ndarray
    n_iter: int
    converged: bool
    posterior: np.ndarray
    notes: tuple = field(default=())
    #: True when the run ended with Newton steps at rounding level, so a
    #: further polish would only recompute what is known.
    newton_converged: bool = False


def check_constant_within_groups(values, codes, labels, what):
    """Refuse values (weights, a concomitant design) that differ between the
    rows of one group, naming the group: a group is one unit, with one
    weight and one set of mixing proportions.

    ``codes`` are the group codes ``0..G-1`` of the rows, ``labels`` the
    group labels by code.
    """
    first = np.unique(codes, return_index=True)[1]
    differs = values[first][codes] != values
    if differs.ndim > 1:
        differs = differs.any(axis=1)
    if differs.any():
        bad = labels[codes[np.flatnonzero(differs)[0]]]
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise ValueError(
            f"{what} must be the same for all rows of a group, but differ within group {bad!r}"
        )
