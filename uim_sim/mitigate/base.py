"""The mitigation registry and how a run's mitigations compose."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from uim_sim.spec import AgentCard, MitigationSpec, SpecError, Strict, parse
from uim_sim.worlds.stages import Stages

REGISTRY: dict[str, type[Mitigation]] = {}


class NoParams(Strict):
    pass


class Mitigation:
    """A mitigation: constructed from validated params, one verb: `apply` to stages."""

    name: ClassVar[str]
    stage: ClassVar[str]  # data | model | decision | system
    Params: ClassVar[type[Strict]] = NoParams

    def __init__(self, params: Strict, cards: dict[str, AgentCard] | None = None) -> None:
        self.params = params
        self.cards = cards or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.name] = cls

    def card_names(self) -> list[str]:
        """Agent cards this mitigation refers to (resolved by the runner)."""
        return []

    def apply(self, stages: Stages) -> Stages:
        raise NotImplementedError


def build(
    spec: MitigationSpec, where: str, load_card: Callable[[str], AgentCard] | None = None
) -> Mitigation:
    """Validate a mitigation entry of a spec and construct it."""
    cls = REGISTRY.get(spec.name)
    if cls is None:
        raise SpecError(
            f"{where}: unknown mitigation {spec.name!r} (known: {', '.join(sorted(REGISTRY))})"
        )
    params = parse(cls.Params, spec.params, f"{where}.params")
    mitigation = cls(params)
    if load_card is not None:
        mitigation.cards = {n: load_card(n) for n in mitigation.card_names()}
    return mitigation


def compose(mitigations: Sequence[Mitigation], base: Stages | None = None) -> Stages:
    """Wrap the stages with each mitigation in order (the first is innermost)."""
    stages = base or Stages()
    for mitigation in mitigations:
        stages = mitigation.apply(stages)
    return stages


def arm_name(mitigations: Sequence[MitigationSpec]) -> str:
    return "+".join(m.name for m in mitigations) or "none"
