"""The bias-audit table in the form of NYC Local Law 144."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.report.audit_file import FILES, SCHEMA
from uim_sim.report.audit_table import ratio_bounds, verdict
from uim_sim.report.headline import fmt_p


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
    # the p of each category's gap to the best of its kind; the best has none
    best = race["selection_rate"].idxmax()
    assert race["seeds"].eq(2).all() and race["p_names_pooled"].isna()[best]
    assert race.drop(index=best)["p_names_pooled"].between(0, 1).all()
    assert race["impact_ratio_four_fifths"].eq("pass").get(best)
    assert not race["unknown_share"].any() and "unknown" not in table["category"].values
    assert (audited / "report" / "audit_table.md").is_file()
    assert "<table" in (audited / "report" / "audit_table.html").read_text()


def test_the_report_and_the_audit_table_give_one_p_for_one_test(audited):
    """The report's `p names pooled` and the audit table's p are one test on the same
    decisions (seeds pooled), not a mean of per-seed p-values."""
    assert main(["report", str(audited)]) == 0
    assert main(["audit-table", str(audited)]) == 0
    summary = pd.read_csv(audited / "report" / "summary.csv")
    table = pd.read_csv(audited / "report" / "audit_table.csv")
    race = table[table["kind"] == "race/ethnicity"].set_index("category")
    # black against white, or white against black where black is the best: one test
    tested = race["p_names_pooled"].dropna()
    assert len(tested) == 1
    assert tested.iloc[0] == summary.loc[0, "p_names_pooled"]
    shown = fmt_p(tested.iloc[0])
    for printed in ("audit_table.md", "summary.md"):
        text = (audited / "report" / printed).read_text()
        assert re.search(rf"\|\s*{re.escape(shown)}\s*\|", text), printed


def test_categories_under_two_percent_are_marked_and_left_out_of_the_best(audited):
    decisions = pd.read_parquet(audited / "decisions.parquet")
    few = decisions.index[: max(1, len(decisions) // 100)]  # about 1 % of the rows
    decisions.loc[few, "gender"] = "nonbinary"
    # (under names of their own: a name carries one race and one sex, as in the world)
    decisions.loc[few, "first_name"] += "_nonbinary"
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
        # the moderation audit's rule: under 30 texts a run (not LL144's 2 %)
        assert row["excludable"] == (len(mine) / decisions["run_id"].nunique() < 30)
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


# ---------------------------------------------------------------- unknown categories


def test_ratio_bounds_are_the_extremes_over_every_assignment_of_the_unknowns():
    """Brute force: every way of giving 5 unknown rows (2 selected) to 3 categories,
    one of them excludable (left out of the best rate)."""
    counts = pd.DataFrame({"count": [20, 15, 4], "sum": [10, 6, 1]}, index=["a", "b", "c"])
    for kept in ([True, True, True], [True, True, False]):
        kept = pd.Series(kept, index=counts.index)
        low, high = ratio_bounds(counts, kept, 5, 2)
        seen = {c: [] for c in counts.index}
        for assignment in itertools.product(counts.index, repeat=5):
            c = counts.astype(float).copy()
            for row, category in enumerate(assignment):
                c.loc[category, "count"] += 1
                c.loc[category, "sum"] += row < 2  # the first two rows were selected
            rates = c["sum"] / c["count"]
            for category in counts.index:
                seen[category].append(rates[category] / rates[kept].max())
        for category in counts.index:
            assert low[category] == pytest.approx(min(seen[category]))
            assert high[category] == pytest.approx(max(seen[category]))
    no_unknowns = ratio_bounds(counts, kept, 0, 0)
    assert no_unknowns[0].equals(no_unknowns[1])
    assert no_unknowns[0]["b"] == pytest.approx(0.4 / 0.5)


def test_the_four_fifths_verdict_over_the_bounds():
    assert verdict(0.81, 1.0, True) == "pass" and verdict(0.5, 0.79, True) == "fail"
    assert verdict(0.7, 0.9, True) == "cannot tell" and verdict(0.7, 0.9, False) == "excludable"
    assert verdict(0.8, 0.8, True) == "pass"  # four fifths is the line, not below it


@pytest.fixture
def unknown(project, tmp_path):
    """Black applicants' race and sex unknown to the auditor three times as often as
    others', at 0 and 25 % overall, on the same seeds."""
    spec = write_yaml(project / "scenarios" / "u.yaml", small_audit_spec(
        cards=["tiny_biased_history"], arms=[[]], replicates=2,
        params={"mode": "audit", "n_jobs": 10, "n_history": 120,
                "unknown_group": "black", "unknown_ratio": 3},
        grid={"unknown_share": [0.0, 0.25]}))  # fmt: skip
    out = tmp_path / "unknown"
    assert main(["run", str(spec), "--out", str(out), "--agents-dir",
                 str(project / "agents")]) == 0  # fmt: skip
    return out


