"""Faults: the runner killed by ``kill -9`` at random moments (one worker, two worker
processes, Ray), a full disk and a read-only result folder.

After a kill: no partial or duplicated run is visible, no process the runner started
is left behind, and running the same command again gives tables byte-identical to an
uninterrupted run. A write that fails is one line naming the folder, and the runs
finished before it are intact.
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, ray_folders, small_audit_spec, write_yaml

from uim_sim.run import OutputError, plan, run_plan
from uim_sim.run.store import RESULT_FILES

RUNS = 8  # small_audit_spec: two cards × two arms × two seeds


@pytest.fixture(scope="module")
def spec(tmp_path_factory, tiny_checkpoint):
    """The batch every test of the module runs (read, never written to)."""
    project = make_project(tmp_path_factory.mktemp("faults"), tiny_checkpoint)
    return write_yaml(project / "scenarios" / "tiny.yaml", small_audit_spec())


@pytest.fixture(scope="module")
def reference(spec):
    """The tables of an uninterrupted run (serial, in this process); tests copy it."""
    out = spec.parent.parent / "reference"
    assert run_plan(plan(spec), out).done == RUNS
    assert not pd.read_parquet(out / "decisions.parquet")["score"].isna().any()
    return out


def same_bytes(a: Path, b: Path) -> None:
    for name in RESULT_FILES:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


def marked(token: str) -> list[int]:
    """The live processes whose environment carries ``UIM_FAULT_TEST=token``: the runner
    and everything it started (worker processes, a local Ray's), whatever session or
    process group they moved to."""
    needle = f"UIM_FAULT_TEST={token}".encode()
    pids = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (folder / "environ").read_bytes().split(b"\0"):
                state = (folder / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.append(int(folder.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def command(spec: Path, out: Path, executor: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "uim_sim.cli", "run", str(spec), "--out", str(out),
            "--executor", executor, "--workers", str(workers)]  # fmt: skip


EXECUTORS = [  # Ray first: its agents' 60 s (below) pass while the other tests run
    pytest.param(
        "ray",
        2,
        id="ray-2",
        marks=[
            pytest.mark.ray,
            pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="no ray extra"),
        ],
    ),
    pytest.param("serial", 1, id="serial"),
    pytest.param("process", 2, id="process-2"),
]
RAY_AGENT_TIMEOUT = 75  # s: Ray hard-codes 60 s for an agent to report a dead raylet
LINGERING: dict[int, float] = {}  # Ray agents a kill left: pid -> when they must be gone


def _agent(pid: int) -> bool:
    """Ray's DashboardAgent or RuntimeEnvAgent (their process titles)."""
    return _cmdline(pid).startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent"))


@pytest.fixture(scope="module", autouse=True)
def ray_agents_exit_within_their_timeout():
    """After the module's tests: every Ray agent a kill left has exited by its deadline
    (waited for here, not in the test: the other tests of the module run meanwhile)."""
    yield
    for pid, deadline in LINGERING.items():
        while Path(f"/proc/{pid}").exists() and time.time() < deadline:
            time.sleep(0.2)
    left = {pid: _cmdline(pid) for pid in LINGERING if Path(f"/proc/{pid}").exists()}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == {}, f"Ray agents left {RAY_AGENT_TIMEOUT} s after kill -9: {left}"


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="needs Linux /proc")
@pytest.mark.parametrize(("executor", "workers"), EXECUTORS)
def test_kill_9_at_a_random_moment_then_rerun_gives_identical_tables(
    spec, reference, tmp_path, executor, workers
):
    rng = np.random.default_rng([7, workers, len(executor)])
    out = tmp_path / "killed"
    token = uuid.uuid4().hex
    env = {**os.environ, "UIM_FAULT_TEST": token}
    proc = subprocess.Popen(
        command(spec, out, executor, workers), env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # a random moment: after a random number of finished runs, plus a random delay
    # that lands anywhere within a run (a run here takes ~0.5-1 s)
    wait_for = int(rng.integers(1, RUNS - 2))
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.glob("runs/*/run.json"))) < wait_for:
        time.sleep(0.02)
    time.sleep(float(rng.uniform(0, 0.6)))
    proc.send_signal(signal.SIGKILL)  # the runner only, as `kill -9 PID` does
    proc.wait()

    # nothing it started is left: worker processes die with it; Ray's raylet and workers
    # too, but its two agents first report the raylet's death to the (dead) GCS, with a
    # timeout of 60 s that Ray hard-codes, and exit then: the module's last check waits
    # for them (`ray_agents_exit_within_their_timeout`)
    killed = time.time()
    while [p for p in marked(token) if not _agent(p)] and time.time() < killed + 20:
        time.sleep(0.2)
    agents = {p: killed + RAY_AGENT_TIMEOUT for p in marked(token) if _agent(p)}
    if executor == "ray":
        LINGERING.update(agents)
    left = {pid: _cmdline(pid) for pid in marked(token) if pid not in LINGERING}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == {}, f"{executor}: processes left after kill -9: {left}"

    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")}
    assert 1 <= len(finished) < RUNS, "the kill should land mid-batch"
    assert bool(ray_folders(proc.pid)) == (executor == "ray")  # the kill left Ray's folder
    for folder in (out / "runs").iterdir():  # every visible run is complete
        assert folder.name.startswith(".tmp-") or (folder / "run.json").is_file()

    rerun = subprocess.run(
        command(spec, out, executor, workers), env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert f"{RUNS - len(finished)} run(s) computed, {len(finished)} resumed" in rerun.stdout
    for run_id, stamp in finished.items():  # finished runs were kept, not recomputed
        assert (out / "runs" / run_id / "run.json").stat().st_mtime_ns == stamp
    assert not list((out / "runs").glob(".tmp-*"))
    runs = pd.read_parquet(out / "runs.parquet")
    assert runs["run_id"].is_unique and len(runs) == RUNS
    same_bytes(reference, out)
    # a clean exit leaves nothing either (a local Ray's processes end a moment after it)
    ended = time.time()
    while (left := set(marked(token)) - set(LINGERING)) and time.time() < ended + 20:
        time.sleep(0.2)
    assert not left, f"{executor}: left after a clean rerun: { {p: _cmdline(p) for p in left} }"
    # the local Ray's folder the kill left is swept by the next local Ray
    assert ray_folders(proc.pid) == []


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(f"/tmp/uim-mount-probe-{uuid.uuid4().hex[:8]}")
    probe.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0  # fmt: skip
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()


needs_mount = pytest.mark.skipif(
    not _can_mount(), reason="needs root to mount a small tmpfs (the simulated test runs)"
)


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs at a folder; yields a function (size in bytes) → the mount."""
    mounts = []

    def mount(size: int, name: str = "disk") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       check=True)  # fmt: skip
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _size(path: Path) -> int:
    """Bytes on a tmpfs: whole 4 KiB pages per file."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in files)


def _cli(spec: Path, out: Path, capsys) -> SimpleNamespace:
    """`uim-sim run SPEC --out OUT` as a person types it, in this process (the command's
    own code path, without a second interpreter's start-up): its exit status and stderr."""
    from uim_sim.cli import main

    capsys.readouterr()
    code = main(["run", str(spec), "--out", str(out)])
    return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)


