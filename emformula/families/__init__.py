"""Component families: the distributions a mixture component can follow.

The lowest layer of the package: nothing here imports the engine. Each
family knows its log-density with every constant, the derivatives of it in
the linear predictor and in its own parameters (the dispersion), and the
maximum likelihood update of those parameters given posterior weights.
"""

from ._glm import (FAMILY_NAMES, LINK_NAMES, MixtureFamily, WeightedMoments, as_family,
                   default_scale_floor)

__all__ = ["MixtureFamily", "as_family", "FAMILY_NAMES", "LINK_NAMES", "WeightedMoments",
           "default_scale_floor"]
