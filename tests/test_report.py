"""`uim-sim report`: per-condition means and intervals, tables and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.metrics.stats import mean_interval
from uim_sim.run import plan, run_plan


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
    mine = runs[(runs.card == "tiny_biased_history") & (runs.mitigation == "none")]
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
