"""Where the rows live: in memory (the engine's arrays) or in a dask DataFrame.

Each backend supplies the sums the engine's EM loop needs
(:mod:`emformula.engine.rows`) and the data-dependent parts of a results
object (posterior, fitted values, predictions, the information and the
meats of the sandwich covariances): :mod:`.memory` and :mod:`.dask`.

A fit on dask returns a results object, whose class lives in the layer above
(:mod:`emformula.results`); that layer registers how to build one with
:func:`register_results` when it is imported, so that this layer never
imports it.
"""

from __future__ import annotations

__all__ = ["register_results", "make_results"]

_RESULTS: dict = {}


def register_results(factory):
    """Set how a backend's fit becomes a results object:
    ``factory(model, run, *, rows, fit_options, problems, cov)``."""
    _RESULTS["factory"] = factory
    return factory


def make_results(model, run, **parts):
    """The results object of a fit (see :func:`register_results`)."""
    if "factory" not in _RESULTS:
        raise RuntimeError("no results class registered: import emformula first")
    return _RESULTS["factory"](model, run, **parts)
