"""A Poisson mixture with a 60-level factor, where random starts fall short.

``y ~ x + C(g)`` with K=2 on 3000 rows: each component has 61 coefficients,
most of them level effects estimated from ~50 rows shared by two components.
Random partitions then end at local maxima below the nested model with the
factor shared across components (``fixed="~ C(g)"``), which no global
maximum of the full model can be below. Simulated here, seeded, so the data
are the same on every run.
"""

import numpy as np
import pandas as pd

FORMULA = "y ~ x + C(g)"
#: The best log-likelihood known for FORMULA with K=2
#: (tests/reference/many_levels_best.csv, made by make_many_levels_best.py).
N_LEVELS = 60


def make_many_levels(seed=2, n=3000, levels=N_LEVELS):
    """Two Poisson regressions (intercept, slope: (-1, 0.8) and (0.5, -0.5);
    proportions 0.4, 0.6) plus level effects ~ N(0, 1) common to both."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, n)
    x = rng.normal(size=n)
    level_effect = rng.normal(scale=1.0, size=levels)
    first = rng.random(n) < 0.4
    eta = np.where(first, -1.0 + 0.8 * x, 0.5 - 0.5 * x) + level_effect[g]
    y = rng.poisson(np.exp(eta))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})