def test_unknown_categories_are_drawn_apart_and_change_no_decision(unknown):
    runs = pd.read_parquet(unknown / "runs.parquet")
    decisions = pd.read_parquet(unknown / "decisions.parquet").merge(
        runs[["run_id", "replicate", "grid.unknown_share"]], on="run_id"
    )
    known = decisions[decisions["grid.unknown_share"] == 0]
    missing = decisions[decisions["grid.unknown_share"] > 0]
    assert known["demographics_unknown"].isna().all()
    assert missing["demographics_unknown"].isin([0, 1]).all()
    # the auditor's stream is its own: the world decided exactly as without it
    columns = ["replicate", "step", "decider", "subject", "name", "score", "decision"]
    pd.testing.assert_frame_equal(known[columns].reset_index(drop=True),
                                  missing[columns].reset_index(drop=True))  # fmt: skip
    by_race = missing.groupby("race")["demographics_unknown"].mean()
    assert by_race["black"] > by_race["white"]  # 0.375 against 0.125 expected
    # at share 0 the params are dumped as before the option existed (same run ids)
    assert runs.loc[runs["grid.unknown_share"] == 0, "param.unknown_group"].isna().all()


def test_the_audit_table_shows_unknown_categories_and_bounds_every_ratio(unknown):
    assert main(["audit-table", str(unknown)]) == 0
    table = pd.read_csv(unknown / "report" / "audit_table.csv", keep_default_na=False,
                        na_values=[""])  # fmt: skip
    decisions = pd.read_parquet(unknown / "decisions.parquet")
    hidden = decisions[decisions["demographics_unknown"] == 1]
    clear, blurred = (table[table["condition"].str.endswith(f"unknown_share={s}")]
                      for s in ("0.0", "0.25"))  # fmt: skip
    assert "unknown" not in clear["category"].values
    for kind in ("sex", "race/ethnicity", "intersection"):
        rows = blurred[blurred["kind"] == kind].set_index("category")
        assert rows.loc["unknown", "applicants"] == len(hidden)
        assert rows.loc["unknown", "selected"] == hidden["decision"].sum()
        assert pd.isna(rows.loc["unknown", "impact_ratio"])
        assert rows["applicants"].sum() == len(decisions) / 2
        truth = clear[clear["kind"] == kind].set_index("category")["impact_ratio"]
        for category, row in rows.drop(index="unknown").iterrows():
            low, high = row["impact_ratio_bound_low"], row["impact_ratio_bound_high"]
            # the ratio the auditor sees and the one every category known gives are
            # both assignments of the unknowns
            assert low - 1e-12 <= row["impact_ratio"] <= high + 1e-12
            assert low - 1e-12 <= truth[category] <= high + 1e-12
            assert row["impact_ratio_four_fifths"] == verdict(low, high, True)
    assert blurred["unknown_share"].eq(len(hidden) / (len(decisions) / 2)).all()
    race = clear[clear["kind"] == "race/ethnicity"]
    assert (race["impact_ratio_bound_low"] == race["impact_ratio"]).all()


