"""Spec → grid of runs → executor → result store.

`plan` validates a scenario and expands it into runs (agent cards × mitigation
arms × grid values × replicates). `run_plan` executes the runs that are not yet
in the output folder, on a serial or process-pool executor (a cluster executor
fits the same `map_unordered` seam), and writes every run atomically:

    OUT/runs/<run_id>/{run.json, metrics.parquet, decisions.parquet}

A run's folder is written under a temporary name and renamed when complete, so a
killed batch leaves no partial run; re-running resumes. The run id hashes
everything that determines the run's result, so a changed spec never reuses a
stale run. Finally the runs of the plan are gathered into OUT/runs.parquet,
metrics.parquet and decisions.parquet, and the resolved spec into OUT/spec.yaml.

Seeds: run seed = f(spec seed, replicate). Arms of the same replicate share
applicants and history (common random numbers), so arm differences are paired.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from uim_sim.lfm.forge import FORGE_VERSION
from uim_sim.mitigate.base import arm_name, build, compose
from uim_sim.spec import (
    CORPUS_PREFIX,
    FORGE_PREFIX,
    AgentCard,
    CorpusCard,
    MitigationSpec,
    ScenarioSpec,
    SpecError,
    StatisticsSpec,
    find_card,
    load_card,
    load_corpus_card,
    load_spec,
)

log = logging.getLogger(__name__)
RESULT_FILES = ("runs.parquet", "metrics.parquet", "decisions.parquet")
# run columns that describe how a run executed, not what it computed
EXECUTION_COLUMNS = (
    "wall_seconds",
    "texts_encoded",
    "cache_hits",
    "model_seconds",
    "engine_calls",
)


@dataclass(frozen=True)
class RunTask:
    run_id: str
    world: str
    card: AgentCard
    arm: str
    mitigations: tuple[MitigationSpec, ...]
    mitigation_cards: dict[str, AgentCard]
    params: dict[str, Any]
    grid: dict[str, Any]
    replicate: int
    seed: int
    statistics: StatisticsSpec
    corpus: CorpusCard | None = None  # set when the card's checkpoint is forge:CARD


def forged_folder(out: Path, corpus: CorpusCard) -> Path:
    """Where a run folder keeps the checkpoint forged from a corpus card (cached by hash)."""
    return Path(out) / "checkpoints" / f"{corpus.name}-{corpus.fingerprint()[:12]}"


@dataclass
class Plan:
    spec: ScenarioSpec
    source: Path
    tasks: list[RunTask]
    cards: dict[str, AgentCard] = field(default_factory=dict)

    def resolved(self) -> dict[str, Any]:
        """The spec as run: with every card's content, for the record (OUT/spec.yaml)."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "source": str(self.source),
            "cards": {n: c.model_dump(mode="json") for n, c in sorted(self.cards.items())},
            "runs": len(self.tasks),
        }


def run_seed(spec_seed: int, replicate: int) -> int:
    return int(np.random.SeedSequence([spec_seed, replicate]).generate_state(1)[0])


def _run_id(card: AgentCard, arm: str, replicate: int, content: dict[str, Any]) -> str:
    digest = json.dumps(content, sort_keys=True, default=str)
    return f"{card.name}-{arm}-r{replicate:03d}-{hashlib.sha256(digest.encode()).hexdigest()[:10]}"


