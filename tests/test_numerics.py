"""Numerics: MKL asked for strict reproducibility, the fingerprint each run records,
and the one-line notice when a result folder is resumed under another fingerprint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.lfm import numerics


@pytest.mark.parametrize(
    ("given", "becomes"),
    [(None, "AUTO,STRICT"), ("AVX2", "AVX2,STRICT"), ("COMPATIBLE,STRICT", "COMPATIBLE,STRICT"),
     ("STRICT", "AUTO,STRICT")],
)  # fmt: skip
def test_mkl_is_asked_for_strict_reproducibility_on_the_users_branch(given, becomes, monkeypatch):
    if given is None:
        monkeypatch.delenv("MKL_CBWR", raising=False)
    else:
        monkeypatch.setenv("MKL_CBWR", given)
    numerics.request_reproducible()
    assert os.environ["MKL_CBWR"] == becomes


def test_this_process_computes_in_strict_mode():
    from uim_sim.lfm.engine import get_engine

    get_engine("builtin:minilm")
    mode = numerics.mkl_mode()
    assert mode == "none" or mode.endswith(" strict"), mode


def test_torch_computing_before_uim_sim_is_a_warning_and_in_the_fingerprint():
    """MKL fixes its mode on its first call: asked too late, the engine warns."""
    code = (
        "import torch; a = torch.ones(64, 64); a @ a\n"
        "import warnings, uim_sim\n"
        "from uim_sim.lfm import numerics\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    ok = numerics.ensure_reproducible()\n"
        "print(ok, numerics.mkl_mode(), [str(x.message)[:40] for x in w])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout  # fmt: skip
    if "none" in out:
        pytest.skip("this torch has no MKL")
    assert out.startswith("False") and "(not strict)" in out and "MKL computed before" in out


# the kernels of another machine: an Arm path no x86 CPU takes (AVX2 would be this very
# machine's under the kernel settings of tests/test_other_machine.py)
ELSEWHERE = "SVE256"


def test_the_fingerprint_hashes_libraries_and_kernels_not_threads_or_the_cpus_name():
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = numerics.fingerprint()
        torch.set_num_threads(2)
        two = numerics.fingerprint()
    finally:
        torch.set_num_threads(threads)
    assert (one["threads"], two["threads"]) == (1, 2) and one["numerics"] == two["numerics"]
    for key in ("torch", "torch_cpu_capability", "mkl", "blas", "device", "dtype", "cpu"):
        assert key in one
    other = {**one, "torch_cpu_capability": ELSEWHERE}
    assert (
        numerics.differences(other, one)
        == f"torch_cpu_capability: {ELSEWHERE} → {one['torch_cpu_capability']}"
    )


@pytest.fixture
def finished(project, tmp_path):
    """A finished tiny audit (2 runs: two arms, one seed) and its spec."""
    spec = write_yaml(project / "scenarios" / "tiny.yaml",
                      small_audit_spec(replicates=1, cards=["tiny_zero_shot"]))  # fmt: skip
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--agents-dir",
                 str(project / "agents")]) in (0, None)  # fmt: skip
    return spec, out


def _as_if_another_machine(out) -> None:
    for timing in (out / "runs").glob("*/execution.json"):
        row = json.loads(timing.read_text())
        row.update({"numerics": "0123456789ab", "numerics.torch_cpu_capability": ELSEWHERE})
        timing.write_text(json.dumps(row))


def test_each_run_records_its_numerics_and_the_report_names_them(finished):
    _, out = finished
    execution = pd.read_parquet(out / "execution.parquet")
    here = numerics.fingerprint()
    assert (execution["numerics"] == here["numerics"]).all()
    assert (execution["numerics.mkl"] == here["mkl"]).all()
    assert main(["report", str(out)]) in (0, None)
    summary = (out / "report" / "summary.md").read_text()
    assert f"numerics `{here['numerics']}`" in summary and "several" not in summary


def test_a_resume_under_another_fingerprint_says_so_and_strict_refuses(finished, project, capsys):
    spec, out = finished
    _as_if_another_machine(out)
    more = write_yaml(project / "scenarios" / "more.yaml",
                      small_audit_spec(replicates=2, cards=["tiny_zero_shot"]))  # fmt: skip
    args = ["run", str(more), "--out", str(out), "--agents-dir", str(project / "agents")]
    before = sorted(p.name for p in (out / "runs").iterdir())
    assert main([*args, "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--strict" in err
    assert f"torch_cpu_capability: {ELSEWHERE} →" in err
    assert sorted(p.name for p in (out / "runs").iterdir()) == before  # nothing written
    assert main(args) in (0, None)
    err = capsys.readouterr().err
    assert "note:" in err and "2 finished run(s) were computed under another numerics" in err
    assert len(list((out / "runs").iterdir())) == 4
    assert main(["report", str(out)]) in (0, None)
    assert "2 numerics fingerprints" in (out / "report" / "summary.md").read_text()
