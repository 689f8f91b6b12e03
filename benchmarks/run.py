#!/usr/bin/env python
"""Performance benchmarks of emformula against the targets of the performance issue.

Usage::

    python benchmarks/run.py                 # full: n = 1,000,000, 3 repeats
    python benchmarks/run.py --quick         # smoke test: n = 20,000, 1 repeat (< 30 s)
    python benchmarks/run.py --out FILE.md   # where the Markdown table goes
    python benchmarks/run.py --update-readme # also paste the table into benchmarks/README.md
    python benchmarks/run.py --profile       # cProfile of one Poisson K=2 fit, then exit

Every case runs in a fresh subprocess (``run.py --case NAME ...``) so that its
peak memory is its own; the parent collects one JSON file per case and writes
the table. Timings are medians over ``--repeats`` runs; statsmodels' GLM is
timed on the same data in the same subprocess. Peak memory is the
whole-process peak resident set (interpreter + imports + data + the work),
measured per phase by resetting the kernel's high-water mark
(``/proc/self/clear_refs``); where that is unavailable, ``ru_maxrss`` (the
peak since the process started) is reported instead and marked so.

Benchmarks are not timed tests: CI runs only ``--quick`` as a smoke test, and
time targets are judged only in full mode (n = 1,000,000).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as _dt
import gc
import io
import json
import math
import os
import platform
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _source_from_argv(argv):
    """``--emformula-path`` is needed before emformula is imported."""
    for i, arg in enumerate(argv):
        if arg == "--emformula-path" and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
        if arg.startswith("--emformula-path="):
            return Path(arg.split("=", 1)[1]).resolve()
    return ROOT


# Benchmark the working tree (or --emformula-path), not whatever is installed.
SOURCE = _source_from_argv(sys.argv)
sys.path.insert(0, str(SOURCE))

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flexmix_workloads import WORKLOADS, flexmix_table, run_workload  # noqa: E402

# --------------------------------------------------------------- settings
FULL_N = 1_000_000
QUICK_N = 20_000
FULL_REPEATS = 3
QUICK_REPEATS = 1
#: Two fits agree on the log-likelihood when they differ by at most this.
LLF_ATOL = 1e-3
#: Other processes using this many cores (on average) during a case make its
#: timings suspect; the verdict is then marked "[busy: x]".
BUSY_CORES = 0.25
#: Slow EM: "reached the final log-likelihood" means within this of the best.
SLOW_DELTA = 1e-6

#: case name -> (description, target) in the order of the table.
CASES = {
    "poisson_k2_fit": "Poisson K=2, intercept + 2 covariates, 1 random start, default tol",
    "poisson_k2_bse": "Louis standard errors (first access of res.bse) for the Poisson K=2 fit",
    "gaussian_k3_fit": "Gaussian K=3, intercept + 2 covariates, 1 random start, default tol",
    "binomial_k2_fit": "Binomial counts (trials 1..20) K=2, intercept + 2 covariates, 1 random start",
    "iter_poisson_k2": "one EM iteration (e_step + m_step) / (K x one statsmodels IRLS iteration)",
    "iter_gaussian_k3": "one EM iteration (e_step + m_step) / (K x one statsmodels IRLS iteration)",
    "iter_scaling": "time per EM iteration at n/4, n/2, n and K = 2, 4 (Poisson)",
    "slow_em_binomial": "weakly separated binomial counts K=2: plain EM vs SQUAREM + Newton",
    "statsmodels_poisson": "statsmodels GLM Poisson on the Poisson K=2 data (baseline)",
    "busy_wide": "Gaussian K=2, intercept + 50 columns, n/10 rows: fit idle and beside a busy process",
    "busy_narrow": "Poisson K=2, intercept + 2 covariates: fit idle and beside a busy process",
    "njobs_restarts": "Gaussian K=2, intercept + 50 columns, n/10 rows, 16 random starts: n_jobs=2 vs 1",
    "default_starts": "Poisson K=2: the default fit (start='auto') / the old default (10 random starts)",
    "iter_floor": "one EM iteration against the memory floor: Poisson, binomial, Gaussian, K = 2..4",
    **{name: spec[0] for name, spec in WORKLOADS.items()},
}

TARGETS = {
    "poisson_k2_fit": dict(seconds=2.0, peak_mb=1024.0),
    "poisson_k2_bse": dict(seconds=0.5, peak_mb=1024.0),
    "gaussian_k3_fit": dict(seconds=2.0),
    "binomial_k2_fit": dict(seconds=3.0),
    "iter_poisson_k2": dict(ratio=3.0),
    "iter_gaussian_k3": dict(ratio=3.0),
    "iter_scaling": dict(slope=1.15),
    "slow_em_binomial": dict(iter_ratio=5.0),
    "busy_wide": dict(busy_ratio=2.0),
    "busy_narrow": dict(busy_ratio=2.0),
    "njobs_restarts": dict(njobs_ratio=0.75),
    "default_starts": dict(starts_ratio=1.5),
    "iter_floor": dict(floor_ratio=2.0),
    **{name: dict(flexmix_ratio=20.0) for name in WORKLOADS},
}
#: Columns of the wide design of busy_wide and njobs_restarts (plus an intercept).
WIDE_P = 50
#: The busy cases' environment variable that makes the engine leave the BLAS alone.
BLAS_ENV = "EMFORMULA_BLAS_THREADS"


# ------------------------------------------------------------------ data
def poisson_coef(K):
    """(p=3, K) well-separated Poisson coefficients: intercepts 0.5, 2.0, 3.5, ..."""
    coef = np.empty((3, K))
    for k in range(K):
        coef[:, k] = [0.5 + 1.5 * k, *((0.3, -0.2) if k % 2 == 0 else (-0.4, 0.3))]
    return coef


def make_poisson(n, K=2, seed=1):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    coef = poisson_coef(K)
    z = rng.integers(0, K, n)
    y = rng.poisson(np.exp(np.einsum("ij,ji->i", X, coef[:, z]))).astype(float)
    return dict(y=y, X=X, coef=coef, scale=np.ones(K), prior=np.full(K, 1.0 / K))


def make_gaussian(n, seed=2):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    coef = np.array([[0.0, 5.0, 10.0], [1.0, -1.0, 0.5], [-1.0, 0.5, 1.0]])
    sd = np.array([1.0, 1.5, 0.8])
    z = rng.integers(0, 3, n)
    y = np.einsum("ij,ji->i", X, coef[:, z]) + rng.normal(size=n) * sd[z]
    return dict(y=y, X=X, coef=coef, scale=sd**2, prior=np.full(3, 1 / 3))


def make_binomial(n, seed=3):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    coef = np.array([[-1.5, 1.0], [0.5, -0.4], [-0.3, 0.6]])
    z = rng.integers(0, 2, n)
    trials = rng.integers(1, 21, n).astype(float)
    p = 1.0 / (1.0 + np.exp(-np.einsum("ij,ji->i", X, coef[:, z])))
    successes = rng.binomial(trials.astype(np.int64), p).astype(float)
    return dict(
        y=successes / trials,
        X=X,
        trials=trials,
        successes=successes,
        coef=coef,
        scale=np.ones(2),
        prior=np.full(2, 0.5),
    )


def make_slow_binomial(n, seed=4, separation=0.3):
    """Binomial counts (trials 1..9, mean 5) from two close components."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    coef = np.array([[-separation, separation], [0.5, 0.3]])
    z = rng.integers(0, 2, n)
    trials = rng.integers(1, 10, n).astype(float)
    p = 1.0 / (1.0 + np.exp(-np.einsum("ij,ji->i", X, coef[:, z])))
    successes = rng.binomial(trials.astype(np.int64), p).astype(float)
    return dict(y=successes / trials, X=X, trials=trials, successes=successes, coef=coef)


