"""Scenario specs: a world, agent cards, mitigation arms, a parameter grid, seeds.

``params`` are validated by the Params class of the named world, found through the
world registry (`uim_sim.worlds`): adding a world never edits this file.
`load_spec` turns any problem into a one-line `SpecError` naming the field.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from uim_sim import builtin
from uim_sim.schema import (
    Name,
    SpecError,
    Strict,
    format_error,
    parse,
    read_yaml,
)
from uim_sim.worlds import WORLDS, world_info

CORPUS_PREFIX = "corpus."  # grid keys that override the corpus cards of forged checkpoints
CARD_PREFIX = "card."  # attribution keys that override the agent card (e.g. card.head.history_bias)
STAGE_PREFIX = "clean."  # the attribution's grid flags: which stages run clean
NOT_WORLD = (CORPUS_PREFIX, CARD_PREFIX, STAGE_PREFIX)


class MitigationSpec(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def mitigation_entries(value: Any) -> Any:
    """A list of mitigations as written in YAML (a name, or a mapping with params) as
    mappings; anything else as it is (for the validator to refuse)."""
    if not isinstance(value, list):
        return value
    return [{"name": m} if isinstance(m, str) else m for m in value]


class ArmSpec(Strict):
    """One mitigation arm: the mitigations applied together, in order (the first is
    innermost), and the agent cards it runs with (default: every card of the spec).
    In YAML an arm is a list (``[name_redaction]``) or a mapping
    (``{apply: [inlp], cards: [minilm_biased_history]}``)."""

    apply: list[MitigationSpec] = Field(default_factory=list)
    cards: list[str] | None = None

    @field_validator("apply", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return mitigation_entries(value)


class StatisticsSpec(Strict):
    """How much null-reference and permutation work each run does."""

    null_permutations: Annotated[int, Field(ge=0, le=1000)] = 8
    name_permutations: Annotated[int, Field(ge=0, le=100_000)] = 2000


class AttributionSpec(Strict):
    """Where does the harm come from? Each stage names the overrides that make it
    clean: ``corpus.*`` keys (the pre-training corpus of a forged checkpoint),
    ``card.*`` keys (the agent card, e.g. ``card.head.history_bias: 0``: fair
    adaptation labels) or world parameters (e.g. the world's feedback). The runs are
    every combination of stages clean or as specified (2^stages per grid point), on the
    same seeds, and the report splits the harm over the stages (Shapley values). A key
    may also have one grid value: the stage as specified (e.g. ``grid:
    {corpus.knobs.association_skew: [0.9]}`` with a clean pre-training stage at 0)."""

    stages: Annotated[dict[Name, dict[str, Any]], Field(min_length=1, max_length=5)]

    @field_validator("stages")
    @classmethod
    def _overrides(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for stage, overrides in value.items():
            if not overrides:
                raise ValueError(f"{stage}: name at least one override that makes it clean")
        keys = [k for o in value.values() for k in o]
        if len(set(keys)) < len(keys):
            raise ValueError("two stages override the same key")
        return value


class ScenarioSpec(Strict):
    """A scenario: a world, agent cards, mitigation arms, a parameter grid, seeds.

    The runs are the product cards × arms × grid values × replicates;
    ``params`` are the world's parameters, and a grid value overrides them.
    ``device`` (auto, cpu or cuda), where set, is every agent card's device in this
    spec (docs/models.md), whatever the cards say; so is ``precision`` (fp32, bf16 or
    auto) every card's precision.
    """

    name: Name
    description: str = ""
    world: str
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    replicates: Annotated[int, Field(ge=1, le=10_000)] = 3
    cards: Annotated[list[str], Field(min_length=1)]
    device: Literal["auto", "cpu", "cuda"] | None = None
    precision: Literal["fp32", "bf16", "auto"] | None = None
    arms: list[ArmSpec] = Field(default_factory=lambda: [ArmSpec()])
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    statistics: StatisticsSpec = StatisticsSpec()
    attribution: AttributionSpec | None = None

    @field_validator("world")
    @classmethod
    def _known_world(cls, value: str) -> str:
        if value not in WORLDS:
            raise ValueError(f"unknown world {value!r} (known: {', '.join(WORLDS)})")
        return value

    @field_validator("arms", mode="before")
    @classmethod
    def _arm_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [{"apply": arm} if isinstance(arm, list) else arm for arm in value]

    @model_validator(mode="after")
    def _arm_cards(self) -> ScenarioSpec:
        for i, arm in enumerate(self.arms):
            unknown = [a for a in arm.cards or [] if a not in self.cards]
            if unknown:
                raise ValueError(f"arms.{i}.cards: {unknown} not among the spec's cards")
        return self

    @model_validator(mode="after")
    def _grid_keys(self) -> ScenarioSpec:
        known = world_info(self.world).parameter_names()
        unknown = {k for k in self.grid if not k.startswith(CORPUS_PREFIX)} - known
        if unknown:
            raise ValueError(f"grid: unknown {self.world} parameter(s) {sorted(unknown)}")
        for stage, overrides in (self.attribution.stages if self.attribution else {}).items():
            wrong = {k for k in overrides if not k.startswith(NOT_WORLD[:2])} - known
            if wrong:
                raise ValueError(
                    f"attribution.stages.{stage}: {sorted(wrong)} are neither corpus.*, card.* "
                    f"nor {self.world} parameters"
                )
            clash = [k for k in overrides if len(self.grid.get(k, [None])) > 1]
            if clash:
                raise ValueError(
                    f"attribution.stages.{stage}: {clash} vary in the grid; give them one "
                    "grid value (the stage as specified) or none"
                )
        return self

    def attribution_combos(self) -> list[dict[str, Any]]:
        """Every combination of stages clean or not: the flags (``clean.STAGE``) and the
        overrides of the clean ones; one combination without attribution."""
        if self.attribution is None:
            return [{}]
        stages = list(self.attribution.stages)
        combos = []
        for flags in itertools.product([False, True], repeat=len(stages)):
            combo: dict[str, Any] = {f"{STAGE_PREFIX}{s}": f for s, f in zip(stages, flags)}
            for stage, clean in zip(stages, flags):
                if clean:
                    combo.update(self.attribution.stages[stage])
            combos.append(combo)
        return combos

    def world_params(self, overrides: dict[str, Any] | None = None) -> Strict:
        """The world's parameters with grid overrides (``corpus.*`` keys are not the world's)."""
        mine = {k: v for k, v in (overrides or {}).items() if not k.startswith(NOT_WORLD)}
        return world_info(self.world).params({**self.params, **mine})


def load_spec(path: Path) -> ScenarioSpec:
    """Load and validate a scenario, its world parameters and every grid value."""
    path = Path(path)
    return load_spec_data(read_yaml(path), f"{builtin.shown(path)}: ")


RENAMED = {"agents": "cards", "mitigations": "arms"}  # spec keys renamed: old → new


def renamed(data: Any, where: str = "") -> Any:
    """A spec in today's keys: an old key (``agents:``, ``mitigations:``, an arm's
    ``agents:``) is read as its new name with a one-line `FutureWarning`; both at once
    is an error."""
    data = _renamed(data, RENAMED, where)
    if isinstance(data, dict) and isinstance(data.get("arms"), list):
        data["arms"] = [_renamed(arm, {"agents": "cards"}, f"{where}arms.{i}.")
                        for i, arm in enumerate(data["arms"])]  # fmt: skip
    return data


def _renamed(data: Any, names: dict[str, str], where: str) -> Any:
    if not isinstance(data, dict) or not names.keys() & data.keys():
        return data
    data = dict(data)
    for old, new in names.items():
        if old in data:
            if new in data:
                raise SpecError(f"{where}{old}: renamed {new}; give {new} only")
            data[new] = data.pop(old)
            warnings.warn(f"{where}{old}: is now called {new} (the old name still works)",
                          FutureWarning, stacklevel=3)  # fmt: skip
    return data


def load_spec_data(data: dict[str, Any], where: str = "") -> ScenarioSpec:
    """Validate a scenario given as data (what a spec file holds); messages start with
    ``where`` (a file's ``PATH: ``, or nothing)."""
    spec = parse(ScenarioSpec, renamed(data, where), where.removesuffix(": "))
    _check_params(spec, {}, f"{where}params.")
    for key, values in spec.grid.items():
        if key.startswith(CORPUS_PREFIX):
            continue  # checked against the corpus cards by the plan
        for value in values:
            _check_params(spec, {key: value}, f"{where}grid.{key}={value!r}: ")
    for stage, overrides in (spec.attribution.stages if spec.attribution else {}).items():
        world = {k: v for k, v in overrides.items() if not k.startswith(NOT_WORLD)}
        _check_params(spec, world, f"{where}attribution.stages.{stage}: ")
    return spec


def _check_params(spec: ScenarioSpec, overrides: dict[str, Any], prefix: str) -> None:
    try:
        spec.world_params(overrides)
    except ValidationError as err:
        raise SpecError(format_error(err, prefix)) from None
    except ValueError as err:  # e.g. a mode the world does not have
        raise SpecError(f"{prefix}{err}") from None


class SuiteSpec(Strict):
    """Several scenarios run and reported together, e.g. one per world: ``suite``
    lists spec files (relative to the suite's own file); each runs into its own
    sub-folder of the result folder, named after the spec."""

    name: Name
    description: str = ""
    suite: Annotated[list[Path], Field(min_length=1)]


def is_suite(path: Path) -> bool:
    """Is the YAML file at ``path`` a suite of specs (a top-level ``suite`` key)?"""
    return "suite" in read_yaml(Path(path))


def load_suite(path: Path) -> list[tuple[str, Path]]:
    """The (name, spec file) of each member of a suite, every member a valid spec."""
    path = Path(path)
    suite = parse(SuiteSpec, read_yaml(path), str(path))
    members = []
    for i, member in enumerate(suite.suite):
        file = member if member.is_absolute() else path.parent / member
        if not file.is_file():
            raise SpecError(f"{path}: suite.{i}: {member}: no such file")
        if is_suite(file):
            raise SpecError(f"{path}: suite.{i}: {member} is itself a suite; list specs")
        members.append((load_spec(file).name, file))
    names = [n for n, _ in members]
    if len(set(names)) < len(names):
        raise SpecError(f"{path}: suite: two members share a spec name {names}")
    return members
