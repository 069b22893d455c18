"""`uim-sim report`: per-condition means and intervals, tables and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from scipy import stats
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.metrics.stats import UNIT, mean_interval
from uim_sim.report import build_report, headline
from uim_sim.report.load import summarise
from uim_sim.run import plan, run_plan
from uim_sim.worlds.section import Column, Context, Harm, Section


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
        "p_names_pooled", "worst_group", "worst_impact_ratio", "rate_ratio", "rate_ratio_low",
        "rate_ratio_high",
    } <= set(head.columns)  # fmt: skip
    # the terminal's table fits 120 columns; what it leaves out is named, and in the files
    table, left = result.output.split("(not shown here, to fit 120 columns: ")
    assert max(len(line) for line in table.splitlines()) <= 120, table
    assert "p names pooled" in left.splitlines()[0] and "summary.md" in left.splitlines()[0]

    # the table's numbers are the mean and t-interval of the per-run metrics: an impact
    # ratio's on the logit scale, inside [0, 1] (docs/statistics.md)
    metrics = pd.read_parquet(out / "metrics.parquet")
    runs = pd.read_parquet(out / "runs.parquet")
    mine = runs[(runs.card == "tiny_biased_history") & (runs.arm == "none")]
    values = metrics[
        metrics.run_id.isin(mine.run_id)
        & (metrics.metric == "impact_ratio")
        & (metrics.group == "black")
    ]["value"]
    row = head[head.condition == "tiny_biased_history · none"].iloc[0]
    mean, lo, hi = mean_interval(values.to_numpy(), bounds=UNIT)
    assert np.isclose(row["impact_ratio"], mean) and np.isclose(row["impact_ratio_low"], lo)
    assert 0 <= row["impact_ratio_low"] <= mean <= row["impact_ratio_high"] <= 1


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


def _headline_context(rows, metric="impact_ratio"):
    """A context of one condition, runs a–d, from (run, metric, group, value) rows."""
    runs = pd.DataFrame({"run_id": list("abcd"), "condition": ["card · arm"] * 4,
                         "world": "hiring"})  # fmt: skip
    metrics = pd.DataFrame(
        [{"run_id": r, "step": 1, "metric": m, "group": g, "value": v} for r, m, g, v in rows]
    )
    return Context(runs, summarise(runs, metrics), {}, pd.DataFrame, metrics)


def test_a_subgroup_left_below_four_fifths_beyond_chance_is_warned_about():
    values = {"black": [1.0] * 4, "female": [0.6, 0.62, 0.61, 0.63], "white": [1.0] * 4}
    rows = [(r, "impact_ratio", g, v[i]) for g, v in values.items()
            for i, r in enumerate("abcd")]  # fmt: skip
    section = Section("t", [], [], "", harm=Harm("impact_ratio", "black", "impact ratio"))
    ctx = _headline_context(rows)
    numbers, display = headline.build(ctx, section)
    assert numbers.loc[0, "worst_group"] == "female"
    assert numbers.loc[0, "worst_impact_ratio"] == pytest.approx(0.615)
    (warning,) = headline.warnings(ctx, section, numbers)
    assert "`black` is at 1.00" in warning and "female 0.61" in warning
    # above the line: nothing
    fixed = [(r, m, g, max(v, 0.9)) for r, m, g, v in rows]
    ctx = _headline_context(fixed)
    assert headline.warnings(ctx, section, headline.build(ctx, section)[0]) == []
    # below the line, but the interval reaches over it and no null band says otherwise:
    # draw noise, not warned of (issue 26: a redaction arm's "black_male 0.79")
    noisy = [(r, m, g, v if g != "female" else [0.5, 1.0, 0.7, 0.9]["abcd".index(r)])
             for r, m, g, v in rows]  # fmt: skip
    ctx = _headline_context(noisy)
    assert headline.warnings(ctx, section, headline.build(ctx, section)[0]) == []
    # ... unless its mean is under the null band
    banded = noisy + [(r, "impact_ratio_null_q025", "female", 0.85) for r in "abcd"]
    ctx = _headline_context(banded)
    (warning,) = headline.warnings(ctx, section, headline.build(ctx, section)[0])
    assert "female 0.78" in warning and "beyond chance" in warning


def test_scores_identical_by_construction_are_said_to_be_at_parity():
    rows = [(r, "impact_ratio", "female", v) for r, v in zip("abcd", (0.6, 0.62, 0.61, 0.63))]
    rows += [(r, "mean_score_ratio", g, 1.0) for r in "abcd" for g in ("female", "black")]
    section = Section("t", [], [], "", harm=Harm("impact_ratio", "black", "impact ratio"))
    ctx = _headline_context(rows)
    numbers = headline.build(ctx, section)[0]
    assert headline.warnings(ctx, section, numbers) == []  # female's 0.61: not warned of
    assert headline.parity(ctx, numbers) == ["card · arm"]
    (note,) = headline.parity_note(headline.parity(ctx, numbers))
    assert "At parity by construction" in note and "card · arm" in note


def test_the_headline_prints_an_uncapped_signed_rate_ratio_beside_the_impact_ratio():
    # black/white callback rates per seed: the gap changes sign (ratios 1.2, 0.8, 1.25,
    # 0.85): the capped impact ratio's mean reads a shortfall, the rate ratio does not
    black, white = [0.48, 0.32, 0.5, 0.34], [0.4] * 4
    rows = [(r, "callback_rate", "black", b) for r, b in zip("abcd", black)]
    rows += [(r, "callback_rate", "white", w) for r, w in zip("abcd", white)]
    rows += [(r, "impact_ratio", "black", min(1.0, b / w)) for r, b, w in zip("abcd", black, white)]
    harm = Harm("impact_ratio", "black", "impact ratio", gap=("callback_rate", "white", "black"))
    column = Column("impact_ratio", "impact ratio black [95 % CI]", "impact_ratio", "black",
                    "interval")  # fmt: skip
    ctx = _headline_context(rows)
    numbers, display = headline.build(ctx, Section("t", [column], [], "", harm=harm))
    logs = np.log(np.array(black) / np.array(white))
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    assert numbers.loc[0, "rate_ratio"] == pytest.approx(np.exp(logs.mean()))
    assert numbers.loc[0, "rate_ratio_low"] == pytest.approx(np.exp(logs.mean() - half))
    assert numbers.loc[0, "rate_ratio_high"] == pytest.approx(np.exp(logs.mean() + half))
    # the impact ratio is capped at 1 per seed; the rate ratio is not, and sits beside it
    labels = list(display.columns)
    assert labels.index("callback rate ratio black/white, uncapped") == (
        labels.index("impact ratio black [95 % CI]") + 1
    )
    assert numbers.loc[0, "impact_ratio"] == pytest.approx(0.9125)
    assert numbers.loc[0, "rate_ratio_low"] < 1 < numbers.loc[0, "rate_ratio_high"]
    # a zero rate is left out (its log ratio is infinite), not a crash
    zero = [(r, m, g, 0.0 if (r, m, g) == ("d", "callback_rate", "black") else v)
            for r, m, g, v in rows]  # fmt: skip
    mean = headline.rate_ratio(_headline_context(zero), "card · arm", harm.gap)[0]
    assert mean == pytest.approx(np.exp(logs[:3].mean()))
