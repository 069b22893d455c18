"""The mitigation registry, how a run's mitigations compose, and when one is refused.

A mitigation is a small class per method (scikit-learn style: constructed from its
validated params, one verb, `apply`), registered by subclassing. It wraps one stage
hook a world exposes (`uim_sim.worlds.stages.Stages`, Gymnasium-style wrapping);
worlds never know which mitigations exist. A mitigation that cannot act on a world
or a card (its hook is never called there; it transforms adaptation data a card's
head never learns from) is refused at plan time with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from uim_sim.cards import AgentCard
from uim_sim.schema import SpecError, Strict, parse
from uim_sim.spec import MitigationSpec
from uim_sim.worlds.base import WorldInfo
from uim_sim.worlds.stages import Stages

REGISTRY: dict[str, type[Mitigation]] = {}


class NoParams(Strict):
    pass


class Mitigation:
    """A mitigation: constructed from validated params, one verb: `apply` to stages.

    Class attributes: ``name`` (the spec's name), ``stage`` (data | model | decision
    | system), ``hook`` (the `Stages` hook it wraps), ``trains`` (it acts on the data
    or embeddings a head is fitted on: nothing to do for untrained heads),
    ``needs`` (what the world must offer, e.g. a benign supplement), ``summary`` (one
    line for `uim-sim list`), ``note`` (what the report says of results under it,
    e.g. that parity holds by construction) and ``ill_conditioned`` (a measured note
    where its result moves far with the last bits of its inputs: on another machine
    its scores differ by more than `uim_sim.lfm.numerics.SCORE_TOLERANCE`, and results
    under it agree across machines in distribution only; empty where they do not).
    """

    name: ClassVar[str]
    stage: ClassVar[str]
    hook: ClassVar[str]
    trains: ClassVar[bool] = False
    needs: ClassVar[str | None] = None
    summary: ClassVar[str] = ""
    note: ClassVar[str] = ""
    ill_conditioned: ClassVar[str] = ""
    Params: ClassVar[type[Strict]] = NoParams

    def __init__(self, params: Strict, cards: dict[str, AgentCard] | None = None) -> None:
        self.params = params
        self.cards = cards or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.name] = cls

    @classmethod
    def card_names(cls, params: Strict) -> list[str]:
        """Agent cards a mitigation with ``params`` refers to (`build` resolves them)."""
        return []

    def refusal(self, world: WorldInfo, card: AgentCard) -> str | None:
        """Why this mitigation cannot act on ``card`` in ``world`` (None: it can)."""
        if self.hook not in world.hooks:
            return (
                f"{self.name} wraps the {self.hook} hook ({self.stage} stage), which the "
                f"{world.name} world never calls"
            )
        if self.needs and not all(getattr(m, self.needs, False) for m in world.models.values()):
            return f"{self.name} needs a {self.needs} the {world.name} world does not provide"
        if self.trains and not card.head.trained:
            return (
                f"{self.name} acts on adaptation data, and card {card.name}'s "
                f"{card.head.kind} head is not trained on any"
            )
        return None

    def apply(self, stages: Stages) -> Stages:
        raise NotImplementedError


def build(
    spec: MitigationSpec,
    where: str,
    cards: Callable[[str], AgentCard] | Mapping[str, AgentCard] | None = None,
) -> Mitigation:
    """Validate a mitigation entry of a spec and construct it with the agent cards it
    refers to (``cards``: a loader by name, or the cards by name)."""
    cls = REGISTRY.get(spec.name)
    if cls is None:
        raise SpecError(
            f"{where}: unknown mitigation {spec.name!r} (known: {', '.join(sorted(REGISTRY))})"
        )
    params = parse(cls.Params, spec.params, f"{where}.params")
    if cards is None:
        return cls(params)
    load = cards.__getitem__ if isinstance(cards, Mapping) else cards
    return cls(params, {n: load(n) for n in cls.card_names(params)})


def compose(mitigations: Sequence[Mitigation], base: Stages | None = None) -> Stages:
    """Wrap the stages with each mitigation in order (the first is innermost)."""
    stages = base or Stages()
    for mitigation in mitigations:
        stages = mitigation.apply(stages)
    return stages


def arm_name(mitigations: Sequence[MitigationSpec]) -> str:
    return "+".join(m.name for m in mitigations) or "none"
