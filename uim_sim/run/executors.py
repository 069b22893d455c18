"""Executors: where runs execute. One seam, ``map_unordered(fn, tasks)``, yielding
(task, outcome) as runs finish; a cluster executor (Ray) fits the same seam.

An outcome is the function's result, or a `Failure` carrying the one-line error:
one failed run never loses the batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    error: str


def call(fn: Callable, task: Any) -> Any:
    """Run a task; an exception becomes a `Failure`, not a lost batch."""
    try:
        return fn(task)
    except Exception as exc:  # reported per run; the other runs go on
        log.exception("run failed: %s", task)
        return Failure(f"{type(exc).__name__}: {exc}")


class SerialExecutor:
    """Runs tasks one after another in this process (each model loads once)."""

    workers = 1

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[tuple[Any, Any]]:
        for task in tasks:
            yield task, call(fn, task)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """A pool of worker processes; each loads a model once and runs many tasks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator[tuple[Any, Any]]:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(
            self.workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        ) as pool:
            futures = {pool.submit(call, fn, t): t for t in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()


def make_executor(workers: int) -> SerialExecutor | ProcessExecutor:
    return SerialExecutor() if workers <= 1 else ProcessExecutor(workers)
