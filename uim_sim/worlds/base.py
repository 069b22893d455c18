"""What every world whose deciders carry screeners shares: set-up and read-outs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import mesa
import numpy as np
import pandas as pd

from uim_sim.spec import AgentCard, StatisticsSpec, Strict
from uim_sim.worlds.screening import Screener
from uim_sim.worlds.stages import Stages, TrainingSet
from uim_sim.worlds.tidy import tidy


class ScreeningWorld(mesa.Model):
    """A `mesa.Model` whose deciders carry screeners built from agent cards.

    Randomness: one seed per run; population, decisions and statistics draw from
    independent child streams, so two arms of an experiment with the same seed see
    the same population (common random numbers). Subclasses set ``Params``,
    ``default_card`` and ``null_metrics``, and implement ``setup``, ``training_data``,
    ``default_steps`` and ``step``.
    """

    Params: ClassVar[type[Strict]]
    default_card: ClassVar[AgentCard]
    null_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        params: Strict | None = None,
        cards: AgentCard | Sequence[AgentCard] | None = None,
        stages: Stages | None = None,
        seed: int = 0,
        null_draw: int | None = None,
        statistics: StatisticsSpec | None = None,
    ) -> None:
        super().__init__(rng=seed)
        self.params = params or self.Params()
        self.cards = [cards] if isinstance(cards, AgentCard) else list(cards or [self.default_card])
        self.stages = stages or Stages()
        self.seed = seed
        self.null_draw = null_draw
        self.permutations = (statistics or StatisticsSpec()).name_permutations
        self.round = 0
        self.decisions: list[dict] = []
        self._step_start = 0
        population, decisions, statistics_seed = np.random.SeedSequence([seed, 0]).spawn(3)
        self.population_rng = np.random.default_rng(population)
        self.decision_rng = np.random.default_rng(decisions)
        self.statistics_rng = np.random.default_rng(statistics_seed)
        self.setup()

    def setup(self) -> None:
        """Build the world's population and deciders (called at the end of ``__init__``)."""
        raise NotImplementedError

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        raise NotImplementedError

    def default_steps(self) -> int:
        raise NotImplementedError

    def _screeners(self, n_deciders: int) -> list[Screener]:
        """One screener per (card, training draw): deciders sharing both share a model."""
        assigned = self.stages.assign(self.cards, n_deciders, self.population_rng)
        built: dict[tuple[str, int], Screener] = {}
        for card, draw in assigned:
            if (card.fingerprint(), draw) not in built:
                screener = Screener.from_card(card)
                if screener.trainable:
                    rng = np.random.default_rng([self.seed, 5, draw])
                    screener.train(self.training_data(card, draw), self.stages, rng)
                built[(card.fingerprint(), draw)] = screener
        return [built[(card.fingerprint(), draw)] for card, draw in assigned]

    def run_for(self, n: int | None = None):
        """Step ``n`` times (default: the world's own run length); stops when done."""
        for _ in range(n if n is not None else self.default_steps()):
            if not self.running:
                break
            self.step()
        return self

    def decision_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.decisions)

    def metrics(self) -> pd.DataFrame:
        """The DataCollector's model variables as a tidy table: step, metric, group, value."""
        return tidy(self.datacollector.model_vars)
