"""emformula: finite mixtures of generalized linear models, fitted by EM.

>>> from emformula import emglm, small_em, select_best, datasets
"""

from . import datasets
from .api import WarmupTrials, emglm, select_best, small_em
from .families import CensoredGaussian, MixtureFamily, NegativeBinomial, PointMass, as_family
from .model import EMGLM
from .postestimation.residuals import residuals
from .report.summary import compare
from .results import EMGLMResults, load
from .selection import BootstrapLRT, SelectKResult, bootstrap_lrt, select_k
from .specification import MixtureSpec
from .warnings import ConvergenceWarning, EstimationWarning, LocalMaximumWarning

__version__ = "0.1.0"

_PLOTTING = ("plot_params", "plot_diagnostics", "plot_qq", "plot_posterior")


def __getattr__(name):
    # Plots import matplotlib, which the core does not need: load on first use.
    if name in _PLOTTING or name == "plotting":
        from .report import plotting

        return plotting if name == "plotting" else getattr(plotting, name)
    raise AttributeError(f"module 'emformula' has no attribute {name!r}")


__all__ = [
    "emglm",
    "small_em",
    "select_best",
    "EMGLM",
    "EMGLMResults",
    "WarmupTrials",
    "MixtureSpec",
    "MixtureFamily",
    "as_family",
    "NegativeBinomial",
    "PointMass",
    "CensoredGaussian",
    "datasets",
    "ConvergenceWarning",
    "EstimationWarning",
    "LocalMaximumWarning",
    "compare",
    "select_k",
    "SelectKResult",
    "bootstrap_lrt",
    "BootstrapLRT",
    "residuals",
    "load",
    "__version__",
    *_PLOTTING,
]
