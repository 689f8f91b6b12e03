"""Warning classes of emformula.

They subclass statsmodels' warnings so that filters written for statsmodels
(``warnings.simplefilter("ignore", ConvergenceWarning)``) also apply here.
"""

from statsmodels.tools.sm_exceptions import ConvergenceWarning as _SMConvergenceWarning

__all__ = ["ConvergenceWarning", "EstimationWarning", "LocalMaximumWarning"]


class ConvergenceWarning(_SMConvergenceWarning):
    """EM stopped at ``max_iter`` before the log-likelihood settled."""


class EstimationWarning(UserWarning):
    """A fit is degenerate somewhere: a collapsed component, a singular
    information matrix, a parameter that cannot be estimated."""


class LocalMaximumWarning(EstimationWarning):
    """The reported maximum may not be the best one: only one start reached
    it, or the fit ended below a model nested in it."""
