"""Where emformula 0.1.0 kept ParameterLayout (now in :mod:`emformula.engine.layout`).

Only so that results pickled by that version load: nothing in the package
imports this module, and new code should import from the new place.
"""

from .engine.layout import ParameterLayout  # noqa: F401
