"""Louis' information of a fit against a numerical Hessian of its log-likelihood.

The check the family tests share: the observed log-likelihood as a function
of the parameter vector (the model's layout, the engine's E-step), its
Hessian by statsmodels' ``approx_hess`` at the estimates, and the fit's
information (Louis' method) compared entry by entry.
"""

import numpy as np
from statsmodels.tools.numdiff import approx_hess

from emformula.engine import em as _em


def assert_louis_equals_numerical_hessian(model, res, rtol=2e-4):
    """Louis' information of ``res`` equals minus the numerical Hessian of
    ``model``'s log-likelihood at the estimates (relative ``rtol``, and the
    same times the largest entry in absolute terms)."""
    layout = model.layout

    def llf(theta):
        return _em.e_step(model.data, layout.unpack(theta, model.data)).llf

    hess = approx_hess(layout.pack(res.estimates), llf)
    np.testing.assert_allclose(
        res.information().to_numpy(), -hess, rtol=rtol, atol=rtol * np.abs(hess).max()
    )
