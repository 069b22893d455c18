"""The pins' comparison (tests/pinning.py): what another machine may change passes,
anything else fails, and a deliberate one-line change in a head or a metric fails
the pinned comparison itself."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import ROOT, write_yaml
from pinning import compare_decisions, compare_metrics
from test_pinned import PINNED, SPECS, thresholds

from uim_sim.lfm.numerics import SCORE_TOLERANCE
from uim_sim.run import plan, run_plan

TOL = SCORE_TOLERANCE


def decisions() -> pd.DataFrame:
    """Two steps of one run: a threshold card (0.5) and a pool of three at each step."""
    return pd.DataFrame({
        "run_id": ["card-none-r000-abc"] * 6,
        "step": [1, 1, 1, 2, 2, 2],
        "decider": [0] * 6,
        "subject": [1, 2, 3, 1, 2, 3],
        "card": ["card"] * 6,
        "score": [0.9, 0.5 + TOL / 3, 0.1, 0.8, 0.3, 0.2],
        "decision": [1, 1, 0, 1, 0, 0],
    })  # fmt: skip


def metrics(value: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["card-none-r000-abc"] * 2, "step": [1, 2], "metric": ["fped"] * 2,
        "group": ["", ""], "value": [0.25, value],
    })  # fmt: skip


SPREAD = pd.DataFrame({"arm": ["card-none"], "metric": ["fped"], "group": [""], "sd": [0.05]})


def test_the_same_tables_and_last_digits_pass():
    old = decisions()
    new = old.assign(score=old.score + TOL / 10, run_id="card-none-r000-def")  # another hash
    result = compare_decisions(old, new, {"card": 0.5})
    assert not result.problems and not result.diverged


def test_a_score_that_moved_more_than_the_tolerance_fails():
    old = decisions()
    new = old.assign(score=old.score.where(old.subject != 3, 0.1 + 2 * TOL))
    assert "moved by" in compare_decisions(old, new, {"card": 0.5}).problems[0]


def test_a_flip_at_the_boundary_diverges_and_a_wide_one_fails():
    old = decisions()
    near = old.copy()
    near.loc[1, "decision"] = 0  # its score is TOL/3 above the threshold
    near = near.iloc[:3]  # the world went on another way: step 2 differs entirely
    result = compare_decisions(old, pd.concat([near, old.iloc[3:].assign(subject=9)]),
                               {"card": 0.5})  # fmt: skip
    assert not result.problems and "step 1" in result.diverged["card-none-r000"]
    wide = old.copy()
    wide.loc[0, "decision"] = 0  # 0.4 from the threshold
    assert "margin of 0.4" in compare_decisions(old, wide, {"card": 0.5}).problems[0]


def test_a_rank_rules_margin_is_the_gap_to_the_other_side():
    old = decisions().assign(score=[0.9, 0.4 + TOL / 3, 0.4, 0.8, 0.3, 0.2])
    flipped = old.copy()
    flipped.loc[[1, 2], "decision"] = [0, 1]  # two scores TOL/3 apart swapped sides
    result = compare_decisions(old, flipped, {})
    assert not result.problems and result.diverged


def test_metrics_of_steady_runs_within_tolerance_of_diverged_runs_within_seed_spread():
    assert not compare_metrics(metrics(), metrics(0.5 + TOL / 10), {}, SPREAD)
    assert compare_metrics(metrics(), metrics(0.51), {}, SPREAD)
    diverged = {"card-none-r000": "flipped at step 1"}
    assert not compare_metrics(metrics(), metrics(0.6), diverged, SPREAD)  # 2 SDs
    assert "more than 4 SDs" in compare_metrics(metrics(), metrics(0.8), diverged, SPREAD)[0]
    # a metric added since the pins is not a change; a pinned one gone (or a new group
    # of a pinned metric) is
    added = pd.concat([metrics(), metrics().assign(metric="new_measure")], ignore_index=True)
    assert not compare_metrics(metrics(), added, {}, SPREAD)
    assert compare_metrics(added, metrics(), {}, SPREAD)
    regrouped = pd.concat([metrics(), metrics().assign(group="black")], ignore_index=True)
    assert compare_metrics(metrics(), regrouped, {}, SPREAD)


@pytest.fixture
def run_pin(tmp_path):
    """Run the quickest pinned spec (moderation, zero-shot: two runs) as the code now is."""
    name = "pin_moderation_zero_shot"

    def run():
        spec = write_yaml(tmp_path / "scenarios" / f"{name}.yaml", SPECS[name])
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        assert not run_plan(plan(spec, ROOT / "agents"), out).failed
        old = {t: pd.read_parquet(PINNED / name / f"{t}.parquet") for t in ("decisions", "metrics")}
        new = {t: pd.read_parquet(out / f"{t}.parquet") for t in ("decisions", "metrics")}
        decided = compare_decisions(old["decisions"], new["decisions"], thresholds(SPECS[name]))
        spread = pd.read_parquet(PINNED / name / "spread.parquet")
        return decided, compare_metrics(old["metrics"], new["metrics"], decided.diverged, spread)

    return run


def test_a_one_line_change_in_a_head_fails_the_pin(run_pin, monkeypatch):
    from uim_sim.lfm import heads

    decided, problems = run_pin()
    assert not decided.problems and not problems  # as pinned
    score = heads.ContrastHead.score  # the card's zero_shot_contrast head
    monkeypatch.setattr(heads.ContrastHead, "score", lambda self, *a: score(self, *a) + 1e-3)
    decided, _ = run_pin()
    assert decided.problems and "moved by" in decided.problems[0]


def test_a_one_line_change_in_a_metric_fails_the_pin(run_pin, monkeypatch):
    from uim_sim.worlds.moderation import world

    ratios = world.keep_impact_ratios
    monkeypatch.setattr(world, "keep_impact_ratios",
                        lambda posts: {g: v * 0.99 for g, v in ratios(posts).items()})  # fmt: skip
    decided, problems = run_pin()
    assert not decided.problems  # the decisions are the pinned ones
    assert problems and "impact_ratio[" in problems[0], problems