def _one_line_error(proc: SimpleNamespace, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _intact(out: Path, reference: Path) -> set[str]:
    """The finished runs in ``out``, each byte-identical to the reference's."""
    finished = {p.parent.name for p in out.glob("runs/*/run.json")}
    for run_id in finished:
        for name in ("metrics.parquet", "decisions.parquet", "run.json"):
            mine, theirs = out / "runs" / run_id / name, reference / "runs" / run_id / name
            assert filecmp.cmp(mine, theirs, shallow=False), (run_id, name)
    assert not list((out / "runs").glob(".tmp-*"))  # nothing half-written
    return finished


@needs_mount
def test_a_full_disk_stops_with_one_line_and_keeps_finished_runs(
    spec, reference, small_disk, tmp_path, capsys
):
    per_run = max(_size(f) for f in (reference / "runs").iterdir())
    disk = small_disk(_size(reference / "spec.yaml") + int(3.5 * per_run) + 8192)
    out = disk / "out"
    proc = _cli(spec, out, capsys)
    _one_line_error(proc, 1, "--out", "No space left on device", "intact")
    finished = _intact(out, reference)
    assert 1 <= len(finished) < RUNS

    # moved to a disk with room, the same command resumes and finishes
    roomy = tmp_path / "roomy"
    shutil.copytree(out, roomy)
    result = run_plan(plan(spec), roomy)
    assert (result.skipped, result.done) == (len(finished), RUNS - len(finished))
    same_bytes(reference, roomy)


@needs_mount
def test_a_read_only_folder_is_refused_before_anything_is_written(
    spec, reference, small_disk, capsys
):
    disk = small_disk(4 << 20)
    out = disk / "out"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "runs" / sorted(os.listdir(out / "runs"))[0])  # one run to do
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    proc = _cli(spec, out, capsys)
    _one_line_error(proc, 2, "--out", "Read-only file system")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    proc = _cli(spec, disk / "new", capsys)  # a folder that does not exist yet
    _one_line_error(proc, 2, "--out", "Read-only file system")
    assert not (disk / "new").exists()


def test_a_failing_write_leaves_nothing_half_written(spec, reference, tmp_path, monkeypatch):
    """The same path without a mount: the third run's write fails as a full disk does."""
    from uim_sim.run import store

    real = store.Store.write
    calls = {"n": 0}

    def failing(self, result):
        calls["n"] += 1
        if calls["n"] == 3:
            original = pd.DataFrame.to_parquet

            def full(frame, path, *args, **kwargs):
                if str(path).endswith("decisions.parquet"):
                    raise OSError(28, "No space left on device")
                return original(frame, path, *args, **kwargs)

            monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
            try:
                return real(self, result)
            finally:
                monkeypatch.setattr(pd.DataFrame, "to_parquet", original)
        return real(self, result)

    monkeypatch.setattr(store.Store, "write", failing)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=r"--out: .*No space left on device.*2 finished"):
        run_plan(plan(spec), out)
    assert len(_intact(out, reference)) == 2
    monkeypatch.setattr(store.Store, "write", real)
    assert run_plan(plan(spec), out).skipped == 2
    same_bytes(reference, out)


def test_a_write_a_kill_interrupted_is_not_a_finished_run(spec, reference, tmp_path):
    """A kill -9 between a run's files (execution.json empty, or run.json written but
    the folder not yet renamed into place) leaves a `.tmp-` folder: the rerun neither
    reads it (the numerics check read the empty JSON and crashed: a fresh clone's
    suite, once) nor counts it as a finished run."""
    from uim_sim.cli import main
    from uim_sim.run.store import Store

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    half = out / "runs" / ".tmp-killed-0000"
    half.mkdir()
    (half / "execution.json").write_text("")
    whole = out / "runs" / ".tmp-renamed-never"
    whole.mkdir()
    (whole / "run.json").write_text("{}")
    store = Store(out)
    assert not {n for n in store.finished() if n.startswith(".tmp-")}
    assert sum(v["runs"] for v in store.numerics().values()) == len(store.finished())
    assert main(["run", str(spec), "--out", str(out)]) in (0, None)
    same_bytes(reference, out)
