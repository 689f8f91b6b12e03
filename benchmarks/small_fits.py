"""Per-fit cost on small data: default fits of a Poisson K = 2 model.

Usage (from the project root)::

    python benchmarks/small_fits.py                          # this tree
    python benchmarks/small_fits.py --emformula-path OLD     # another tree
    python benchmarks/small_fits.py --against OLD            # both, paired

Alone, it prints the median wall time of ``--fits`` fits (``n_init=3``, the
default start strategy) of ``--rows`` rows and the last log-likelihood,
which must agree between trees. Single runs vary by 20% or more on a shared
machine, whose speed drifts over seconds; ``--against OLD`` therefore runs
this tree and ``OLD`` in two worker processes and alternates them fit by
fit (the order swapped every fit), so that both meet the same drift, checks
that every pair of fits ends at the same log-likelihood, and prints the
median of the paired ratios (this tree / OLD) with its quartiles.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings

import numpy as np


def datasets(rows, count, seed=0):
    """``count`` data sets ``(y, x)`` of ``rows`` rows: two Poisson regressions."""
    rng = np.random.default_rng(seed)
    coef = np.array([[0.5, 2.0], [1.0, -0.5], [-0.5, 0.3]])
    out = []
    for _ in range(count):
        x = np.column_stack([np.ones(rows), rng.normal(size=rows), rng.uniform(-1, 1, size=rows)])
        z = rng.choice(2, size=rows, p=[0.65, 0.35])
        out.append((rng.poisson(np.exp(np.einsum("ij,ji->i", x, coef[:, z]))), x))
    return out


def fit_once(y, x, seed):
    """Seconds and log-likelihood of one default fit."""
    from emformula import EMGLM

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = EMGLM(y, x, "poisson", K=2).fit(random_state=seed, n_init=3)
    return time.perf_counter() - started, res.llf


def serve(rows, count):
    """Worker of ``--against``: one fit per line read (its number), answered
    with its time and log-likelihood."""
    data = datasets(rows, count)
    print("ready", flush=True)
    for line in sys.stdin:
        i = int(line)
        seconds, llf = fit_once(*data[i % count], seed=i)
        print(f"{seconds:.6f} {llf:.10f}", flush=True)


def paired(other, rows, fits, here=None):
    """This tree (``here``, default: the one Python imports) against
    ``other``, alternated fit by fit (see the module)."""
    workers = {}
    for name, path in (("this", here), ("other", other)):
        command = [sys.executable, __file__, "--serve", "--rows", str(rows), "--fits", str(fits)]
        if path is not None:
            command += ["--emformula-path", path]
        workers[name] = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    for worker in workers.values():
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker did not start")
    seconds = {"this": [], "other": []}
    try:
        for i in range(fits):
            order = ("this", "other") if i % 2 == 0 else ("other", "this")
            llfs = {}
            for name in order:
                worker = workers[name]
                worker.stdin.write(f"{i}\n")
                worker.stdin.flush()
                t, llf = worker.stdout.readline().split()
                seconds[name].append(float(t))
                llfs[name] = llf
            if llfs["this"] != llfs["other"]:
                raise RuntimeError(f"fit {i}: the trees disagree: {llfs}")
    finally:
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()
    # The first pair pays the one-time costs (lazy imports): left out.
    this, old = np.array(seconds["this"][1:]), np.array(seconds["other"][1:])
    ratio = this / old
    q1, q3 = np.percentile(ratio, [25, 75])
    print(
        f"{rows} rows, {ratio.size} pairs: this tree median {np.median(this) * 1e3:.1f} ms, "
        f"{other} {np.median(old) * 1e3:.1f} ms; paired ratio median {np.median(ratio):.3f} "
        f"(quartiles {q1:.3f}-{q3:.3f}), total {this.sum() / old.sum():.3f}; the same "
        "log-likelihood in every pair"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emformula-path", help="import emformula from this tree")
    parser.add_argument("--against", metavar="OLD", help="pair this tree with the tree OLD")
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.emformula_path:
        sys.path.insert(0, args.emformula_path)
    if args.serve:
        return serve(args.rows, args.fits)
    if args.against:
        return paired(args.against, args.rows, args.fits, args.emformula_path)
    import emformula

    times, llf = [], None
    for seed, (y, x) in enumerate(datasets(args.rows, args.fits)):
        seconds, llf = fit_once(y, x, seed)
        times.append(seconds)
    print(f"{emformula.__file__}: median {np.median(times):.4f} s, llf {llf:.6f}")


if __name__ == "__main__":
    main()