def plan(spec_path: Path, agents_dir: Path | None = None) -> Plan:
    """Validate a scenario and everything it names; expand it into runs.

    Raises `SpecError` (one line, naming the field) on any invalid input.
    """
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    cards: dict[str, AgentCard] = {}

    def card(name: str) -> AgentCard:
        if name not in cards:
            cards[name] = load_card(find_card(name, spec_path, agents_dir))
            _check_card(cards[name], spec_path)
        return cards[name]

    agent_cards = [card(n) for n in spec.agents]
    names = [c.name for c in agent_cards]
    if len(set(names)) != len(names):
        raise SpecError(f"{spec_path}: agents: card names repeat {names}")
    arms = []
    for i, arm in enumerate(spec.mitigations):
        built = [build(m, f"{spec_path}: mitigations.{i}.{j}", card) for j, m in enumerate(arm)]
        pool_cards = {n: c for m in built for n, c in m.cards.items()}
        arms.append((arm_name(arm), tuple(arm), pool_cards))
    if len({a[0] for a in arms}) != len(arms):
        raise SpecError(f"{spec_path}: mitigations: two arms have the same mitigations")

    keys = list(spec.grid)
    combos = [dict(zip(keys, values)) for values in _product([spec.grid[k] for k in keys])]
    tasks = []
    for agent in agent_cards:
        forged = agent.checkpoint.startswith(FORGE_PREFIX)
        # corpus.* grid keys only vary forged checkpoints: drop them for the others
        agent_combos = [
            dict(c)
            for c in dict.fromkeys(
                tuple((k, v) for k, v in combo.items() if forged or not k.startswith(CORPUS_PREFIX))
                for combo in combos
            )
        ]
        for arm, mitigations, pool_cards in arms:
            for grid in agent_combos:
                params = spec.world_params(grid).model_dump(mode="json")
                corpus = _corpus_card(agent, grid, spec_path) if forged else None
                for replicate in range(spec.replicates):
                    seed = run_seed(spec.seed, replicate)
                    content = {
                        "world": spec.world,
                        "card": agent.fingerprint(),
                        "mitigations": [m.model_dump(mode="json") for m in mitigations],
                        "pool": {n: c.fingerprint() for n, c in pool_cards.items()},
                        "params": params,
                        "seed": seed,
                        "statistics": spec.statistics.model_dump(),
                        # a forge of another forge version is another checkpoint
                        "corpus": corpus and f"{corpus.fingerprint()}:f{FORGE_VERSION}",
                    }
                    tasks.append(
                        RunTask(
                            run_id=_run_id(agent, arm, replicate, content),
                            world=spec.world,
                            card=agent,
                            arm=arm,
                            mitigations=mitigations,
                            mitigation_cards=pool_cards,
                            params=params,
                            grid=grid,
                            replicate=replicate,
                            seed=seed,
                            statistics=spec.statistics,
                            corpus=corpus,
                        )
                    )
    return Plan(spec, spec_path, tasks, cards)


def _corpus_card(agent: AgentCard, grid: dict[str, Any], spec_path: Path) -> CorpusCard:
    path = Path(agent.checkpoint.removeprefix(FORGE_PREFIX))
    overrides = {
        k.removeprefix(CORPUS_PREFIX): v for k, v in grid.items() if k.startswith(CORPUS_PREFIX)
    }
    try:
        return load_corpus_card(path, overrides)
    except SpecError as exc:
        raise SpecError(f"{spec_path}: agent {agent.name}: {exc}") from None


def _check_card(card: AgentCard, spec_path: Path) -> None:
    """Fail before anything runs: the checkpoint verifies (with a masked-LM head where
    the head asks for one), the training file reads."""
    from uim_sim.lfm.checkpoint import CheckpointError, resolve
    from uim_sim.lfm.heads import HeadError, read_labelled_file

    try:
        if card.checkpoint.startswith(FORGE_PREFIX):
            load_corpus_card(Path(card.checkpoint.removeprefix(FORGE_PREFIX)))
        else:
            checkpoint = resolve(card.checkpoint)
            if card.head.kind == "label_words":
                checkpoint.load_masked_lm()  # refuses a folder without a trained MLM head
        if card.head.train_on == "file":
            read_labelled_file(card.head.file, card.head.text_column, card.head.label_column)
    except (CheckpointError, HeadError) as exc:
        raise SpecError(f"{spec_path}: agent {card.name}: {exc}") from None


def _product(lists: list[list[Any]]) -> Iterator[tuple[Any, ...]]:
    if not lists:
        yield ()
        return
    for head in lists[0]:
        for rest in _product(lists[1:]):
            yield (head, *rest)


# ------------------------------------------------------------------ one run


def _make_world(task: RunTask, null_draw: int | None = None):
    from uim_sim.spec import WORLD_PARAMS
    from uim_sim.worlds import world_class

    mitigations = [build(m, task.run_id) for m in task.mitigations]
    for m in mitigations:
        m.cards = {n: task.mitigation_cards[n] for n in m.card_names()}
    return world_class(task.world)(
        params=WORLD_PARAMS[task.world](**task.params),
        cards=[task.card],
        stages=compose(mitigations),
        seed=task.seed,
        null_draw=null_draw,
        statistics=task.statistics,
    )


def _null_rows(
    observed: pd.DataFrame, null_values: list[pd.DataFrame], metrics: Iterable[str]
) -> pd.DataFrame:
    """Summarise the null reference of each named metric at the last step, per group."""
    frames = [_null_rows_of(observed, null_values, m) for m in metrics]
    return pd.concat(frames, ignore_index=True) if frames else observed.iloc[0:0]


