"""One run: build the world the way Mesa would (``Model(**params)``), step it until it
stops, re-run it for the null reference, and return its rows. Nothing is written
here: the batch's driver writes (`uim_sim.run.store`), so a worker needs no shared
folder for results."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from uim_sim.lfm import fidelity
from uim_sim.lfm.device import dtype_name
from uim_sim.lfm.engine import get_engine, model_loads, reduced
from uim_sim.lfm.heads import one_blas_thread
from uim_sim.lfm.numerics import fingerprint, numerics_columns
from uim_sim.mitigate import build, compose
from uim_sim.mitigate.base import Mitigation
from uim_sim.run.plan import RunTask
from uim_sim.run.threads import current as current_threads
from uim_sim.schema import digest
from uim_sim.worlds import world_info
from uim_sim.worlds.base import ScreeningWorld


@dataclass
class RunResult:
    """A finished run: its runs.parquet row, its tidy metrics and decisions, and how it
    executed (execution.parquet: timings and cache counters)."""

    row: dict[str, Any]
    metrics: pd.DataFrame
    decisions: pd.DataFrame
    execution: dict[str, Any]


SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # dtypes as cards name them
_BUILT: dict[str, list[Mitigation]] = {}  # this process's arms, each built once


def arm_of(task: RunTask) -> list[Mitigation]:
    """The task's mitigations, built (with the cards they refer to) once per process
    and arm: a mitigation holds only its params and cards, so runs can share it."""
    cards = {n: c.fingerprint() for n, c in task.mitigation_cards.items()}
    key = digest({"arm": [m.model_dump(mode="json") for m in task.mitigations], "cards": cards})
    if key not in _BUILT:
        _BUILT[key] = [build(m, task.run_id, task.mitigation_cards) for m in task.mitigations]
    return _BUILT[key]


def make_world(task: RunTask, null_draw: int | None = None) -> ScreeningWorld:
    """The run's Mesa model, built from keywords like Mesa's batch_run would. A null
    draw's world computes no permutation p-values: only its ``null_metrics`` are kept."""
    mitigations = arm_of(task)
    model = world_info(task.world).model(task.params.get("mode"))
    return model(
        **task.params,
        cards=[task.card],
        stages=compose(mitigations),
        rng=task.seed,
        null_draw=null_draw,
        name_permutations=task.statistics.name_permutations if null_draw is None else 0,
    )


def null_rows(
    observed: pd.DataFrame, null_values: list[pd.DataFrame], metrics: Iterable[str]
) -> pd.DataFrame:
    """Summarise the null reference of each named metric at the last step, per group:
    its 2.5 %, 50 % and 97.5 % quantiles and the one-sided p of the observed value
    (how often chance alone gives a value this low)."""
    rows = []
    if null_values:
        last = observed["step"].max()
        null = pd.concat(null_values)
        for metric in metrics:
            obs = observed[(observed["metric"] == metric) & (observed["step"] == last)]
            draws = null[(null["metric"] == metric) & (null["step"] == last)]
            for group, values in draws.groupby("group")["value"]:
                v = values.to_numpy(float)
                v = v[np.isfinite(v)]
                mine = obs.loc[obs["group"] == group, "value"]
                if len(v) == 0 or mine.empty:
                    continue
                stat = {
                    "null_q025": np.quantile(v, 0.025),
                    "null_median": np.median(v),
                    "null_q975": np.quantile(v, 0.975),
                    "null_p": (1 + np.sum(v <= mine.iloc[0] + 1e-12)) / (1 + len(v)),
                }
                rows += [
                    {"step": last, "metric": f"{metric}_{k}", "group": group, "value": float(x)}
                    for k, x in stat.items()
                ]
    if not rows:
        return observed.iloc[0:0]
    return pd.DataFrame(rows).astype(observed.dtypes.to_dict())


def execute(task: RunTask, forged: Path | None = None) -> RunResult:
    """Run one task (on the checkpoint forged into ``forged`` for a forged card).

    ``precision: auto`` is bf16 where the CPU has it natively and the run's own texts
    keep their decisions: a run computed in bf16 for ``auto`` cards whose sample lies
    beyond the fidelity bounds (`uim_sim.lfm.fidelity.beyond`) is computed again in
    fp32, and its execution row keeps the bf16 attempt's ``fidelity.*`` columns with
    ``fidelity.fallback`` True (``wall_seconds``: both; the other counters: the fp32
    run's). A card that names ``bf16`` keeps it, with the report's warning."""
    result = _execute(task, forged)
    execution = result.execution
    if not _falls_back(task, execution):
        return result
    cards = {name: _fp32(card) for name, card in task.mitigation_cards.items()}
    again = _execute(replace(task, card=_fp32(task.card), mitigation_cards=cards), forged)
    again.execution.update({k: execution[k] for k in fidelity.COLUMNS})
    again.execution["fidelity.fallback"] = True
    again.execution["wall_seconds"] += execution["wall_seconds"]
    return again


