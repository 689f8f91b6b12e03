"""Where emformula 0.1.0 kept EMData, EMRun, EStep, Estimates (now in :mod:`emformula.engine.data`).

Only so that results pickled by that version load: nothing in the package
imports this module, and new code should import from the new place.
"""

from .engine.data import EMData, EMRun, EStep, Estimates  # noqa: F401
