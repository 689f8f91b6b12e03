"""A family's derivatives against central differences of its own log-density.

The check the family tests share for a family with one log-transformed
parameter: the eta score and information, the parameter's score and
information, and their cross term both ways (the parameter's score in eta,
the eta score in the parameter), each against central differences with
step ``h`` of the log-density (or of the analytic score one order down).
"""

import numpy as np


def assert_one_parameter_derivatives(family, y, mu, value, h=1e-5):
    """Check ``eta_derivatives_at`` and ``parameter_derivatives`` of
    ``family`` at means ``mu`` and parameter ``value`` (natural scale)."""
    eta = family.link(mu)
    t = np.log(value)

    def ll(e, log_p):
        return family.log_density(y, family.link.inverse(e), (np.exp(log_p),))

    def eta_score(e, log_p):
        return family.eta_derivatives_at(y, family.link.inverse(e), (np.exp(log_p),))[0]

    def param_score(e, log_p):
        return family.parameter_derivatives(y, family.link.inverse(e), (np.exp(log_p),)).score[0]

    def central(f, e, log_p, in_eta):
        if in_eta:
            return (f(e + h, log_p) - f(e - h, log_p)) / (2 * h)
        return (f(e, log_p + h) - f(e, log_p - h)) / (2 * h)

    close = dict(rtol=1e-6, atol=1e-8)
    score, info, _, _ = family.eta_derivatives_at(y, mu, (value,))
    np.testing.assert_allclose(score, central(ll, eta, t, True), **close)
    np.testing.assert_allclose(info, -central(eta_score, eta, t, True), **close)
    d = family.parameter_derivatives(y, mu, (value,))
    np.testing.assert_allclose(d.score[0], central(ll, eta, t, False), **close)
    np.testing.assert_allclose(d.info[0, 0], -central(param_score, eta, t, False), **close)
    np.testing.assert_allclose(d.cross_eta[0], -central(param_score, eta, t, True), **close)
    np.testing.assert_allclose(d.cross_eta[0], -central(eta_score, eta, t, False), **close)
