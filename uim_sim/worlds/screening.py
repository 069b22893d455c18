"""Screeners: a checkpoint's engine plus a head, as carried by a decider.

Worlds score a whole step at once with `score_proposals`: one engine call per
checkpoint for every text and context proposed in the step, then each screener's
head runs on its rows of the cached embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np

from uim_sim.cards import AgentCard
from uim_sim.lfm import fidelity
from uim_sim.lfm.engine import Engine, fp32_twin, get_engine, reduced
from uim_sim.lfm.heads import build_head
from uim_sim.worlds.stages import Stages, TrainingSet, identity


@dataclass
class Screener:
    """What a decider carries. ``transform`` (model stage) maps embeddings before the
    head; it is fitted with the head and is the identity without a mitigation.
    ``fitted`` (decision stage): what ``fit_decide`` fitted on the trained head's
    scores of its adaptation data (empty for an untrained head or without a
    mitigation); worlds pass it to ``decide`` for every pool this screener scores."""

    card: AgentCard
    engine: Engine
    head: object
    transform: Callable[[np.ndarray], np.ndarray] = field(default=identity)
    fitted: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_card(cls, card: AgentCard) -> Screener:
        engine = get_engine(card.checkpoint, card.device, card.precision)
        head = build_head(card.head)
        if hasattr(head, "bind"):  # heads that embed their own texts (descriptions)
            head.bind(engine.embed)
        return cls(card, engine, head)

    @property
    def trainable(self) -> bool:
        return getattr(self.head, "trainable", False)

    def train(self, data: TrainingSet, stages: Stages, rng: np.random.Generator) -> Screener:
        """Adapt on ``data`` through the data and model stages of ``stages``, then fit
        the decision stage (``fit_decide``) on the head's scores of that same data."""
        data = stages.prepare_training(data, rng)
        texts = [stages.prepare_text(t, s) for t, s in zip(data.texts, data.spans)]
        embeddings = self.engine.embed(texts)
        self.transform = stages.debias(embeddings, data.protected)
        features = self.transform(embeddings)
        if data.weights is None:
            self.head.fit(features, data.labels)
        else:
            self.head.fit(features, data.labels, sample_weight=data.weights)
        groups = data.protected if data.groups is None else data.groups
        self.fitted = stages.fit_decide(self.head.score(features), data.labels, groups, rng)
        return self


