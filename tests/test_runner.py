"""The runner: determinism across executors, resume after a kill, atomic runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.runner import EXECUTION_COLUMNS, plan, run_plan


@pytest.fixture
def spec(project):
    return write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec())


def tables(out):
    runs = pd.read_parquet(out / "runs.parquet").drop(columns=list(EXECUTION_COLUMNS))
    return (
        runs,
        pd.read_parquet(out / "metrics.parquet"),
        pd.read_parquet(out / "decisions.parquet"),
    )


def test_same_spec_and_seed_give_identical_tables_with_1_or_2_workers(spec, tmp_path):
    the_plan = plan(spec)
    one = run_plan(the_plan, tmp_path / "one", workers=1)
    two = run_plan(the_plan, tmp_path / "two", workers=2)
    assert one.done == two.done == len(the_plan.tasks) == 8
    for a, b in zip(tables(tmp_path / "one"), tables(tmp_path / "two")):
        pd.testing.assert_frame_equal(a, b)
    runs, metrics, decisions = tables(tmp_path / "one")
    assert set(metrics.columns) == {"run_id", "step", "metric", "group", "value"}
    assert {
        "run_id",
        "step",
        "decider",
        "subject",
        "group",
        "checkpoint",
        "score",
        "decision",
        "truth",
    } <= set(decisions.columns)
    assert {"impact_ratio_null_q025", "impact_ratio_p_names"} <= set(metrics["metric"])
    assert (runs["texts_requested"] > 0).all()


def test_rerun_resumes_and_never_recomputes(spec, tmp_path):
    the_plan = plan(spec)
    out = tmp_path / "out"
    first = run_plan(the_plan, out)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    again = run_plan(the_plan, out)
    assert (first.done, again.skipped, again.done) == (8, 8, 0)
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}


def test_killed_batch_leaves_no_partial_run_and_resumes(spec, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "uim_sim.cli", "run", str(spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "runs").glob("*/run.json"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    assert 2 <= len(finished) < 8, "the kill should land mid-batch"
    for folder in (out / "runs").iterdir():  # every visible run is complete
        assert folder.name.startswith(".tmp-") or (folder / "run.json").is_file()
    result = run_plan(plan(spec), out)
    assert result.skipped == len(finished)
    assert result.done == 8 - len(finished)
    for run_id, stamp in finished.items():
        assert (out / "runs" / run_id / "run.json").stat().st_mtime_ns == stamp
    assert not list((out / "runs").glob(".tmp-*"))
    assert len(pd.read_parquet(out / "runs.parquet")) == 8


def test_changed_spec_does_not_reuse_stale_runs(spec, project, tmp_path):
    out = tmp_path / "out"
    run_plan(plan(spec), out)
    changed = write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec(seed=4))
    result = run_plan(plan(changed), out)
    assert result.skipped == 0 and result.done == 8
    assert len(pd.read_parquet(out / "runs.parquet")) == 8
    assert os.path.isfile(out / "spec.yaml")
