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
    """Score proposal i with ``screeners[i]``: one batched engine call per checkpoint."""
    scores = np.empty(len(texts), dtype=float)
    by_engine: dict[int, list[int]] = {}
    for i, screener in enumerate(screeners):
        by_engine.setdefault(id(screener.engine), []).append(i)
    for rows in by_engine.values():
        engine = screeners[rows[0]].engine
        needed = [texts[i] for i in rows] + [contexts[i] for i in rows]
        vectors = engine.embed(needed)
        emb, ctx = vectors[: len(rows)], vectors[len(rows) :]
        by_head: dict[int, list[int]] = {}
        for j, i in enumerate(rows):
            by_head.setdefault(id(screeners[i].head), []).append(j)
        for local in by_head.values():
            head = screeners[rows[local[0]]].head
            scores[[rows[j] for j in local]] = head.score(emb[local], ctx[local])
    return scores
