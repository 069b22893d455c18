"""The rules a world keeps, checked on the world itself (as Gymnasium's ``check_env``
checks an environment): `check_world(World)` builds it from keywords with defaults,
steps it to its end and reads what the runner, the report and the page will read.
Every broken rule is one line naming it; a world that keeps them all runs in a spec.

    >>> from uim_sim.worlds import check_world
    >>> from uim_sim.worlds.hiring import AuditStudy
    >>> check_world(AuditStudy, n_jobs=2)  # raises WorldCheckError where a rule breaks
"""

from __future__ import annotations

import inspect
from io import BytesIO
from typing import Any

import mesa
from pydantic import BaseModel

from uim_sim.cards import AgentCard
from uim_sim.schema import UimError
from uim_sim.worlds.base import ScreeningWorld, WorldInfo
from uim_sim.worlds.collect import columns
from uim_sim.worlds.stages import Stages

# what every decision table holds (the runner adds run_id), and what it holds where
# deciders carry a model (the runner renames a forged checkpoint; audits read the rest)
DECISION_COLUMNS = ("step", "subject", "group")
DECIDER_COLUMNS = ("decider", "checkpoint", "card", "score", "decision")
HOOKS = frozenset(Stages.__dataclass_fields__)
# the base world's step calls act, then audits, stops once done and collects
STEP_NOTE = {
    "act": " (what the world does in one step: ScreeningWorld.step counts the step, "
    "audits, stops once done() and collects around it)",
    "done": " (the stop rule: True once the world is done after a step)",
}


class WorldCheckError(UimError, ValueError):
    """A world breaks rules of `check_world`: one line per broken rule."""


def check_world(world: type[ScreeningWorld] | WorldInfo, max_steps: int = 1000,
                **keywords: Any) -> None:  # fmt: skip
    """Check ``world`` (a model class, or a `WorldInfo`: each of its models) the way the
    runner will use it: built from ``keywords`` (defaults for the rest; pass small
    sizes and ``cards`` for speed), stepped until ``running`` turns False (at most
    ``max_steps``), then its DataCollector, measures, decision table, null draw and
    page declarations read. Raises `WorldCheckError` listing every broken rule."""
    problems = world_problems(world, max_steps, **keywords)
    if problems:
        raise WorldCheckError("\n".join(problems))


def world_problems(world: type[ScreeningWorld] | WorldInfo, max_steps: int = 1000,
                   **keywords: Any) -> list[str]:  # fmt: skip
    """The broken rules of ``world``, one line each (empty: it keeps them all)."""
    if isinstance(world, WorldInfo):
        out = _info_problems(world)
        for mode, model in world.models.items():
            given = dict(keywords)
            if len(world.models) > 1 and "mode" in model.Params.model_fields:
                given.setdefault("mode", mode)
            out += [f"{mode}: {p}" for p in world_problems(model, max_steps, **given)]
        return out
    name = getattr(world, "__name__", repr(world))
    if not (isinstance(world, type) and issubclass(world, ScreeningWorld)):
        return [f"{name}: not a subclass of uim_sim.worlds.base.ScreeningWorld (a mesa.Model)"]
    out = [f"{name}: {p}" for p in _class_problems(world)]
    if out:
        return out  # building it would fail for the same reason
    return [f"{name}: {p}" for p in _run_problems(world, max_steps, keywords)]


def _info_problems(info: WorldInfo) -> list[str]:
    out = []
    if not info.models:
        out.append(f"{info.name}: WorldInfo.models is empty (one Mesa model per mode)")
    if info.section is None or not callable(info.section):
        out.append(f"{info.name}: WorldInfo.section: no report section (a function "
                   "section(ctx) -> uim_sim.worlds.section.Section)")  # fmt: skip
    elif len(inspect.signature(info.section).parameters) != 1:
        out.append(f"{info.name}: WorldInfo.section must take one argument (the Context)")
    return out


