"""Process pools and BLAS threads: how the package runs, not what it computes."""
