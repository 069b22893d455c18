"""Fidelity: how far a run computed in bf16 lies from fp32, measured on its own texts.

A run whose card computes in bf16 on the CPU (``precision: bf16``, or ``auto`` where
the CPU has native bf16: `uim_sim.lfm.device`) has the first `SAMPLE` distinct texts
its deciders score re-scored in fp32 by a second copy of the model (`fp32_twin` of
`uim_sim.lfm.engine`), through the same head and the same model-stage transform (a
trained head is the one fitted on the run's bf16 embeddings: what is measured is the
encoder's precision; `uim_sim.worlds.screening`). The re-scoring happens beside the
run and changes none of its results. `Recorder.columns` gives
execution.parquet's ``fidelity.*`` columns:

- ``fidelity.texts``: how many texts were compared (fewer where the run scored fewer);
- ``fidelity.max_abs_diff``: the largest |bf16 score − fp32 score|;
- ``fidelity.spearman``: Spearman's rank correlation of the two scores;
- ``fidelity.agreement`` and ``fidelity.agreement_of``: the share that agrees, of
  ``decisions (threshold)`` (the card's rule is a fixed threshold: the same side of
  it), ``decisions (draw, expected)`` (a draw with probability the score: 1 − |Δp|
  averaged, the chance that one random number selects both or neither), else of
  ``pairwise orderings`` (a ``top_share`` rule selects by rank within a pool the
  sample does not know: the share of pairs of sampled texts both precisions order
  alike);
- ``fidelity.seconds``: the time the fp32 copy took (in ``wall_seconds`` too).

A run whose agreement lies below `MIN_AGREEMENT` or whose Spearman lies below
`MIN_SPEARMAN` (`beyond`: what changes a decision or an order) is computed again in
fp32 where its bf16 came from ``precision: auto`` (`uim_sim.run.execute`,
``fidelity.fallback``); where a card named bf16, the report warns. The largest score
difference is printed, not bounded: its scale is the head's (a logistic head's
probabilities moved by up to 0.044 in the hiring audit while 99.96 % of pairs kept
their order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

SAMPLE = 64  # texts of a run re-scored in fp32
MIN_AGREEMENT = 0.99  # below this share of agreeing decisions (or orders) the report warns
MIN_SPEARMAN = 0.99  # below this rank correlation the report warns
COLUMNS = ("fidelity.texts", "fidelity.max_abs_diff", "fidelity.spearman",
           "fidelity.agreement", "fidelity.agreement_of", "fidelity.seconds")  # fmt: skip


class Recorder:
    """One run's sample: bf16 and fp32 scores of its first ``size`` distinct texts."""

    def __init__(self, size: int = SAMPLE) -> None:
        self.size = size
        self.reduced: list[float] = []
        self.full: list[float] = []
        self.rules: list[Any] = []  # each text's decision rule (a card's `DecisionSpec`)
        self.seen: set[Any] = set()
        self.seconds = 0.0
        self.twins: dict[int, tuple[Any, Any]] = {}  # id(screener) → (it, its fp32 twin)

    @property
    def remaining(self) -> int:
        return max(0, self.size - len(self.reduced))

    def add(self, reduced: Sequence[float], full: Sequence[float], rules: Sequence[Any]) -> None:
        self.reduced += [float(x) for x in reduced]
        self.full += [float(x) for x in full]
        self.rules += list(rules)

    def columns(self) -> dict[str, Any]:
        """execution.parquet's ``fidelity.*`` columns (`COLUMNS`)."""
        a, b = np.asarray(self.reduced, float), np.asarray(self.full, float)
        share, of = agreement(a, b, self.rules)
        return {
            "fidelity.texts": len(a),
            "fidelity.max_abs_diff": float(np.abs(a - b).max()) if len(a) else float("nan"),
            "fidelity.spearman": spearman(a, b),
            "fidelity.agreement": share,
            "fidelity.agreement_of": of,
            "fidelity.seconds": float(self.seconds),
        }


_ACTIVE: Recorder | None = None


@contextmanager
def recording(size: int = SAMPLE) -> Iterator[Recorder]:
    """Record the fidelity of the scores computed in the block (one run's world)."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, Recorder(size)
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = previous


def active() -> Recorder | None:
    """The recorder of the run being computed, where its scores are sampled."""
    return _ACTIVE


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (NaN for fewer than 3 values or a constant one)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def agreement(reduced: np.ndarray, full: np.ndarray, rules: Sequence[Any]) -> tuple[float, str]:
    """The share of the sample on which both precisions agree, and of what (the
    module's notes): decisions where the rule makes them from a score alone, else
    pairwise orderings."""
    if len(reduced) == 0:
        return float("nan"), "none"
    kinds = {getattr(r, "rule", None) for r in rules}
    thresholds = {getattr(r, "threshold", None) for r in rules}
    if kinds == {"threshold"} and len(thresholds) == 1:
        (t,) = thresholds
        return float(np.mean((reduced >= t) == (full >= t))), "decisions (threshold)"
    if kinds == {"draw"}:
        p, q = np.clip(reduced, 0, 1), np.clip(full, 0, 1)
        return float(np.mean(1 - np.abs(p - q))), "decisions (draw, expected)"
    if len(reduced) < 2:
        return float("nan"), "pairwise orderings"
    i, j = np.triu_indices(len(reduced), k=1)
    same = np.sign(reduced[i] - reduced[j]) == np.sign(full[i] - full[j])
    return float(np.mean(same)), "pairwise orderings"


def beyond(row: dict[str, Any]) -> bool:
    """Does a run's fidelity (execution columns) lie beyond the bounds?"""
    share, rho = row.get("fidelity.agreement"), row.get("fidelity.spearman")
    return bool(
        (share is not None and share == share and share < MIN_AGREEMENT)
        or (rho is not None and rho == rho and rho < MIN_SPEARMAN)
    )
