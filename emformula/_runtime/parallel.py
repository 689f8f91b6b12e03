"""Ordered parallel map with an optional progress bar.

Restarts, warm-up trials, select_k and the bootstrap are independent tasks.
Each task carries its own seed (spawned from one SeedSequence in the caller),
so results are identical for any ``n_jobs``: only where a task runs changes,
never what it computes or the order results come back in.

Stopping. The pool never outlives the call:

* Ctrl-C (``KeyboardInterrupt``) or any exception while waiting -- including
  one raised by a task, which reaches the caller as itself -- cancels the
  tasks not yet started and terminates the workers at once (SIGTERM, then
  SIGKILL after :data:`TERMINATE_GRACE` seconds) before it propagates.
  Workers ignore SIGINT, so a terminal's Ctrl-C, which reaches the whole
  process group, is handled by the parent alone.
* A worker whose parent dies (SIGKILL, a crash) exits by itself: on Linux
  the kernel sends it SIGKILL (``prctl(PR_SET_PDEATHSIG)``); everywhere a
  daemon thread polls the parent every :data:`WATCHDOG_INTERVAL` seconds.

Threads. The BLAS is limited by :func:`emformula._runtime.threads.blas_threads` in
both paths, and each worker is pinned to one BLAS thread, so ``n_jobs``
workers load ``n_jobs`` cores.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed

from .threads import blas_threads, pin_blas

__all__ = ["map_tasks", "resolve_n_jobs", "show_progress"]

#: Seconds between a worker's checks that its parent is alive.
WATCHDOG_INTERVAL = 0.25
#: Seconds a worker gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE = 1.0
#: Ask the kernel to kill a worker when its parent dies (Linux). The watchdog
#: thread runs in any case; tests switch this off to check it alone.
USE_PDEATHSIG = True

_SHARED = None


def resolve_n_jobs(n_jobs):
    """``n_jobs`` as a positive count: -1 means every core."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive whole number or -1, got {n_jobs!r}")
    return os.cpu_count() or 1 if n_jobs == -1 else n_jobs


def show_progress(progress):
    """Whether to draw a bar: ``None`` means on an interactive terminal or
    in a Jupyter notebook (where tqdm.auto draws a widget; stderr is not a
    terminal there), and never under CI (the ``CI`` environment variable),
    so tests, pipes and logs stay quiet."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    return sys.stderr.isatty() or _in_notebook()


def _in_notebook():
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    # A Jupyter kernel's shell is ipykernel's ZMQInteractiveShell or a
    # subclass (Google Colab's is named Shell).
    return ip is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(ip).__mro__)


# ---------------------------------------------------------------- workers
def _set_pdeathsig():
    """Linux: have the kernel SIGKILL this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid):
    """Whether process ``pid`` exists (POSIX; on Windows ``os.kill`` would end it)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned(first_ppid, parent):
    ppid = os.getppid()
    # Re-parented (the parent died), or -- when a fork server stands
    # between them -- the process that made the pool is gone.
    return ppid != first_ppid or (ppid != parent and not _alive(parent))


def _watchdog(first_ppid, parent):
    while True:
        if _orphaned(first_ppid, parent):
            os._exit(1)
        threading.Event().wait(WATCHDOG_INTERVAL)


def _init_worker(shared, parent, pdeathsig):
    global _SHARED
    # Ctrl-C in a terminal reaches every process of the group; the parent
    # alone decides, and terminates the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    first_ppid = os.getppid()
    if pdeathsig:
        _set_pdeathsig()
    # The parent may have died before the death signal was armed.
    if _orphaned(first_ppid, parent):
        os._exit(1)
    threading.Thread(
        target=_watchdog, args=(first_ppid, parent), daemon=True, name="emformula-watchdog"
    ).start()
    pin_blas(1)
    _SHARED = shared


def _call(function, task):
    return function(_SHARED, task)


# ------------------------------------------------------------------- pool
def _stop(pool):
    """Cancel what has not started and end the workers now."""
    # Terminate first: a second Ctrl-C during the rest leaves no worker
    # running. (``_processes`` is private; Python 3.14's terminate_workers
    # does the same with it.)
    processes = list((pool._processes or {}).values())
    for process in processes:
        try:
            process.terminate()
        except (OSError, ValueError):
            pass
    # The pool's own thread cancels the pending futures (cancelling them
    # here races with it marking them broken).
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        try:
            process.join(TERMINATE_GRACE)
            if process.is_alive():
                process.kill()
                process.join(TERMINATE_GRACE)
        except (OSError, ValueError):
            pass


def _run_pool(function, tasks, shared, n_jobs, bar):
    pool = ProcessPoolExecutor(
        max_workers=n_jobs, initializer=_init_worker, initargs=(shared, os.getpid(), USE_PDEATHSIG)
    )
    futures = []
    try:
        futures = [pool.submit(_call, function, task) for task in tasks]
        for future in as_completed(futures):
            future.result()  # the first failure ends the map
            if bar is not None:
                bar.update()
        results = [future.result() for future in futures]
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return results


def map_tasks(function, tasks, *, shared=None, n_jobs=1, progress=None, desc=None):
    """``[function(shared, task) for task in tasks]``, possibly in parallel.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled to the worker processes).
    tasks : list
    shared : object
        Sent once to each worker (the data), not once per task.
    n_jobs : int
        Processes; 1 runs in this process, -1 uses every core.
    progress : bool or None
        Draw a tqdm bar (``None``: on a terminal or in a notebook, not under CI).
    desc : str
        Label of the bar.

    The BLAS runs under :func:`emformula._runtime.threads.blas_threads` (one thread
    unless ``EMFORMULA_BLAS_THREADS`` says otherwise); workers use one.
    When a task raises, the map stops: the other tasks are cancelled, the
    workers terminated, and the exception reaches the caller (with
    ``n_jobs > 1`` that of the first task to fail, which need not be the
    first failing task in order). So does Ctrl-C.
    """
    tasks = list(tasks)
    n_jobs = min(resolve_n_jobs(n_jobs), max(len(tasks), 1))
    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, leave=False)
    try:
        with blas_threads():
            if n_jobs == 1:
                results = []
                for task in tasks:
                    results.append(function(shared, task))
                    if bar is not None:
                        bar.update()
                return results
            return _run_pool(function, tasks, shared, n_jobs, bar)
    finally:
        if bar is not None:
            bar.close()