class Decider(mesa.Agent):
    """An agent that carries a screener (an employer, a moderator, a ranker shard) and
    selects within a pool through the world's decision stage. Audits may hand it
    another screener (`ScreeningWorld.run_audits`)."""

    def __init__(self, model, screener: Screener) -> None:
        super().__init__(model)
        self.screener = screener

    def decide(self, scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Who is selected in one pool (the card's rule, as the decision stage wraps it)."""
        model = self.model
        chosen = model.stages.decide(
            scores, groups, self.screener.card.decision, model.decision_rng,
            fitted=self.screener.fitted,
        )  # fmt: skip
        return np.asarray(chosen, dtype=bool)


def reads_pool(screener: Screener) -> bool:
    """Does the screener's head read a decision's whole pool in one prompt?"""
    return getattr(screener.head, "reads_pool", False)


def score_proposals(
    screeners: Sequence[Screener],
    texts: Sequence[str],
    contexts: Sequence[str],
    subjects: Sequence[str] | None = None,
    pools: Sequence[int] | None = None,
    shown: Sequence[int] | None = None,
) -> np.ndarray:
    """Score proposal i with ``screeners[i]``: one batched engine call per checkpoint
    (and one per prompt of a label-word head, per pool size of a pool head).

    Contexts (e.g. job descriptions) are embedded only for heads that read them;
    ``subjects`` (who each text is about, as the decider sees them) fill the
    ``{subject}`` of label-word prompts. ``pools`` (the decision pool of each
    proposal) and ``shown`` (its position in its pool as shown to the decider) are
    read by pool heads, which score a pool in one prompt, its candidates in the order
    shown; a world whose deciders do not choose within pools passes neither.
    """
    scores = np.empty(len(texts), dtype=float)
    subjects = subjects if subjects is not None else [""] * len(texts)
    by_engine: dict[int, list[int]] = {}
    for i, screener in enumerate(screeners):
        by_engine.setdefault(id(screener.engine), []).append(i)
    for rows in by_engine.values():
        engine = screeners[rows[0]].engine
        reads_text = [getattr(screeners[i].head, "reads_text", False) for i in rows]
        prompted = [i for i, r in zip(rows, reads_text) if r]
        embedded = [i for i, r in zip(rows, reads_text) if not r]
        for members in _by_head(screeners, prompted).values():
            head = screeners[members[0]].head
            if reads_pool(screeners[members[0]]):
                _score_pools(head, engine, members, texts, contexts, pools, shown, scores)
                continue
            scores[members] = head.score_texts(
                engine, [texts[i] for i in members], [subjects[i] for i in members]
            )
        if not embedded:
            continue
        with_context = [i for i in embedded if screeners[i].head.needs_context]
        vectors = engine.embed([texts[i] for i in embedded] + [contexts[i] for i in with_context])
        emb = dict(zip(embedded, vectors[: len(embedded)]))
        ctx = dict(zip(with_context, vectors[len(embedded) :]))
        for members in _by_head(screeners, embedded).values():
            screener = screeners[members[0]]
            head = screener.head
            context = np.stack([ctx[i] for i in members]) if head.needs_context else None
            embeddings = screener.transform(np.stack([emb[i] for i in members]))
            scores[members] = head.score(embeddings, context)
    recorder = fidelity.active()
    if recorder is not None and recorder.remaining:
        _against_fp32(recorder, screeners, texts, contexts, subjects, pools, shown, scores)
    return scores


def _against_fp32(recorder, screeners, texts, contexts, subjects, pools, shown, scores) -> None:
    """A bf16 run's fidelity (`uim_sim.lfm.fidelity`): its first distinct texts scored
    again by an fp32 copy of the model, through the same head and transform (a pool
    head's texts with their whole pool); recorded, never used."""
    import time

    rows = []
    for i, screener in enumerate(screeners):
        key = (id(screener.head), texts[i], contexts[i], subjects[i])
        if len(rows) < recorder.remaining and reduced(screener.engine) and key not in recorder.seen:
            recorder.seen.add(key)
            rows.append(i)
    if pools is not None and any(reads_pool(screeners[i]) for i in rows):
        whole = {(id(screeners[i]), pools[i]) for i in rows}
        rows = [i for i in range(len(screeners)) if (id(screeners[i]), pools[i]) in whole]
    if not rows:
        return
    twins = [_fp32_screener(recorder, screeners[i]) for i in rows]
    start = time.perf_counter()
    full = score_proposals(
        twins, [texts[i] for i in rows], [contexts[i] for i in rows],
        [subjects[i] for i in rows],
        None if pools is None else [pools[i] for i in rows],
        None if shown is None else [shown[i] for i in rows],
    )  # fmt: skip
    recorder.seconds += time.perf_counter() - start
    recorder.add(scores[rows], full, [screeners[i].card.decision for i in rows])


def _fp32_screener(recorder, screener: Screener) -> Screener:
    """The screener with an fp32 copy of its model: its own head where it is trained
    (fitted on the run's embeddings), else the card's head built afresh (a head that
    embeds its own descriptions embeds them in fp32)."""
    held = recorder.twins.get(id(screener))
    if held is None:
        twin = fp32_twin(screener.engine)
        head = screener.head if screener.trainable else build_head(screener.card.head)
        if head is not screener.head and hasattr(head, "bind"):
            head.bind(twin.embed)
        copy = Screener(screener.card, twin, head, screener.transform, screener.fitted)
        held = recorder.twins[id(screener)] = (screener, copy)  # the screener kept: ids stay
    return held[1]


def _score_pools(head, engine, members, texts, contexts, pools, shown, scores) -> None:
    """A pool head's scores of its proposals ``members``: a prompt per pool, its
    candidates in the order shown."""
    if pools is None or shown is None:
        raise ValueError("a choose_one head reads a decision's whole pool; this world "
                         "scores one text at a time")  # fmt: skip
    by_pool: dict[int, list[int]] = {}
    for i in members:
        by_pool.setdefault(pools[i], []).append(i)
    ordered = [sorted(rows, key=lambda i: shown[i]) for rows in by_pool.values()]
    pool_texts = [[texts[i] for i in rows] for rows in ordered]
    probabilities = head.score_pools(engine, pool_texts, [contexts[rows[0]] for rows in ordered])
    for rows, values in zip(ordered, probabilities):
        scores[rows] = values


def _by_head(screeners: Sequence[Screener], rows: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i in rows:
        groups.setdefault(id(screeners[i].head), []).append(i)
    return groups