def make_wide(n, p=WIDE_P, seed=5):
    """Gaussian K=2 on an intercept and ``p`` standard-normal columns."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p))])
    coef = rng.normal(scale=0.5, size=(p + 1, 2))
    coef[0] = [0.0, 4.0]
    z = rng.integers(0, 2, n)
    y = np.einsum("ij,ji->i", X, coef[:, z]) + rng.normal(size=n)
    return dict(y=y, X=X, coef=coef, scale=np.ones(2), prior=np.full(2, 0.5))


def wide_n(args):
    """Rows of the wide design: n / 10 (100,000 in full mode)."""
    return max(args.n // 10, 2_000)


# ---------------------------------------------------------------- memory
_MB = 1024.0**2


def _status_kb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb():
    """Current resident set of this process in MB."""
    kb = _status_kb("VmRSS")
    return kb / 1024.0 if kb is not None else float("nan")


def reset_peak():
    """Reset the kernel's peak-RSS mark to the current RSS; True if supported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb(phase_reset):
    """Peak RSS in MB since the last reset (or since the process started)."""
    if phase_reset:
        kb = _status_kb("VmHWM")
        if kb is not None:
            return kb / 1024.0
    # ru_maxrss is in KB on Linux, bytes on macOS.
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / (_MB if sys.platform == "darwin" else 1024.0)


def system_busy_seconds():
    """CPU seconds spent busy by the whole machine since boot (all cores), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds():
    """CPU seconds of this process and of its children that have ended (the
    worker processes of ``n_jobs > 1``), which are the case's own work."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


#: (wall seconds, CPU seconds used by *other* processes) of every Phase.
PHASE_LOG = []


class Phase:
    """Context manager: wall time and peak RSS of a block, and how busy the
    rest of the machine was meanwhile (other processes' CPU time).

    ``neighbour``: a :class:`BusyNeighbour` the case started on purpose; its
    CPU time is not counted as other processes' (it is in ``neighbour_cores``).
    """

    def __init__(self, neighbour=None):
        self.neighbour = neighbour
        self.neighbour_cores = None

    def _neighbour_cpu(self):
        return self.neighbour.cpu_seconds() if self.neighbour is not None else 0.0

    def __enter__(self):
        gc.collect()
        self.rss_before = rss_mb()
        self.reset = reset_peak()
        self.busy0, self.self0 = system_busy_seconds(), self_cpu_seconds()
        self.neighbour0 = self._neighbour_cpu()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.peak = peak_mb(self.reset)
        busy1 = system_busy_seconds()
        neighbour = self._neighbour_cpu() - self.neighbour0
        if self.neighbour is not None:
            self.neighbour_cores = neighbour / self.seconds if self.seconds > 0 else None
        if busy1 is not None and self.busy0 is not None:
            others = max((busy1 - self.busy0) - (self_cpu_seconds() - self.self0) - neighbour, 0.0)
            PHASE_LOG.append((self.seconds, others))
        return False


#: The busy neighbour: a pure-Python loop on one core, bounded by its own
#: clock (argv[1] seconds) in case the benchmark dies before killing it.
SPIN = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


class BusyNeighbour:
    """Context manager: ``count`` processes each spinning one core (at most
    ``seconds``), started before the block and killed after it."""

    def __init__(self, count=1, seconds=600.0):
        self.count, self.seconds = count, seconds
        self.procs = []

    def __enter__(self):
        self.procs = [
            subprocess.Popen([sys.executable, "-c", SPIN, str(self.seconds)])
            for _ in range(self.count)
        ]
        # Past the interpreter's start-up, into the loop.
        deadline = time.perf_counter() + 5.0
        while time.perf_counter() < deadline:
            time.sleep(0.05)
            if all(self._cpu(p) is None or self._cpu(p) >= 0.1 for p in self.procs):
                break
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []
        return False

    @staticmethod
    def _cpu(proc):
        """CPU seconds of a running neighbour from /proc, or None."""
        try:
            with open(f"/proc/{proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self):
        return sum(self._cpu(p) or 0.0 for p in self.procs)


def others_load():
    """Average number of cores used by other processes during the timed phases."""
    wall = sum(w for w, _ in PHASE_LOG)
    return sum(o for _, o in PHASE_LOG) / wall if wall > 0 else None


def wait_until_idle(max_wait, threshold=0.2, sample=2.0):
    """Wait (at most ``max_wait`` s) until other processes use < ``threshold`` cores."""
    start = time.perf_counter()
    while True:
        b0 = system_busy_seconds()
        if b0 is None:
            return None
        time.sleep(sample)
        busy = (system_busy_seconds() - b0) / sample
        if busy < threshold or time.perf_counter() - start >= max_wait:
            return busy


def median(values):
    return float(np.median(np.asarray(values, dtype=float)))


# ------------------------------------------------------------- machine
def machine_info():
    import scipy
    import statsmodels

    import emformula

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = _meminfo_gb()
    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f"{b.get('name')} {b.get('version')}"
        extra = b.get("openblas configuration")
        if extra:
            blas += f" ({' '.join(extra.split())})"
    except Exception:  # noqa: BLE001 - old numpy: no dict mode
        pass
    threads = None
    try:
        from threadpoolctl import threadpool_info

        threads = ", ".join(
            f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()
        )
    except ImportError:
        threads = (
            ", ".join(
                f"{k}={os.environ[k]}"
                for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
                if k in os.environ
            )
            or "library default (threadpoolctl not installed)"
        )
    commit = "unknown"
    try:
        commit = (
            "git "
            + subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=SOURCE,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "emformula"],
            cwd=SOURCE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if dirty:
            commit += " + uncommitted changes in emformula/"
    except (OSError, subprocess.CalledProcessError):
        pass
    stamp = SOURCE / "SNAPSHOT"
    if stamp.exists():
        commit = stamp.read_text().strip()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical ({affinity} usable)",
        "memory": f"{mem:.1f} GB" if mem else "unknown",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__,
        "emformula": f"{getattr(emformula, '__version__', '?')} from "
        f"{Path(emformula.__file__).parent} ({commit})",
        "blas": blas,
        "blas threads": threads,
        "emformula blas threads": _engine_threads_text(),
    }


def _engine_threads_text():
    if not engine_limits_blas():
        return "not limited (this emformula has no _threads)"
    from emformula._runtime.threads import resolve_threads

    n = resolve_threads()
    return (
        "left alone (EMFORMULA_BLAS_THREADS=0)"
        if n == 0
        else f"{n} inside the engine (emformula._runtime.threads.blas_threads), 1 in each worker"
    )


def _meminfo_gb():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return float(line.split()[1]) / 1024**2
    except OSError:
        return None
    return None


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


# -------------------------------------------------------------- helpers
class WarningLog:
    """Collect warnings raised inside a block (reported, never hidden)."""

    def __init__(self):
        self.messages = {}

    def __enter__(self):
        self._cm = warnings.catch_warnings(record=True)
        self._records = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        for w in self._records:
            key = f"{w.category.__name__}: {str(w.message)[:120]}"
            self.messages[key] = self.messages.get(key, 0) + 1
        self._cm.__exit__(*exc)
        return False

    def summary(self):
        return [f"{msg} (x{count})" for msg, count in self.messages.items()]


def sm_family(name):
    import statsmodels.api as sm

    return {
        "poisson": sm.families.Poisson,
        "gaussian": sm.families.Gaussian,
        "binomial": sm.families.Binomial,
    }[name]()


def sm_endog(name, d):
    if name == "binomial":
        return np.column_stack([d["successes"], d["trials"] - d["successes"]])
    return d["y"]


def time_statsmodels(name, d, repeats):
    """Median wall time of a statsmodels GLM fit, its IRLS iterations, llf, peak MB."""
    import statsmodels.api as sm

    times, iters, llf = [], [], None
    with Phase() as ph:
        for r in range(repeats):
            t0 = time.perf_counter()
            res = sm.GLM(sm_endog(name, d), d["X"], family=sm_family(name)).fit()
            times.append(time.perf_counter() - t0)
            iters.append(int(res.fit_history["iteration"]))
            llf = float(res.llf)
            del res
    return dict(
        seconds=median(times),
        times=times,
        iterations=iters[0],
        llf=llf,
        per_iter=median([t / i for t, i in zip(times, iters)]),
        peak_mb=ph.peak,
    )


