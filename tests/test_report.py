"""`uim-sim report`: per-condition means and intervals, tables and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.metrics.stats import mean_interval
from uim_sim.report import build_report, headline
from uim_sim.report.load import summarise
from uim_sim.run import plan, run_plan
from uim_sim.worlds.section import Context, Harm, Section


def test_report_end_to_end_from_the_cli(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec(replicates=3))
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    folder = out / "report"
    for name in (
        "summary.md",
        "summary.csv",
        "metrics_summary.csv",
        "impact_ratio.png",
        "callback_rate.png",
        "index.html",
    ):
        assert (folder / name).stat().st_size > 0, name
    head = pd.read_csv(folder / "summary.csv")
    assert len(head) == 4  # 2 cards × 2 arms
    assert {
        "impact_ratio", "impact_ratio_low", "impact_ratio_high", "null_low", "null_high",
        "p_names_pooled", "worst_group", "worst_impact_ratio",
    } <= set(head.columns)  # fmt: skip

    # the table's numbers are the mean and t-interval of the per-run metrics
    metrics = pd.read_parquet(out / "metrics.parquet")
    runs = pd.read_parquet(out / "runs.parquet")
    mine = runs[(runs.card == "tiny_biased_history") & (runs.arm == "none")]
    values = metrics[
        metrics.run_id.isin(mine.run_id)
        & (metrics.metric == "impact_ratio")
        & (metrics.group == "black")
    ]["value"]
    row = head[head.condition == "tiny_biased_history · none"].iloc[0]
    mean, lo, hi = mean_interval(values.to_numpy())
    assert np.isclose(row["impact_ratio"], mean) and np.isclose(row["impact_ratio_low"], lo)


def test_report_on_an_empty_folder_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "runs.parquet" in result.output


def test_mean_interval_covers_the_mean():
    mean, lo, hi = mean_interval(np.array([1.0, 2.0, 3.0]))
    assert (mean, round(lo, 3), round(hi, 3)) == (2.0, -0.484, 4.484)
    assert np.isnan(mean_interval(np.array([1.0]))[1])


def test_plan_runs_are_reported_in_plan_order(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec(replicates=1))
    the_plan = plan(spec)
    run_plan(the_plan, tmp_path / "o")
    runs = pd.read_parquet(tmp_path / "o" / "runs.parquet")
    assert runs["run_id"].tolist() == [t.run_id for t in the_plan.tasks]


def test_report_to_an_existing_file_is_one_line_exit_2(project, tmp_path):
    spec = write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec(replicates=1))
    out = tmp_path / "out"
    run_plan(plan(spec), out)
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    result = CliRunner().invoke(app, ["report", str(out), "--to", str(target)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "--to" in result.output
    assert target.read_text() == "keep me"


def test_the_page_explains_itself(project, tmp_path):
    spec = write_yaml(
        project / "scenarios" / "tiny.yaml",
        small_audit_spec(replicates=2, arms=[[], ["group_thresholds"]]),
    )
    out = tmp_path / "out"
    run_plan(plan(spec), out)
    report = build_report(out)
    page = (report.folder / "index.html").read_text()
    assert "`" not in page and "0.000<" not in page  # no raw Markdown, no p of 0.000
    assert page.count("<figcaption>") == len(report.figures) >= 3
    for words in ("four-fifths", "null", "by construction", "uim-sim", "tiny_audit", "seed"):
        assert words in page, words
    assert "ir_low" not in page and "impact ratio black [95 % CI]" in page
    markdown = (report.folder / "summary.md").read_text()
    assert "0.000 |" not in markdown and "*Impact ratio of black applicants" in markdown
    # no history-trained card: the page does not talk about a biased history
    zero_shot = write_yaml(
        project / "scenarios" / "zs.yaml", small_audit_spec(cards=["tiny_zero_shot"])
    )
    run_plan(plan(zero_shot), tmp_path / "zs")
    assert "history_bias" not in (build_report(tmp_path / "zs").folder / "index.html").read_text()


def test_a_subgroup_left_below_four_fifths_is_warned_about():
    runs = pd.DataFrame(
        {"run_id": ["a", "b"], "condition": ["card · group_thresholds"] * 2, "world": "hiring"}
    )
    rows = [
        ("a", "black", 1.0), ("b", "black", 1.0), ("a", "female", 0.6), ("b", "female", 0.7),
        ("a", "white", 1.0), ("b", "white", 1.0),
    ]  # fmt: skip
    metrics = pd.DataFrame(
        [{"run_id": r, "step": 1, "metric": "impact_ratio", "group": g, "value": v}
         for r, g, v in rows]
    )  # fmt: skip
    ctx = Context(runs, summarise(runs, metrics), {}, pd.DataFrame)
    section = Section("t", [], [], "", harm=Harm("impact_ratio", "black", "impact ratio"))
    numbers, display = headline.build(ctx, section)
    assert numbers.loc[0, "worst_group"] == "female"
    assert numbers.loc[0, "worst_impact_ratio"] == pytest.approx(0.65)
    (warning,) = headline.warnings(ctx, section, numbers)
    assert "`black` is at 1.00" in warning and "female 0.65" in warning
    fixed = metrics.assign(value=metrics["value"].clip(lower=0.9))
    ctx = Context(runs, summarise(runs, fixed), {}, pd.DataFrame)
    assert headline.warnings(ctx, section, headline.build(ctx, section)[0]) == []
