"""The EM engine: numpy arrays in, numpy arrays out.

Nothing here knows about formulas, pandas or dask. ``data`` holds the
containers, ``layout`` the vector of free parameters, ``louis`` the observed
information and scores, ``em`` the E-step, the M-step and the EM loop with
SQUAREM and the Newton finish, ``starts`` the start strategy.
"""
