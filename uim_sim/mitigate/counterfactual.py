"""Data stage: two-sided counterfactual data augmentation (CDA) of the adaptation data."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from uim_sim.cards import AgentCard
from uim_sim.mitigate.base import Mitigation
from uim_sim.vocab.counterfactual import swap_terms
from uim_sim.worlds.base import WorldInfo
from uim_sim.worlds.stages import Stages, TrainingSet


def swap_spans(text: str, swaps: dict[str, str]) -> str:
    """``text`` with every occurrence of each span in ``swaps`` (a whole word or
    phrase, in any case) replaced by its counterpart, all at once (so a span swapped
    into the text is not swapped back). A sentence-initial capital is kept."""
    if not swaps:
        return text
    lower = {span.lower(): new for span, new in swaps.items()}
    spans = sorted(swaps, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(s) for s in spans) + r")\b", re.IGNORECASE)

    def counterpart(match: re.Match) -> str:
        found, new = match.group(0), lower[match.group(0).lower()]
        if found[:1].isupper() and not new[:1].isupper():
            return new[:1].upper() + new[1:]
        return new

    return pattern.sub(counterpart, text)


def counterfactual_twins(data: TrainingSet, rng: np.random.Generator) -> TrainingSet:
    """``data`` and, for each text whose identity spans have counterparts, a twin with
    the spans swapped (`uim_sim.vocab.counterfactual`) and the same label; the twin's
    protected attribute and group are what the world's ``identify`` makes of the
    swapped spans. Texts without such spans (moderation's background and dialect
    texts) get no twin. Counterparts are drawn from ``rng``, text by text."""
    if data.identify is None or not any(data.spans):
        raise ValueError(
            "counterfactual_augmentation needs adaptation texts with identity spans and a "
            "world that says which group a swapped span names"
        )
    rows, texts, spans, protected, groups = [], [], [], [], []
    for i, (text, own) in enumerate(zip(data.texts, data.spans)):
        swapped = tuple(swap_terms(span, rng) for span in own)
        if swapped == tuple(own):
            continue
        rows.append(i)
        texts.append(swap_spans(text, dict(zip(own, swapped))))
        spans.append(swapped)
        attribute, group = data.identify(swapped)
        protected.append(attribute)
        groups.append(group)
    if not rows:
        raise ValueError(
            "counterfactual_augmentation: no identity span of the adaptation data has a counterpart"
        )
    weights = data.weights
    if weights is not None:
        weights = np.concatenate([np.asarray(weights), np.asarray(weights)[rows]])
    return replace(
        data,
        texts=data.texts + texts,
        labels=np.concatenate([np.asarray(data.labels), np.asarray(data.labels)[rows]]),
        spans=data.spans + spans,
        protected=np.concatenate([np.asarray(data.protected), np.asarray(protected)]),
        groups=None if data.groups is None else np.concatenate([data.groups, groups]),
        weights=weights,
    )


class CounterfactualAugmentation(Mitigation):
    """Two-sided counterfactual data augmentation of the adaptation data, after
    Zmigrod et al. (2019), "Counterfactual Data Augmentation for Mitigating Gender
    Stereotypes in Languages with Rich Morphology", and Webster et al. (2020),
    "Measuring and Reducing Gendered Correlations in Pre-trained Models": every
    training text gets a copy whose identity spans name a counterpart group, with the
    same label, so no group co-occurs with a label more than its counterpart does.

    Counterparts are those of `uim_sim.vocab.counterfactual`: a name becomes a name of
    the other race and the same gender (hiring), a community the other community
    (spread), an identity term its counterpart (Black ↔ white, female ↔ male, gay ↔
    lesbian; a religion another religion drawn at random; moderation). Texts naming
    no group with a counterpart (moderation's background and dialect texts) get no
    twin. In a hiring world that compares genders, names keep their gender: the twins
    balance race, not the compared attribute.
    """

    name = "counterfactual_augmentation"
    stage = "data"
    hook = "prepare_training"
    trains = True
    summary = (
        "adds to adaptation data a copy of each text naming a counterpart group, same label "
        "(two-sided CDA)"
    )
    note = (
        "balances the groups named in the adaptation data and their labels; in hiring, names "
        "are swapped across race within a gender, so it does nothing for a gender comparison"
    )

    def refusal(self, world: WorldInfo, card: AgentCard) -> str | None:
        reason = super().refusal(world, card)
        if reason is None and not any(
            card.head.train_on in m.identity_spans for m in world.models.values()
        ):
            reason = (
                f"{self.name} swaps identity spans, and in the {world.name} world adaptation "
                f"data from {card.head.train_on} (card {card.name}) carries none"
            )
        return reason

    def apply(self, stages: Stages) -> Stages:
        inner = stages.prepare_training

        def prepare_training(data, rng):
            return counterfactual_twins(inner(data, rng), rng)

        return replace(stages, prepare_training=prepare_training)
