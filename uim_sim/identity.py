"""A run's identity as data: its card, its arm (the mitigations applied together, by
name) and its grid point, one typed column per key (``grid.KEY``, as ``param.*``).
Written so by the run layer, read so by `uim_sim.report.load`; the display label of
an identity is made here and nowhere else.

Names: an *arm* is one entry of a spec's ``arms`` (the mitigations applied together;
``none`` for no mitigation); a *condition* is card × arm × grid point (its replicates
are the seeds); a *setting* is card × grid point (the arms compared within it share
their seeds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

GRID = "grid."
KNOB = "corpus.knobs."
BASELINE = "none"  # the arm without mitigations

_DTYPES = {bool: "boolean", int: "Int64", float: "Float64", str: "string"}


def typed(values: Sequence[Any]) -> pd.api.extensions.ExtensionArray:
    """One grid key's values as a typed column (bool, int, float or text; missing
    where a run does not vary the key), not what pandas infers from missing values
    (1 → 1.0). Ints and floats mixed are floats; other mixtures are text."""
    values = [None if v is None or (isinstance(v, float) and v != v) else v for v in values]
    kinds = {type(v) for v in values if v is not None}
    kind = kinds.pop() if len(kinds) == 1 else float if kinds == {int, float} else str
    if kind not in _DTYPES:
        kind = str
    if kind is str:
        values = [None if v is None else str(v) for v in values]
    return pd.array(values, dtype=_DTYPES[kind])


def label(card: str, arm: str | None = None, grid: dict[str, Any] | None = None) -> str:
    """The display label of a run's identity, ``card · arm · key=value,...`` (the arm
    or the grid left out where not given; a corpus knob named without its prefix)."""
    extra = ",".join(f"{k.removeprefix(KNOB)}={v}" for k, v in (grid or {}).items())
    return " · ".join(p for p in (card, arm, extra) if p)