def statsmodels_marginal_iteration(name, d, repeats):
    """Marginal cost of one IRLS iteration: (t(maxiter=m) - t(maxiter=1)) / (m - 1)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    def run(maxiter):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sm.GLM(sm_endog(name, d), d["X"], family=sm_family(name)).fit(maxiter=maxiter, tol=0.0)
        return time.perf_counter() - t0

    m = 6
    t1 = median([run(1) for _ in range(repeats)])
    tm = median([run(m) for _ in range(repeats)])
    return max(tm - t1, 0.0) / (m - 1)


# ---------------------------------------------------------------- cases
def _fit_case(case, family, d, K, args, extra_model=None):
    """Time ``EMGLM(...).fit(n_init=1)``; compare with a tight multi-start fit."""
    from emformula import EMGLM

    rows, notes = {}, []
    base_rss = rss_mb()
    t0 = time.perf_counter()
    model = EMGLM(d["y"], d["X"], family, K, **(extra_model or {}))
    t_model = time.perf_counter() - t0
    times, llfs, iters, converged = [], [], [], []
    log = WarningLog()
    with log:
        for r in range(args.repeats):
            with Phase() as ph:
                res = model.fit(start="random", n_init=1, random_state=r)
            times.append(ph.seconds)
            if r == 0:
                fit_peak, fit_rss_before = ph.peak, ph.rss_before
            llfs.append(res.llf)
            iters.append(res.n_iter)
            converged.append(res.converged)
            del res
        gc.collect()
        ref = model.fit(start="random", n_init=args.ref_starts, tol=1e-13, random_state=12345)
    ref_llf = ref.llf
    del ref
    gaps = [ref_llf - llf for llf in llfs]
    worst = max(gaps, key=abs)
    del model
    gc.collect()
    sm_res = time_statsmodels(family, d, args.repeats)
    notes.append(
        f"fit times {', '.join(f'{t:.2f}' for t in times)} s (random_state 0..{args.repeats - 1})"
    )
    notes.append(
        f"tight fit (tol=1e-13, n_init={args.ref_starts}) llf {ref_llf:.6f}; "
        f"worst llf_ref - llf = {worst:.3g} (relative {abs(worst) / abs(ref_llf):.2g})"
    )
    notes.append(f"iterations per run {iters}; converged {converged}")
    notes.append(f"model construction (EMGLM.__init__, untimed) {t_model:.2f} s")
    notes.append(
        f"statsmodels GLM (one component, K=1) {sm_res['seconds']:.3f} s, "
        f"{sm_res['iterations']} IRLS iterations, peak {sm_res['peak_mb']:.0f} MB"
    )
    notes.append(
        f"RSS before the fit {fit_rss_before:.0f} MB (interpreter + imports + data; "
        f"{base_rss:.0f} MB before the model was built)"
    )
    notes += [f"warning: {w}" for w in log.summary()]
    t_med = median(times)
    target = TARGETS[case]
    checks = {"llf": abs(worst) <= LLF_ATOL}
    if not args.quick:
        checks["time"] = t_med <= target["seconds"]
        if "peak_mb" in target:
            checks["memory"] = fit_peak <= target["peak_mb"]
    rows = [
        dict(
            case=case,
            n=len(d["y"]),
            K=K,
            seconds=t_med,
            target=_target_text(target),
            checks=checks,
            llf=float(np.median(llfs)),
            iterations=int(np.median(iters)),
            ratio=t_med / sm_res["seconds"],
            ratio_what="fit time / statsmodels fit time",
            peak_mb=fit_peak,
            notes=notes,
            extra=dict(sm_seconds=sm_res["seconds"], ref_llf=ref_llf, llf_gaps=gaps),
        )
    ]
    return rows


def case_poisson_k2_fit(args):
    d = make_poisson(args.n, 2)
    return _fit_case("poisson_k2_fit", "poisson", d, 2, args)


def case_gaussian_k3_fit(args):
    d = make_gaussian(args.n)
    return _fit_case("gaussian_k3_fit", "gaussian", d, 3, args)


def case_binomial_k2_fit(args):
    d = make_binomial(args.n)
    return _fit_case(
        "binomial_k2_fit", "binomial", d, 2, args, extra_model=dict(trials=d["trials"])
    )


def case_poisson_k2_bse(args):
    from emformula import EMGLM
    from emformula.covariance.estimators import invert_information
    from emformula.engine.louis import louis_information
    from emformula.results import EMGLMResults

    d = make_poisson(args.n, 2)
    model = EMGLM(d["y"], d["X"], "poisson", 2)
    log = WarningLog()
    with log:
        res = model.fit(start="random", n_init=1, random_state=0)
        repeats = max(args.repeats, 3)
        times = []
        for r in range(repeats):
            # A fresh results object: nothing cached (the covariance, the
            # component means) -- what a user sees on the first res.bse.
            fresh = EMGLMResults(res.model, res._run, res.fit_options, res.problems)
            with Phase() as ph:
                fresh.bse
            times.append(ph.seconds)
            if r == 0:
                bse_peak, rss_before = ph.peak, ph.rss_before
            del fresh
        data, est, run = model.data, res.estimates, res._run
        mu = res._component_mean
        t_info, t_inv = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            info = louis_information(data, est, run.posterior, mu)
            t1 = time.perf_counter()
            invert_information(info)
            t_inv.append(time.perf_counter() - t0 - (t1 - t0))
            t_info.append(t1 - t0)
    t_med = median(times)
    notes = [
        f"first res.bse on a fresh results object: {', '.join(f'{t:.3f}' for t in times)} s",
        f"of which louis_information {median(t_info):.3f} s, invert_information "
        f"{median(t_inv) * 1e3:.2f} ms (the rest: component means, DataFrames)",
        f"RSS before {rss_before:.0f} MB (data + fitted results); peak during bse "
        f"{bse_peak:.0f} MB (+{bse_peak - rss_before:.0f} MB)",
    ]
    notes += [f"warning: {w}" for w in log.summary()]
    checks = {}
    if not args.quick:
        checks["time"] = t_med <= TARGETS["poisson_k2_bse"]["seconds"]
        checks["memory"] = bse_peak <= TARGETS["poisson_k2_bse"]["peak_mb"]
    return [
        dict(
            case="poisson_k2_bse",
            n=args.n,
            K=2,
            seconds=t_med,
            target=_target_text(TARGETS["poisson_k2_bse"]),
            checks=checks,
            llf=res.llf,
            iterations=None,
            ratio=None,
            peak_mb=bse_peak,
            notes=notes,
        )
    ]


def _true_estimates(d, family):
    """The simulation's parameters as engine estimates for ``family`` (its
    dispersion as the one family-parameter row where it has one)."""
    from emformula.engine import em as _em
    from emformula.families import as_family

    scale = np.asarray(d["scale"], float).copy()
    params = scale[None, :] if as_family(family).estimates_scale else np.zeros((0, scale.size))
    return _em.Estimates(d["coef"].copy(), params, np.asarray(d["prior"], float).copy())


def _model_for(family, d, n=None, K=2):
    from emformula import EMGLM

    sl = slice(None) if n is None else slice(0, n)
    kw = {"trials": d["trials"][sl]} if "trials" in d else {}
    return EMGLM(d["y"][sl], d["X"][sl], family, K, **kw)


def time_em_iteration(model, est, repeats):
    """Median seconds of e_step, m_step and their sum at fixed estimates."""
    from emformula.engine import em as _em

    data = model.data
    floor = model._scale_floor(None)
    estep = _em.e_step(data, est)  # warm-up (allocations, lazy imports)
    _em.m_step(data, est, estep, floor)
    te, tm = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estep = _em.e_step(data, est)
        t1 = time.perf_counter()
        _em.m_step(data, est, estep, floor)
        t2 = time.perf_counter()
        te.append(t1 - t0)
        tm.append(t2 - t1)
    return dict(e=median(te), m=median(tm), total=median([a + b for a, b in zip(te, tm)]))


def _iter_case(case, family, d, K, args):
    log = WarningLog()
    with log:
        model = _model_for(family, d, K=K)
        est = _true_estimates(d, family)
        with Phase() as ph:
            it = time_em_iteration(model, est, max(args.repeats, 5))
    del model
    gc.collect()
    sm_res = time_statsmodels(family, d, args.repeats)
    marginal = statsmodels_marginal_iteration(family, d, args.repeats)
    ratio = it["total"] / (K * sm_res["per_iter"])
    notes = [
        f"EM iteration at the true parameters: e_step {it['e'] * 1e3:.1f} ms + m_step "
        f"{it['m'] * 1e3:.1f} ms = {it['total'] * 1e3:.1f} ms",
        f"statsmodels GLM fit {sm_res['seconds']:.3f} s / {sm_res['iterations']} IRLS "
        f"iterations = {sm_res['per_iter'] * 1e3:.1f} ms per iteration (includes its setup "
        f"and results; marginal cost of one more iteration {marginal * 1e3:.1f} ms, "
        f"against which the ratio would be "
        f"{it['total'] / (K * marginal) if marginal > 0 else float('nan'):.2f})",
        f"ratio = {it['total'] * 1e3:.1f} / ({K} x {sm_res['per_iter'] * 1e3:.1f}) ms",
    ]
    notes += [f"warning: {w}" for w in log.summary()]
    checks = {} if args.quick else {"ratio": ratio <= TARGETS[case]["ratio"]}
    return [
        dict(
            case=case,
            n=len(d["y"]),
            K=K,
            seconds=it["total"],
            target=_target_text(TARGETS[case]),
            checks=checks,
            llf=None,
            iterations=1,
            ratio=ratio,
            ratio_what="EM iteration / (K x statsmodels IRLS iteration)",
            peak_mb=ph.peak,
            notes=notes,
            extra=dict(e=it["e"], m=it["m"], sm_per_iter=sm_res["per_iter"], sm_marginal=marginal),
        )
    ]


def case_iter_poisson_k2(args):
    return _iter_case("iter_poisson_k2", "poisson", make_poisson(args.n, 2), 2, args)


def case_iter_gaussian_k3(args):
    return _iter_case("iter_gaussian_k3", "gaussian", make_gaussian(args.n), 3, args)


def case_iter_scaling(args):
    sizes = [args.n // 4, args.n // 2, args.n]
    points = {}
    rows = []
    log = WarningLog()
    with log:
        for K in (2, 4):
            d = make_poisson(args.n, K, seed=10 + K)
            est = _true_estimates(d, "poisson")
            for n in sizes:
                model = _model_for("poisson", d, n=n, K=K)
                with Phase() as ph:
                    it = time_em_iteration(model, est, max(args.repeats, 7))
                points[(n, K)] = it["total"]
                rows.append(
                    dict(
                        case="iter_scaling",
                        n=n,
                        K=K,
                        seconds=it["total"],
                        target="",
                        checks={},
                        llf=None,
                        iterations=1,
                        ratio=None,
                        peak_mb=ph.peak,
                        notes=[],
                        extra=dict(e=it["e"], m=it["m"]),
                    )
                )
                del model
                gc.collect()
            del d
    ref = points[(args.n, 2)] / (args.n * 2)
    for row in rows:
        row["ratio"] = row["seconds"] / (row["n"] * row["K"]) / ref
        row["ratio_what"] = f"cost per row and component / that at n={args.n}, K=2"
    # Log-log slopes: time ~ n^a at fixed K, time ~ K^b at fixed n (noisy one
    # by one), and the joint least-squares fit log t = a log n + b log K + c
    # over all points, which is what the check uses.
    slope_n = {
        K: float(np.polyfit(np.log(sizes), np.log([points[(n, K)] for n in sizes]), 1)[0])
        for K in (2, 4)
    }
    slope_k = {n: math.log(points[(n, 4)] / points[(n, 2)]) / math.log(2.0) for n in sizes}
    keys = list(points)
    design = np.column_stack(
        [np.log([k[0] for k in keys]), np.log([k[1] for k in keys]), np.ones(len(keys))]
    )
    joint_a, joint_b, _ = np.linalg.lstsq(design, np.log([points[k] for k in keys]), rcond=None)[0]
    worst = max(joint_a, joint_b)
    summary = dict(
        case="iter_scaling",
        n=args.n,
        K="2, 4",
        seconds=None,
        target=_target_text(TARGETS["iter_scaling"]),
        # At quick-mode sizes the arrays fit in cache: slopes mean nothing.
        checks={} if args.quick else {"linear": worst <= TARGETS["iter_scaling"]["slope"]},
        llf=None,
        iterations=None,
        ratio=None,
        peak_mb=max(r["peak_mb"] for r in rows),
        notes=[
            f"joint fit time ~ n^a K^b: a = {joint_a:.2f}, b = {joint_b:.2f} (1 = linear; "
            "the check)",
            f"log-log slope in n: K=2 {slope_n[2]:.2f}, K=4 {slope_n[4]:.2f}",
            "slope in K (2 -> 4): " + ", ".join(f"n={n}: {s:.2f}" for n, s in slope_k.items()),
            "per point: "
            + "; ".join(
                f"n={r['n']} K={r['K']}: {r['seconds'] * 1e3:.1f} ms (e {r['extra']['e'] * 1e3:.1f}"
                f" + m {r['extra']['m'] * 1e3:.1f})"
                for r in rows
            ),
        ]
        + [f"warning: {w}" for w in log.summary()],
        extra=dict(
            slope_n=slope_n,
            slope_k={str(k): v for k, v in slope_k.items()},
            joint_a=float(joint_a),
            joint_b=float(joint_b),
        ),
    )
    for row in rows:
        row["case"] = "iter_scaling (point)"
    return rows + [summary]


# ------------------------------------------------------- the memory floor
#: Bytes of each of the two arrays whose dot product measures the machine's
#: streaming read bandwidth (far beyond any cache).
BANDWIDTH_BYTES = 128 * 2**20


def streaming_bandwidth(repeats=7):
    """Bytes per second this process reads from memory in a streaming loop:
    the best of ``repeats`` dot products of two arrays of
    :data:`BANDWIDTH_BYTES` each (one BLAS thread, as the engine uses; a dot
    product does two flops per 16 bytes read, so memory bounds it)."""
    a = np.ones(BANDWIDTH_BYTES // 8)
    b = np.full(BANDWIDTH_BYTES // 8, 0.5)
    float(a @ b)  # touch the pages
    best = min(_timed(lambda: float(a @ b)) for _ in range(repeats))
    return 2 * BANDWIDTH_BYTES / best


def _timed(function):
    t0 = time.perf_counter()
    function()
    return time.perf_counter() - t0


def floor_bytes(n, p, family):
    """Bytes one EM iteration must read at the least: every row's response
    and p design values, and where the family has them the binomial trials
    and the log-density constant (log y!, the binomial coefficient), once.

    A single pass that forms each row's K densities, posterior and IRLS terms
    in registers and adds them to the M-step's sums needs nothing else: no
    n x K array is written (unit weights, no offset, as in these cases)."""
    per_row = 1 + p + {"poisson": 1, "binomial": 2, "gaussian": 0}[family]
    return 8 * n * per_row


def case_iter_floor(args):
    """One EM iteration (e_step + m_step at the true parameters) of Poisson-log,
    binomial-logit and Gaussian-identity mixtures with K = 2, 3, 4 (intercept
    + 2 covariates), against the time a single pass over the data at the
    machine's streaming bandwidth takes (the floor of the performance issue)."""
    bandwidth = streaming_bandwidth()
    rows = []
    log = WarningLog()
    with log:
        for family in ("poisson", "binomial", "gaussian"):
            for K in (2, 3, 4):
                d = _floor_data(family, args.n, K)
                est = _true_estimates(d, family)
                model = _model_for(family, d, K=K)
                with Phase() as ph:
                    it = time_em_iteration(model, est, max(args.repeats, 5))
                p = d["X"].shape[1]
                floor = floor_bytes(args.n, p, family) / bandwidth
                ratio = it["total"] / floor
                rows.append(
                    dict(
                        case=f"iter_floor {family} K={K}",
                        n=args.n,
                        K=K,
                        seconds=it["total"],
                        target=_target_text(TARGETS["iter_floor"]),
                        checks={} if args.quick else {"floor": ratio <= 2.0},
                        llf=None,
                        iterations=1,
                        ratio=ratio,
                        ratio_what="EM iteration / memory floor",
                        peak_mb=ph.peak,
                        notes=[
                            f"e_step {it['e'] * 1e3:.1f} ms + m_step {it['m'] * 1e3:.1f} ms = "
                            f"{it['total'] * 1e3:.1f} ms; floor {floor * 1e3:.2f} ms "
                            f"({floor_bytes(args.n, p, family) / 1e6:.0f} MB at "
                            f"{bandwidth / 1e9:.1f} GB/s streaming read); ratio {ratio:.1f}",
                        ]
                        + [f"warning: {w}" for w in log.summary()],
                        extra=dict(e=it["e"], m=it["m"], floor=floor, bandwidth=bandwidth),
                    )
                )
                del model, d
                gc.collect()
    return rows


