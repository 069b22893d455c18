"""Data stage: Dixon et al. (2018) augmentation of the adaptation data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Strict
from uim_sim.worlds.stages import Stages, TrainingSet


class AugmentationParams(Strict):
    background: str = "background"  # the group of texts that name no identity


def balance_with_benign(data: TrainingSet, background: str, rng: np.random.Generator):
    """Add benign texts naming each over-represented group, drawn from the supplement,
    until the group's toxic share equals the background's (Dixon et al. 2018, §5).

    Groups whose toxic share is already at or below the background's are left alone.
    The supplement is drawn without replacement while it lasts, then with replacement.
    """
    if data.groups is None or data.supplement is None or data.supplement.groups is None:
        raise ValueError(
            "dixon_augmentation needs training texts labelled with identity groups and a "
            "benign supplement (the moderation world provides both)"
        )
    groups, labels = np.asarray(data.groups), np.asarray(data.labels)
    base = labels[groups == background]
    if len(base) == 0 or base.mean() == 0:
        raise ValueError(f"dixon_augmentation: no toxic {background!r} texts to match")
    target = base.mean()
    extra = data.supplement
    extra_groups, extra_labels = np.asarray(extra.groups), np.asarray(extra.labels)
    picked: list[int] = []
    for group in sorted(set(groups.tolist()) - {background}):
        mine = labels[groups == group]
        need = int(np.ceil(mine.sum() / target - len(mine) - 1e-9))
        pool = np.flatnonzero((extra_groups == group) & (extra_labels == 0))
        if need <= 0 or len(pool) == 0:
            continue
        picked.extend(rng.choice(pool, size=need, replace=need > len(pool)).tolist())
    if not picked:
        return data
    return replace(
        data,
        texts=data.texts + [extra.texts[i] for i in picked],
        labels=np.concatenate([labels, extra_labels[picked]]),
        spans=data.spans + [extra.spans[i] for i in picked],
        protected=np.concatenate([np.asarray(data.protected), np.asarray(extra.protected)[picked]]),
        groups=np.concatenate([groups, extra_groups[picked]]),
    )


class DixonAugmentation(Mitigation):
    """Dixon et al. (2018), "Measuring and Mitigating Unintended Bias in Text
    Classification": identity terms over-represented in toxic training comments teach
    a classifier that the term itself is toxic; adding non-toxic examples that mention
    each term, until its toxic share matches the background, removes that shortcut.
    They added Wikipedia sentences; here the world's benign supplement plays that part.
    """

    name = "dixon_augmentation"
    stage = "data"
    hook = "prepare_training"
    trains = True
    needs = "supplement"
    summary = "adds benign texts naming over-represented groups to adaptation data (Dixon 2018)"
    Params = AugmentationParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.prepare_training
        background = self.params.background

        def prepare_training(data, rng):
            return balance_with_benign(inner(data, rng), background, rng)

        return replace(stages, prepare_training=prepare_training)