@pytest.mark.parametrize(
    ("params", "field"),
    [({"unknown_ratio": 3}, "unknown_ratio"),
     ({"unknown_share": 0.9, "unknown_group": "black", "unknown_ratio": 3}, "unknown_ratio"),
     ({"unknown_share": 0.1, "unknown_group": "asian"}, "unknown_group"),
     ({"unknown_share": 1.0}, "unknown_share")],
)  # fmt: skip
def test_bad_unknown_category_params_are_one_line_naming_the_field(
    project, tmp_path, capsys, params, field
):
    spec = write_yaml(project / "scenarios" / "bad.yaml", small_audit_spec(
        params={"mode": "audit", "n_jobs": 4, "n_history": 120, **params}))  # fmt: skip
    out = tmp_path / "bad"
    assert main(["run", str(spec), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert f"params.{field}" in error and len(error.splitlines()) == 1
    assert not out.exists()


# ---------------------------------------------------------------- files for people


def test_the_json_file_follows_its_schema_and_holds_the_table(unknown):
    import jsonschema  # the test extra's

    assert main(["audit-table", str(unknown)]) == 0
    folder = unknown / "report"
    document = json.loads((folder / "audit_table.json").read_text())
    schema = json.loads((folder / "audit_table.schema.json").read_text())
    assert schema == SCHEMA
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema)
    table = pd.read_csv(folder / "audit_table.csv", keep_default_na=False, na_values=[""])
    runs = pd.read_parquet(unknown / "runs.parquet")
    assert document["data_source"]["runs"] == len(runs) and document["data_source"]["simulated"]
    rows = [(c, r) for c in document["conditions"] for r in c["rows"]]
    assert len(rows) == len(table)
    for (condition, row), expected in zip(rows, table.to_dict("records")):
        assert (condition["condition"], row["kind"], row["category"]) == (
            expected["condition"], expected["kind"], expected["category"])  # fmt: skip
        assert row["counts"] == {"applicants": expected["applicants"],
                                 "selected": expected["selected"]}  # fmt: skip
        rate = row["rates"][0]
        assert rate["value"] == pytest.approx(expected["selection_rate"])
        ratio = rate["ratio"]
        if row["unknown"]:
            assert ratio["value"] is None and ratio["bounds"] == {"low": None, "high": None}
        else:
            assert ratio["value"] == pytest.approx(expected["impact_ratio"])
            assert ratio["bounds"]["low"] == pytest.approx(expected["impact_ratio_bound_low"])
            assert ratio["four_fifths"] == expected["impact_ratio_four_fifths"]
        assert row["unknown_share"] == pytest.approx(expected["unknown_share"])
    first = document["conditions"][0]
    assert first["model_card"]["name"] == "tiny_biased_history"
    assert first["seeds"] == sorted(runs.loc[runs["grid.unknown_share"] == 0, "seed"].tolist())
    assert first["grid"] == {"unknown_share": 0.0}


def test_the_page_is_for_people_and_every_file_is_the_same_bytes_twice(unknown, tmp_path):
    assert main(["audit-table", str(unknown)]) == 0
    again = tmp_path / "again"
    assert main(["audit-table", str(unknown), "--to", str(again)]) == 0
    for name in FILES:
        assert (unknown / "report" / name).read_bytes() == (again / name).read_bytes(), name
    page = (again / "audit_table.html").read_text()
    text = re.sub(r"<[^>]+>", " ", page.split("</style>")[1])
    assert "`" not in text and "**" not in text  # Markdown rendered, not shown
    assert not re.search(r"\d\.\d{4,}", text)  # rounded numbers only
    assert "impact ratio: bounds over the unknowns" in text
    assert "<tr class='unknown'>" in page and "Simulated data" in text


def test_without_unknowns_the_params_dump_as_before():
    from uim_sim.worlds.hiring.params import AuditParams, MarketParams

    for params in (AuditParams, MarketParams):
        before = params().model_dump(mode="json")
        assert not [key for key in before if key.startswith("unknown_")]
        assert params(unknown_group="black", unknown_ratio=3).model_dump(mode="json") == before
