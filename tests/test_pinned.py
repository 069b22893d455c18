"""The reshape of the package layout changed no result: five small specs on MiniLM,
run before it (at commit dcea0fc, by ``data/pinned/make_pins_dcea0fc.py``), are run
again and give the same decisions, scores and metrics.

What may differ, and why:
- rows the reshape added: intersectional and per-author-group rows
  (``demographic_parity_difference`` for race × gender, moderation's
  ``impact_ratio`` by author group) and the step-0 rows of the world before anyone
  decided;
- permutation-based values (name-level p-values, the FPED/FNED term null), only
  within Monte Carlo error: Mesa's DataCollector calls every reporter once more on
  its first collection to validate it, and the first collection used to be step 1,
  so a one-step world drew its permutations twice and kept the second; it is now
  step 0, and they are drawn once;
- scores, in the 7th digit at most, on a CPU whose kernels depend on batch shape
  (the engine now fixes batch shapes; on the machine that made the pins they are
  bit-identical).
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
PERMUTATION_BASED = ("impact_ratio_p_names", "fped_null_", "fned_null_")
ADDED = (
    {("demographic_parity_difference", "group")}
    | {
        ("impact_ratio", g)
        for g in (
            "background",
            "black",
            "christian",
            "dialect",
            "female",
            "gay",
            "jewish",
            "lesbian",
            "male",
            "muslim",
            "white",
        )  # fmt: skip
    }
    | {  # the audit's callback-rate gap between high- and low-quality resumes, per group
        ("quality_gap", g)
        for g in (
            "black",
            "white",
            "female",
            "male",
            "black_female",
            "black_male",
            "white_female",
            "white_male",
        )  # fmt: skip
    }
    # the audit's paired comparisons won (Wilson & Caliskan 2024), by race and gender
    | {("pairwise_win_share", g) for g in ("black", "white", "female", "male")}
)


def _run(name: str) -> str:
    """A run's id without its content hash (which the new parameter schema changed)."""
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
    keys = ["run_id", "step", "decider", "subject"]
    old = old.sort_values(keys, kind="stable").reset_index(drop=True)
    new = new.sort_values(keys, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(old.drop(columns="score"), new.drop(columns="score"))
    np.testing.assert_allclose(new["score"], old["score"], rtol=0, atol=1e-6)


def test_same_metrics(pinned):
    name, tables = pinned
    old, new = tables["metrics"]
    old = old[np.isfinite(old["value"])]
    new = new[new["step"] > 0]
    merged = old.merge(new, on=["run_id", "step", "metric", "group"], how="outer",
                       suffixes=("_old", "_new"), indicator=True)  # fmt: skip
    assert (merged["_merge"] != "left_only").all(), merged[merged["_merge"] == "left_only"]
    added = merged[merged["_merge"] == "right_only"]
    assert set(zip(added["metric"], added["group"])) <= ADDED
    both = merged[merged["_merge"] == "both"]
    random = both["metric"].str.startswith(PERMUTATION_BASED)
    np.testing.assert_allclose(
        both.loc[~random, "value_new"], both.loc[~random, "value_old"], rtol=1e-9, atol=1e-6
    )
    p_values = both[random & both["metric"].str.endswith("_p_names")]
    if len(p_values):  # two independent permutation estimates of one p: binomial error
        n = SPECS[name]["statistics"]["name_permutations"]
        p = p_values["value_old"].clip(1 / n, 1 - 1 / n)
        error = (p_values["value_new"] - p_values["value_old"]).abs()
        assert (error <= 5 * np.sqrt(2 * p * (1 - p) / n) + 2 / n).all()
