"""Out-of-core benchmark: a Poisson K=2 mixture on a Parquet data set on disk.

Writes ``--rows`` rows (default 50 million: intercept + 2 covariates, two
Poisson regressions) as Parquet files of ``--rows-per-file`` rows, generated
file by file so the writer never holds the data set, then fits
``emglm("y ~ x1 + x2", dd.read_parquet(...), K=2)`` on dask's default
(threaded) scheduler and reports the wall time, the number of passes over the
data, the log-likelihood and the peak resident memory of the process.

Usage (from the project root)::

    python benchmarks/dask_out_of_core.py                      # 50M rows
    python benchmarks/dask_out_of_core.py --rows 2000000       # a quick look

The data set is kept in ``--dir`` (default: a folder in the system's temporary
directory) and reused when it already has the requested size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRUE = {"comp1": (0.5, 0.8, -0.4), "comp2": (2.0, -0.5, 0.3)}
PRIOR = 0.4


def write_data(folder, rows, rows_per_file, seed=0):
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "ROWS"
    if marker.exists() and int(marker.read_text()) == rows:
        return
    for old in folder.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    written, part = 0, 0
    while written < rows:
        n = min(rows_per_file, rows - written)
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        second = rng.random(n) >= PRIOR
        b = np.where(second[:, None], TRUE["comp2"], TRUE["comp1"])
        y = rng.poisson(np.exp(b[:, 0] + b[:, 1] * x1 + b[:, 2] * x2))
        pd.DataFrame({"x1": x1, "x2": x2, "y": y.astype(float)}).to_parquet(
            folder / f"part-{part:04d}.parquet", index=False
        )
        written += n
        part += 1
    marker.write_text(str(rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()) / "emformula-oocore"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    write_data(args.dir, args.rows, args.rows_per_file)
    written = time.perf_counter() - started

    import dask.dataframe as dd

    from emformula import emglm

    ddf = dd.read_parquet(str(args.dir))
    started = time.perf_counter()
    res = emglm("y ~ x1 + x2", ddf, "poisson", K=2, random_state=1, n_init=3)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {
        "rows": args.rows,
        "partitions": ddf.npartitions,
        "write_seconds": round(written, 1),
        "fit_seconds": round(seconds, 1),
        "passes": res.fit_options["passes"],
        "n_iter": res.n_iter,
        "llf": res.llf,
        "converged": res.converged,
        "peak_rss_mb": round(peak_mb, 1),
        "max_abs_error_vs_truth": float(
            np.abs(
                res.params[["comp1", "comp2"]].to_numpy()
                - np.column_stack([TRUE["comp2"], TRUE["comp1"]])
            ).max()
        ),
    }
    print(json.dumps(out, indent=2))
    print(res.params.round(4).to_string())
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