def _floor_data(family, n, K):
    """Simulated data of the floor case: ``K`` well-separated components."""
    if family == "poisson":
        return make_poisson(n, K, seed=20 + K)
    rng = np.random.default_rng(20 + K)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    z = rng.integers(0, K, n)
    prior = np.full(K, 1.0 / K)
    coef = np.empty((3, K))
    for k in range(K):
        coef[:, k] = [-1.5 + 1.5 * k, *((0.5, -0.3) if k % 2 == 0 else (-0.4, 0.6))]
    eta = np.einsum("ij,ji->i", X, coef[:, z])
    if family == "binomial":
        trials = rng.integers(1, 21, n).astype(float)
        successes = rng.binomial(trials.astype(np.int64), 1.0 / (1.0 + np.exp(-eta)))
        return dict(
            y=successes / trials, X=X, trials=trials, coef=coef, scale=np.ones(K), prior=prior
        )
    coef[0] *= 3.0
    eta = np.einsum("ij,ji->i", X, coef[:, z])
    return dict(y=eta + rng.normal(size=n), X=X, coef=coef, scale=np.ones(K), prior=prior)


def case_slow_em_binomial(args):
    from emformula import EMGLM
    from emformula.engine import em as _em
    from emformula.model import DEFAULT_TOL

    n = args.slow_n
    d = make_slow_binomial(n)
    model = EMGLM(d["y"], d["X"], "binomial", 2, trials=d["trials"])
    data = model.data
    floor = model._scale_floor(None)
    est0 = _em.initial_estimates(data, 2, np.random.default_rng(7), floor)
    log = WarningLog()
    with log:
        acc_times, acc_trace = [], []
        for r in range(args.repeats):
            trace = []
            with Phase() as ph:
                acc = _em.run_em(
                    data,
                    est0,
                    max_iter=args.slow_max_iter,
                    tol=DEFAULT_TOL,
                    scale_floor=floor,
                    accelerate=True,
                    newton=True,
                    callback=lambda it, llf, t=trace: t.append((it, llf)),
                )
            acc_times.append(ph.seconds)
            acc_trace = trace + [(acc.n_iter, acc.llf)]
        with Phase() as ph_plain:
            plain = _em.run_em(
                data,
                est0,
                max_iter=args.slow_max_iter,
                tol=1e-12,
                scale_floor=floor,
                accelerate=False,
                newton=False,
            )
    plain_trace = list(enumerate(plain.history))  # one M-step per history entry
    best = max(acc.llf, plain.llf)

    def first_reach(trace):
        for it, llf in trace:
            if llf >= best - SLOW_DELTA:
                return it
        return None

    acc_reach, plain_reach = first_reach(acc_trace), first_reach(plain_trace)
    if plain_reach is None:
        plain_count, bound = plain.n_iter, ">= "
    else:
        plain_count, bound = plain_reach, ""
    ratio = plain_count / acc_reach if acc_reach else float("nan")
    notes = [
        f"same start (one random partition); 'reached' = llf within {SLOW_DELTA:g} of the best "
        f"final llf {best:.6f}",
        f"plain EM (accelerate=False, newton=False, tol=1e-12, max_iter={args.slow_max_iter}): "
        f"{plain.n_iter} iterations, converged={plain.converged}, llf {plain.llf:.6f} "
        f"(best - llf = {best - plain.llf:.2g}), {ph_plain.seconds:.2f} s; reached the best llf "
        + (f"at iteration {plain_reach}" if plain_reach is not None else "never"),
        f"accelerated (SQUAREM + Newton, default tol={DEFAULT_TOL:g}): {acc.n_iter} iterations "
        f"(M-steps + Newton steps), converged={acc.converged}, llf {acc.llf:.6f} "
        f"(best - llf = {best - acc.llf:.2g}), median {median(acc_times):.3f} s; reached the "
        f"best llf at iteration {acc_reach}",
        f"iteration ratio plain / accelerated = {bound}{plain_count} / {acc_reach} = "
        f"{bound}{ratio:.1f}; wall-time ratio {ph_plain.seconds / median(acc_times):.1f}",
    ]
    notes += [f"warning: {w}" for w in log.summary()]
    checks = {
        "iter_ratio": bool(ratio >= TARGETS["slow_em_binomial"]["iter_ratio"]),
        "same_llf": abs(acc.llf - best) <= SLOW_DELTA,
    }
    return [
        dict(
            case="slow_em_binomial",
            n=n,
            K=2,
            seconds=median(acc_times),
            target=_target_text(TARGETS["slow_em_binomial"]),
            checks=checks,
            llf=acc.llf,
            iterations=f"{bound}{plain_count} -> {acc_reach}",
            ratio=ratio,
            ratio_what="plain EM iterations / accelerated iterations",
            peak_mb=max(ph.peak, ph_plain.peak),
            notes=notes,
            extra=dict(
                plain_iter=plain.n_iter,
                plain_llf=plain.llf,
                acc_iter=acc.n_iter,
                acc_llf=acc.llf,
                plain_reach=plain_reach,
                acc_reach=acc_reach,
                plain_seconds=ph_plain.seconds,
            ),
        )
    ]


