"""The Python API (`uim_sim.api`) runs what `uim-sim run` runs and reads what `uim-sim
report` writes: the same result tables byte for byte, the same summary, headline and
comparison; it resumes, and it raises the project's one-line errors instead of exiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_yaml

import uim_sim
import uim_sim.run as runner
from uim_sim import api
from uim_sim.cli import main
from uim_sim.report.load import ReportError
from uim_sim.run import ExecutorError
from uim_sim.schema import SpecError, UimError

SPEC = {
    "name": "api_audit",
    "world": "hiring",
    "seed": 5,
    "replicates": 2,
    "cards": ["minilm_zero_shot"],
    "arms": [[], ["name_redaction"], ["group_thresholds"]],
    "params": {"mode": "audit", "n_jobs": 3, "n_history": 100},
    "statistics": {"null_permutations": 2, "name_permutations": 50},
}
TABLES = ("runs.parquet", "metrics.parquet", "decisions.parquet")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """The same spec run by the CLI (with its report) and by the API."""
    root = tmp_path_factory.mktemp("api")
    spec = write_yaml(root / "scenarios" / "api_audit.yaml", SPEC)
    cli = root / "cli"
    assert main(["run", str(spec), "--out", str(cli)]) == 0
    assert main(["report", str(cli)]) == 0
    results = api.run(spec, root / "api", progress=False)
    return {"spec": spec, "cli": cli, "api": results.folder}


def _csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    return table.assign(group=table["group"].fillna("")) if "group" in table else table


def _same(mine: pd.DataFrame, written: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True), written.reset_index(drop=True), check_dtype=False
    )


def test_the_api_writes_what_the_cli_writes(folders):
    for name in TABLES:
        assert (folders["api"] / name).read_bytes() == (folders["cli"] / name).read_bytes(), name


def test_its_tables_are_the_reports(folders):
    results = uim_sim.load(folders["cli"])
    report = folders["cli"] / "report"
    _same(results.summary, _csv(report / "metrics_summary.csv"))
    _same(results.headline, _csv(report / "summary.csv"))
    _same(results.comparison, _csv(report / "interventions.csv"))
    assert list(results.comparison["arm"]) == ["name_redaction", "group_thresholds"]
    assert results.dose_response is None
    runs = pd.read_parquet(folders["cli"] / "runs.parquet")
    assert list(results.runs["run_id"]) == list(runs["run_id"])
    assert {"card", "arm", "mitigations", "seed", "replicate", "condition"} <= set(results.runs)
    assert list(results.metrics.columns) == ["run_id", "step", "metric", "group", "value"]
    assert len(results.decisions()) == len(pd.read_parquet(folders["cli"] / "decisions.parquet"))
    audit = results.audit()
    assert {"condition", "category", "impact_ratio"} <= set(audit)


def test_its_report_is_the_clis(folders, tmp_path):
    written = uim_sim.load(folders["api"]).report(tmp_path / "report")
    assert written == tmp_path / "report"
    for name in ("summary.csv", "metrics_summary.csv", "interventions.csv"):
        _same(_csv(written / name), _csv(folders["cli"] / "report" / name))
    assert (written / "index.html").is_file()


def test_a_second_run_computes_nothing(folders, capsys):
    before = {p: p.stat().st_mtime_ns for p in (folders["cli"] / "runs").iterdir()}
    results = api.run(folders["spec"], folders["cli"])  # the CLI's folder, with the bar
    assert (results.batch.total, results.batch.skipped, results.batch.done) == (6, 6, 0)
    assert {p: p.stat().st_mtime_ns for p in (folders["cli"] / "runs").iterdir()} == before
    assert "api_audit" in capsys.readouterr().err  # the progress bar, on stderr


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert isinstance(exc.value, UimError) and "\n" not in message, message
    return message


def test_bad_input_is_a_one_line_error_and_writes_nothing(folders, tmp_path):
    with pytest.raises(SpecError) as exc:
        api.plan({**SPEC, "replicates": 0})
    assert _one_line(exc).startswith("replicates")
    with pytest.raises(SpecError) as exc:
        api.plan({**SPEC, "cards": ["minilm_zero_shto"]})
    assert "did you mean 'minilm_zero_shot'" in _one_line(exc)
    with pytest.raises(SpecError) as exc:
        api.plan("builtin:compare_interventions")
    assert "is a suite (compare_hiring, compare_moderation" in _one_line(exc)
    with pytest.raises(SpecError) as exc:  # another spec's folder: it would orphan its runs
        api.run({**SPEC, "seed": 6}, folders["cli"], progress=False)
    assert "holds 6 finished run(s) of spec 'api_audit'" in _one_line(exc)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SpecError) as exc:
        api.run(SPEC, other, progress=False)
    assert "without uim-sim results" in _one_line(exc)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    with pytest.raises(ExecutorError) as exc:
        api.run(SPEC, tmp_path / "x", executor="threads", progress=False)
    assert "--executor: 'threads'" in _one_line(exc)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ReportError) as exc:
        api.load(tmp_path / "nowhere")
    assert "run `uim-sim run SPEC --out" in _one_line(exc)


def test_failed_runs_are_one_error_and_the_rest_are_kept(tmp_path, monkeypatch):
    execute = runner.execute

    def flaky(task, forged=None):
        if task.arm == "name_redaction":
            raise RuntimeError("broken on purpose")
        return execute(task, forged)

    monkeypatch.setattr(runner, "execute", flaky)  # the serial executor runs here
    spec = {**SPEC, "arms": [[], ["name_redaction"]], "replicates": 1}
    with pytest.raises(api.RunFailed) as exc:
        api.run(spec, tmp_path / "out", progress=False)
    assert "1 of 2 run(s) failed" in _one_line(exc) and "broken on purpose" in str(exc.value)
    assert list(exc.value.failed) == [t.run_id for t in api.plan(spec).tasks][1:]
    monkeypatch.setattr(runner, "execute", execute)
    results = api.run(spec, tmp_path / "out", progress=False)  # retried
    assert (results.batch.skipped, results.batch.done) == (1, 1)


def test_the_package_re_exports_the_api_lazily():
    assert uim_sim.load is api.load and uim_sim.plan is api.plan
    assert uim_sim.Results is api.Results
    with pytest.raises(AttributeError):
        _ = uim_sim.nothing_here
    code = "import sys, uim_sim; assert 'pandas' not in sys.modules, 'pandas imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
