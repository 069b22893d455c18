"""The deciders of the spread world. Users are array state inside the model (a
million of them), not agents; the deciders that carry checkpoints or act on items
are Mesa agents."""

from __future__ import annotations

import mesa
import numpy as np

from uim_sim.worlds.screening import Decider


class Ranker(Decider):
    """The platform's feed ranker (one shard of it): scores the items assigned to it
    with the screener it carries and promotes or demotes them (``decide``) by its
    card's decision rule, within the step's pool of new items (the decision stage)."""


class FactChecker(mesa.Agent):
    """Labels false items through the label stage (no labels unless a mitigation such
    as ``fact_check`` gives it coverage and a delay)."""

    def label(self, truth: np.ndarray, age: np.ndarray) -> np.ndarray:
        model = self.model
        return np.asarray(model.stages.label(truth, age, model.decision_rng), bool)
