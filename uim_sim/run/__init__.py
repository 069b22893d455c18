"""Running a spec: `plan` (spec → runs), `execute` (one run), `executors` (where runs
execute: serial, a process pool, or a Ray cluster in `ray_executor`), `store` (the
result folder: atomic writes, resume, gathered tables). `run_plan` ties them together."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uim_sim.lfm.device import compute_dtype, dtype_name, pick_device, precision_note
from uim_sim.lfm.numerics import fingerprint
from uim_sim.run.execute import RunResult, execute
from uim_sim.run.executors import (
    ExecutorError,
    Failure,
    Folder,
    ProcessExecutor,
    SerialExecutor,
    executor_kind,
)
from uim_sim.run.plan import Plan, RunTask, plan
from uim_sim.run.store import OutputError, Store, forged_folder
from uim_sim.run.threads import Fitted
from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.forge import cached, forge

__all__ = [
    "BatchResult",
    "ExecutorError",
    "OutputError",
    "Plan",
    "RunTask",
    "Store",
    "make_executor",
    "plan",
    "plan_numerics",
    "precision_notes",
    "run_plan",
]


@dataclass
class BatchResult:
    out: Path
    total: int
    skipped: int
    done: int
    failed: dict[str, str]


def make_executor(
    workers: int | None = 1, kind: str | None = None, address: str | None = None,
    threads: int | None = None,
) -> Any:  # fmt: skip
    """The executor of a choice (`executors.executor_error` tells what is refused).

    ``kind``: serial, process or ray (default: process with more than one worker).
    ``workers``: the process pool's size (default: the cores), or the number of Ray
    actors (default: one per CPU of the cluster); ``address``: the Ray cluster to join.
    ``threads``: torch's threads in each worker (default: cores ÷ workers in a pool or
    on Ray, as many as fit the load serially: `uim_sim.run.threads`).
    """
    kind = executor_kind(kind, workers)
    if kind == "ray":
        from uim_sim.run.ray_executor import RayExecutor  # the optional extra

        return RayExecutor(workers, address, threads=threads)
    if kind == "process":
        return ProcessExecutor(workers or os.cpu_count() or 1, threads)
    return SerialExecutor(threads)


def _execute_in(args: tuple[RunTask, Folder | None]) -> RunResult:
    task, forged = args
    return execute(task, forged.local() if forged is not None else None)


def run_plan(
    the_plan: Plan,
    out: Path,
    workers: int | None = 1,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Callable[[RunTask, str | None], None] | None = None,
    on_forge: Callable[[CorpusCard], Callable | None] | None = None,
    executor: Any = None,
    address: str | None = None,
    checked: bool = False,
    threads: int | None = None,
) -> BatchResult:
    """Execute every run of the plan not yet in ``out``; gather the result tables.

    Raises `SpecError` before writing anything if ``out`` holds runs this plan would
    orphan. Checkpoints forged from corpus cards are forged first (once per card
    content) into ``out/checkpoints``; ``on_forge(card)`` may return a progress
    callback. ``on_done(task, error)`` is called as each run finishes (error None
    when it succeeded).

    ``executor``: "serial", "process" or "ray" (`make_executor`; default: a process
    pool when ``workers`` > 1), or an executor object; ``address``: the Ray cluster
    to join (default: a local Ray for this call). Whatever the executor, only this
    process writes, and the result tables are byte-identical. ``checked``: the caller
    has checked ``out`` against this plan (`Store.check`), as the CLI does for every
    folder before any runs; it is not read again. ``threads``: torch's threads in each
    worker, and in this process while it forges (default: `uim_sim.run.threads`).
    """
    store = Store(out)
    if not checked:
        store.check(the_plan)
    store.prepare(the_plan)
    pending = [t for t in the_plan.tasks if not store.done(t.run_id)]
    skipped = len(the_plan.tasks) - len(pending)
    # missing forges are forged, stale verifications refreshed (quick), the rest reused
    for corpus in the_plan.corpora.values():
        folder = forged_folder(out, corpus)
        try:
            # the workers have not started: this process forges alone, on threads that fit
            fit = None if cached(corpus, folder) else Fitted(threads).choice().threads
            forge(corpus, folder, on_forge(corpus) if on_forge else None, threads=fit)
        except OSError as exc:
            raise OutputError(
                f"--out: {out}: forging {corpus.name} into {folder} failed "
                f"({exc.strerror or exc}); make room and run the same command again"
            ) from None
    if on_start:
        on_start(len(the_plan.tasks), skipped)
    failed: dict[str, str] = {}
    if executor is None or isinstance(executor, str):
        size = workers if workers is None else min(workers, max(1, len(pending)))
        executor = make_executor(size, executor, address, threads)
    # a forged checkpoint travels as a `Folder`: its absolute path, or its bytes (Ray)
    folders = {k: Folder(str(forged_folder(out, c).resolve())) for k, c in the_plan.corpora.items()}
    jobs = [(t, folders[t.corpus.fingerprint()] if t.corpus is not None else None) for t in pending]
    outcomes = executor.map_unordered(_execute_in, jobs)
    try:
        for (task, _), outcome in outcomes:
            error: str | None = None
            if isinstance(outcome, Failure):
                error = failed[task.run_id] = outcome.error
            else:
                store.write(outcome)
            if on_done:
                on_done(task, error)
    finally:  # interrupted (Ctrl-C): the executor cancels what has not finished
        outcomes.close()
    store.gather(
        [t.run_id for t in the_plan.tasks], {t.run_id: t.identity() for t in the_plan.tasks}
    )
    return BatchResult(Path(out), len(the_plan.tasks), skipped, len(pending) - len(failed), failed)


def plan_numerics(the_plan: Plan) -> dict[str, Any]:
    """The numerics fingerprint this process gives the plan's runs (`uim_sim.lfm.numerics`):
    on the devices its cards compute on, in their dtypes."""
    cards = [c for t in the_plan.tasks for c in (t.card, *t.mitigation_cards.values())]
    places = {(pick_device(c.device), c.precision) for c in cards}
    dtypes = {dtype_name(compute_dtype(device, precision)) for device, precision in places}
    return fingerprint(tuple(sorted({d for d, _ in places})), tuple(sorted(dtypes)))


def precision_notes(the_plan: Plan) -> list[str]:
    """What each card's ``precision: auto`` computes in here, one line a card."""
    return [
        f"card {card.name}: {precision_note(card.precision, card.device)}"
        for card in the_plan.cards.values()
        if card.precision == "auto"
    ]


def gather(out: Path, run_ids: list[str], identities: dict[str, dict[str, Any]] | None = None):
    """The result tables of finished runs in ``out`` (see `Store.gather`)."""
    return Store(out).gather(run_ids, identities)
