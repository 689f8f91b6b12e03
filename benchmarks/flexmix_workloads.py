"""The everyday workloads timed against R's flexmix (``run.py --cases vs_flexmix_*``).

The workloads of the performance issue: wide Gaussian and Poisson designs,
a four-component Gaussian, one fit on small data, choosing K on small data,
a bootstrap likelihood-ratio test. Each simulates its data (fixed seeds),
times emformula as a user runs it (``emglm`` / ``select_k`` /
``bootstrap_lrt`` from a formula and a DataFrame, default settings), the
same-run statsmodels baseline where there is one (a one-component GLM from
the same formula), and, with ``--with-r`` where ``Rscript`` and flexmix are
installed, flexmix on the same data written to a CSV file
(``flexmix_workloads.R``). Times are medians over the repeats; speed is
compared at equal or better log-likelihood, so each row reports both
packages' log-likelihoods and iterations.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
R_SCRIPT = HERE / "flexmix_workloads.R"

#: name -> (description, family, K, rows at full size, rows in quick mode, columns)
WORKLOADS = {
    "vs_flexmix_gaussian_p50": (
        "Gaussian K=2, intercept + 50 columns: emglm vs flexmix",
        "gaussian",
        2,
        100_000,
        2_000,
        50,
    ),
    "vs_flexmix_gaussian_k4": (
        "Gaussian K=4, intercept + 20 columns: emglm vs flexmix",
        "gaussian",
        4,
        100_000,
        2_000,
        20,
    ),
    "vs_flexmix_poisson_p50": (
        "Poisson K=2, intercept + 50 columns: emglm vs flexmix",
        "poisson",
        2,
        100_000,
        2_000,
        50,
    ),
    "vs_flexmix_small": (
        "one fit on small data, Poisson K=2, n=200, intercept + 2 columns",
        "poisson",
        2,
        200,
        200,
        2,
    ),
    "vs_flexmix_select_k": (
        "select_k K=1..5 (quick 1..3), Poisson, n=500, intercept + 2 columns",
        "poisson",
        5,
        500,
        500,
        2,
    ),
    "vs_flexmix_bootstrap": (
        "bootstrap LR test K=1 vs 2, Poisson, n=2000 (100 replicates; quick 3)",
        "poisson",
        2,
        2000,
        2000,
        2,
    ),
}
#: Bootstrap replicates at full size and in quick mode.
N_BOOT = (100, 3)


def simulate(name, n, seed=11):
    """The workload's data: y and x1..xp, two (or K) well-separated components."""
    _, family, K, _, _, p = WORKLOADS[name]
    K = 2 if name in ("vs_flexmix_select_k", "vs_flexmix_bootstrap") else K
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    z = rng.integers(0, K, size=n)
    coef = rng.normal(scale=0.3 if family == "poisson" else 1.0, size=(p, K))
    shift = np.linspace(-1.0, 1.0, K) * (1.0 if family == "poisson" else 3.0)
    eta = np.einsum("ij,ij->i", x, coef[:, z].T) / np.sqrt(p) + shift[z]
    if family == "poisson":
        y = rng.poisson(np.exp(1.0 + eta)).astype(float)
    else:
        y = eta + rng.normal(size=n)
    data = pd.DataFrame(x, columns=[f"x{j + 1}" for j in range(p)])
    data.insert(0, "y", y)
    return data


def formula_of(data):
    return "y ~ " + " + ".join(c for c in data.columns if c != "y")


#: Largest K of select_k in quick mode (a smoke test; 5 at full size).
QUICK_KMAX = 3


def largest_k(name, quick):
    """K of the workload (for select_k: the largest K tried)."""
    K = WORKLOADS[name][2]
    return min(K, QUICK_KMAX) if quick and name == "vs_flexmix_select_k" else K


def time_emformula(name, data, repeats, quick):
    """Median seconds, log-likelihood and iterations of the emformula call.

    The first call of a process pays one-time costs (imports, formulaic's
    first parse), which a user pays once per session: an untimed call on
    the same data comes first.
    """
    from emformula import bootstrap_lrt, emglm, select_k

    family = WORKLOADS[name][1]
    K = largest_k(name, quick)
    formula = formula_of(data)
    emglm(formula, data.iloc[:200], family, 1)  # the one-time costs, untimed
    times, llfs, iters = [], [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        if name == "vs_flexmix_select_k":
            choice = select_k(formula, data, family, K=range(1, K + 1), random_state=r)
            best = choice.fits[choice.best_k]
            llf, n_iter = best.llf, int(choice.table["n_iter"].sum())
        elif name == "vs_flexmix_bootstrap":
            test = bootstrap_lrt(formula, data, family, 1, 2, n_boot=N_BOOT[quick], random_state=r)
            llf, n_iter = test.statistic, N_BOOT[quick]
        else:
            res = emglm(formula, data, family, K, random_state=r)
            llf, n_iter = res.llf, res.n_iter
        times.append(time.perf_counter() - t0)
        llfs.append(llf)
        iters.append(n_iter)
    return {
        "seconds": float(np.median(times)),
        "times": times,
        "llf": float(np.max(llfs)),
        "llfs": llfs,
        "iterations": int(np.median(iters)),
    }


def time_statsmodels(name, data, repeats):
    """statsmodels' one-component GLM from the same formula (single fits only)."""
    if name in ("vs_flexmix_select_k", "vs_flexmix_bootstrap"):
        return None
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    family = sm.families.Poisson() if WORKLOADS[name][1] == "poisson" else sm.families.Gaussian()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        smf.glm(formula_of(data), data, family=family).fit()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def r_available():
    """Whether Rscript and flexmix are there."""
    if shutil.which("Rscript") is None:
        return False
    proc = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(flexmix))"], capture_output=True, timeout=120
    )
    return proc.returncode == 0


