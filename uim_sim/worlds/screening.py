"""Screeners: a checkpoint's engine plus a head, as carried by a decider.

Worlds score a whole step at once with `score_proposals`: one engine call per
checkpoint for every text and context proposed in the step, then each screener's
head runs on its rows of the cached embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from uim_sim.lfm.engine import Engine, get_engine
from uim_sim.lfm.heads import LogisticHead, build_head
from uim_sim.spec import AgentCard


@dataclass
class Screener:
    card: AgentCard
    engine: Engine
    head: object

    @classmethod
    def from_card(cls, card: AgentCard) -> Screener:
        return cls(card, get_engine(card.checkpoint), build_head(card.head))

    @property
    def trainable(self) -> bool:
        return isinstance(self.head, LogisticHead)

    def train(self, texts: Sequence[str], labels: np.ndarray) -> Screener:
        self.head.fit(self.engine.embed(list(texts)), labels)
        return self


def score_proposals(
    screeners: Sequence[Screener], texts: Sequence[str], contexts: Sequence[str]
) -> np.ndarray:
    """Score proposal i with ``screeners[i]``: one batched engine call per checkpoint.

    Contexts (e.g. job descriptions) are embedded only for heads that read them.
    """
    scores = np.empty(len(texts), dtype=float)
    by_engine: dict[int, list[int]] = {}
    for i, screener in enumerate(screeners):
        by_engine.setdefault(id(screener.engine), []).append(i)
    for rows in by_engine.values():
        engine = screeners[rows[0]].engine
        with_context = [i for i in rows if screeners[i].head.needs_context]
        vectors = engine.embed([texts[i] for i in rows] + [contexts[i] for i in with_context])
        emb = dict(zip(rows, vectors[: len(rows)]))
        ctx = dict(zip(with_context, vectors[len(rows) :]))
        by_head: dict[int, list[int]] = {}
        for i in rows:
            by_head.setdefault(id(screeners[i].head), []).append(i)
        for members in by_head.values():
            head = screeners[members[0]].head
            context = np.stack([ctx[i] for i in members]) if head.needs_context else None
            scores[members] = head.score(np.stack([emb[i] for i in members]), context)
    return scores
