"""Smoke test of the benchmark script: ``benchmarks/run.py --quick`` runs and
writes a table with a row per case. No timing assertions: benchmarks are not
timed tests (time targets are judged only by a full run on the target machine).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run.py"

CASES = [
    "poisson_k2_fit",
    "poisson_k2_bse",
    "gaussian_k3_fit",
    "binomial_k2_fit",
    "iter_poisson_k2",
    "iter_gaussian_k3",
    "iter_scaling",
    "slow_em_binomial",
    "statsmodels_poisson",
    "vs_flexmix_gaussian_p50",
    "vs_flexmix_gaussian_k4",
    "vs_flexmix_poisson_p50",
    "vs_flexmix_small",
    "vs_flexmix_select_k",
    "vs_flexmix_bootstrap",
]


def test_benchmarks_quick(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    # The first table of the report (the flexmix comparison may follow).
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if line.startswith("| "):  # not the |---| separator
            rows.append(line)
    header, body = rows[0], rows[1:]
    assert "median s (fit)" in header and "peak MB" in header
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in body]
    assert all(len(c) == len(header.strip("|").split("|")) for c in cells)
    names = [c[0] for c in cells]
    for case in CASES:
        assert case in names, f"no row for {case}:\n{text}"
    # A case that crashed shows ERROR (and the script exits non-zero).
    assert not any("ERROR" in c[5] for c in cells), text