def case_statsmodels_poisson(args):
    d = make_poisson(args.n, 2)
    rss_before = rss_mb()
    sm_res = time_statsmodels("poisson", d, args.repeats)
    notes = [
        f"statsmodels GLM(Poisson) fit of the K=2 mixture data as one GLM: "
        f"{', '.join(f'{t:.3f}' for t in sm_res['times'])} s, "
        f"{sm_res['iterations']} IRLS iterations",
        f"RSS before {rss_before:.0f} MB (interpreter + imports + data)",
    ]
    return [
        dict(
            case="statsmodels_poisson",
            n=args.n,
            K=1,
            seconds=sm_res["seconds"],
            target="baseline",
            checks={},
            llf=sm_res["llf"],
            iterations=sm_res["iterations"],
            ratio=None,
            ratio_what="emformula Poisson K=2 fit / this",
            peak_mb=sm_res["peak_mb"],
            notes=notes,
        )
    ]


# ------------------------------------------------------------ busy machine
def engine_threads():
    """The engine's BLAS limit, ``emformula._runtime.threads.blas_threads()`` (nothing
    on a snapshot of emformula without it). ``EMGLM.fit`` applies it itself
    (since 5e77dce), so around a fit this region changes nothing there; on
    older snapshots, where only the starts ran under it, it covers the whole
    fit, and around bare e_step/m_step calls it is what applies."""
    if not engine_limits_blas():
        return contextlib.nullcontext()
    from emformula._runtime.threads import blas_threads

    return blas_threads()


def engine_limits_blas():
    """Whether the emformula benchmarked has ``_threads`` (an older snapshot
    does not; an editable install's finder would still import this
    checkout's, so look at the files)."""
    import emformula

    return (Path(emformula.__file__).parent / "_threads.py").exists()


@contextlib.contextmanager
def library_threads():
    """The BLAS's own threads: ``EMFORMULA_BLAS_THREADS=0`` makes the engine
    leave them alone."""
    old = os.environ.get(BLAS_ENV)
    os.environ[BLAS_ENV] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[BLAS_ENV]
        else:
            os.environ[BLAS_ENV] = old


