"""The formula layer: the only code that uses formulaic.

``columns`` turns DataFrame columns of any dtype into numbers or factors,
``design`` builds the design matrices of a formula (and rebuilds them for
new data), ``dask_design`` does the same partition by partition.
"""
