"""The page's Watch tab without the page: what can be picked (worlds, cards,
mitigations, parameters with their bounds), and two arms of one world built the way a
batch builds a run (a spec, planned and validated, then ``Model(**params)``) on the
same seed, stepped together.

Each arm is a one-run spec written to the page's scratch folder and planned with
`uim_sim.run.plan`: every check a batch makes (cards, checkpoints, mitigations that
cannot act on a world) gives the same one-line error here. Arms share the seed, so
their populations and histories are the same (common random numbers): a difference
between them is the mitigation's (or the card's).
"""

from __future__ import annotations

import threading
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
import pandas as pd
import yaml

from uim_sim.cards import card_folders, load_card
from uim_sim.identity import label
from uim_sim.mitigate import REGISTRY
from uim_sim.mitigate.base import arm_name
from uim_sim.run.execute import make_world
from uim_sim.run.plan import plan
from uim_sim.schema import SpecError, meaningless_rows
from uim_sim.spec import MitigationSpec
from uim_sim.worlds import WORLDS, world_info
from uim_sim.worlds.base import ScreeningWorld
from uim_sim.worlds.collect import split_column
from uim_sim.worlds.watch import Plot

# one model computation at a time in this process: the engine's cache and counters are
# shared by every tab, and two cores gain nothing from two forward passes at once
MODEL_LOCK = threading.Lock()


@dataclass(frozen=True)
class Knob:
    """A world parameter the page offers: a slider (``int``/``float``, with the
    schema's bounds), a choice or a switch."""

    name: str
    kind: Literal["int", "float", "choice", "bool"]
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()


def meaningless(world: str, mode: str | None, params: dict[str, Any]) -> set[str]:
    """The fields the design of ``params`` (the others at their defaults) makes
    meaningless (the Params' `Meaningless` table): e.g. ``clustering`` on a block model."""
    model = world_info(world).model(mode).Params
    values = {name: f.default for name, f in model.model_fields.items()} | params
    return {f for row in meaningless_rows(model) if row.holds_in(values) for f in row.fields}


def knobs(world: str, mode: str | None = None, params: dict[str, Any] | None = None
          ) -> list[Knob]:  # fmt: skip
    """The parameters of a world's model that a slider, a choice or a switch can set,
    with bounds from its Params schema; with ``params``, not those its design makes
    meaningless. Files, tables and lists stay at their defaults (set them in a spec)."""
    out = []
    hidden = meaningless(world, mode, params) if params is not None else set()
    for name, field in world_info(world).model(mode).Params.model_fields.items():
        kind, choices = _kind(field.annotation)
        if kind is None or name == "mode" or name in hidden:
            continue
        low = high = None
        for rule in field.metadata:
            if isinstance(rule, at.Ge | at.Gt):
                low = float(getattr(rule, "ge", getattr(rule, "gt", None)))
            if isinstance(rule, at.Le | at.Lt):
                high = float(getattr(rule, "le", getattr(rule, "lt", None)))
        if kind in ("int", "float") and (low is None or high is None):
            continue
        out.append(Knob(name, kind, field.default, low, high, choices))
    return out


def _kind(annotation: Any) -> tuple[str | None, tuple]:
    if annotation is bool:
        return "bool", ()
    if annotation in (int, float):
        return annotation.__name__, ()
    if typing.get_origin(annotation) is Literal:
        return "choice", typing.get_args(annotation)
    return None, ()


def modes(world: str) -> list[str]:
    return list(world_info(world).models)


def mitigations(world: str, mode: str | None = None) -> list[str]:
    """Mitigations whose hook the world's model calls (the others are refused)."""
    hooks = world_info(world).model(mode).hooks
    return sorted(name for name, cls in REGISTRY.items() if cls.hook in hooks)


def default_card(world: str, mode: str | None = None) -> str:
    return world_info(world).model(mode).default_card.name


def cards(scratch: Path, agents_dir: Path | None = None) -> list[str]:
    """Agent cards a watched arm can carry: every card in the agents folders (``--agents-dir``,
    ``agents/`` here) that loads and needs no forging, and each world's default card."""
    names = {}
    for folder in [*card_folders(None, agents_dir), Path(scratch) / "agents"]:
        for path in sorted(Path(folder).glob("*.yaml")) if Path(folder).is_dir() else []:
            try:
                if not load_card(path).forged:
                    names.setdefault(path.stem, None)
            except SpecError:
                continue
    return sorted(names)


