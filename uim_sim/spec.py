"""Scenario specs: a world, agent cards, mitigation arms, a parameter grid, seeds.

``params`` are validated by the Params class of the named world, found through the
world registry (`uim_sim.worlds`): adding a world never edits this file.
`load_spec` turns any problem into a one-line `SpecError` naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

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


class MitigationSpec(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _mitigation_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class ArmSpec(Strict):
    """One mitigation arm: the mitigations applied together, in order (the first is
    innermost), and the agent cards it runs with (default: every card of the spec).
    In YAML an arm is a list (``[name_redaction]``) or a mapping
    (``{apply: [inlp], agents: [minilm_biased_history]}``)."""

    apply: list[MitigationSpec] = Field(default_factory=list)
    agents: list[str] | None = None

    @field_validator("apply", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return [_mitigation_entry(m) for m in value] if isinstance(value, list) else value


class StatisticsSpec(Strict):
    """How much null-reference and permutation work each run does."""

    null_permutations: Annotated[int, Field(ge=0, le=1000)] = 8
    name_permutations: Annotated[int, Field(ge=0, le=100_000)] = 2000


class ScenarioSpec(Strict):
    """A scenario: a world, agent cards, mitigation arms, a parameter grid, seeds.

    The runs are the product agents × mitigations × grid values × replicates;
    ``params`` are the world's parameters, and a grid value overrides them.
    """

    name: Name
    description: str = ""
    world: str
    seed: Annotated[int, Field(ge=0)] = 0
    replicates: Annotated[int, Field(ge=1, le=10_000)] = 3
    agents: Annotated[list[str], Field(min_length=1)]
    mitigations: list[ArmSpec] = Field(default_factory=lambda: [ArmSpec()])
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    statistics: StatisticsSpec = StatisticsSpec()

    @field_validator("world")
    @classmethod
    def _known_world(cls, value: str) -> str:
        if value not in WORLDS:
            raise ValueError(f"unknown world {value!r} (known: {', '.join(WORLDS)})")
        return value

    @field_validator("mitigations", mode="before")
    @classmethod
    def _arm_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [{"apply": arm} if isinstance(arm, list) else arm for arm in value]

    @model_validator(mode="after")
    def _arm_agents(self) -> ScenarioSpec:
        for i, arm in enumerate(self.mitigations):
            unknown = [a for a in arm.agents or [] if a not in self.agents]
            if unknown:
                raise ValueError(f"mitigations.{i}.agents: {unknown} not among the spec's agents")
        return self

    @model_validator(mode="after")
    def _grid_keys(self) -> ScenarioSpec:
        known = world_info(self.world).parameter_names()
        unknown = {k for k in self.grid if not k.startswith(CORPUS_PREFIX)} - known
        if unknown:
            raise ValueError(f"grid: unknown {self.world} parameter(s) {sorted(unknown)}")
        return self

    def world_params(self, overrides: dict[str, Any] | None = None) -> Strict:
        """The world's parameters with grid overrides (``corpus.*`` keys are not the world's)."""
        mine = {k: v for k, v in (overrides or {}).items() if not k.startswith(CORPUS_PREFIX)}
        return world_info(self.world).params({**self.params, **mine})


def load_spec(path: Path) -> ScenarioSpec:
    """Load and validate a scenario, its world parameters and every grid value."""
    path = Path(path)
    spec = parse(ScenarioSpec, read_yaml(path), str(path))
    _check_params(spec, {}, f"{path}: params.")
    for key, values in spec.grid.items():
        if key.startswith(CORPUS_PREFIX):
            continue  # checked against the corpus cards by the plan
        for value in values:
            _check_params(spec, {key: value}, f"{path}: grid.{key}={value!r}: ")
    return spec


def _check_params(spec: ScenarioSpec, overrides: dict[str, Any], prefix: str) -> None:
    try:
        spec.world_params(overrides)
    except ValidationError as err:
        raise SpecError(format_error(err, prefix)) from None
    except ValueError as err:  # e.g. a mode the world does not have
        raise SpecError(f"{prefix}{err}") from None
