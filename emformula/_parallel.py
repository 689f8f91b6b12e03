"""Ordered parallel map with an optional progress bar.

Restarts, warm-up trials, select_k and the bootstrap are independent tasks.
Each task carries its own seed (spawned from one SeedSequence in the caller),
so results are identical for any ``n_jobs``: only where a task runs changes,
never what it computes or the order results come back in.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

__all__ = ["map_tasks", "resolve_n_jobs", "show_progress"]

_SHARED = None


def resolve_n_jobs(n_jobs):
    """``n_jobs`` as a positive count: -1 means every core."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive whole number or -1, got {n_jobs!r}")
    return os.cpu_count() or 1 if n_jobs == -1 else n_jobs


def show_progress(progress):
    """Whether to draw a bar: ``None`` means only on an interactive terminal,
    so tests, pipes and logs stay quiet."""
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def _init_worker(shared):
    global _SHARED
    _SHARED = shared


def _call(function, task):
    return function(_SHARED, task)


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
        Draw a tqdm bar (``None``: only on an interactive terminal).
    desc : str
        Label of the bar.
    """
    tasks = list(tasks)
    n_jobs = min(resolve_n_jobs(n_jobs), max(len(tasks), 1))
    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm
        bar = tqdm(total=len(tasks), desc=desc, leave=False)
    try:
        if n_jobs == 1:
            results = []
            for task in tasks:
                results.append(function(shared, task))
                if bar is not None:
                    bar.update()
            return results
        with ProcessPoolExecutor(max_workers=n_jobs, initializer=_init_worker,
                                 initargs=(shared,)) as pool:
            futures = [pool.submit(_call, function, task) for task in tasks]
            for future in as_completed(futures):
                if bar is not None:
                    bar.update()
            return [future.result() for future in futures]
    finally:
        if bar is not None:
            bar.close()
