"""Where emformula 0.1.0 kept StartRecord, StartSearch (now in :mod:`emformula.engine.starts`).

Only so that results pickled by that version load: nothing in the package
imports this module, and new code should import from the new place.
"""

from .engine.starts import StartRecord, StartSearch  # noqa: F401
