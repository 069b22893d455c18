"""Results change only where a commit says so: five small specs on MiniLM, pinned by
``data/pinned/make_pins.py`` (its docstring lists the commits that re-made the pins
and why), are run again and give the same decisions, scores and metrics, as far as
numbers can be the same on another machine (tests/pinning.py):

- on the machine that made the pins, identical;
- on another (or on another kernel path of this one: tests/test_other_machine.py),
  scores within `SCORE_TOLERANCE`, decisions identical except where a score lies
  closer than that to its boundary, and a run whose trajectory such a flip changed
  (or whose arm is ill-conditioned: INLP) compared by its last metrics within the
  spread of each over seeds.

The pins in this folder were made on another CPU than the Xeon (AVX-512, AMX) these
rules were measured on, so the suite compares across machines wherever it runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, write_yaml
from pinning import compare_decisions, compare_metrics

from uim_sim.cards import load_card
from uim_sim.run import plan, run_plan

PINNED = Path(__file__).parent / "data" / "pinned"
SPECS = yaml.safe_load((PINNED / "specs.yaml").read_text())


def thresholds(spec: dict) -> dict[str, float]:
    """The threshold of each card of a spec whose rule is a threshold."""
    cards = [load_card(ROOT / "agents" / f"{name}.yaml") for name in spec["cards"]]
    return {c.name: c.decision.threshold for c in cards if c.decision.rule == "threshold"}


@pytest.fixture(scope="module", params=list(SPECS))
def pinned(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    spec = write_yaml(root / "scenarios" / f"{name}.yaml", SPECS[name])
    result = run_plan(plan(spec, ROOT / "agents"), root / "out")
    assert not result.failed
    tables = {
        table: (
            pd.read_parquet(PINNED / name / f"{table}.parquet"),
            pd.read_parquet(root / "out" / f"{table}.parquet"),
        )  # fmt: skip
        for table in ("decisions", "metrics")
    }
    decided = compare_decisions(*tables["decisions"], thresholds(SPECS[name]))
    return name, tables, decided


def test_same_decisions_and_scores(pinned):
    _, _, decided = pinned
    assert not decided.problems, "\n".join(decided.problems)


def test_same_metrics(pinned):
    name, tables, decided = pinned
    spread = pd.read_parquet(PINNED / name / "spread.parquet")
    problems = compare_metrics(*tables["metrics"], decided.diverged, spread)
    assert not problems, "\n".join(problems)
