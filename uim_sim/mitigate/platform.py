"""System- and decision-stage interventions of a platform where items spread: fact-check
labels, sharing friction, source-diverse feeds (the spread world calls their hooks)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import numpy as np
from pydantic import Field

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Probability, Strict
from uim_sim.worlds.stages import Stages


class FactCheckParams(Strict):
    coverage: Probability = 0.5  # share of false items a fact-checker gets to
    delay: Annotated[int, Field(ge=0, le=10_000)] = 2  # steps after posting before the label
    accuracy: Probability = 1.0  # chance a checked item is judged correctly


class FactCheck(Mitigation):
    """Fact-checkers label false items after ``delay`` steps, reaching ``coverage`` of
    them; a labelled item is demoted from then on. With ``accuracy`` below 1 some true
    items are labelled too. The delayed, partial coverage of third-party fact-checking
    (e.g. Twitter/X Birdwatch, Facebook's fact-check labels) is the point: labels come
    after much of a cascade has happened."""

    name = "fact_check"
    stage = "system"
    hook = "label"
    summary = "labels false items after a delay, with a coverage; labelled items are demoted"
    Params = FactCheckParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.label
        p = self.params

        def label(truth, age, rng):
            labelled = np.asarray(inner(truth, age, rng), dtype=bool)
            due = np.asarray(age) == p.delay  # each item is checked once, when due
            checked = due & (rng.random(len(truth)) < p.coverage)
            correct = rng.random(len(truth)) < p.accuracy
            judged_false = np.where(correct, np.asarray(truth) == 0, np.asarray(truth) == 1)
            return labelled | (checked & judged_false)

        return replace(stages, label=label)


class FrictionParams(Strict):
    strength: Probability = 0.5  # how much a prompt lowers the chance to share


class ShareFriction(Mitigation):
    """Before sharing a flagged (labelled or demoted) item, users see a prompt ("this
    item is disputed; share anyway?") that lowers their probability to share it by
    ``strength``: the accuracy-prompt and friction interventions of Pennycook et al.
    (2021)."""

    name = "share_friction"
    stage = "system"
    hook = "share"
    summary = "a prompt before sharing a flagged item lowers the chance it is shared"
    Params = FrictionParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.share
        strength = self.params.strength

        def share(probability, flagged):
            probability = inner(probability, flagged)
            return np.where(np.asarray(flagged), probability * (1 - strength), probability)

        return replace(stages, share=share)


class SourceDiverse(Mitigation):
    """Each feed draws from every community of origin: items of one community may take
    at most an equal share of a feed's slots (rounded up) before the others had their
    turn, so a ranker that scores one community's style low cannot crowd it out of a
    feed (source-diverse ranking)."""

    name = "source_diverse"
    stage = "decision"
    hook = "feed_quota"
    summary = "feeds take items from every community of origin in turn"

    def apply(self, stages: Stages) -> Stages:
        inner = stages.feed_quota

        def feed_quota(n_communities, feed_size):
            quota = -(-feed_size // max(1, n_communities))
            outer = inner(n_communities, feed_size)
            return quota if outer is None else min(quota, outer)

        return replace(stages, feed_quota=feed_quota)
