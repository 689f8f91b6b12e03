"""Ordinal components: an ordered categorical response with cut points.

``P(y <= j) = F(c_j - eta)`` with ``F`` the logistic (``"ordinal_logit"``,
the proportional-odds model) or the normal distribution
(``"ordinal_probit"``), cut points ``c_1 < ... < c_{J-1}`` per component and
a linear predictor without an intercept (the cut points take its place), as
statsmodels' ``OrderedModel`` and R's ``MASS::polr``. The response holds the
category codes ``0 .. J-1``. The cut points are parametrised as statsmodels
does: the first cut point, then the logarithms of the gaps between
consecutive ones (``family_params`` shows the first cut and the gaps;
:meth:`OrdinalFamily.cut_points` the cut points themselves).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod.families import links as sm_links

from .base import MixtureFamily
from .parameters import FamilyParameter, ParameterDerivatives

__all__ = ["OrdinalFamily"]

_DISTRIBUTIONS = ("logit", "probit")


class OrdinalFamily(MixtureFamily):
    """Ordered categorical components (cumulative logit or probit).

    Parameters
    ----------
    distribution : {"logit", "probit"}
        ``F``: logistic or standard normal.
    n_categories : int, optional
        ``J``; taken from the response (its largest code plus one) when the
        model is built.

    Examples
    --------
    >>> fam = OrdinalFamily("logit", n_categories=3)
    >>> [p.name for p in fam.parameters]
    ['cut1', 'gap2']
    >>> fam.cut_points((-1.0, 2.0)).tolist()
    [-1.0, 1.0]
    """

    is_discrete = True
    newton_irls = True
    has_deviance = False
    has_intercept = False
    mean_is_response = False

    def __init__(self, distribution="logit", n_categories=None):
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}")
        self.distribution = distribution
        self.link = sm_links.Identity()
        self.n_categories = None
        self.parameters = ()
        if n_categories is not None:
            self._bind(int(n_categories))

    def _bind(self, J):
        if J < 2:
            raise ValueError(f"an ordinal response needs at least 2 categories, got {J}")
        self.n_categories = J
        self.parameters = (FamilyParameter("cut1", "identity", start=0.0),) + tuple(
            FamilyParameter(f"gap{j}", "log", lower=1e-12, upper=1e12, start=1.0)
            for j in range(2, J)
        )

    @property
    def name(self):
        return f"ordinal_{self.distribution}"

    @property
    def family_name(self):
        return f"Ordinal{self.distribution.capitalize()}"

    @property
    def link_name(self):
        return "Logit" if self.distribution == "logit" else "Probit"

    def __repr__(self):
        return f"OrdinalFamily({self.distribution!r}, n_categories={self.n_categories})"

    def _identity(self):
        return (self.distribution, self.n_categories)

    def for_response(self, y):
        """This family with ``J`` from the response codes ``0 .. J-1`` (checked)."""
        y = np.asarray(y, dtype=float)
        finite = y[np.isfinite(y)]
        bad = (finite < 0) | (finite != np.round(finite))
        if bad.any():
            raise ValueError(
                f"an ordinal response holds the category codes 0, 1, 2, ...; "
                f"found {finite[bad][:3].tolist()}"
            )
        J = int(finite.max()) + 1 if finite.size else 0
        if self.n_categories is not None:
            if J > self.n_categories:
                raise ValueError(
                    f"the response has code {J - 1}, beyond the "
                    f"{self.n_categories} categories of the family"
                )
            return self
        return OrdinalFamily(self.distribution, J)

    def _outside_support(self, y, trials):
        if self.n_categories is None:
            return None
        return (
            (y < 0) | (y > self.n_categories - 1) | (y != np.round(y)),
            f"values that are not category codes 0..{self.n_categories - 1}",
        )

    # ------------------------------------------------------ cut points
    def cut_points(self, params):
        """``c_1 .. c_{J-1}`` from the first cut and the gaps (arrays broadcast)."""
        params = [np.asarray(p, dtype=float) for p in params]
        return np.cumsum(np.stack(params), axis=0)

    def _bounds(self, y, params):
        """The cut points above and below each row's category (``+-inf`` at the ends)."""
        cuts = self.cut_points(params)
        codes = np.asarray(y, dtype=float).astype(np.intp)
        inf = np.full(cuts.shape[1:], np.inf)
        # Edges -inf, c_1, ..., c_{J-1}, inf: category j lies between edges
        # j and j + 1 (one pass each, np.choose broadcasts the choices).
        edges = [-inf, *cuts, inf]
        return np.choose(codes + 1, edges), np.choose(codes, edges)

    # -------------------------------------------------------- F and f
    def _cdf(self, x):
        return special.expit(x) if self.distribution == "logit" else special.ndtr(x)

    def _sf(self, x):
        return special.expit(-x) if self.distribution == "logit" else special.ndtr(-x)

    def _pdf(self, x):
        with np.errstate(over="ignore", invalid="ignore"):
            if self.distribution == "logit":
                F = special.expit(x)
                out = F * (1.0 - F)
            else:
                out = stats.norm.pdf(x)
        return np.where(np.isfinite(x), out, 0.0)

    def _pdf_deriv(self, x):
        with np.errstate(over="ignore", invalid="ignore"):
            if self.distribution == "logit":
                F = special.expit(x)
                out = F * (1.0 - F) * (1.0 - 2.0 * F)
            else:
                out = -x * stats.norm.pdf(x)
        return np.where(np.isfinite(x), out, 0.0)

    def _probability(self, A, B):
        """``F(A) - F(B)``, from the survival side where both are large."""
        with np.errstate(invalid="ignore"):
            direct = self._cdf(A) - self._cdf(B)
            tail = self._sf(B) - self._sf(A)
        return np.where(B > 0, tail, direct)

    # ------------------------------------------------------ log-density
    def mean(self, eta):
        """The latent location ``eta`` (category probabilities:
        :meth:`category_probabilities`)."""
        return np.asarray(eta, dtype=float)

    def start_mean(self, y, trials):
        return np.zeros(np.shape(y))

    def log_kernel(self, y, mu, params, trials=1.0, eta=None):
        upper, lower = self._bounds(y, params)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(self._probability(upper - mu, lower - mu))

    def category_probabilities(self, mu, params):
        """``P(y = j)``, j = 0..J-1, along a new last axis."""
        cuts = self.cut_points(params)
        mu = np.asarray(mu, dtype=float)
        edges = [np.full(np.broadcast_shapes(mu.shape, cuts.shape[1:]), -np.inf)]
        edges += [np.broadcast_to(c - mu, edges[0].shape) for c in cuts]
        edges.append(np.full(edges[0].shape, np.inf))
        return np.stack(
            [self._probability(edges[j + 1], edges[j]) for j in range(self.n_categories)], axis=-1
        )

    # ------------------------------------------------------ derivatives
    def _pieces(self, y, mu, params):
        upper, lower = self._bounds(y, params)
        A, B = upper - mu, lower - mu
        p = self._probability(A, B)
        fA, fB = self._pdf(A), self._pdf(B)
        dA, dB = self._pdf_deriv(A), self._pdf_deriv(B)
        return p, fA, fB, dA, dB

    def eta_derivatives_at(self, y, mu, params, trials=1.0, observed=True):
        """``d l / d eta = -(f(A) - f(B)) / p`` and ``-d2 l / d eta2 =
        (D^2 - (f'(A) - f'(B)) p) / p^2`` with ``A, B`` the cut points
        around the row's category minus eta and ``D = f(A) - f(B)``
        (non-negative: F is log-concave)."""
        p, fA, fB, dA, dB = self._pieces(y, mu, params)
        with np.errstate(all="ignore"):
            D = fA - fB
            score = -D / p
            info = (D * D - (dA - dB) * p) / (p * p)
        return score, info, info, np.ones_like(info)

    def irls_terms(self, y, mu, params, trials=1.0):
        _, info, _, ones = self.eta_derivatives_at(y, mu, params, trials)
        return info, ones

    def working_step(self, y, mu, params, trials=1.0):
        score, info, _, _ = self.eta_derivatives_at(y, mu, params, trials)
        with np.errstate(all="ignore"):
            return info, score / info

    def parameter_derivatives(self, y, mu, params, trials=1.0):
        """Score, information and cross term of ``(cut1, log gap2, ...)``.

        Each row involves the cut points above (``u``) and below (``l``) its
        category: natural-scale scores ``f(A) / p`` and ``-f(B) / p``, second
        derivatives ``(f'(A) p - f(A)^2) / p^2``, ``(-f'(B) p - f(B)^2) /
        p^2`` and ``f(A) f(B) / p^2``, chained through ``d c_m / d t`` (1 for
        the first cut, the gap ``g_i`` for ``i <= m``) with the second
        derivative ``g_i`` of ``c_m`` in ``log g_i``.
        """
        params = self._check_params(params)
        m = len(params)
        y = np.asarray(y, dtype=float)
        p, fA, fB, dA, dB = self._pieces(y, mu, params)
        shape = p.shape
        gaps = [np.broadcast_to(np.asarray(g, dtype=float), shape) for g in params[1:]]
        yb = np.broadcast_to(y, shape)
        with np.errstate(all="ignore"):
            D = fA - fB
            s_u, s_l = fA / p, -fB / p
            h_uu = (dA * p - fA * fA) / (p * p)
            h_ll = (-dB * p - fB * fB) / (p * p)
            h_ul = fA * fB / (p * p)
            e_u = (-dA * p + fA * D) / (p * p)  # d s_u / d eta
            e_l = (dB * p - fB * D) / (p * p)  # d s_l / d eta
        J = self.n_categories
        # d c_u / d t_a and d c_l / d t_a per row (u = category, l = category - 1).
        has_u = yb <= J - 2
        has_l = yb >= 1
        ju = np.zeros((m,) + shape)
        jl = np.zeros((m,) + shape)
        ju[0] = has_u
        jl[0] = has_l
        for i in range(1, m):
            ju[i] = np.where(has_u & (i <= yb), gaps[i - 1], 0.0)
            jl[i] = np.where(has_l & (i <= yb - 1), gaps[i - 1], 0.0)
        s_u = np.where(has_u, s_u, 0.0)
        s_l = np.where(has_l, s_l, 0.0)
        score = ju * s_u + jl * s_l
        second = np.zeros((m, m) + shape)
        for a in range(m):
            for b in range(m):
                value = (
                    ju[a] * ju[b] * np.where(has_u, h_uu, 0.0)
                    + jl[a] * jl[b] * np.where(has_l, h_ll, 0.0)
                    + (ju[a] * jl[b] + jl[a] * ju[b]) * np.where(has_u & has_l, h_ul, 0.0)
                )
                if a == b and a >= 1:
                    # d2 c_m / d (log g_a)^2 = g_a for the cut points m >= a.
                    value = value + ju[a] * s_u + jl[a] * s_l
                second[a, b] = value
        cross = -(ju * np.where(has_u, e_u, 0.0) + jl * np.where(has_l, e_l, 0.0))
        return ParameterDerivatives(score, -second, cross)

    # ------------------------------------------------------ distribution
    def expected_response(self, mu, params):
        """The expected category code ``sum_j j P(y = j)``."""
        return self.category_probabilities(mu, params) @ np.arange(self.n_categories)

    def variance_at(self, mu, params, trials=1.0):
        """The variance of the category code."""
        probs = self.category_probabilities(mu, params)
        codes = np.arange(self.n_categories)
        first = probs @ codes
        return probs @ (codes**2) - first**2

    def simulate_at(self, mu, params, trials, rng):
        probs = self.category_probabilities(mu, params)
        cumulative = np.cumsum(probs, axis=-1)
        u = rng.uniform(size=np.shape(mu))[..., None]
        return np.minimum((u > cumulative).sum(axis=-1), self.n_categories - 1).astype(float)

    def cdf_bounds_at(self, y, mu, params, trials=1.0, var_weights=1.0):
        """``F(y-) = F(c_{y} - eta)`` (0 for the first category) and ``F(y) =
        F(c_{y+1} - eta)``, with their survival functions."""
        upper, lower = self._bounds(y, params)
        return (
            self._cdf(lower - mu),
            self._cdf(upper - mu),
            self._sf(lower - mu),
            self._sf(upper - mu),
        )

    def start_parameters(self):
        """Cut points at the logistic (or normal) quantiles of equal shares."""
        J = self.n_categories
        q = np.arange(1, J) / J
        cuts = special.logit(q) if self.distribution == "logit" else special.ndtri(q)
        return (float(cuts[0]),) + tuple(float(g) for g in np.diff(cuts))