def write_default_cards(scratch: Path) -> None:
    """Each world's default cards as YAML files, so a spec can name them."""
    folder = Path(scratch) / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    for world in WORLDS:
        for model in world_info(world).models.values():
            card = model.default_card
            path = folder / f"{card.name}.yaml"
            if not path.exists():
                path.write_text(yaml.safe_dump(card.model_dump(mode="json", exclude_none=True)))


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: the card its deciders carry and the mitigations
    applied (in order, the first innermost)."""

    card: str
    mitigations: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return label(self.card, arm_name([MitigationSpec(name=m) for m in self.mitigations]))


def build(
    world: str,
    mode: str | None,
    params: dict[str, Any],
    arm: Arm,
    seed: int,
    scratch: Path,
    agents_dir: Path | None = None,
) -> ScreeningWorld:
    """The arm's Mesa model, planned from a one-run spec (raises `SpecError`). Only
    the parameters moved from their defaults are given, less those the design makes
    meaningless (`meaningless`: a knob set before the design changed, or a slider
    snapped to its step while hidden), which a spec would be refused for."""
    fields = world_info(world).model(mode).Params.model_fields
    hidden = meaningless(world, mode, params)
    params = {k: v for k, v in params.items()
              if k not in hidden and (k not in fields or v != fields[k].default)}  # fmt: skip
    spec = {
        "name": "page",
        "world": world,
        "seed": int(seed),
        "replicates": 1,
        "cards": [arm.card],
        "arms": [list(arm.mitigations)],
        "params": {**params, **({"mode": mode} if mode else {})},
        "statistics": {"null_permutations": 0, "name_permutations": 0},
    }
    # planned in memory: its cards are found as for a spec in SCRATCH/specs (the page's
    # own cards in SCRATCH/agents), and a refusal names the field alone
    task = plan(spec, agents_dir, folder=Path(scratch) / "specs").tasks[0]
    if task.corpus is not None:
        raise SpecError(f"cards: {arm.card} is forged; run it with `uim-sim run` first")
    with MODEL_LOCK:
        return make_world(task)


def one_line(exc: BaseException) -> str:
    """What the page shows of a failure: one line, never a traceback."""
    text = str(exc) if isinstance(exc, ValueError | OSError) else f"{type(exc).__name__}: {exc}"
    return (text.strip().splitlines() or [type(exc).__name__])[0]


class Watch:
    """Two arms of one world, built on the same seed and stepped together."""

    def __init__(self, world: str, mode: str | None, params: dict[str, Any],
                 arms: list[Arm], seed: int, scratch: Path,
                 agents_dir: Path | None = None) -> None:  # fmt: skip
        self.world, self.mode, self.seed = world, mode, seed
        self.arms = arms
        self.models = [build(world, mode, params, a, seed, scratch, agents_dir) for a in arms]
        self.plots: tuple[Plot, ...] = self.models[0].watch  # a world may add its own

    @property
    def running(self) -> bool:
        return any(m.running for m in self.models)

    @property
    def step_count(self) -> int:
        return max(m.round for m in self.models)

    def step(self) -> None:
        """One step of every arm still running."""
        with MODEL_LOCK:
            for model in self.models:
                if model.running:
                    model.step()

    @property
    def labels(self) -> list[str]:
        """One label per arm, unique (``A: ...``, ``B: ...``)."""
        return [f"{chr(65 + i)}: {arm.label}" for i, arm in enumerate(self.arms)]

    def series(self, plot: Plot) -> pd.DataFrame:
        """The plot's metric per step, arm and group (step, arm, group, value)."""
        frames = []
        for name, model in zip(self.labels, self.models):
            frames.append(series(model, plot).assign(arm=name))
        return pd.concat(frames, ignore_index=True)


def series(model: ScreeningWorld, plot: Plot) -> pd.DataFrame:
    """A plot's metric per step and group, as collected so far (NaN rows dropped)."""
    data = model.datacollector.model_vars
    rows = []
    for name, values in data.items():
        metric, group = split_column(name)
        if metric != plot.metric or (plot.groups is not None and group not in plot.groups):
            continue
        rows += [{"step": s, "group": group or "all", "value": v}
                 for s, v in zip(data["step"], values) if v == v]  # fmt: skip
    return pd.DataFrame(rows, columns=["step", "group", "value"])


class Collected:
    """A world's DataCollector as it stood between two steps (taken under `MODEL_LOCK`),
    for Mesa's plot components, which read ``model.datacollector`` as they draw: read
    live while the next step collects, its columns can differ in length (pandas refused,
    and the page lost its buttons to the traceback)."""

    def __init__(self, model: ScreeningWorld) -> None:
        self.model_vars = {k: list(v) for k, v in model.datacollector.model_vars.items()}
        self.round, self.running = model.round, model.running
        self.datacollector = self  # Mesa reads model.datacollector.get_model_vars_dataframe()

    def get_model_vars_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.model_vars)


def columns(model: ScreeningWorld | Collected, plot: Plot) -> list[str]:
    """The DataCollector columns a plot draws (Mesa's plot components take these)."""
    return [name for name in model.datacollector.model_vars if name != "step"
            and split_column(name)[0] == plot.metric
            and (plot.groups is None or split_column(name)[1] in plot.groups)]  # fmt: skip
