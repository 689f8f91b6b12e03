"""Where the rows live: in memory (the engine's arrays) or in a dask DataFrame.

Each backend supplies the sums the engine's EM loop needs
(:mod:`emformula.engine.rows`) and the data-dependent parts of a results
object (posterior, fitted values, predictions, the information and the
meats of the sandwich covariances): :mod:`.memory` and :mod:`.dask`.

A fit on dask returns the parts of a results object
(:class:`~emformula.backends.dask.DaskFit`); the results class lives in a
layer above, and :mod:`emformula.dask_model` builds it, so that this layer
never imports it.
"""
