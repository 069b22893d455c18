"""Torch's thread count for runs: one that fits the load.

A torch process with more intra-op threads than the cores left free for it waits, at
every parallel region, for a thread the system has put aside for another process:
on 2 cores shared with another process, 2 threads ran 10–30× slower than 1 (issue 29;
`benchmarks/bench_threads.py`). So a run's threads are:

- ``--threads N`` (`run_plan`'s ``threads``): N, whatever the executor;
- in a process pool or on Ray actors: the cores shared out, cores ÷ workers (at
  least 1): one a worker at the default worker count;
- serially, in the command's own process: all cores where the machine is otherwise
  idle, else the cores the other processes leave (at least 1), fitted before forging
  and again before every run, from what the other processes used since the last fit
  (`LoadMeter`: the CPU time /proc/stat counts on this process's cores less this
  process's own, over the last run or since the process started, else a fresh
  quarter of a second; the load average where there is no /proc/stat), never more
  than ``OMP_NUM_THREADS`` where it is set. A core counts as taken where others used
  more than a quarter of one.

No result depends on the thread count (`uim_sim.lfm.numerics`: MKL's strict mode, the
engine's buckets, one BLAS thread for heads); execution.parquet records each run's
``threads``, ``threads.rule`` (``--threads``, ``cores ÷ workers``, ``fits the load``)
and ``threads.others`` (the cores others used at the fit; NaN where not fitted).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from uim_sim.lfm.device import torch_threads

GIVEN = "--threads"
SHARED = "cores ÷ workers"
FITTED = "fits the load"
TAKEN = 0.25  # a core others use more than this share of counts as taken
SAMPLE_SECONDS = 0.25  # a fresh window, where the last reading is too recent or too old
STALE_SECONDS = 60.0


@dataclass(frozen=True)
class Choice:
    threads: int
    rule: str
    others: float | None = None  # cores other processes used (FITTED)

    def columns(self) -> dict[str, object]:
        """execution.parquet's columns of the choice."""
        return {
            "threads": self.threads,
            "threads.rule": self.rule,
            "threads.others": float("nan") if self.others is None else round(self.others, 3),
        }


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def shared(workers: int, given: int | None = None) -> Choice:
    """A pool worker's or Ray actor's threads: ``given``, else cores ÷ workers."""
    if given is not None:
        return Choice(given, GIVEN)
    return Choice(max(1, cores() // max(1, workers)), SHARED)


def fit(others: float, total: int | None = None) -> int:
    """Threads for the cores ``others`` (a number of cores' worth of CPU other processes
    use) leave free of ``total``: all of them on an idle machine, at least 1."""
    total = total or cores()
    taken = max(0, math.ceil(others - TAKEN))
    return max(1, min(total, total - taken))


class LoadMeter:
    """What other processes used of this process's cores between two readings."""

    def __init__(self) -> None:
        self._last = _reading()

    def others(self) -> float:
        """Cores' worth of CPU others used since the last reading (or the meter's start),
        or over `SAMPLE_SECONDS` from now where that was less than half as long or more
        than `STALE_SECONDS` ago."""
        now = _reading()
        if not SAMPLE_SECONDS / 2 <= now[0] - self._last[0] <= STALE_SECONDS:
            self._last = now
            time.sleep(SAMPLE_SECONDS)
            now = _reading()
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        wall = max(t1 - t0, 1e-6)
        if busy0 is None or busy1 is None:  # no /proc/stat: the load average, less ours
            return max(0.0, os.getloadavg()[0] - (own1 - own0) / wall)
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / wall)


def _reading() -> tuple[float, float | None, float]:
    """(wall clock, CPU seconds all processes spent on this process's cores or None,
    this process's own CPU seconds)."""
    times = os.times()
    return time.monotonic(), _busy_seconds(), times.user + times.system


def _busy_seconds() -> float | None:
    """CPU seconds spent busy on this process's cores since boot (/proc/stat: user,
    nice, system, irq, softirq, steal), or None where the system does not say."""
    try:
        allowed = os.sched_getaffinity(0)
        lines = open("/proc/stat").read().splitlines()  # noqa: SIM115
    except (AttributeError, OSError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in allowed:
            continue
        values = [int(v) for v in fields[:8]] + [0] * (8 - len(fields[:8]))
        user, nice, system, _idle, _iowait, irq, softirq, steal = values
        busy += user + nice + system + irq + softirq + steal
    return busy / hz


_CHOSEN = Choice(0, "torch's default")  # this process's current choice
# the process's meter, started at import: the first fit reads what others used while
# this process planned (a short wait only where that took less than SAMPLE_SECONDS / 2)
METER = LoadMeter()


def apply(choice: Choice) -> Choice:
    """Set torch's threads to ``choice`` and remember it (what `current` reports)."""
    global _CHOSEN
    torch_threads(choice.threads)
    _CHOSEN = choice
    return choice


def current() -> Choice:
    """This process's thread choice, as a run records it."""
    threads = torch_threads()
    if _CHOSEN.threads != threads:  # never chosen here, or changed by someone else
        return Choice(threads, "torch's default")
    return _CHOSEN


class Fitted:
    """Serial runs' threads: ``given``, or fitted to the load before each run."""

    def __init__(self, given: int | None = None) -> None:
        self.given = given

    def choice(self) -> Choice:
        if self.given is not None:
            return Choice(self.given, GIVEN)
        others = METER.others()
        return Choice(min(fit(others), ceiling()), FITTED, others)


def ceiling() -> int:
    """The most threads a fitted choice takes: ``OMP_NUM_THREADS`` where set (a user's,
    or a test's limit), else the cores."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else cores()


@contextmanager
def fitted(given: int | None = None) -> Iterator[Fitted]:
    """Serial runs in the block: ``fit = ...; apply(fit.choice())`` before each; torch's
    threads (and the recorded choice) as they were after the block."""
    global _CHOSEN
    before, chosen = torch_threads(), _CHOSEN
    try:
        yield Fitted(given)
    finally:
        torch_threads(before)
        _CHOSEN = chosen
