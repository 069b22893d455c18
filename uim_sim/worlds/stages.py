"""The stage hooks a world exposes to mitigations.

A world never knows which mitigations exist. It calls a few small hooks, and the
runner composes the mitigations of a run around them (Gymnasium-style wrapping):

- ``prepare_training(data, rng)``: the adaptation set a head is trained on (data
  stage: e.g. counterfactual or Dixon-style augmentation);
- ``prepare_text(text, identity_spans)``: the text a decider sees, for training and
  for scoring (data/decision stage: e.g. name redaction);
- ``debias(embeddings, protected)``: fitted on the training embeddings, returns the
  transform applied to every embedding before the head (model stage: e.g. INLP);
- ``fit_decide(scores, labels, groups, rng)``: called once after a head is trained,
  with the head's scores of its own adaptation texts (as prepared), their labels and
  groups; returns what that head's decisions are then made with, ``fitted``: a dict
  keyed by mitigation name, empty without one (decision stage: e.g. fairlearn's
  ``ThresholdOptimizer`` fitted on the adaptation data). The screener keeps it, and
  the world passes it to every ``decide`` of the pools that screener scores;
- ``decide(scores, groups, rule, rng, fitted=None)``: who is selected within one
  decision pool (decision stage: e.g. per-group thresholds); ``fitted``: what
  ``fit_decide`` returned for the head that scored the pool (empty for an untrained
  head; None: nothing was passed). ``groups`` holds the same labels as the ``groups`` of that head's
  `TrainingSet` (hiring: the race or gender the study compares; moderation: the
  identity group a text names; spread: the community of origin), so what is fitted
  on one applies to the other;
- ``review(scores, selected, truth, rng)``: which selections a human reviewer
  overturns before they take effect (system stage: e.g. human review of removals);
- ``assign(cards, n_deciders, rng)``: which card, and which draw of its training
  data, each decider carries (system stage: e.g. model diversity);
- ``label(truth, age, rng)``: which items a fact-checker labels false this step
  (system stage: e.g. fact-checks with a delay and a coverage);
- ``share(probability, flagged)``: the probability that a user shares an item they
  saw, given whether it is flagged (labelled or demoted) (system stage: e.g. sharing
  friction);
- ``feed_quota(n_communities, feed_size)``: how many of a feed's slots items of one
  community of origin may take before the others had their turn (decision stage:
  e.g. source-diverse feeds; None: no quota);
- ``audit(selected, groups, step)``: after a step, one decider's selections since it
  last changed model, with the group of each; returns the card it carries from now
  on, or None to keep its own (system stage: e.g. periodic audits);
- ``retrain(step)``: after a step, (share, refit): the share of the step's outcomes
  whose truth the platform learns (the world says which outcomes could be learned:
  every post, every hire), and whether its deciders' trained heads are now re-trained
  on their adaptation data and every outcome learned so far; None: nothing is learned
  (system stage: e.g. periodic re-training on fresh outcomes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from uim_sim.cards import AgentCard, DecisionSpec


@dataclass(frozen=True)
class TrainingSet:
    """Adaptation data: texts, 0/1 labels, identity spans per text, and the protected
    attribute of each text (what a model-stage debiasing removes: a bool, or a group
    label per text).

    Worlds may add ``groups`` (the group of each text, in the labels the world's
    ``decide`` receives), a ``supplement``: labelled texts from another source that a
    data-stage mitigation may add (Dixon et al. 2018 added non-toxic Wikipedia
    sentences), and ``identify``: what the world makes of a text's identity spans,
    ``identify(spans) -> (protected, group)`` (counterfactual augmentation asks it about
    the twins it adds). ``weights``: a weight per text the head is fitted with (None:
    every text counts once; data-stage reweighing sets them).
    """

    texts: list[str]
    labels: np.ndarray
    spans: list[tuple[str, ...]]
    protected: np.ndarray
    groups: np.ndarray | None = None
    supplement: TrainingSet | None = None
    identify: Callable[[tuple[str, ...]], tuple[Any, Any]] | None = None
    weights: np.ndarray | None = None


def keep_training(data: TrainingSet, rng: np.random.Generator) -> TrainingSet:
    return data


def keep_text(text: str, identity_spans: Sequence[str]) -> str:
    return text


def identity(embeddings: np.ndarray) -> np.ndarray:
    return embeddings


def no_debias(embeddings: np.ndarray, protected: np.ndarray) -> Callable:
    return identity


def no_fit(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, rng: np.random.Generator
) -> dict[str, Any]:
    """Nothing is fitted on the adaptation data for the decision stage."""
    return {}


def select(
    scores: np.ndarray,
    groups: np.ndarray,
    rule: DecisionSpec,
    rng: np.random.Generator,
    fitted: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Apply a card's selection rule to one pool; ties are broken at random."""
    scores = np.asarray(scores, dtype=float)
    if rule.rule == "threshold":
        return scores >= rule.threshold
    if rule.rule == "draw":
        return rng.random(len(scores)) < np.clip(scores, 0.0, 1.0)
    return top_share(scores, rule.share, rng)


def top_share(scores: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Select round(share * n) best scores (at least one), random order among equals."""
    n = len(scores)
    chosen = np.zeros(n, dtype=bool)
    if n == 0:
        return chosen
    k = max(1, int(round(share * n)))
    order = np.lexsort((rng.random(n), -scores))
    chosen[order[:k]] = True
    return chosen


def no_review(
    scores: np.ndarray, selected: np.ndarray, truth: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Nobody reviews: no selection is overturned."""
    return np.zeros(len(selected), dtype=bool)


def one_model(cards: Sequence[AgentCard], n_deciders: int, rng: np.random.Generator):
    """Monoculture: every decider carries the run's card and the same trained head."""
    return [(cards[0], 0)] * n_deciders


def no_labels(truth: np.ndarray, age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """No fact-checker: nothing is labelled."""
    return np.zeros(len(truth), dtype=bool)


def keep_probability(probability: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """No friction: a flagged item is shared as readily as any other."""
    return probability


def no_quota(n_communities: int, feed_size: int) -> int | None:
    """Feeds filled by the ranker's priority alone."""
    return None


def never_retrain(step: int) -> tuple[float, bool] | None:
    """Heads are trained once, when the world is built; no outcome is learned."""
    return None


def no_audit(selected: np.ndarray, groups: np.ndarray, step: int) -> AgentCard | None:
    """Nobody audits: every decider keeps its model."""
    return None


@dataclass(frozen=True)
class Stages:
    prepare_training: Callable[[TrainingSet, np.random.Generator], TrainingSet] = keep_training
    prepare_text: Callable[[str, Sequence[str]], str] = keep_text
    debias: Callable[[np.ndarray, np.ndarray], Callable] = no_debias
    fit_decide: Callable[..., dict[str, Any]] = no_fit
    decide: Callable[..., np.ndarray] = select
    assign: Callable[..., list[tuple[AgentCard, int]]] = one_model
    review: Callable[..., np.ndarray] = no_review
    label: Callable[..., np.ndarray] = no_labels
    share: Callable[..., np.ndarray] = keep_probability
    feed_quota: Callable[[int, int], int | None] = no_quota
    audit: Callable[..., AgentCard | None] = no_audit
    retrain: Callable[[int], tuple[float, bool] | None] = never_retrain