def _falls_back(task: RunTask, execution: dict[str, Any]) -> bool:
    """Was this run computed in bf16 beyond the fidelity bounds, with no card naming
    bf16 itself (its bf16 came from ``auto``)?"""
    cards = [task.card, *task.mitigation_cards.values()]
    return fidelity.beyond(execution) and all(c.precision != "bf16" for c in cards)


def _fp32(card: Any) -> Any:
    """An ``auto`` card computing in fp32 (other cards as they are)."""
    return card.model_copy(update={"precision": "fp32"}) if card.precision == "auto" else card


def _execute(task: RunTask, forged: Path | None = None) -> RunResult:
    start, loads = time.perf_counter(), model_loads()
    forged_columns: dict[str, Any] = {}
    if forged is not None:
        forged_columns = _forged_columns(forged)
        task = replace(task, card=task.card.model_copy(update={"checkpoint": str(forged)}))
    cards = [task.card, *task.mitigation_cards.values()]
    engines = {(c.checkpoint, c.device, c.precision) for c in cards}
    before = {key: get_engine(*key).counters.copy() for key in engines}
    # a bf16 run: its first texts scored again in fp32 beside it (`uim_sim.lfm.fidelity`)
    sampled = any(reduced(get_engine(*key)) for key in engines)
    with one_blas_thread():  # the same numbers on any machine and executor
        with fidelity.recording() if sampled else nullcontext() as recorder:
            world = make_world(task).simulate()
        decisions = world.decision_table()
        metrics = world.metrics()
        draws = task.statistics.null_permutations if world.null_metrics else 0
        nulls = [make_world(task, null_draw=k).simulate().metrics() for k in range(draws)]
    metrics = pd.concat([metrics, null_rows(metrics, nulls, world.null_metrics)], ignore_index=True)
    counters: dict[str, float] = {}
    for engine in engines:
        for key, value in get_engine(*engine).counters.delta(before[engine]).items():
            counters[key] = counters.get(key, 0) + value
    for frame in (decisions, metrics):
        frame.insert(0, "run_id", task.run_id)
    if forged_columns:  # tables name a forged checkpoint by its folder inside OUT, not a path
        decisions["checkpoint"] = decisions["checkpoint"].replace(
            task.card.checkpoint, forged_columns["checkpoint"]
        )
    row = {
        "run_id": task.run_id,
        "world": task.world,
        "card": task.card.name,
        "checkpoint": task.card.checkpoint,
        **forged_columns,
        "head": task.card.head.kind,
        **task.identity(),
        "replicate": task.replicate,
        "seed": task.seed,
        **{f"param.{k}": v for k, v in task.params.items()},
        "status": "done",
        "null_draws": draws,
        "texts_requested": int(counters.get("texts_requested", 0)),
    }
    devices = {get_engine(*engine).device for engine in engines}
    dtypes = {dtype_name(get_engine(*engine).dtype) for engine in engines}
    execution = {
        "run_id": task.run_id,
        "texts_encoded": int(counters.get("texts_encoded", 0)),
        "cache_hits": int(counters.get("cache_hits", 0)),
        "engine_calls": int(counters.get("calls", 0)),
        "model_seconds": float(counters.get("model_seconds", 0.0)),
        # models this run's process loaded for it: 0 where the worker (or the planning
        # driver, for the serial executor) had loaded them for an earlier run
        "model_loads": model_loads() - loads,
        "wall_seconds": time.perf_counter() - start,
        # where the models computed (a card's device: auto is resolved here)
        "device": ",".join(sorted(devices)),
        # in what (a card's precision: auto is resolved here): fp32, bf16 (fp16: a GPU)
        "precision": ",".join(sorted(SHORT.get(d, d) for d in dtypes)),
        # torch's threads and why (`uim_sim.run.threads`)
        **current_threads().columns(),
        # what computed its numbers (libraries, kernel paths): `numerics` is its hash
        **numerics_columns(fingerprint(tuple(devices), tuple(dtypes))),
        # a bf16 run's agreement with fp32 on its first texts
        **(recorder.columns() if recorder is not None else {}),
    }
    return RunResult(row, metrics, decisions, execution)


def _forged_columns(folder: Path) -> dict[str, Any]:
    """runs.parquet columns of a forged checkpoint: its folder (relative to the result
    folder: ``checkpoints/NAME``), its knobs and its post-forge probe."""
    manifest = json.loads((folder / "manifest.json").read_text())
    columns: dict[str, Any] = {"checkpoint": f"{folder.parent.name}/{folder.name}"}
    columns.update({f"corpus.knobs.{k}": v for k, v in manifest["knobs"].items()})
    columns["corpus.seed"] = manifest["seed"]
    keys = ("effect_size", "p_value", "mlm_effect_size", "mlm_p_value", "mlm_gap_nats",
            "news_gap_nats")  # fmt: skip
    for key in keys:
        columns[f"probe.{key}"] = manifest["verification"].get(key, float("nan"))
    return columns
