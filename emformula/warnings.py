"""Warning classes of emformula.

They subclass statsmodels' warnings so that filters written for statsmodels
(``warnings.simplefilter("ignore", ConvergenceWarning)``) also apply here.
"""

import functools
import os
import sys
import warnings as _warnings

from statsmodels.tools.sm_exceptions import ConvergenceWarning as _SMConvergenceWarning

__all__ = ["ConvergenceWarning", "EstimationWarning", "LocalMaximumWarning", "warn"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Frames between the user's line and the package that are not the user's
# either: a cached property's __get__.
_PASSED_THROUGH = {os.path.abspath(functools.__file__)}


class ConvergenceWarning(_SMConvergenceWarning):
    """EM stopped at ``max_iter`` before the log-likelihood settled."""


class EstimationWarning(UserWarning):
    """A fit is degenerate somewhere: a collapsed component, a singular
    information matrix, a parameter that cannot be estimated."""


class LocalMaximumWarning(EstimationWarning):
    """The reported maximum may not be the best one: only one start reached
    it, or the fit ended below a model nested in it."""


def warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the user's line: the first caller
    outside emformula, however deep in the package the warning is raised
    and whichever entry point (``emglm``, ``EMGLM.fit``, ``select_k``, a
    results attribute) led there.
    """
    frame = sys._getframe(1)
    level = 2  # 1 is this function's own line
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE)
        or os.path.abspath(frame.f_code.co_filename) in _PASSED_THROUGH
    ):
        frame = frame.f_back
        level += 1
    if frame is not None and _dispatcher(frame):
        # Raised in a worker thread or process (a dask task, a pool): the
        # user's line is not on this stack; the package's line is the best
        # one there is.
        level -= 1
    _warnings.warn(message, category, stacklevel=level)


#: Modules that run the package's code on behalf of the user's line, from a
#: stack of their own (threads, worker processes, task schedulers).
_DISPATCHERS = frozenset(
    {"threading", "concurrent", "multiprocessing", "runpy", "asyncio", "dask", "distributed"}
)


def _dispatcher(frame):
    name = frame.f_globals.get("__name__", "") or ""
    return name.split(".")[0] in _DISPATCHERS
