"""Component families: the distributions a mixture component can follow.

The lowest layer of the package: nothing here imports the engine. One class
per distribution, each a subclass of :class:`MixtureFamily` (``base``),
which states what every family provides: the log-density with every
constant, its derivatives in the linear predictor, and the family's own
per-component parameters (:class:`FamilyParameter`: a dispersion, the
negative binomial's alpha) with their maximum likelihood M-step and
derivatives. :class:`PointMass` is a component without coefficients, and
:class:`ComponentFamilies` a family per component. ``registry`` turns a
name or a statsmodels family into one (:func:`as_family`).
"""

from .base import MixtureFamily
from .binomial import Binomial
from .censored_gaussian import CensoredGaussian
from .components import ComponentFamilies, check_family_use
from .exponential import DiscreteFamily, DispersionFamily, ExponentialFamily
from .gamma import Gamma
from .gaussian import Gaussian
from .inverse_gaussian import InverseGaussian
from .moments import WeightedMoments, default_scale_floor
from .negative_binomial import NegativeBinomial
from .ordinal import OrdinalFamily
from .parameters import DISPERSION, FamilyParameter, ParameterDerivatives
from .point_mass import PointMass
from .poisson import Poisson
from .registry import FAMILY_CLASSES, FAMILY_NAMES, LINK_NAMES, as_family

__all__ = [
    "MixtureFamily",
    "as_family",
    "FAMILY_NAMES",
    "LINK_NAMES",
    "WeightedMoments",
    "default_scale_floor",
    "FamilyParameter",
    "ParameterDerivatives",
    "DISPERSION",
    "ExponentialFamily",
    "DiscreteFamily",
    "DispersionFamily",
    "FAMILY_CLASSES",
    "Poisson",
    "Binomial",
    "Gaussian",
    "Gamma",
    "InverseGaussian",
    "NegativeBinomial",
    "PointMass",
    "ComponentFamilies",
    "CensoredGaussian",
    "OrdinalFamily",
    "check_family_use",
]
