"""Running a spec: `plan` (spec → runs), `execute` (one run), `executors` (where runs
execute: serial or a process pool; a cluster next), `store` (the result folder:
atomic writes, resume, gathered tables). `run_plan` ties them together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uim_sim.run.execute import RunResult, execute
from uim_sim.run.executors import Failure, make_executor
from uim_sim.run.plan import Plan, RunTask, plan
from uim_sim.run.store import Store, forged_folder
from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.forge import forge

__all__ = ["BatchResult", "Plan", "RunTask", "Store", "plan", "run_plan"]


@dataclass
class BatchResult:
    out: Path
    total: int
    skipped: int
    done: int
    failed: dict[str, str]


def _execute_in(args: tuple[RunTask, str | None]) -> RunResult:
    task, forged = args
    return execute(task, Path(forged) if forged else None)


def run_plan(
    the_plan: Plan,
    out: Path,
    workers: int = 1,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Callable[[RunTask, str | None], None] | None = None,
    on_forge: Callable[[CorpusCard], Callable | None] | None = None,
) -> BatchResult:
    """Execute every run of the plan not yet in ``out``; gather the result tables.

    Raises `SpecError` before writing anything if ``out`` holds runs this plan would
    orphan. Checkpoints forged from corpus cards are forged first (once per card
    content) into ``out/checkpoints``; ``on_forge(card)`` may return a progress
    callback. ``on_done(task, error)`` is called as each run finishes (error None
    when it succeeded).
    """
    store = Store(out)
    store.check(the_plan)
    store.prepare(the_plan)
    pending = [t for t in the_plan.tasks if not store.done(t.run_id)]
    skipped = len(the_plan.tasks) - len(pending)
    # missing forges are forged, stale verifications refreshed (quick), the rest reused
    for corpus in the_plan.corpora.values():
        forge(corpus, forged_folder(out, corpus), on_forge(corpus) if on_forge else None)
    if on_start:
        on_start(len(the_plan.tasks), skipped)
    failed: dict[str, str] = {}
    executor = make_executor(min(workers, max(1, len(pending))))
    jobs = [
        (t, str(forged_folder(out, t.corpus)) if t.corpus is not None else None) for t in pending
    ]
    for (task, _), outcome in executor.map_unordered(_execute_in, jobs):
        error: str | None = None
        if isinstance(outcome, Failure):
            error = failed[task.run_id] = outcome.error
        else:
            store.write(outcome)
        if on_done:
            on_done(task, error)
    store.gather([t.run_id for t in the_plan.tasks], {t.run_id: t.grid for t in the_plan.tasks})
    return BatchResult(Path(out), len(the_plan.tasks), skipped, len(pending) - len(failed), failed)


def gather(out: Path, run_ids: list[str], grids: dict[str, dict[str, Any]] | None = None):
    """The result tables of finished runs in ``out`` (see `Store.gather`)."""
    return Store(out).gather(run_ids, grids)
