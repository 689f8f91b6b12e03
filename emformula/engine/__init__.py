"""The EM engine: numpy arrays in, numpy arrays out.

Nothing here knows about formulas, pandas or dask. ``data`` holds the
containers, ``layout`` the vector of free parameters, ``estep`` the E-step,
``sums`` what EM takes from the rows (sums over a piece of data), ``mstep``
the M-step on those sums, ``rows`` the rows backend of arrays in memory,
``loop`` the EM loop with SQUAREM, the Newton finish, diagnostics and the
component order, ``louis`` the observed information and scores,
``initial`` starts fitted from scratch, ``starts`` the start strategy, and
``em`` the arrays-level names of them all.
"""
