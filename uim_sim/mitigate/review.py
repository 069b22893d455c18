"""System stage: human review of automated removals, with a capacity."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Probability, Strict
from uim_sim.worlds.stages import Stages


class ReviewParams(Strict):
    capacity: Annotated[int, Field(ge=0, le=10_000_000)] = 50  # removals a reviewer checks per step
    order: Literal["random", "uncertain"] = "random"
    accuracy: Probability = 1.0  # chance the reviewer judges a post correctly


class HumanReview(Mitigation):
    """A human checks up to ``capacity`` removals per step before they take effect and
    restores those they judge benign (a human-in-the-loop "review before removal").
    ``order: random`` samples the removals to check; ``uncertain`` checks the lowest
    scores first, those nearest the removal threshold. Unlike appeals, nobody has to
    complain: the silenced user never sees the removal. Capacity is the cost.
    """

    name = "human_review"
    stage = "system"
    hook = "review"
    summary = "a human checks up to `capacity` removals per step and restores the benign ones"
    Params = ReviewParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.review
        p = self.params

        def review(scores, selected, truth, rng):
            overturned = np.asarray(inner(scores, selected, truth, rng), dtype=bool)
            candidates = np.flatnonzero(np.asarray(selected, dtype=bool) & ~overturned)
            if p.order == "random":
                checked = rng.permutation(candidates)[: p.capacity]
            else:
                checked = candidates[np.argsort(np.asarray(scores)[candidates], kind="stable")]
                checked = checked[: p.capacity]
            correct = rng.random(len(checked)) < p.accuracy
            benign = np.asarray(truth)[checked] == 0
            overturned[checked[benign == correct]] = True
            return overturned

        return replace(stages, review=review)