def _null_rows_of(observed: pd.DataFrame, null_values: list[pd.DataFrame], metric: str):
    if not null_values:
        return observed.iloc[0:0]
    last = observed["step"].max()
    obs = observed[(observed["metric"] == metric) & (observed["step"] == last)]
    null = pd.concat(null_values)
    null = null[(null["metric"] == metric) & (null["step"] == last)]
    rows = []
    for group, values in null.groupby("group")["value"]:
        v = values.to_numpy(float)
        v = v[np.isfinite(v)]
        mine = obs.loc[obs["group"] == group, "value"]
        if len(v) == 0 or mine.empty:
            continue
        stat = {
            "null_q025": np.quantile(v, 0.025),
            "null_median": np.median(v),
            "null_q975": np.quantile(v, 0.975),
            # one-sided: how often chance alone gives a ratio this low
            "null_p": (1 + np.sum(v <= mine.iloc[0] + 1e-12)) / (1 + len(v)),
        }
        rows += [
            {"step": last, "metric": f"{metric}_{k}", "group": group, "value": float(x)}
            for k, x in stat.items()
        ]
    return pd.DataFrame(rows, columns=observed.columns)


def execute(task: RunTask, out: Path) -> dict[str, Any]:
    """Run one task and write its folder atomically. Returns its runs.parquet row."""
    from uim_sim.lfm.engine import get_engine

    start = time.perf_counter()
    forged = {}
    if task.corpus is not None:
        folder = forged_folder(out, task.corpus)
        forged = _forged_columns(folder, out)
        task = replace(task, card=task.card.model_copy(update={"checkpoint": str(folder)}))
    engines = {c.checkpoint for c in [task.card, *task.mitigation_cards.values()]}
    before = {ref: get_engine(ref).counters.copy() for ref in engines}
    world = _make_world(task).run_for()
    decisions = world.decision_table()
    metrics = world.metrics()
    draws = task.statistics.null_permutations if world.null_metrics else 0
    nulls = [_make_world(task, null_draw=k).run_for().metrics() for k in range(draws)]
    null_rows = _null_rows(metrics, nulls, world.null_metrics)
    metrics = pd.concat([metrics, null_rows], ignore_index=True)
    counters: dict[str, float] = {}
    for ref in engines:
        for key, value in get_engine(ref).counters.delta(before[ref]).items():
            counters[key] = counters.get(key, 0) + value
    for frame in (decisions, metrics):
        frame.insert(0, "run_id", task.run_id)
    if forged:  # tables name a forged checkpoint by its folder inside OUT, not a path
        decisions["checkpoint"] = decisions["checkpoint"].replace(
            task.card.checkpoint, forged["checkpoint"]
        )
    row = {
        "run_id": task.run_id,
        "world": task.world,
        "card": task.card.name,
        "checkpoint": task.card.checkpoint,
        **forged,
        "head": task.card.head.kind,
        "mitigation": task.arm,
        "replicate": task.replicate,
        "seed": task.seed,
        **{f"param.{k}": v for k, v in task.params.items()},
        "grid": json.dumps(task.grid, sort_keys=True),
        "status": "done",
        "null_draws": draws,
        "texts_requested": int(counters.get("texts_requested", 0)),
        "texts_encoded": int(counters.get("texts_encoded", 0)),
        "cache_hits": int(counters.get("cache_hits", 0)),
        "engine_calls": int(counters.get("calls", 0)),
        "model_seconds": float(counters.get("model_seconds", 0.0)),
        "wall_seconds": time.perf_counter() - start,
    }
    _write_run(out, task.run_id, row, metrics, decisions)
    return row


def _forged_columns(folder: Path, out: Path) -> dict[str, Any]:
    """runs.parquet columns of a forged checkpoint: its knobs and its post-forge probe."""
    manifest = json.loads((folder / "manifest.json").read_text())
    columns: dict[str, Any] = {"checkpoint": str(folder.relative_to(out))}
    columns.update({f"corpus.knobs.{k}": v for k, v in manifest["knobs"].items()})
    columns["corpus.seed"] = manifest["seed"]
    for key in ("effect_size", "p_value", "mlm_effect_size", "mlm_p_value", "mlm_gap_nats"):
        columns[f"probe.{key}"] = manifest["verification"].get(key, float("nan"))
    return columns


def _write_run(out: Path, run_id: str, row: dict, metrics: pd.DataFrame, decisions: pd.DataFrame):
    runs = out / "runs"
    tmp = runs / f".tmp-{run_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    metrics.to_parquet(tmp / "metrics.parquet", index=False)
    decisions.to_parquet(tmp / "decisions.parquet", index=False)
    (tmp / "run.json").write_text(json.dumps(row, indent=2, default=str))
    try:
        os.rename(tmp, runs / run_id)
    except OSError:  # another worker finished the same run first
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ executors