def blas_thread_counts(limit=None):
    """Threads of the BLAS libraries threadpoolctl sees, inside ``limit``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    with limit() if limit is not None else contextlib.nullcontext():
        counts = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
    return ", ".join(map(str, counts)) or "none found"


def _times(values):
    return ", ".join(f"{t:.2f}" for t in values)


def _busy_case(case, family, d, K, args):
    """Fit idle and beside ``--busy-procs`` spinning processes, each way of
    threading the BLAS; one EM iteration each way too (bounded even where the
    BLAS's threads fight, which makes whole fits take minutes)."""
    from emformula import EMGLM

    model = EMGLM(d["y"], d["X"], family, K)
    log = WarningLog()
    engine_idle, engine_busy, library_idle, neighbour = [], [], [], []
    llfs, iters = [], []
    with log:
        with engine_threads():
            model.fit(start="random", n_init=1, random_state=0)  # warm-up
        for r in range(args.repeats):
            with engine_threads(), Phase() as ph:
                res = model.fit(start="random", n_init=1, random_state=r)
            engine_idle.append(ph.seconds)
            if r == 0:
                peak = ph.peak
            with BusyNeighbour(args.busy_procs) as nb, engine_threads(), Phase(nb) as ph:
                busy = model.fit(start="random", n_init=1, random_state=r)
            engine_busy.append(ph.seconds)
            neighbour.append(ph.neighbour_cores)
            llfs.append((res.llf, busy.llf))
            iters.append(res.n_iter)
            if not args.quick:  # on a loaded machine it can take 10x the rest
                with library_threads(), Phase() as ph:
                    model.fit(start="random", n_init=1, random_state=r)
                library_idle.append(ph.seconds)
        est = res.estimates
        n_it = 2 if args.quick else max(args.repeats, 5)
        per_iter = {}
        for name, limit in (("engine", engine_threads), ("library", library_threads)):
            with limit():
                per_iter[name, "idle"] = time_em_iteration(model, est, n_it)["total"]
            with BusyNeighbour(args.busy_procs), limit():
                per_iter[name, "busy"] = time_em_iteration(model, est, n_it)["total"]
    ratio = median(engine_busy) / median(engine_idle)
    same_llf = all(abs(a - b) <= LLF_ATOL for a, b in llfs)
    cores = [c for c in neighbour if c is not None]
    load = f"{median(cores):.2f} cores" if cores else "its CPU unknown"
    engine_n, library_n = blas_thread_counts(engine_threads), blas_thread_counts(library_threads)
    notes = [
        f"{args.busy_procs} busy neighbour process(es) spinning a pure-Python loop, started "
        f"before and killed after each busy fit (median use {load})",
        f"engine's BLAS threads (blas_threads(): {engine_n}): idle fits {_times(engine_idle)} s, "
        f"beside the neighbour {_times(engine_busy)} s; busy / idle = {ratio:.2f}",
        f"library's own BLAS threads ({library_n}), idle: {_times(library_idle)} s; engine / "
        f"library = {median(engine_idle) / median(library_idle):.2f}"
        if library_idle
        else f"library's own BLAS threads ({library_n}): whole fits not timed in quick mode",
        "one EM iteration (e_step + m_step) at the fitted estimates, median of "
        f"{n_it}: engine idle {per_iter['engine', 'idle'] * 1e3:.1f} ms, busy "
        f"{per_iter['engine', 'busy'] * 1e3:.1f} ms "
        f"({per_iter['engine', 'busy'] / per_iter['engine', 'idle']:.2f}x); library idle "
        f"{per_iter['library', 'idle'] * 1e3:.1f} ms, busy "
        f"{per_iter['library', 'busy'] * 1e3:.1f} ms "
        f"({per_iter['library', 'busy'] / per_iter['library', 'idle']:.2f}x)",
        f"iterations per fit {iters}; idle and busy fits reach the same llf: {same_llf}",
    ]
    notes += [f"warning: {w}" for w in log.summary()]
    checks = {"llf": same_llf}
    if not args.quick:
        checks["ratio"] = ratio <= TARGETS[case]["busy_ratio"]
    return [
        dict(
            case=case,
            n=len(d["y"]),
            K=K,
            seconds=median(engine_busy),
            target=_target_text(TARGETS[case]),
            checks=checks,
            llf=llfs[0][0],
            iterations=int(np.median(iters)),
            ratio=ratio,
            ratio_what="busy / idle fit time",
            peak_mb=peak,
            notes=notes,
            extra=dict(
                engine_idle=engine_idle,
                engine_busy=engine_busy,
                library_idle=library_idle,
                neighbour_cores=cores,
                per_iter={f"{a} {b}": v for (a, b), v in per_iter.items()},
            ),
        )
    ]


def case_busy_wide(args):
    return _busy_case("busy_wide", "gaussian", make_wide(wide_n(args)), 2, args)


def case_busy_narrow(args):
    return _busy_case("busy_narrow", "poisson", make_poisson(args.n, 2), 2, args)


def case_njobs_restarts(args):
    from emformula import EMGLM

    d = make_wide(wide_n(args))
    model = EMGLM(d["y"], d["X"], "gaussian", 2)
    starts = args.njobs_starts
    times, llfs = {1: [], 2: []}, {1: [], 2: []}
    log = WarningLog()
    with log:
        with engine_threads():
            model.fit(start="random", n_init=1, random_state=0)  # warm-up
        for r in range(args.repeats):
            for n_jobs in (1, 2):
                with engine_threads(), Phase() as ph:
                    res = model.fit(start="random", n_init=starts, random_state=r, n_jobs=n_jobs)
                times[n_jobs].append(ph.seconds)
                llfs[n_jobs].append(res.llf)
                if r == 0 and n_jobs == 2:
                    peak = ph.peak
    ratio = median(times[2]) / median(times[1])
    same = llfs[1] == llfs[2]
    workers = "1" if engine_limits_blas() else "the library's own"
    notes = [
        f"{starts} random starts (random_state 0..{args.repeats - 1}); BLAS threads "
        f"{blas_thread_counts(engine_threads)} in this process, {workers} in each worker",
        f"n_jobs=1: {_times(times[1])} s; n_jobs=2: {_times(times[2])} s; ratio {ratio:.2f}",
        f"the same llf for n_jobs=1 and 2: {same}",
    ]
    notes += [f"warning: {w}" for w in log.summary()]
    checks = {"same_llf": same}
    if not args.quick:
        checks["ratio"] = ratio <= TARGETS["njobs_restarts"]["njobs_ratio"]
    return [
        dict(
            case="njobs_restarts",
            n=len(d["y"]),
            K=2,
            seconds=median(times[2]),
            target=_target_text(TARGETS["njobs_restarts"]),
            checks=checks,
            llf=llfs[2][0],
            iterations=None,
            ratio=ratio,
            ratio_what="n_jobs=2 / n_jobs=1 fit time",
            peak_mb=peak,
            notes=notes,
            extra=dict(times={str(k): v for k, v in times.items()}),
        )
    ]


def case_default_starts(args):
    """The start strategy's cost: its default fit against the old default,
    alternating in this process so both meet the same load (the many-level
    case of the same comparison is in benchmarks/starts.py)."""
    from emformula import EMGLM

    d = make_poisson(args.n, 2)
    model = EMGLM(d["y"], d["X"], "poisson", 2)
    times, llfs = {"old": [], "new": []}, {}
    log = WarningLog()
    with log:
        for r in range(args.repeats):
            for which, kwargs in (("old", dict(start="random", n_init=10)), ("new", {})):
                with Phase() as ph:
                    res = model.fit(random_state=r, **kwargs)
                times[which].append(ph.seconds)
                llfs[which] = res.llf
    ratio = median(times["new"]) / median(times["old"])
    notes = [
        f"old default (start='random', n_init=10): {_times(times['old'])} s, llf "
        f"{llfs['old']:.3f}; new default: {_times(times['new'])} s, llf {llfs['new']:.3f}",
        f"ratio new / old {ratio:.2f}",
    ]
    notes += [f"warning: {w}" for w in log.summary()]
    checks = {"llf_not_lower": llfs["new"] >= llfs["old"] - 1e-6 * abs(llfs["old"])}
    if not args.quick:
        checks["ratio"] = ratio <= TARGETS["default_starts"]["starts_ratio"]
    return [
        dict(
            case="default_starts",
            n=len(d["y"]),
            K=2,
            seconds=median(times["new"]),
            target=_target_text(TARGETS["default_starts"]),
            checks=checks,
            llf=llfs["new"],
            iterations=None,
            ratio=ratio,
            ratio_what="new default / old default fit time",
            peak_mb=None,
            notes=notes,
            extra=dict(times=times),
        )
    ]


CASE_FUNCS = {
    "poisson_k2_fit": case_poisson_k2_fit,
    "poisson_k2_bse": case_poisson_k2_bse,
    "gaussian_k3_fit": case_gaussian_k3_fit,
    "binomial_k2_fit": case_binomial_k2_fit,
    "iter_poisson_k2": case_iter_poisson_k2,
    "iter_gaussian_k3": case_iter_gaussian_k3,
    "iter_scaling": case_iter_scaling,
    "slow_em_binomial": case_slow_em_binomial,
    "statsmodels_poisson": case_statsmodels_poisson,
    "busy_wide": case_busy_wide,
    "busy_narrow": case_busy_narrow,
    "njobs_restarts": case_njobs_restarts,
    "default_starts": case_default_starts,
    "iter_floor": case_iter_floor,
    **{name: (lambda args, name=name: run_workload(name, args)) for name in WORKLOADS},
}
assert list(CASE_FUNCS) == list(CASES)


# ------------------------------------------------------------- formatting
def _target_text(target):
    parts = []
    if "seconds" in target:
        parts.append(f"<= {target['seconds']:g} s")
    if "peak_mb" in target:
        parts.append(f"peak <= {target['peak_mb']:.0f} MB")
    if "ratio" in target:
        parts.append(f"ratio <= {target['ratio']:g}")
    if "slope" in target:
        parts.append(f"time ~ n^a K^b: a, b <= {target['slope']:g}")
    if "iter_ratio" in target:
        parts.append(f"iteration ratio >= {target['iter_ratio']:g}")
    if "busy_ratio" in target:
        parts.append(f"busy / idle <= {target['busy_ratio']:g}")
    if "njobs_ratio" in target:
        parts.append(f"n_jobs=2 / n_jobs=1 <= {target['njobs_ratio']:g}")
    if "flexmix_ratio" in target:
        parts.append(f">= {target['flexmix_ratio']:g}x faster than flexmix (--with-r)")
    if "starts_ratio" in target:
        parts.append(f"new / old default <= {target['starts_ratio']:g}")
    if "floor_ratio" in target:
        parts.append(f"iteration / memory floor <= {target['floor_ratio']:g}")
    return ", ".join(parts)


def _verdict(row, quick):
    checks = row.get("checks") or {}
    if row.get("error"):
        return "ERROR"
    if not checks:
        return "n/a (quick)" if quick and row.get("target") not in ("", "baseline") else "-"
    failed = [name for name, ok in checks.items() if not ok]
    text = "FAIL (" + ", ".join(failed) + ")" if failed else "pass"
    load = row.get("others_load")
    if load is not None and load >= BUSY_CORES:
        text += f" [busy: {load:.1f}]"
    if quick and row["case"] in (
        "poisson_k2_fit",
        "gaussian_k3_fit",
        "binomial_k2_fit",
        "poisson_k2_bse",
        "busy_wide",
        "busy_narrow",
        "njobs_restarts",
    ):
        text += "; time n/a (quick)"
    return text


def _fmt(value, spec):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


#: Rows whose ratio column is not against statsmodels (in parentheses).
NOT_STATSMODELS_RATIOS = (
    "slow_em_binomial",
    "iter_scaling (point)",
    "busy_wide",
    "busy_narrow",
    "njobs_restarts",
    "default_starts",
)


def markdown_table(rows, quick):
    header = (
        "| case | n | K | median s (fit) | target | pass/fail | llf | iterations "
        "| ratio to statsmodels | peak MB |"
    )
    lines = [header, "|" + "---|" * 10]
    for row in rows:
        ratio = row.get("ratio")
        ratio_text = _fmt(ratio, ".2f")
        if ratio is not None and row["case"] in NOT_STATSMODELS_RATIOS:
            ratio_text = f"({ratio_text})"  # not a statsmodels ratio: see the notes
        seconds = row.get("seconds")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["case"],
                    _fmt(row.get("n"), ",") if isinstance(row.get("n"), int) else str(row.get("n")),
                    str(row.get("K")),
                    _fmt(seconds, ".3f"),
                    row.get("target") or "-",
                    _verdict(row, quick),
                    _fmt(row.get("llf"), ".4f"),
                    _fmt(row.get("iterations"), "d")
                    if isinstance(row.get("iterations"), int)
                    else _fmt(row.get("iterations"), ""),
                    ratio_text,
                    _fmt(row.get("peak_mb"), ".0f"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def render(rows, machine, meta, quick):
    out = [
        f"# emformula benchmarks ({'quick' if quick else 'full'} mode)",
        "",
        f"Run {meta['date']} in {meta['elapsed']:.0f} s; repeats {meta['repeats']}; "
        f"load average before {meta['load_before']}, after {meta['load_after']}.",
        "",
        "Machine:",
        "",
    ]
    out += [f"* {k}: {v}" for k, v in machine.items()]
    out += [
        "",
        markdown_table(rows, quick),
        "",
        "Columns: *median s (fit)* is the median wall time of the fit (bse: of the first "
        "`res.bse`; iter rows: of one e_step + m_step; slow EM: of the accelerated run); "
        "*peak MB* is the whole-process peak resident set during the measured phase "
        "(interpreter + imports + data + work). *ratio to statsmodels*: fit time / "
        "statsmodels GLM fit time on the same data; for iter rows one EM iteration / "
        "(K x one statsmodels IRLS iteration); in parentheses, ratios that are not against "
        "statsmodels (slow EM: plain / accelerated iterations; scaling points: cost per row "
        "and component relative to the largest n at K=2; busy rows: fit time beside a busy "
        "process / idle, their *median s* the busy fit; n_jobs: n_jobs=2 / n_jobs=1, its "
        "*median s* the n_jobs=2 fit). *[busy: x]* after a verdict: "
        f"other processes used x cores on average (>= {BUSY_CORES}) during the case's "
        "measured phases (not counting the busy rows' own neighbour), so its times are "
        "suspect.",
        "",
    ]
    if any(row["case"].startswith("vs_flexmix") for row in rows):
        out += [
            "## Against R's flexmix",
            "",
            "The same data in the same run (`--with-r`); flexmix with `minprior = 0`, one "
            "`flexmix()` call per repeat (its default single random start; `stepFlexmix` "
            "with `nrep = 3` for choosing K), emformula with its defaults from a formula. "
            "Speed counts at equal or better log-likelihood.",
            "",
            flexmix_table(rows),
            "",
        ]
    if quick:
        out += [
            "Quick mode (n = 20,000, 1 repeat) is a smoke test: time and memory targets "
            "are for n = 1,000,000 and are not judged.",
            "",
        ]
    out += ["## Notes per case", ""]
    for row in rows:
        if (not row.get("notes") and not row.get("error")) or row["case"].endswith("(point)"):
            continue
        out.append(f"* **{row['case']}** — {CASES.get(row['case'].split(' ')[0], '')}")
        for note in row.get("notes", []):
            out.append(f"  * {note}")
        if row.get("others_load") is not None:
            out.append(
                f"  * other processes used {row['others_load']:.2f} cores on average "
                "during the measured phases"
            )
        if row.get("error"):
            out.append("  * ERROR:\n\n```\n" + row["error"] + "\n```")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ driver
def run_case_subprocess(name, args):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--case",
            name,
            "--json-out",
            str(out),
            "--emformula-path",
            str(SOURCE),
            "--n",
            str(args.n),
            "--repeats",
            str(args.repeats),
            "--ref-starts",
            str(args.ref_starts),
            "--slow-n",
            str(args.slow_n),
            "--slow-max-iter",
            str(args.slow_max_iter),
            "--busy-procs",
            str(args.busy_procs),
            "--njobs-starts",
            str(args.njobs_starts),
        ]
        if args.quick:
            cmd.append("--quick")
        if args.with_r:
            cmd.append("--with-r")
        env = dict(os.environ)
        if args.blas_threads:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(args.blas_threads)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.timeout, env=env
            )
        except subprocess.TimeoutExpired:
            return [
                dict(
                    case=name, n=args.n, K="-", error=f"timed out after {args.timeout} s", notes=[]
                )
            ], time.perf_counter() - t0
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            return [dict(case=name, n=args.n, K="-", error=tail, notes=[])], elapsed
        return json.loads(out.read_text()), elapsed


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def update_readme(readme, text):
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    body = readme.read_text()
    if start not in body or end not in body:
        raise SystemExit(f"{readme} lacks the markers {start} / {end}")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    # Demote the headings of the results file two levels inside the README.
    text = re.sub(r"^(#+) ", lambda m: "##" + m.group(1) + " ", text, flags=re.M)
    readme.write_text(pattern.sub(lambda _: f"{start}\n\n{text}\n{end}", body))


