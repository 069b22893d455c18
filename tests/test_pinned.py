"""Results change only where a commit says so: five small specs on MiniLM, pinned by
``data/pinned/make_pins.py`` (its docstring lists the commits that re-made the pins
and why), are run again and give the same decisions, scores and metrics.

What may differ: scores in the 7th digit at most (a CPU whose kernels depend on batch
shape; the engine fixes batch shapes, so on the machine that made the pins they are
bit-identical), and run ids' content hashes (the parameter schema may grow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, write_yaml

from uim_sim.run import plan, run_plan

PINNED = Path(__file__).parent / "data" / "pinned"
SPECS = yaml.safe_load((PINNED / "specs.yaml").read_text())


def _run(name: str) -> str:
    """A run's id without its content hash."""
    return name.rsplit("-", 1)[0]


@pytest.fixture(scope="module", params=list(SPECS))
def pinned(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    spec = write_yaml(root / "scenarios" / f"{name}.yaml", SPECS[name])
    result = run_plan(plan(spec, ROOT / "agents"), root / "out")
    assert not result.failed
    tables = {}
    for table in ("decisions", "metrics"):
        old = pd.read_parquet(PINNED / name / f"{table}.parquet")
        new = pd.read_parquet(root / "out" / f"{table}.parquet")
        tables[table] = (old.assign(run_id=old.run_id.map(_run)),
                         new.assign(run_id=new.run_id.map(_run)))  # fmt: skip
    return name, tables


def test_same_decisions_and_scores(pinned):
    _, tables = pinned
    old, new = tables["decisions"]
    assert list(old.columns) == list(new.columns)
    pd.testing.assert_frame_equal(old.drop(columns="score"), new.drop(columns="score"))
    np.testing.assert_allclose(new["score"], old["score"], rtol=0, atol=1e-6)


def test_same_metrics(pinned):
    _, tables = pinned
    old, new = tables["metrics"]
    assert list(old.columns) == list(new.columns)
    keys = ["run_id", "step", "metric", "group"]
    pd.testing.assert_frame_equal(old[keys], new[keys])
    np.testing.assert_allclose(new["value"], old["value"], rtol=1e-9, atol=1e-6)
