"""The bias-audit table in the form of NYC Local Law 144."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main


@pytest.fixture
def audited(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "a.yaml", small_audit_spec(
        cards=["tiny_biased_history"], arms=[[]], replicates=2))  # fmt: skip
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--agents-dir",
                 str(project / "agents")]) == 0  # fmt: skip
    return out


def test_rates_ratios_and_counts_per_category(audited):
    assert main(["audit-table", str(audited)]) == 0
    table = pd.read_csv(audited / "report" / "audit_table.csv")
    decisions = pd.read_parquet(audited / "decisions.parquet")
    assert set(table["kind"]) == {"sex", "race/ethnicity", "intersection"}
    race = table[table["kind"] == "race/ethnicity"].set_index("category")
    for group in ("black", "white"):
        mine = decisions[decisions["race"] == group]
        assert race.loc[group, "applicants"] == len(mine)
        assert race.loc[group, "selection_rate"] == pytest.approx(mine["decision"].mean())
    assert race["impact_ratio"].max() == 1.0
    low = race["selection_rate"].idxmin()
    assert race.loc[low, "impact_ratio"] == pytest.approx(
        race.loc[low, "selection_rate"] / race["selection_rate"].max()
    )
    assert race["seeds"].eq(2).all() and race["p_names"].notna().all()
    assert (audited / "report" / "audit_table.md").is_file()
    assert "<table" in (audited / "report" / "audit_table.html").read_text()


def test_categories_under_two_percent_are_marked_and_left_out_of_the_best(audited):
    decisions = pd.read_parquet(audited / "decisions.parquet")
    few = decisions.index[: max(1, len(decisions) // 100)]  # about 1 % of the rows
    decisions.loc[few, "gender"] = "nonbinary"
    decisions.loc[few, "decision"] = 1  # a perfect rate that must not become the bar
    decisions.to_parquet(audited / "decisions.parquet")
    assert main(["audit-table", str(audited)]) == 0
    sex = pd.read_csv(audited / "report" / "audit_table.csv").query("kind == 'sex'")
    sex = sex.set_index("category")
    assert sex.loc["nonbinary", "excludable"] and not sex.loc["female", "excludable"]
    assert sex.loc[["female", "male"], "impact_ratio"].max() == pytest.approx(1.0)


def test_worlds_without_an_audit_table_say_so(tmp_path, capsys):
    out = tmp_path / "none"
    assert main(["audit-table", str(out)]) == 2
    assert "no such folder" in capsys.readouterr().err


# ---------------------------------------------------------------- moderation and spread


@pytest.fixture
def moderated(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "m.yaml", {
        "name": "tiny_moderation", "world": "moderation", "seed": 4, "replicates": 2,
        "cards": ["tiny_biased_history"], "arms": [[]],
        "params": {"mode": "world", "n_users": 80, "n_steps": 3, "n_history": 120,
                   "n_moderators": 2},
        "statistics": {"null_permutations": 0, "name_permutations": 20},
    })  # fmt: skip
    out = tmp_path / "moderated"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    return out


def test_moderation_error_rates_by_the_group_a_text_names(moderated):
    assert main(["audit-table", str(moderated)]) == 0
    table = pd.read_csv(moderated / "report" / "audit_table.csv").set_index("category")
    decisions = pd.read_parquet(moderated / "decisions.parquet")
    assert set(table["kind"]) == {"group"} and set(table.index) == set(decisions["subgroup"])
    benign, toxic = decisions[decisions["truth"] == 0], decisions[decisions["truth"] == 1]
    overall_fpr, overall_fnr = benign["decision"].mean(), 1 - toxic["decision"].mean()
    checked = 0
    for group, row in table.iterrows():
        mine = decisions[decisions["subgroup"] == group]
        assert row["texts"] == len(mine) and row["removed"] == mine["decision"].sum()
        b, t = mine[mine["truth"] == 0], mine[mine["truth"] == 1]
        assert row["benign"] == len(b) and row["false_positives"] == b["decision"].sum()
        assert row["toxic"] == len(t) and row["false_negatives"] == (1 - t["decision"]).sum()
        if len(b):
            fpr = b["decision"].mean()
            assert row["false_positive_rate"] == pytest.approx(fpr)
            assert row["fpr_ratio"] == pytest.approx(fpr / overall_fpr)
            # over seeds: the runs' own FPR, recomputed per run from the decisions
            per_run = b.groupby("run_id")["decision"].mean()
            if len(per_run) == 2:
                assert row["false_positive_rate_seeds_mean"] == pytest.approx(per_run.mean())
                checked += 1
        if len(t):
            assert row["false_negative_rate"] == pytest.approx(1 - t["decision"].mean())
            assert row["fnr_ratio"] == pytest.approx((1 - t["decision"].mean()) / overall_fnr)
        assert row["excludable"] == (len(mine) / len(decisions) < 0.02)
    assert checked >= 3
    assert "FPR / overall" in (moderated / "report" / "audit_table.md").read_text()


def _spread_spec(project, **params) -> Path:
    return write_yaml(project / "scenarios" / "s.yaml", {
        "name": "tiny_spread", "world": "spread", "seed": 5, "replicates": 2,
        "cards": ["tiny_biased_history"], "arms": [[]],
        "params": {"n_users": 400, "mean_degree": 6, **params},
        "statistics": {"null_permutations": 0, "name_permutations": 20},
    })  # fmt: skip


def test_spread_exposure_by_community_from_the_metrics(project, tmp_path):
    out = tmp_path / "spread"
    spec = _spread_spec(project, mode="world", n_steps=4, items_per_step=6, n_history=60)
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert main(["audit-table", str(out)]) == 0
    table = pd.read_csv(out / "report" / "audit_table.csv").set_index("category")
    metrics = pd.read_parquet(out / "metrics.parquet")
    last = metrics[metrics["step"] == metrics["step"].max()]

    def total(metric: str, group: str) -> float:
        return last.query("metric == @metric and group == @group")["value"].sum()

    assert list(table.index) == ["riverside", "hillcrest"] and (table["users"].sum() == 800)
    for community, row in table.iterrows():
        users = total("users", community)
        assert row["users"] == users
        for truth in ("true", "false"):
            reached = total("users_reached", f"{truth}_{community}")
            assert row[f"reached_{truth}"] == reached
            assert row[f"{truth}_reach_rate"] == pytest.approx(reached / users)
            views = total("item_views", f"{truth}_{community}")
            assert row[f"{truth}_seen_per_user"] == pytest.approx(views / users)
    assert table["true_reach_ratio"].max() == 1.0 and table["false_reach_ratio"].min() == 1.0
    rates = table["true_seen_per_user"]
    assert table["true_seen_ratio"].to_dict() == pytest.approx((rates / rates.max()).to_dict())
    rates = table["false_reach_rate"]
    assert table["false_reach_ratio"].to_dict() == pytest.approx((rates / rates.min()).to_dict())


def test_the_spread_worlds_exposure_metrics_count_its_users(tiny_checkpoint):
    from uim_sim.cards import AgentCard, HeadSpec
    from uim_sim.vocab.news import COMMUNITIES
    from uim_sim.worlds.spread import SpreadPlatform

    card = AgentCard(name="t", checkpoint=str(tiny_checkpoint), head=HeadSpec(kind="zero_shot"))
    world = SpreadPlatform(n_users=300, mean_degree=6, n_steps=3, items_per_step=5, cards=card,
                           rng=2).simulate()  # fmt: skip
    last = world.metrics().query("step == 3").set_index(["metric", "group"])["value"]
    views = 0.0
    for i, community in enumerate(COMMUNITIES):
        mine = world.community == i
        assert last[("users", community)] == mine.sum()
        for truth in ("true", "false"):
            kind = f"{truth}_{community}"
            assert last[("users_reached", kind)] == (world.seen[truth] & mine).sum()
            views += last[("item_views", kind)]
    assert views == world.seen_count.sum()  # every item seen, counted once by community


def test_worlds_and_modes_without_an_audit_table_say_so(project, tmp_path, capsys):
    out = tmp_path / "cascades"
    spec = _spread_spec(project, mode="reference", n_cascades=3)
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert main(["audit-table", str(out)]) == 2
    assert "offers no bias-audit table for these runs" in capsys.readouterr().err
