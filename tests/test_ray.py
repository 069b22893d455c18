"""The Ray executor (`--executor ray`): the same tables byte for byte as the serial and
process executors, each model loaded once per worker, forged checkpoints shipped
through the object store, and Ctrl-C leaving only finished runs.

Needs the ray extra (``pip install 'uim-sim[ray]'``); skipped without it. The module
starts one local Ray (~4 s) that its in-process tests share."""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import forged_zero_shot_card, ray_folders, small_audit_spec, write_yaml

ray = pytest.importorskip("ray")

from uim_sim.lfm.device import bf16_support  # noqa: E402
from uim_sim.run import plan, run_plan  # noqa: E402
from uim_sim.run.executors import Folder  # noqa: E402
from uim_sim.run.ray_executor import RayExecutor, session, ship  # noqa: E402
from uim_sim.run.store import RESULT_FILES  # noqa: E402

pytestmark = pytest.mark.ray

QUICK = {"null_permutations": 1, "name_permutations": 50}  # ~0.3 s a run
TINY_CORPUS = {  # forged in a few seconds (tests/test_forge_probe.py's recipe)
    "name": "tiny_corpus",
    "seed": 1,
    "sentences": 1500,
    "model": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32},
    "training": {"steps": 15, "batch_size": 32},
}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for the module: run_plan uses a connection already open."""
    with session():
        yield


def same_bytes(a: Path, b: Path) -> None:
    for name in RESULT_FILES:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


def loads(out: Path) -> int:
    return int(pd.read_parquet(out / "execution.parquet")["model_loads"].sum())


def test_serial_process_and_ray_give_byte_identical_tables(project, cluster, tmp_path):
    """Two cards on one checkpoint × two seeds: the runs share resumes, so each worker's
    cache holds texts other runs encoded (tests/test_faults.py, 8 runs, compares
    serial and process after a kill too). In ``precision: auto``: bf16 where the CPU
    has it natively (then fidelity's fp32 twin too), else fp32."""
    spec = write_yaml(
        project / "scenarios" / "tiny.yaml",
        small_audit_spec(arms=[[]], statistics=QUICK, precision="auto"),
    )
    the_plan = plan(spec)  # loads the tiny checkpoint here: the serial runs load nothing
    serial, pool, on_ray = tmp_path / "serial", tmp_path / "process", tmp_path / "ray"
    assert run_plan(the_plan, serial).done == 4
    assert run_plan(the_plan, pool, workers=2, executor="process").done == 4
    assert run_plan(the_plan, on_ray, workers=2, executor="ray").done == 4
    same_bytes(serial, pool)
    same_bytes(serial, on_ray)
    # one checkpoint, two workers: each loads it once, not once per run (in bf16 with
    # its fp32 twin, once a process too)
    precision = "bf16" if bf16_support() else "fp32"
    each = 2 if precision == "bf16" else 1
    assert loads(serial) == each - 1
    assert each <= loads(pool) <= 2 * each
    assert each <= loads(on_ray) <= 2 * each
    assert run_plan(the_plan, on_ray, executor="ray").skipped == 4  # resumed: no run again
    same_bytes(serial, on_ray)
    assert set(pd.read_parquet(on_ray / "execution.parquet")["precision"]) == {precision}


def test_forged_checkpoints_ship_through_the_object_store(project, cluster, tmp_path):
    forged_zero_shot_card(project, TINY_CORPUS)
    spec = write_yaml(
        project / "scenarios" / "forged.yaml",
        small_audit_spec(
            cards=["forged"],
            arms=[[]],
            params={"mode": "audit", "n_jobs": 4},
            statistics=QUICK,
        ),
    )
    the_plan = plan(spec)
    serial, shipped = tmp_path / "serial", tmp_path / "shipped"
    assert run_plan(the_plan, serial).done == 2
    assert run_plan(the_plan, shipped, executor=RayExecutor(2, ship=True)).done == 2
    same_bytes(serial, shipped)
    runs = pd.read_parquet(shipped / "runs.parquet")
    assert runs["checkpoint"].str.startswith("checkpoints/tiny_corpus-").all()

    # what a worker gets: the same files under the same two last names, elsewhere
    [forged] = (shipped / "checkpoints").iterdir()
    copy = ship(Folder(str(forged))).local()
    assert copy != forged and (copy.parent.name, copy.name) == ("checkpoints", forged.name)
    names = sorted(p.name for p in forged.iterdir())
    assert names == sorted(p.name for p in copy.iterdir())
    assert filecmp.cmpfiles(forged, copy, names, shallow=False)[0] == names
    shutil.rmtree(copy.parents[1])


def processes_in_group(pgid: int) -> list[str]:
    """The processes of a process group (Linux /proc): what a terminal's Ctrl-C reaches."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:
            found.append(stat.parent.name)
    return found


def test_ctrl_c_cancels_the_rest_and_keeps_finished_runs(project, tmp_path):
    spec = write_yaml(
        project / "scenarios" / "tiny.yaml",
        small_audit_spec(replicates=6, arms=[[]], statistics=QUICK),
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "uim_sim.cli", "run", str(spec), "--out", str(out),
           "--executor", "ray", "--workers", "1"]  # fmt: skip
    # a session of its own: Ctrl-C in a terminal signals the whole group (Ray's too)
    # SIGINT as a terminal's foreground job has it: a suite started in the background of
    # a non-interactive shell (`make test &`) passes SIGINT ignored to its children, and
    # a Python started with SIGINT ignored never raises KeyboardInterrupt
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "runs").glob("*/run.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "interrupted: finished runs are kept" in output
    finished = {p.parent.name for p in (out / "runs").glob("*/run.json")}
    assert 1 <= len(finished) < 12, "the interrupt should land mid-batch"
    assert sorted(os.listdir(out / "runs")) == sorted(finished)  # nothing half-written
    assert ray_folders(proc.pid) == []  # the local Ray's folder is gone
    if Path("/proc/self/stat").is_file():
        assert processes_in_group(proc.pid) == []  # and so are its processes
    result = run_plan(plan(spec), out)
    assert (result.skipped, result.done) == (len(finished), 12 - len(finished))