def time_flexmix(name, data, repeats, quick, timeout=3600):
    """flexmix on the same data: median seconds, best llf, median iterations."""
    family = WORKLOADS[name][1]
    K = largest_k(name, quick)
    workload = {"vs_flexmix_select_k": "select_k", "vs_flexmix_bootstrap": "bootstrap"}.get(
        name, "fit"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        data.to_csv(path, index=False)
        cmd = [
            "Rscript",
            str(R_SCRIPT),
            workload,
            str(path),
            str(K),
            family,
            str(repeats),
            str(N_BOOT[quick]),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("flexmix failed: " + proc.stderr.strip()[-500:])
    values = {"seconds": [], "llf": [], "iter": []}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in values:
            values[key].append(float(value))
    return {
        "seconds": float(np.median(values["seconds"])),
        "times": values["seconds"],
        "llf": float(np.max(values["llf"])),
        "llfs": values["llf"],
        "iterations": int(np.median(values["iter"])),
    }


def run_workload(name, args):
    """One row of run.py's table (and its flexmix comparison)."""
    _, family, K, full_n, quick_n, p = WORKLOADS[name]
    n = quick_n if args.quick else full_n
    data = simulate(name, n)
    em = time_emformula(name, data, args.repeats, args.quick)
    sm_seconds = time_statsmodels(name, data, args.repeats)
    notes = [
        f"emformula times {', '.join(f'{t:.3f}' for t in em['times'])} s; "
        f"log-likelihoods {', '.join(f'{v:.4f}' for v in em['llfs'])}"
    ]
    if name == "vs_flexmix_bootstrap":
        notes.append("llf column: the observed LR statistic (2 x llf difference) of the data")
    if name == "vs_flexmix_select_k":
        notes.append("llf column: the chosen K's log-likelihood; iterations: summed over K")
    flexmix = None
    if getattr(args, "with_r", False):
        if r_available():
            flexmix = time_flexmix(name, data, args.repeats, args.quick)
            notes.append(
                f"flexmix times {', '.join(f'{t:.3f}' for t in flexmix['times'])} s; "
                f"log-likelihoods {', '.join(f'{v:.4f}' for v in flexmix['llfs'])}"
            )
        else:
            notes.append("--with-r: Rscript or flexmix not found, flexmix not timed")
    if sm_seconds is not None:
        notes.append(f"statsmodels GLM (K=1) from the same formula {sm_seconds:.4f} s")
    checks = {}
    extra = {"sm_seconds": sm_seconds}
    if flexmix is not None:
        ratio = flexmix["seconds"] / em["seconds"]
        extra.update(
            flexmix_seconds=flexmix["seconds"],
            flexmix_llf=flexmix["llf"],
            flexmix_iterations=flexmix["iterations"],
            flexmix_ratio=ratio,
        )
        # Speed is compared at equal or better log-likelihood.
        tolerance = 1e-6 * abs(flexmix["llf"]) + 1e-3
        extra["llf_at_least_flexmix"] = bool(em["llf"] >= flexmix["llf"] - tolerance)
        if not args.quick:
            checks["vs flexmix"] = ratio >= 20.0 and extra["llf_at_least_flexmix"]
    K = largest_k(name, args.quick)
    return [
        dict(
            case=name,
            n=n,
            K=K if name != "vs_flexmix_select_k" else f"1..{K}",
            seconds=em["seconds"],
            target=">= 20x flexmix (with --with-r)",
            checks=checks,
            llf=em["llf"],
            iterations=em["iterations"],
            ratio=None if sm_seconds is None else em["seconds"] / sm_seconds,
            ratio_what="fit time / statsmodels GLM from the same formula",
            notes=notes,
            extra=extra,
        )
    ]


def flexmix_table(rows):
    """The comparison table: both packages' times, ratio, iterations and llf."""
    lines = [
        "| workload | n | K | emformula s | flexmix s | flexmix / emformula "
        "| iterations (em / flexmix) | llf (em / flexmix) | em llf >= flexmix |",
        "|" + "---|" * 9,
    ]
    for row in rows:
        extra = row.get("extra") or {}
        if not row["case"].startswith("vs_flexmix") or row.get("error"):
            continue
        if "flexmix_seconds" not in extra:
            lines.append(
                f"| {row['case']} | {row['n']:,} | {row['K']} | {row['seconds']:.3f} "
                "| - | - | - | - | - |"
            )
            continue
        lines.append(
            f"| {row['case']} | {row['n']:,} | {row['K']} | {row['seconds']:.3f} | "
            f"{extra['flexmix_seconds']:.3f} | {extra['flexmix_ratio']:.1f}x | "
            f"{row['iterations']} / {extra['flexmix_iterations']} | "
            f"{row['llf']:.3f} / {extra['flexmix_llf']:.3f} | "
            f"{'yes' if extra['llf_at_least_flexmix'] else 'no'} |"
        )
    return "\n".join(lines)
