"""The parallel map: stopping (Ctrl-C, a failing task, a killed parent), order
and seeds, and the BLAS threads of the engine and of its workers."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import psutil
import pytest
from threadpoolctl import threadpool_info

from emformula._runtime import parallel as _parallel
from emformula._runtime import threads as _threads
from emformula._runtime.parallel import map_tasks
from emformula._runtime.threads import blas_threads, resolve_threads

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

# A fit of many starts that would run for a minute or more with n_jobs=2.
LONG_FIT = textwrap.dedent("""
    import sys
    import numpy as np
    import emformula._runtime.parallel as par
    from emformula import EMGLM

    par.USE_PDEATHSIG = sys.argv[1] == "1"
    rng = np.random.default_rng(0)
    n = 2000
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    z = rng.integers(0, 2, n)
    y = rng.poisson(np.exp(np.where(z, 2.0, 0.5) + 0.3 * X[:, 1])).astype(float)
    EMGLM(y, X, "poisson", K=2).fit(n_init=3000, n_jobs=2, random_state=0)
    print("finished")
""")


def _running(pids):
    """The processes of ``pids`` that still exist and are not zombies."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while _running(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _running(pids)


def _start_long_fit(tmp_path, pdeathsig=True):
    """Start the long fit in its own session; return it and its workers' pids
    once both workers run."""
    script = tmp_path / "long_fit.py"
    script.write_text(LONG_FIT)
    proc = subprocess.Popen(
        [sys.executable, str(script), "1" if pdeathsig else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(parent.children()) >= 2:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the workers never started:\n{out}\n{err}")
    time.sleep(0.5)  # past the workers' initializer, into the starts
    workers = [c.pid for c in parent.children(recursive=True)]
    return proc, workers


def _cleanup(proc, pids):
    for pid in [proc.pid, *pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


@posix_only
@pytest.mark.parametrize("target", ["parent", "group"])
def test_ctrl_c_stops_a_parallel_fit(tmp_path, target):
    # "group" is a terminal's Ctrl-C: SIGINT reaches the workers too.
    proc, workers = _start_long_fit(tmp_path)
    try:
        if target == "parent":
            os.kill(proc.pid, signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("the fit went on for more than 5 s after SIGINT")
        assert "finished" not in out
        assert "KeyboardInterrupt" in err
        assert _running(workers) == []
    finally:
        _cleanup(proc, workers)


@posix_only
@pytest.mark.parametrize("pdeathsig", [True, False], ids=["pdeathsig", "watchdog"])
def test_workers_exit_when_the_parent_is_killed(tmp_path, pdeathsig):
    proc, workers = _start_long_fit(tmp_path, pdeathsig=pdeathsig)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        assert _wait_gone(workers, 3.0) == []
    finally:
        _cleanup(proc, workers)


def _sleep_or_fail(shared, task):
    if task == shared:
        time.sleep(0.2)
        raise ValueError(f"task {task} failed")
    time.sleep(30)
    return task


def test_a_failing_task_stops_the_map():
    me = psutil.Process()
    before = {c.pid for c in me.children(recursive=True)}
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="task 1 failed"):
        map_tasks(_sleep_or_fail, range(6), shared=1, n_jobs=2)
    # Without the stop, the other tasks would sleep 30 s each.
    assert time.monotonic() - t0 < 15
    workers = [c.pid for c in me.children(recursive=True) if c.pid not in before]
    assert _wait_gone(workers, 2.0) == []
    # The map still works afterwards.
    assert map_tasks(_square, [1, 2, 3], n_jobs=2) == [1, 4, 9]


def test_a_failing_task_in_this_process_propagates():
    with pytest.raises(ValueError, match="task 0 failed"):
        map_tasks(_sleep_or_fail, [0, 1], shared=0, n_jobs=1)


def _square(shared, task):
    return task * task


def _draw(shared, seed):
    return float(np.random.default_rng(seed).normal() + shared)


def test_results_are_ordered_and_identical_for_any_n_jobs():
    seeds = np.random.SeedSequence(3).spawn(9)
    one = map_tasks(_draw, seeds, shared=10.0, n_jobs=1)
    two = map_tasks(_draw, seeds, shared=10.0, n_jobs=2)
    three = map_tasks(_draw, seeds, shared=10.0, n_jobs=3)
    assert one == two == three
    assert map_tasks(_square, range(20), n_jobs=2) == [i * i for i in range(20)]


# ------------------------------------------------------------ BLAS threads
def _blas_threads(shared=None, task=None):
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


needs_blas = pytest.mark.skipif(not _blas_threads(), reason="no BLAS threadpoolctl can see")


@needs_blas
def test_workers_and_the_serial_map_use_one_blas_thread(monkeypatch):
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    outside = _blas_threads()
    assert map_tasks(_blas_threads, range(4), n_jobs=2) == [[1]] * 4
    assert map_tasks(_blas_threads, range(2), n_jobs=1) == [[1]] * 2
    assert _blas_threads() == outside


@needs_blas
def test_workers_stay_at_one_thread_whatever_the_environment(monkeypatch):
    monkeypatch.setenv(_threads.ENV_VAR, "2")
    assert map_tasks(_blas_threads_in_region, range(2), n_jobs=2) == [[1]] * 2


def _blas_threads_in_region(shared, task):
    with blas_threads(2):
        return _blas_threads()


@needs_blas
def test_blas_threads_nests_and_restores(monkeypatch):
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    outside = _blas_threads()
    with blas_threads():
        assert _blas_threads() == [1]
        with blas_threads(2):
            assert _blas_threads() == [2]
        assert _blas_threads() == [1]
        with blas_threads(0):  # leaves the BLAS alone
            assert _blas_threads() == [1]
    assert _blas_threads() == outside


@needs_blas
def test_blas_threads_from_several_threads_restores_the_original(monkeypatch):
    # Regions that overlap in time, closed in another order than opened.
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    outside = _blas_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with blas_threads(1):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with blas_threads(1):
            b_in.set()
            a_out.wait(5)
            seen["b after a left"] = _blas_threads()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["b after a left"] == [1]
    assert _blas_threads() == outside


def test_resolve_threads(monkeypatch):
    monkeypatch.delenv(_threads.ENV_VAR, raising=False)
    assert resolve_threads() == _threads.DEFAULT_THREADS == 1
    assert resolve_threads(3) == 3
    monkeypatch.setenv(_threads.ENV_VAR, "0")
    assert resolve_threads() == 0
    monkeypatch.setenv(_threads.ENV_VAR, "4")
    assert resolve_threads() == 4
    monkeypatch.setenv(_threads.ENV_VAR, "many")
    with pytest.raises(ValueError, match=_threads.ENV_VAR):
        resolve_threads()
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            resolve_threads(bad)


def test_progress_bars_default_to_terminals_and_notebooks_and_never_ci(monkeypatch):
    import types

    show = _parallel.show_progress
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert show(None) is False and show(True) is True and show(False) is False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show(None) is True
    # A Jupyter kernel: stderr is no terminal, the bar is a widget.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})
    fake = types.SimpleNamespace(get_ipython=lambda: ZMQInteractiveShell())
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert show(None) is True
    TerminalInteractiveShell = type("TerminalInteractiveShell", (), {})
    monkeypatch.setitem(
        sys.modules,
        "IPython",
        types.SimpleNamespace(get_ipython=lambda: TerminalInteractiveShell()),
    )
    assert show(None) is False
    # CI: quiet unless asked.
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setenv("CI", "true")
    assert show(None) is False and show(True) is True
