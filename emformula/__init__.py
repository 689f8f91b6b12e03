"""emformula: finite mixtures of generalized linear models, fitted by EM.

>>> from emformula import emglm, small_em, select_best, datasets
"""

from . import datasets
from .api import WarmupTrials, emglm, select_best, small_em
from .families import MixtureFamily, as_family
from .model import EMGLM
from .results import EMGLMResults
from .warnings import ConvergenceWarning, EstimationWarning

__version__ = "0.1.0"

__all__ = ["emglm", "small_em", "select_best", "EMGLM", "EMGLMResults", "WarmupTrials",
           "MixtureFamily", "as_family", "datasets", "ConvergenceWarning",
           "EstimationWarning", "__version__"]
