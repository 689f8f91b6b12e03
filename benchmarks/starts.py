"""The cost of the default start strategy against the plain random starts.

Run from the project root:

    python benchmarks/starts.py [--repeats 3] [--quick]

Two cases, each timed in this one process, old and new alternating so that
both see the same machine:

* **poisson_1e6**: the benchmark's Poisson K=2 data (1e6 rows, p=3). "Old" is
  the default before the start strategy (``start="random"``, ``n_init=10``:
  ten random partitions, each separated on a 20 000-row subsample and run to
  convergence); "new" is today's default (``start="auto"``, ``n_init=10``).
  Target: new / old <= 1.5.
* **many_levels**: tests/many_levels.py (3000 rows, a 60-level factor, K=2).
  "Old" is ``start="random", n_init=50``, the many-starts remedy before;
  "new" the default. Target: new faster, and at a higher log-likelihood.

Prints a Markdown table with the medians, their ratio and the final
log-likelihoods.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from many_levels import FORMULA, make_many_levels  # noqa: E402
from run import make_poisson  # noqa: E402

from emformula import EMGLM  # noqa: E402


def _time(fit, repeats):
    times, llf = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        res = fit()
        times.append(time.perf_counter() - start)
        llf = res.llf
    return times, llf


def cases(quick):
    n = 20_000 if quick else 1_000_000
    d = make_poisson(n)
    poisson = EMGLM(d["y"], d["X"], family="poisson", K=2)
    many = EMGLM.from_formula(FORMULA, make_many_levels(), "poisson", 2)
    return [
        (
            f"poisson_{n:.0e}",
            lambda: poisson.fit(start="random", n_init=10, random_state=0),
            lambda: poisson.fit(random_state=0),
            1.5,
        ),
        (
            "many_levels",
            lambda: many.fit(start="random", n_init=5 if quick else 50, random_state=0),
            lambda: many.fit(random_state=0),
            1.0,
        ),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, one repeat")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    rows = []
    warnings.simplefilter("ignore")
    for name, old, new, target in cases(args.quick):
        old_times, new_times = [], []
        for _ in range(repeats):  # alternate, so both meet the same load
            t, old_llf = _time(old, 1)
            old_times += t
            t, new_llf = _time(new, 1)
            new_times += t
        ratio = np.median(new_times) / np.median(old_times)
        rows.append(
            f"| {name} | {np.median(old_times):.2f} s | {np.median(new_times):.2f} s | "
            f"{ratio:.2f} (target <= {target}) | {old_llf:.3f} | {new_llf:.3f} |"
        )
    print("| case | old default | new default | new / old | old llf | new llf |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
