"""Decision stage: per-group thresholds that equalise selection rates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from uim_sim.mitigate.base import Mitigation
from uim_sim.worlds.stages import Stages, top_share


class GroupThresholds(Mitigation):
    """Post-processing to demographic parity within each decision pool.

    The card's rule fixes how many are selected; this mitigation then selects that
    same share within each protected group, by score: each group gets its own
    threshold. (fairlearn's ``ThresholdOptimizer`` solves the same constraint on
    training data; here the constraint holds exactly in every pool.)
    """

    name = "group_thresholds"
    stage = "decision"
    hook = "decide"
    summary = (
        "selects the same share within each protected group of every pool (demographic parity)"
    )
    note = (
        "equalises selection rates within each pool by construction: an impact ratio of 1.00 "
        "under it says nothing about the scores (read the mean score ratio), and other "
        "attributes or intersections can stay below four fifths"
    )

    def apply(self, stages: Stages) -> Stages:
        inner = stages.decide

        def decide(scores, groups, rule, rng):
            base = np.asarray(inner(scores, groups, rule, rng), dtype=bool)
            share = base.mean() if len(base) else 0.0
            chosen = np.zeros(len(base), dtype=bool)
            groups = np.asarray(groups)
            for group in np.unique(groups):
                members = np.flatnonzero(groups == group)
                if share > 0:
                    chosen[members] = top_share(np.asarray(scores)[members], share, rng)
            return chosen

        return replace(stages, decide=decide)
