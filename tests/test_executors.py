"""Choosing an executor: the flags, their one-line refusals, and the error without
Ray installed (these tests need no Ray; tests/test_ray.py runs the Ray executor)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.run import make_executor
from uim_sim.run.executors import ProcessExecutor, SerialExecutor, executor_error, executor_kind


def test_the_default_executor_follows_workers():
    assert executor_kind(None, None) == executor_kind(None, 1) == "serial"
    assert executor_kind(None, 3) == "process"
    assert executor_kind("ray", None) == "ray"
    assert isinstance(make_executor(1), SerialExecutor)
    pool = make_executor(3)
    assert isinstance(pool, ProcessExecutor) and pool.workers == 3
    assert isinstance(make_executor(None, "process"), ProcessExecutor)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "dask"], "--executor: 'dask' is not one of serial, process, ray"),
        (["--address", "auto"], "--address: names a Ray cluster; use it with --executor ray"),
        (["--executor", "serial", "--workers", "2"], "the serial executor has one worker"),
    ],
)
def test_bad_executor_flags_are_one_line_errors(tmp_path, args, message):
    spec = write_yaml(tmp_path / "tiny.yaml", small_audit_spec())  # refused before it is read
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(spec), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_executor_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a)
    )
    spec = write_yaml(tmp_path / "tiny.yaml", small_audit_spec())
    out = tmp_path / "out"
    for command in (["run", str(spec)], ["attribute", str(spec)]):
        result = CliRunner().invoke(app, [*command, "--out", str(out), "--executor", "ray"])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == (
            "error: --executor ray needs Ray, an optional extra: pip install 'uim-sim[ray]'"
        )
    assert not out.exists()


def test_a_ray_address_is_auto_or_a_ray_client_url():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("needs the ray extra")
    assert executor_error("ray", None, "auto") is None
    assert executor_error("ray", 4, "ray://head:10001") is None
    assert executor_error("ray", 4, "10.0.0.5:6379") is None
    assert "ray://HOST:PORT" in executor_error("ray", None, "rya://head")
