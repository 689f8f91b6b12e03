"""Where the rows live: in memory (the engine's arrays) or in a dask DataFrame."""
