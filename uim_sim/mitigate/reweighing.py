"""Data stage: Kamiran & Calders (2012) reweighing of the adaptation data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from uim_sim.mitigate.base import Mitigation
from uim_sim.worlds.stages import Stages, TrainingSet


def reweighing_weights(protected: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """w(g, y) = P(g) P(y) / P(g, y) for each row, with the probabilities counted in the
    data: the weight that makes the attribute and the label independent in the weighted
    data (weighted P(y | g) = P(y) for every group g). The weights sum to the number
    of rows, so the weighted data is as large as the original."""
    n = len(labels)
    groups, group_of = np.unique(np.asarray(protected), return_inverse=True)
    outcomes, label_of = np.unique(np.asarray(labels).astype(int), return_inverse=True)
    joint = np.zeros((len(groups), len(outcomes)))
    np.add.at(joint, (group_of, label_of), 1.0)
    p_group, p_label = joint.sum(1) / n, joint.sum(0) / n
    return p_group[group_of] * p_label[label_of] / (joint[group_of, label_of] / n)


def reweigh(data: TrainingSet) -> TrainingSet:
    """``data`` with Kamiran & Calders' weights (multiplying weights it already had)."""
    weights = reweighing_weights(data.protected, data.labels)
    if data.weights is not None:
        weights = weights * np.asarray(data.weights, dtype=np.float64)
    return replace(data, weights=weights)


class Reweighing(Mitigation):
    """Kamiran & Calders (2012), "Data preprocessing techniques for classification
    without discrimination" (Knowledge and Information Systems 33): instead of
    changing labels (massaging) or resampling, give each (group, label) cell of the
    training data the weight P(g) P(y) / P(g, y), so that in the weighted data the
    protected attribute and the label are independent; a classifier fitted on it no
    longer learns the historical association. Here the attribute is the adaptation
    data's ``protected`` column (hiring: names of the disadvantaged group; moderation:
    the identity group a text names; spread: items of the disadvantaged community) and
    the weights reach the logistic head as ``sample_weight``.

    It removes the association between group and label, not what else in the texts
    stands in for the group; and where the labels differ between groups because the
    texts do (not through bias), it weights that difference away too.
    """

    name = "reweighing"
    stage = "data"
    hook = "prepare_training"
    trains = True
    summary = (
        "weights adaptation data by P(group)P(label)/P(group, label): group and label "
        "independent (Kamiran & Calders 2012)"
    )
    note = (
        "makes group and label independent in the weighted adaptation data only: a head "
        "can still learn the group from what stands in for it in the texts"
    )

    def apply(self, stages: Stages) -> Stages:
        inner = stages.prepare_training

        def prepare_training(data, rng):
            return reweigh(inner(data, rng))

        return replace(stages, prepare_training=prepare_training)
