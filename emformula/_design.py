"""Where emformula 0.1.0 kept Design (now in :mod:`emformula.formula.design`).

Only so that results pickled by that version load: nothing in the package
imports this module, and new code should import from the new place.
"""

from .formula.design import Design  # noqa: F401
