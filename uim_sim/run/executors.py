"""Executors: where runs execute. One seam, ``map_unordered(fn, jobs)``, yielding
(job, outcome) as runs finish: in this process (`SerialExecutor`), in a pool of
worker processes (`ProcessExecutor`), or on a Ray cluster (`uim_sim.run.ray_executor`,
an optional extra). `uim_sim.run.make_executor` picks one.

An outcome is the function's result, or a `Failure` carrying the one-line error:
one failed run never loses the batch. A worker keeps the models it loaded for the
runs it executes after (the engine cache is per process). Closing the iterator
before it is exhausted (Ctrl-C) cancels the work not yet finished: only the runs
already yielded are the driver's to write.

A job may carry `Folder`s (a checkpoint forged by the driver): a worker reaches one
by `Folder.local()`, a path on its own machine. On one machine that is the driver's
path; the Ray executor, on a cluster, ships the folder's bytes through the object
store instead.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from uim_sim.run.threads import SHARED, Choice, apply, fitted, shared
from uim_sim.schema import UimError

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "process", "ray")
RAY_MISSING = "--executor ray needs Ray, an optional extra: pip install 'uim-sim[ray]'"


@dataclass(frozen=True)
class Failure:
    error: str


class ExecutorError(UimError):
    """The executor could not start (one line): no run has started."""


@dataclass(frozen=True)
class Folder:
    """A folder the driver wrote (a forged checkpoint), reached by path."""

    path: str

    def local(self) -> Path:
        return Path(self.path)


def call(fn: Callable, task: Any) -> Any:
    """Run a task; an exception becomes a `Failure`, not a lost batch."""
    try:
        return fn(task)
    except Exception as exc:  # reported per run; the other runs go on
        log.exception("run failed: %s", task)
        return Failure(f"{type(exc).__name__}: {exc}")


class SerialExecutor:
    """Runs tasks one after another in this process (each model loads once), on
    ``threads`` torch threads, or by default as many as fit the load, fitted again
    before each task (`uim_sim.run.threads`); torch's threads are as they were after."""

    workers = 1

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[tuple[Any, Any]]:
        with fitted(self.threads) as fit:
            for task in tasks:
                apply(fit.choice())
                yield task, call(fn, task)


def init_worker(threads: int, parent: int | None = None, rule: str = SHARED) -> None:
    """A worker's torch threads (the cores shared out among the workers, or
    ``--threads``: ``rule`` says which); with ``parent`` (the pid that started it),
    the worker dies with that process."""
    if parent is not None:
        die_with(parent)
    apply(Choice(threads, rule))


def die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (Linux): a runner killed by
    ``kill -9`` leaves no worker behind, waiting forever on its task queue."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


class ProcessExecutor:
    """A pool of worker processes; each loads a model once and runs many tasks."""

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = threads  # each worker's torch threads (default: cores ÷ workers)

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[tuple[Any, Any]]:
        choice = shared(self.workers, self.threads)
        with ProcessPoolExecutor(
            self.workers,
            mp_context=get_context("spawn"),
            initializer=init_worker,
            initargs=(choice.threads, os.getpid(), choice.rule),
        ) as pool:
            futures = {pool.submit(call, fn, t): t for t in tasks}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:  # interrupted or closed early: drop what has not started
                for future in futures:
                    future.cancel()


def executor_error(kind: str | None, workers: int | None, address: str | None) -> str | None:
    """The one-line error for an executor choice that cannot work, or None."""
    if kind is not None and kind not in EXECUTORS:
        return f"--executor: {kind!r} is not one of {', '.join(EXECUTORS)}"
    if address is not None and kind != "ray":
        return "--address: names a Ray cluster; use it with --executor ray"
    if kind == "serial" and workers not in (None, 1):
        return f"--workers {workers}: the serial executor has one worker (this process)"
    if kind == "ray":
        if importlib.util.find_spec("ray") is None:
            return RAY_MISSING
        if address is not None and not re.fullmatch(r"auto|ray://\S+|[\w.\-\[\]:]+:\d+", address):
            return (
                f"--address: {address!r}: 'auto' (the cluster this machine is a node of), "
                "ray://HOST:PORT (a cluster's Ray Client server) or HOST:PORT (its head)"
            )
    return None


def executor_kind(kind: str | None, workers: int | None) -> str:
    """The executor a choice means: by default a process pool with more than one
    worker, else this process."""
    return kind or ("process" if (workers or 1) > 1 else "serial")