def _class_problems(world: type[ScreeningWorld]) -> list[str]:
    out = []
    params = getattr(world, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        return ["Params: missing (a pydantic class, uim_sim.schema.Strict, of its parameters)"]
    required = [n for n, f in params.model_fields.items() if f.is_required()]
    if required:
        out.append(f"Params: {', '.join(required)} without a default (a world builds from "
                   "keywords with defaults for everything)")  # fmt: skip
    if not isinstance(getattr(world, "default_card", None), AgentCard):
        out.append("default_card: missing (the AgentCard its deciders carry by default)")
    unknown = set(world.hooks) - HOOKS
    if unknown:
        out.append(f"hooks: {', '.join(sorted(unknown))} not a stage hook "
                   f"(known: {', '.join(sorted(HOOKS))})")  # fmt: skip
    for method in ("setup", "act", "done", "measures", "measure"):
        if getattr(world, method) is getattr(ScreeningWorld, method, None):
            out.append(f"{method}: not implemented" + STEP_NOTE.get(method, ""))
    if "audit" in world.hooks and world.audited is ScreeningWorld.audited:
        out.append("audited: not implemented (a world with the audit hook names its "
                   "deciders and the decision-table fields an audit reads)")  # fmt: skip
    return out


def _said(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _build(world, keywords, **more) -> tuple[ScreeningWorld | None, str | None]:
    try:
        return world(**{"rng": 0, "name_permutations": 0, **keywords, **more}), None
    except Exception as exc:  # noqa: BLE001 - reported as the broken rule
        return None, _said(exc)


def _run(model: ScreeningWorld, max_steps: int) -> str | None:
    """Step to the end: None, or what went wrong (one line)."""
    steps = 0
    try:
        while model.running:
            if steps >= max_steps:
                return f"running: still True after {max_steps} steps (set running = False)"
            model.step()
            steps += 1
    except Exception as exc:  # noqa: BLE001
        return f"step {steps + 1} raised {_said(exc)}"
    return None


def _run_problems(world: type[ScreeningWorld], max_steps: int, keywords: dict) -> list[str]:
    model, failed = _build(world, keywords)
    if model is None:
        return [f"building it from keywords failed: {failed}"]
    out = []
    if not isinstance(model, mesa.Model):
        out.append("not a mesa.Model")
    if not model.running:
        out.append("running: False before its first step")
    failed = _run(model, max_steps)
    if failed:
        return [*out, failed]
    out += _collected_problems(model)
    out += _decision_problems(model)
    out += _null_problems(world, model, max_steps, keywords)
    out += _page_problems(model)
    return out


def _collected_problems(model: ScreeningWorld) -> list[str]:
    out = []
    declared = dict(model.measures())
    expected = set(columns(declared)) | {"step"}
    collected = model.datacollector.model_vars
    extra = sorted(set(collected) - expected - {"audit_switches"})
    if extra:
        out.append(f"DataCollector: columns {', '.join(extra[:5])} not declared by measures()")
    if "step" not in collected:
        out.append("DataCollector: no 'step' column")
    elif list(collected["step"]) != list(range(len(collected["step"]))):
        out.append("DataCollector: not collected at step 0 and after every step "
                   f"(steps {list(collected['step'])[:6]})")  # fmt: skip
    for name, values in collected.items():
        bad = [v for v in values if not isinstance(v, int | float) or isinstance(v, bool)]
        if bad:
            out.append(f"DataCollector: column {name} holds {type(bad[0]).__name__}, not a "
                       "number (one scalar per column and step)")  # fmt: skip
            break
    try:
        measured = model.measure()
    except Exception as exc:  # noqa: BLE001
        return [*out, f"measure() raised {_said(exc)}"]
    for metric, value in measured.items():
        if metric not in declared:
            out.append(f"measure(): {metric!r} is not declared by measures()")
        elif isinstance(value, dict):
            groups = declared[metric]
            if groups is None:
                out.append(f"measure(): {metric!r} is population-level in measures() "
                           "but measured by group")  # fmt: skip
            elif set(value) - set(groups):
                out.append(f"measure(): {metric!r} has groups {sorted(set(value) - set(groups))} "
                           "not declared by measures()")  # fmt: skip
        elif not isinstance(value, int | float):
            out.append(f"measure(): {metric!r} is {type(value).__name__}, not a number or "
                       "{group: number}")  # fmt: skip
    return out


def _decision_problems(model: ScreeningWorld) -> list[str]:
    table = model.decision_table()
    if table.empty:
        return ["decision table: empty after the last step (decision_table() has a row "
                "per decision)"]  # fmt: skip
    need = list(DECISION_COLUMNS) + (list(DECIDER_COLUMNS) if model._built_screeners else [])
    missing = [c for c in need if c not in table.columns]
    out = []
    if missing:
        out.append(f"decision table: missing column(s) {', '.join(missing)}")
    try:
        table.to_parquet(BytesIO(), index=False)
    except Exception as exc:  # noqa: BLE001 - what the store would meet
        out.append(f"decision table: cannot be written as Parquet ({type(exc).__name__})")
    return out


def _null_problems(world, model: ScreeningWorld, max_steps: int, keywords: dict) -> list[str]:
    declared = dict(model.measures())
    unknown = [m for m in model.null_metrics if m not in declared]
    if unknown:
        return [f"null_metrics: {', '.join(unknown)} not declared by measures()"]
    if not model.null_metrics:
        return []
    null, failed = _build(world, keywords, null_draw=0)
    if null is None:
        return [f"null draw: building it failed: {failed}"]
    failed = _run(null, max_steps)
    if failed:
        return [f"null draw: {failed}"]
    kept = set(null.metrics()["metric"])
    if not kept:
        return ["null draw: no metric measured (measure_null() returns the null_metrics)"]
    if kept - set(model.null_metrics):
        return [f"null draw: measured {sorted(kept - set(model.null_metrics))[:3]}, beyond "
                "null_metrics"]  # fmt: skip
    return []


def _page_problems(model: ScreeningWorld) -> list[str]:
    declared = dict(model.measures())
    out = [f"watch: plot of {plot.metric!r}, not declared by measures()"
           for plot in model.watch if plot.metric not in declared]  # fmt: skip
    try:
        model.view()
    except Exception as exc:  # noqa: BLE001
        out.append(f"view() raised {_said(exc)}")
    return out
