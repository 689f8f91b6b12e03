"""Where emformula 0.1.0 kept WeightedGram (now in :mod:`emformula.engine.gram`).

Only so that results pickled by that version load: nothing in the package
imports this module, and new code should import from the new place.
"""

from .engine.gram import WeightedGram  # noqa: F401
