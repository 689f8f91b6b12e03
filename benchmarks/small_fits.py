"""Per-fit cost on small data: eight default fits of a 600-row Poisson K = 2 model.

Usage (from the project root)::

    python benchmarks/small_fits.py                          # this tree
    python benchmarks/small_fits.py --emformula-path OLD     # another tree

Prints the median wall time of the eight fits (``n_init=3``, the default
start strategy) and the last log-likelihood, which must agree between trees.
Alternate the two trees a few times on an otherwise idle machine: single
runs vary by about 20%.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emformula-path", help="import emformula from this tree")
    parser.add_argument("--fits", type=int, default=8)
    args = parser.parse_args(argv)
    if args.emformula_path:
        sys.path.insert(0, args.emformula_path)
    import emformula
    from emformula import EMGLM

    rng = np.random.default_rng(0)
    coef = np.array([[0.5, 2.0], [1.0, -0.5], [-0.5, 0.3]])
    times = []
    for seed in range(args.fits):
        n = 600
        x = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(-1, 1, size=n)])
        z = rng.choice(2, size=n, p=[0.65, 0.35])
        y = rng.poisson(np.exp(np.einsum("ij,ji->i", x, coef[:, z])))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = EMGLM(y, x, "poisson", K=2).fit(random_state=seed, n_init=3)
        times.append(time.perf_counter() - started)
    print(f"{emformula.__file__}: median {np.median(times):.4f} s, llf {res.llf:.6f}")


if __name__ == "__main__":
    main()
