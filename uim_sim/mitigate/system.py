"""System stage: model diversity instead of one shared model (monoculture)."""

from __future__ import annotations

from dataclasses import replace

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Strict
from uim_sim.worlds.stages import Stages


class DiversityParams(Strict):
    pool: list[str] = []
    independent_data: bool = True


class ModelDiversity(Mitigation):
    """Deciders draw their model from a pool instead of sharing one.

    Bommasani et al. (2022): when every decision maker carries the same model, the
    same people are rejected everywhere. Here decider ``i`` carries card
    ``pool[i % len(pool)]`` (the run's own card when the pool is empty), and with
    ``independent_data`` each decider adapts its head on its own draw of the
    historical decisions, so errors are no longer shared.
    """

    name = "model_diversity"
    stage = "system"
    hook = "assign"
    summary = "deciders carry cards from a pool, each adapted on its own draw of the history"
    Params = DiversityParams

    def card_names(self) -> list[str]:
        return list(self.params.pool)

    def apply(self, stages: Stages) -> Stages:
        pool_cards = [self.cards[n] for n in self.params.pool]
        independent = self.params.independent_data

        def assign(cards, n_deciders, rng):
            pool = pool_cards or list(cards)
            return [(pool[i % len(pool)], i + 1 if independent else 0) for i in range(n_deciders)]

        return replace(stages, assign=assign)