def profile_fit(args):
    from emformula import EMGLM

    d = make_poisson(args.n, 2)
    model = EMGLM(d["y"], d["X"], "poisson", 2)
    model.fit(n_init=1, random_state=0)  # warm-up
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = model.fit(n_init=1, random_state=0)
    prof.disable()
    print(
        f"Poisson K=2 n={args.n}: fit {time.perf_counter() - t0:.2f} s (under cProfile), "
        f"{res.n_iter} iterations, llf {res.llf:.6f}"
    )
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(args.profile_top)
        print(buf.getvalue())


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: n = {QUICK_N:,}, {QUICK_REPEATS} repeat (< 30 s)",
    )
    p.add_argument("--out", default=str(HERE / "results.md"), help="Markdown output file")
    p.add_argument("--n", type=int, default=None, help="rows (default: 1,000,000; quick 20,000)")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed runs per case (default {FULL_REPEATS}; quick {QUICK_REPEATS})",
    )
    p.add_argument(
        "--ref-starts",
        type=int,
        default=None,
        help="starts of the tight reference fit (default 3; quick 2)",
    )
    p.add_argument(
        "--slow-n",
        type=int,
        default=None,
        help="rows of the slow-EM case (default 20,000; quick 3,000)",
    )
    p.add_argument(
        "--slow-max-iter",
        type=int,
        default=None,
        help="max iterations of plain EM in the slow-EM case (default 20,000; quick 3,000)",
    )
    p.add_argument(
        "--busy-procs",
        type=int,
        default=1,
        help="busy neighbour processes of the busy_* cases (default 1)",
    )
    p.add_argument(
        "--njobs-starts",
        type=int,
        default=None,
        help="random starts of njobs_restarts (default 16; quick 2)",
    )
    p.add_argument(
        "--cases", nargs="+", choices=list(CASES), default=list(CASES), help="run only these cases"
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per case subprocess")
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="set OPENBLAS/OMP/MKL_NUM_THREADS in the case subprocesses "
        "(default: the library's own choice)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=None,
        help="before each case wait up to this many seconds for other processes to "
        "use < 0.2 cores (default 180 in full mode, 0 in quick mode)",
    )
    p.add_argument(
        "--retry-busy",
        type=int,
        default=None,
        help="run a case again (up to this many times) when other processes used "
        f">= {BUSY_CORES} cores during it; keep the least disturbed attempt "
        "(default 2 in full mode, 0 in quick mode)",
    )
    p.add_argument(
        "--with-r",
        action="store_true",
        dest="with_r",
        help="also time R's flexmix on the vs_flexmix_* workloads (needs Rscript "
        "and the flexmix package; CI does not)",
    )
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="paste the results into benchmarks/README.md between its markers",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile one Poisson K=2 fit (after a warm-up) and exit",
    )
    p.add_argument("--profile-top", type=int, default=25)
    p.add_argument(
        "--emformula-path",
        default=str(ROOT),
        help="directory holding the emformula package to benchmark (default: this "
        "checkout); a file SNAPSHOT there labels it in the report",
    )
    p.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    args.n = args.n or (QUICK_N if q else FULL_N)
    args.repeats = args.repeats or (QUICK_REPEATS if q else FULL_REPEATS)
    args.ref_starts = args.ref_starts or (2 if q else 3)
    args.slow_n = args.slow_n or (3_000 if q else 20_000)
    args.slow_max_iter = args.slow_max_iter or (3_000 if q else 20_000)
    args.njobs_starts = args.njobs_starts or (2 if q else 16)
    args.timeout = args.timeout or (120.0 if q else 3600.0)
    if args.retry_busy is None:
        args.retry_busy = 0 if q else 2
    if args.wait_idle is None:
        args.wait_idle = 0.0 if q else 180.0
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.case:  # child: one case, JSON out
        # Imports first, so every case's memory baseline includes them.
        import statsmodels.api  # noqa: F401

        import emformula  # noqa: F401

        rows = CASE_FUNCS[args.case](args)
        load = others_load()
        for row in rows:
            row["others_load"] = load
        Path(args.json_out).write_text(json.dumps(_jsonable(rows)))
        return 0
    if args.profile:
        profile_fit(args)
        return 0
    t_start = time.perf_counter()
    load_before = ", ".join(f"{x:.2f}" for x in loadavg())
    machine = machine_info()
    if args.blas_threads:
        machine["blas threads"] = f"{args.blas_threads} (--blas-threads)"
    print(
        f"emformula benchmarks, {'quick' if args.quick else 'full'} mode: n={args.n:,}, "
        f"repeats={args.repeats}",
        flush=True,
    )
    for k, v in machine.items():
        print(f"  {k}: {v}")
    rows, failed = [], False
    for name in args.cases:
        if args.wait_idle:
            busy = wait_until_idle(args.wait_idle)
            if busy is not None and busy >= 0.2:
                print(
                    f"  (machine still busy: {busy:.2f} cores used by other processes "
                    f"after waiting {args.wait_idle:.0f} s)",
                    flush=True,
                )
        attempts = []
        for attempt in range(1 + args.retry_busy):
            if attempt and args.wait_idle:
                wait_until_idle(args.wait_idle)
            case_rows, elapsed = run_case_subprocess(name, args)
            attempts.append((case_rows, elapsed))
            load = case_rows[0].get("others_load")
            if case_rows[0].get("error") or load is None or load < BUSY_CORES:
                break
            print(
                f"  {name}: other processes used {load:.2f} cores; "
                + ("running it again" if attempt < args.retry_busy else "giving up"),
                flush=True,
            )
        # Keep the attempt the rest of the machine disturbed least.
        case_rows, elapsed = min(attempts, key=lambda a: a[0][0].get("others_load") or 0.0)
        if len(attempts) > 1:
            loads = ", ".join(f"{a[0][0].get('others_load', float('nan')):.2f}" for a in attempts)
            for row in case_rows:
                if row["case"].endswith("(point)"):
                    continue
                row.setdefault("notes", []).append(
                    f"{len(attempts)} attempts (other processes' load {loads} cores); "
                    "the least disturbed is shown"
                )
        for row in case_rows:
            if row.get("error"):
                failed = True
        rows.extend(case_rows)
        load = case_rows[0].get("others_load")
        print(
            f"  {name}: done in {elapsed:.1f} s"
            + (f"; other processes used {load:.2f} cores meanwhile" if load is not None else "")
            + (" (ERROR)" if case_rows[0].get("error") else ""),
            flush=True,
        )
    # The statsmodels baseline row: emformula's Poisson fit time over it.
    fit = next((r for r in rows if r["case"] == "poisson_k2_fit" and not r.get("error")), None)
    for row in rows:
        if row["case"] == "statsmodels_poisson" and fit and not row.get("error"):
            row["ratio"] = fit["seconds"] / row["seconds"]
            row["notes"].append(
                f"emformula Poisson K=2 fit (median {fit['seconds']:.3f} s, "
                f"other subprocess) / this = {row['ratio']:.2f}"
            )
    meta = dict(
        date=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        elapsed=time.perf_counter() - t_start,
        repeats=args.repeats,
        load_before=load_before,
        load_after=", ".join(f"{x:.2f}" for x in loadavg()),
    )
    text = render(rows, machine, meta, args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print()
    print(markdown_table(rows, args.quick))
    print(f"\nwritten to {out} ({meta['elapsed']:.1f} s)")
    if args.update_readme:
        update_readme(HERE / "README.md", text)
        print(f"pasted into {HERE / 'README.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
