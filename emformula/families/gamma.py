"""The gamma family: a positive response with constant coefficient of variation."""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from statsmodels.genmod import families as sm_families

from ._numeric import LOG_2PI, TINY, empty_like_broadcast, entries_at, positions, stirling_error
from .exponential import DispersionFamily, is_power_link

__all__ = ["Gamma"]


class Gamma(DispersionFamily):
    """Gamma components with mean ``mu`` and shape ``1 / scale``; canonical
    link ``1 / mu``.

    The dispersion's M-step solves ``log(nu) - digamma(nu) = d`` for the
    shape ``nu`` (no closed form), and its derivatives involve the
    digamma and trigamma functions: both override the shared forms of
    :class:`~emformula.families.exponential.DispersionFamily`.
    """

    name = "gamma"
    statsmodels_class = sm_families.Gamma

    def _link_is_canonical(self, link):
        return is_power_link(link, -1.0)

    def loglike_kernel(self, y, mu, scale=1.0, trials=1.0, eta=None):
        return _gamma_log_density(y, mu, scale)

    def scale_statistic(self, y, mu, weight):
        """``-sum w (1 + log(y / mu) - y / mu)``, rows without weight left out.

        Means clipped at the edge of their range (a trial step under the
        inverse link) can make the sum overflow; it is then infinite, which
        :meth:`scale_from_statistic` turns into the largest dispersion.
        """
        keep = weight > 0
        with np.errstate(all="ignore"):
            ratio = y / mu
            terms = 1.0 + np.log(ratio) - ratio
            return -float(np.dot(weight[keep], terms[keep]))

    def scale_from_statistic(self, mean_statistic):
        """ML dispersion ``1 / nu`` where ``log(nu) - digamma(nu) = d``.

        ``d >= 0``; Newton on ``log(nu)`` converges in a handful of steps
        from the approximation of Minka (2002).
        """
        d = float(mean_statistic)
        if not d > 1e-12:
            return 1e-12
        if not d < 1e10:
            # Means far from the data (clipped at the edge of their range):
            # log(nu) - digamma(nu) ~ 1/nu for small nu, so phi ~ d.
            return min(d, 1e300)
        nu = (3.0 - d + np.sqrt((d - 3.0) ** 2 + 24.0 * d)) / (12.0 * d)
        log_nu = np.log(nu)
        for _ in range(100):
            nu = np.exp(log_nu)
            f = log_nu - special.digamma(nu) - d
            fprime = 1.0 - nu * special.polygamma(1, nu)
            step = f / fprime
            log_nu -= step
            if abs(step) < 1e-14:
                break
        return float(np.exp(-log_nu))

    def _log_dispersion_derivatives(self, y, mu, scale):
        nu = 1.0 / scale
        ratio = y / mu
        g = np.log(nu * ratio) + 1.0 - ratio - special.digamma(nu)
        score = -nu * g
        second = nu * g + nu * (1.0 - nu * special.polygamma(1, nu))
        return score, -second

    def simulate(self, mu, scale, trials, rng):
        return rng.gamma(1.0 / scale, mu * scale)

    def distribution(self, mu, scale=1.0, trials=1.0):
        return stats.gamma(1.0 / scale, scale=mu * scale)

    def _outside_support(self, y, trials):
        return y <= 0, "non-positive values"


def _gamma_log_density(y, mu, scale):
    """Gamma log-density with mean ``mu`` and dispersion ``scale`` (shape 1/scale).

    Written as ``-nu d(r) - log(scale)/2 - log(2 pi)/2 - stirlerr(nu) - log y``
    with ``r = y / mu``, ``nu = 1 / scale`` and ``d(r) = r - 1 - log r``: the
    textbook form ``nu log(nu r) - nu r - lgamma(nu)`` cancels terms of size
    ``nu log(nu)`` and loses ~1e-10 of the log-likelihood when the shape is
    large (precise data). ``d`` is evaluated where each form is accurate, so
    the density is finite wherever it is representable:

    * ``u - log1p(u)`` with ``u = (y - mu) / mu`` (``y - mu`` is exact when
      ``y`` and ``mu`` are close), for ``r >= 0.01`` (the rounding of ``u``,
      ``eps``, is then below ``1e-13`` of ``d``);
    * a series where ``|u| < 0.01`` (there ``u - log1p(u)`` cancels to
      ``u^2 / 2``);
    * ``r - 1 - log r`` for ``r < 0.01``, with ``log r = log y - log mu``
      where ``r`` is not a normal number: ``log1p(y / mu - 1)`` is
      ``log1p(-1) = -inf`` once ``y / mu`` is below half the machine epsilon,
      so a response of 1e-20 gave a log-likelihood of -inf (issue 14);
    * where ``r`` overflows, ``nu d ~ nu r = exp(log y - log mu - log scale)``.

    Only ``y``, ``mu`` and the result take the shape of the data; terms of
    the dispersion alone stay at its shape (``(1, K)`` in the E-step).
    """
    y, mu, scale = (np.asarray(a, dtype=float) for a in (y, mu, scale))
    if max(y.ndim, mu.ndim, scale.ndim) == 0:  # numbers: the array code on one row
        return _gamma_log_density(y[None], mu, scale)[0]
    with np.errstate(all="ignore"):
        u = np.subtract(y, mu, out=empty_like_broadcast(y, mu))
        u /= mu
        out = np.log1p(u)
        np.subtract(u, out, out=out)
        # d < 5e-5 is |u| < 0.00993 (u < 0) or 0.01003 (u > 0): one pass
        # where abs(u) < 0.01 takes two.
        for mask, fix in ((out < 5e-5, _gamma_near), (u < -0.99, _gamma_low)):
            if mask.any():
                at = positions(mask)
                out[at] = fix(u, y, mu, at)
        out *= 1.0 / scale  # nu d
        huge = np.isinf(u)
        if huge.any():  # r overflows: nu d = nu r to rounding, from logs
            at = positions(huge)
            y_at, mu_at, scale_at = (entries_at(a, at, u.shape) for a in (y, mu, scale))
            out[at] = np.exp(np.log(y_at) - np.log(mu_at) - np.log(scale_at))
        np.subtract(-0.5 * (np.log(scale) + LOG_2PI) - stirling_error(1.0 / scale), out, out=out)
        out -= np.log(y)
    return out


def _gamma_near(u, y, mu, at):
    """``d = u - log1p(u)`` for ``|u| < 0.0105``: Loader's (2000) series for
    the saddle-point deviance. With ``v = u / (2 + u)``,
    ``log1p(u) = 2 atanh(v)`` and ``d = u v - 2 (v^3/3 + v^5/5 + ...)``;
    ``|v| < 0.0053``, so four terms reach the rounding error."""
    u = u[at]
    v = u / (2.0 + u)
    v2 = v * v
    return u * v - 2.0 * v * v2 * (1.0 / 3.0 + v2 * (1.0 / 5.0 + v2 * (1.0 / 7.0 + v2 / 9.0)))


def _gamma_low(u, y, mu, at):
    """``d = r - 1 - log r`` for ``r < 0.01``."""
    y, mu = entries_at(y, at, u.shape), entries_at(mu, at, u.shape)
    r = y / mu
    log_r = np.log(r)
    lost = r < TINY  # r underflowed or is sub-normal (digits lost)
    if lost.any():
        log_r[lost] = np.log(y[lost]) - np.log(mu[lost])
    return r - 1.0 - log_r