class SerialExecutor:
    """Runs tasks one after another in this process (the model loads once)."""

    workers = 1

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator:
        for task in tasks:
            yield task, _call(fn, task)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """A pool of worker processes; each loads a model once and runs many tasks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_unordered(self, fn: Callable, tasks: Iterable) -> Iterator:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(
            self.workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        ) as pool:
            futures = {pool.submit(_call, fn, t): t for t in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()


def _call(fn: Callable, task: Any) -> dict[str, Any]:
    """Run a task; an exception becomes a failure record, not a lost batch."""
    try:
        return fn(task)
    except Exception as exc:  # reported per run; the other runs go on
        log.exception("run failed: %s", task)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def make_executor(workers: int) -> SerialExecutor | ProcessExecutor:
    return SerialExecutor() if workers <= 1 else ProcessExecutor(workers)


# ------------------------------------------------------------------ a batch


@dataclass
class BatchResult:
    out: Path
    total: int
    skipped: int
    done: int
    failed: dict[str, str]


def _execute_packed(args: tuple[RunTask, str]) -> dict[str, Any]:
    task, out = args
    return execute(task, Path(out))


def run_plan(
    the_plan: Plan,
    out: Path,
    workers: int = 1,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Callable[[RunTask, dict[str, Any]], None] | None = None,
    on_forge: Callable[[CorpusCard], Callable | None] | None = None,
) -> BatchResult:
    """Execute every run of the plan not yet in ``out``; gather the result tables.

    Checkpoints forged from corpus cards are forged first (once per card content)
    into ``out/checkpoints``; ``on_forge(card)`` may return a progress callback.
    """
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for stale in (out / "runs").glob(".tmp-*"):  # left by a killed batch
        shutil.rmtree(stale, ignore_errors=True)
    _write_atomic(out / "spec.yaml", yaml.safe_dump(the_plan.resolved(), sort_keys=False))
    pending = [t for t in the_plan.tasks if not (out / "runs" / t.run_id / "run.json").is_file()]
    skipped = len(the_plan.tasks) - len(pending)
    # every forged checkpoint of the plan: missing ones are forged, stale manifests
    # re-verified (quick), finished ones reused
    corpora = {t.corpus.fingerprint(): t.corpus for t in the_plan.tasks if t.corpus is not None}
    for corpus in corpora.values():
        from uim_sim.lfm.forge import forge

        forge(corpus, forged_folder(out, corpus), on_forge(corpus) if on_forge else None)
    if on_start:
        on_start(len(the_plan.tasks), skipped)
    failed: dict[str, str] = {}
    executor = make_executor(min(workers, max(1, len(pending))))
    for (task, _), row in executor.map_unordered(_execute_packed, [(t, str(out)) for t in pending]):
        if row.get("status") != "done":
            failed[task.run_id] = row.get("error", "unknown error")
        if on_done:
            on_done(task, row)
    gather(out, [t.run_id for t in the_plan.tasks], {t.run_id: t.grid for t in the_plan.tasks})
    return BatchResult(out, len(the_plan.tasks), skipped, len(pending) - len(failed), failed)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def gather(
    out: Path, run_ids: list[str], grids: dict[str, dict[str, Any]] | None = None
) -> dict[str, pd.DataFrame]:
    """Gather finished runs (in plan order) into the three result tables.

    ``grids``: the plan's grid point of each run. A run is identified by what it
    computes, so a run finished under another spec (e.g. without a ``corpus.seed``
    axis) is reused; its row is labelled with this plan's grid point.
    """
    runs, metrics, decisions = [], [], []
    for run_id in run_ids:
        folder = out / "runs" / run_id
        if not (folder / "run.json").is_file():
            continue
        row = json.loads((folder / "run.json").read_text())
        if grids is not None and run_id in grids:
            row["grid"] = json.dumps(grids[run_id], sort_keys=True)
        runs.append(row)
        metrics.append(pd.read_parquet(folder / "metrics.parquet"))
        decisions.append(pd.read_parquet(folder / "decisions.parquet"))
    tables = {
        "runs.parquet": pd.DataFrame(runs),
        "metrics.parquet": pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame(),
        "decisions.parquet": (
            pd.concat(decisions, ignore_index=True) if decisions else pd.DataFrame()
        ),
    }
    for name, frame in tables.items():
        tmp = out / f".{name}.{uuid.uuid4().hex[:8]}"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out / name)
    return tables
