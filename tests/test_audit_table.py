"""The bias-audit table in the form of NYC Local Law 144."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main


@pytest.fixture
def audited(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "a.yaml", small_audit_spec(
        agents=["tiny_biased_history"], mitigations=[[]], replicates=2))  # fmt: skip
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
