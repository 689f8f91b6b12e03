"""How many threads the BLAS may use while the engine runs.

Every EM iteration is a handful of products of a tall, skinny design
(n x p, n much larger than p) with vectors or small matrices. A threaded
BLAS (OpenBLAS, MKL) splits each of them over its threads and joins them
again, thousands of times per fit. On an idle machine that buys little;
beside any other busy process it is ruinous: threads that wait for each other
spin, and one descheduled thread stalls every product. On the project's
2-core machine a Gaussian fit (p = 50, n = 100,000, K = 2) took 30.8 and
135 s beside other work, and 1.3-1.5 s with one BLAS thread (see
``benchmarks/README.md``, "Busy machine").

:func:`blas_threads` limits the BLAS pools for the duration of a block
(through threadpoolctl) and restores them afterwards. The engine applies it
around its parallel map (:func:`emformula._runtime.parallel.map_tasks`) and pins
each worker process to one thread (:func:`pin_blas`), so ``n_jobs``
processes use ``n_jobs`` cores, never ``n_jobs`` times the BLAS's threads.

The number used when none is given is :data:`DEFAULT_THREADS` (1), or the
environment variable ``EMFORMULA_BLAS_THREADS``: a positive number, or ``0``
to leave the BLAS alone (the library's own setting, or the caller's
``threadpoolctl`` limits). Worker processes stay at one thread whatever it
says.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

__all__ = ["DEFAULT_THREADS", "ENV_VAR", "blas_threads", "pin_blas", "resolve_threads"]

#: BLAS threads inside the engine when neither the caller nor
#: ``EMFORMULA_BLAS_THREADS`` says otherwise. One, by measurement on the
#: 2-core machine (benchmarks/README.md, "Busy machine"): idle, a wide
#: Gaussian fit (p = 50) took 1.06 times as long as with OpenBLAS's two
#: threads and a narrow Poisson fit 0.85 times; beside one busy process fits
#: took 1.13-1.34 times their idle time, where an iteration with two threads
#: took 1.7-3.5 times its own.
DEFAULT_THREADS = 1
#: Environment variable overriding :data:`DEFAULT_THREADS` (``0``: do not touch the BLAS).
ENV_VAR = "EMFORMULA_BLAS_THREADS"

# Open regions of every thread, in the order they were entered: (token, n).
# The BLAS holds the limit of the last one; the limits found when the first
# one opened come back when the last one closes.
_lock = threading.Lock()
_regions: list[tuple[object, int]] = []
_original = None  # threadpoolctl limiter that restores the limits found first
_current = None  # limit now applied by this module
_ceiling = None  # set by pin_blas in a worker process: never more threads


def _check_n(n, what):
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{what} must be a whole number >= 0 (0: leave the BLAS alone), got {n!r}")
    return n


def resolve_threads(n=None):
    """The number of BLAS threads :func:`blas_threads` would apply (0: none applied).

    ``None`` means ``EMFORMULA_BLAS_THREADS`` if set, else
    :data:`DEFAULT_THREADS`; in a worker process pinned by :func:`pin_blas`
    the result is at most that pin.
    """
    if n is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            try:
                n = int(env)
            except ValueError:
                raise ValueError(f"{ENV_VAR} must be a whole number >= 0, got {env!r}") from None
            n = _check_n(n, ENV_VAR)
        else:
            n = DEFAULT_THREADS
    else:
        n = _check_n(n, "n")
    if _ceiling is not None:
        n = _ceiling if n == 0 else min(n, _ceiling)
    return n


def _release():
    # threadpoolctl >= 3.8 lets only one "controlling" Python thread change a
    # process-wide (pthreads) OpenBLAS pool, and other threads' calls then do
    # nothing; a bare call (no ``with``) keeps that thread in control for
    # good. Our changes are serialised by our own lock, so hand control back
    # after each one: a region entered or left from another thread, or the
    # caller's own threadpoolctl limits, still take effect.
    import threadpoolctl

    clear = getattr(
        getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None
    )
    if clear is not None:
        clear(force=True)


_controller = None  # the process's BLAS libraries, found once


def _blas_controller():
    # Finding the loaded libraries (threadpoolctl walks the process's shared
    # objects) takes milliseconds: as much as a whole fit on small data. The
    # BLAS the engine calls is numpy's and scipy's, loaded when emformula is
    # imported, so the first region's search serves every later one (a BLAS
    # loaded later by another package is not limited: the engine does not
    # call it).
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def _limit(n):
    try:
        return _blas_controller().limit(limits=n, user_api="blas")
    finally:
        _release()


def _restore(limiter):
    try:
        limiter.restore_original_limits()
    finally:
        _release()


@contextmanager
def blas_threads(n=None):
    """Limit the BLAS to ``n`` threads inside the block.

    Parameters
    ----------
    n : int or None
        Threads of every BLAS loaded in the process when the first region
        opened (numpy's and scipy's OpenBLAS, MKL, ...). ``None``:
        ``EMFORMULA_BLAS_THREADS`` if set, else :data:`DEFAULT_THREADS` (1).
        ``0``: leave the BLAS as it is.

    Regions may nest, and several threads may be inside one at once (the
    limit is process-wide, as the BLAS's own setting is): the BLAS keeps the
    limit of the most recently entered open region, and the setting found
    before the first region comes back when the last one closes. Entering and
    leaving costs about a tenth of a millisecond (the libraries are looked
    up once per process), so wrap whole fits, not single iterations.

    Examples
    --------
    >>> from emformula._runtime.threads import blas_threads
    >>> with blas_threads():          # one thread
    ...     pass
    """
    global _original, _current
    n = resolve_threads(n)
    if n == 0:
        yield
        return
    token = object()
    with _lock:
        _regions.append((token, n))
        if _original is None:
            _original = _limit(n)
            _current = n
        elif _current != n:
            _limit(n)
            _current = n
    try:
        yield
    finally:
        with _lock:
            _regions[:] = [r for r in _regions if r[0] is not token]
            if not _regions:
                if _original is not None:
                    _restore(_original)
                _original = _current = None
            elif _regions[-1][1] != _current:
                _current = _regions[-1][1]
                _limit(_current)


def pin_blas(n=1):
    """Set the BLAS of this process to ``n`` threads for good, and make ``n``
    the most any later :func:`blas_threads` region applies.

    For worker processes (their initializer): ``n_jobs`` workers then use
    ``n_jobs`` cores. Takes no lock shared with other threads, so it is safe
    right after a fork.
    """
    global _ceiling
    _ceiling = _check_n(n, "n") or 1
    _limit(_ceiling)


def _after_fork_in_child():
    # A lock held by another thread at the fork would stay held for ever in
    # the child, and the parent's open regions are not the child's to close.
    global _lock, _original, _current
    _lock = threading.Lock()
    # (The libraries found in the parent are the child's too: a fork copies
    # the address space.)
    _regions.clear()
    _original = _current = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
