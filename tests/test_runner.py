"""The runner: resume after a kill, atomic runs, a result folder never damaged."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.run import plan, run_plan
from uim_sim.schema import SpecError


@pytest.fixture
def spec(project):
    return write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec())


def test_result_tables_have_their_columns(spec, tmp_path):
    result = run_plan(plan(spec), tmp_path / "one")
    assert result.done == 8
    out = tmp_path / "one"
    metrics = pd.read_parquet(out / "metrics.parquet")
    decisions = pd.read_parquet(out / "decisions.parquet")
    runs = pd.read_parquet(out / "runs.parquet")
    execution = pd.read_parquet(out / "execution.parquet")
    assert set(metrics.columns) == {"run_id", "step", "metric", "group", "value"}
    assert {
        "run_id", "step", "decider", "subject", "group", "checkpoint", "score", "decision",
        "truth",
    } <= set(decisions.columns)  # fmt: skip
    assert {"impact_ratio_null_q025", "impact_ratio_p_names"} <= set(metrics["metric"])
    assert (runs["texts_requested"] > 0).all() and "wall_seconds" not in runs
    assert list(execution["run_id"]) == list(runs["run_id"])
    assert (execution["wall_seconds"] > 0).all()


def test_rerun_resumes_and_never_recomputes(spec, tmp_path):
    the_plan = plan(spec)
    out = tmp_path / "out"
    first = run_plan(the_plan, out)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    again = run_plan(the_plan, out)
    assert (first.done, again.skipped, again.done) == (8, 8, 0)
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}


def test_another_spec_into_the_same_folder_is_refused_and_writes_nothing(spec, project, tmp_path):
    out = tmp_path / "out"
    run_plan(plan(spec), out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    changed = write_yaml(project / "scenarios" / "other.yaml", small_audit_spec(seed=4))
    with pytest.raises(SpecError, match="holds 8 finished run"):
        run_plan(plan(changed), out)
    result = CliRunner().invoke(app, ["run", str(changed), "--out", str(out)])
    assert result.exit_code == 2
    assert "tiny_audit" in result.output and "other.yaml" in result.output
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_a_spec_that_contains_every_finished_run_extends_the_folder(spec, project, tmp_path):
    out = tmp_path / "out"
    run_plan(plan(spec), out)
    more = write_yaml(project / "scenarios" / "more.yaml", small_audit_spec(replicates=3))
    result = run_plan(plan(more), out)
    assert (result.skipped, result.done) == (8, 4)
    assert os.path.isfile(out / "spec.yaml")


def test_a_folder_without_results_is_not_written_into(spec, tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(SpecError, match="without uim-sim results"):
        run_plan(plan(spec), out)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]


def test_null_draws_reuse_the_runs_embeddings(project):
    """The null reference re-trains and re-scores from the run's embeddings: a cold run
    with its null draws encodes exactly the texts of the run alone."""
    from dataclasses import replace

    from uim_sim.lfm.engine import get_engine
    from uim_sim.run.execute import execute

    spec = small_audit_spec(cards=["tiny_biased_history"], arms=[[]], replicates=1)
    spec["statistics"]["null_permutations"] = 4
    task = plan(write_yaml(project / "scenarios" / "null.yaml", spec)).tasks[0]
    alone = replace(task, statistics=task.statistics.model_copy(update={"null_permutations": 0}))
    encoded = {}
    for name, t in (("alone", alone), ("with", task)):
        get_engine(task.card.checkpoint).clear_cache()
        result = execute(t)
        encoded[name] = result.execution["texts_encoded"]
    assert encoded["alone"] == encoded["with"] > 0
    assert result.row["null_draws"] == 4
    quantiles = result.metrics[result.metrics["metric"] == "impact_ratio_null_q975"]
    assert len(quantiles) == 8 and quantiles["value"].between(0, 1).all()


def test_a_null_draw_measures_its_null_metric_as_the_full_measure_does(project):
    """A null draw's world computes only ``impact_ratio`` (a group-by instead of
    fairlearn's MetricFrames): the same numbers as the full measure of that world."""
    from uim_sim.cards import load_card
    from uim_sim.worlds.hiring import AuditStudy, LabourMarket

    card = load_card(project / "agents" / "tiny_biased_history.yaml")
    audit = AuditStudy(n_jobs=6, n_history=120, cards=card, rng=3, null_draw=1).simulate()
    assert audit.measure_null() == {"impact_ratio": audit.measure()["impact_ratio"]}
    market = LabourMarket(
        n_applicants=60, n_rounds=2, n_history=120, cards=card, rng=3, null_draw=0
    ).simulate()
    assert market.measure_null() == {"impact_ratio": market.measure()["impact_ratio"]}


def test_a_spec_given_in_memory_plans_the_runs_its_file_would(project):
    data = small_audit_spec()
    path = write_yaml(project / "scenarios" / "tiny.yaml", data)
    from_file = plan(path, project / "agents")
    in_memory = plan(data, project / "agents", folder=project / "scenarios")
    assert [t.run_id for t in in_memory.tasks] == [t.run_id for t in from_file.tasks]
    assert in_memory.resolved()["cards"] == from_file.resolved()["cards"]
    with pytest.raises(SpecError) as err:  # a refusal names the field, no file
        plan({**data, "replicates": 0}, project / "agents", folder=project / "scenarios")
    assert str(err.value).startswith("replicates: ")
    with pytest.raises(SpecError) as err:
        plan({**data, "cards": ["nobody"]}, project / "agents", folder=project / "scenarios")
    assert str(err.value).startswith("cards: no card named 'nobody'")
