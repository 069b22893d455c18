"""The notebooks of ``analysis/`` (Jupytext percent files) run as notebooks, through a
Jupyter kernel, against small result folders made here, so that they cannot rot: what
each recomputes by hand from the tidy tables equals what `uim-sim report` wrote for the
same folder. Without a result folder, each names the command that makes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, forged_zero_shot_card, write_yaml
from test_forge_probe import TINY  # the smallest forge the tests use (~1 s)

from uim_sim.cli import main

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")  # the kernel (the test extra has all four)

ANALYSIS = ROOT / "analysis"
NOTEBOOKS = ("demo_headline", "compare_interventions", "dose_response")
AUDIT = {
    "name": "notebook_audit",
    "world": "hiring",
    "seed": 9,
    "replicates": 2,
    "cards": ["minilm_zero_shot"],
    "arms": [[], ["name_redaction"], ["group_thresholds"]],
    "params": {"mode": "audit", "n_jobs": 4, "n_history": 100},
    "statistics": {"null_permutations": 1, "name_permutations": 20},
}
DOSE = {
    "name": "notebook_dose",
    "world": "hiring",
    "seed": 2,
    "replicates": 1,
    "cards": ["forged", "minilm_zero_shot"],
    # female: the tiny forges give women impact ratios below 1 at one dose, not black
    # applicants (the curve is then not flat at 1)
    "params": {"mode": "audit", "n_jobs": 4, "disadvantaged": "female"},
    # two forging seeds a dose: the interval runs over checkpoints
    "grid": {"corpus.knobs.association_skew": [0.0, 0.9], "corpus.seed": [1, 2]},
    "statistics": {"null_permutations": 0, "name_permutations": 0},
}


def _run_and_report(spec: Path, out: Path) -> Path:
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A hiring audit with two mitigation arms, and a dose-response over four forges."""
    root = tmp_path_factory.mktemp("notebooks")
    forged_zero_shot_card(root, TINY)
    audit = _run_and_report(write_yaml(root / "scenarios" / "audit.yaml", AUDIT), root / "audit")
    dose = _run_and_report(write_yaml(root / "scenarios" / "dose.yaml", DOSE), root / "dose")
    return {"audit": audit, "dose": dose}


@pytest.fixture(scope="module")
def kernel():
    """One Jupyter kernel of this Python (ipykernel's ``python3``) for the module's
    notebooks, started in the project's root; each notebook starts from a clean
    namespace (the imports stay loaded: a kernel and its imports cost seconds)."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    manager = AsyncKernelManager(kernel_name="python3")
    run_sync(manager.start_kernel)(cwd=str(ROOT), env={**os.environ, "OMP_NUM_THREADS": "1"})
    yield manager
    run_sync(manager.shutdown_kernel)(now=True)


def _execute(name: str, results: Path, save: Path, kernel) -> None:
    """Run the notebook in the kernel, its environment variables set first."""
    notebook = jupytext.read(ANALYSIS / f"{name}.py")
    env = {"UIM_SIM_RESULTS": str(results), "UIM_SIM_NOTEBOOK_OUT": str(save)}
    setup = f"%reset -f\nimport os\nos.environ.update({env!r})"
    notebook.cells.insert(0, nbformat.v4.new_code_cell(setup))
    nbclient.NotebookClient(notebook, km=kernel, timeout=120).execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors


def _close(mine: pd.DataFrame, theirs: pd.DataFrame, columns: list[tuple[str, str]]) -> None:
    for a, b in columns:
        assert np.allclose(mine[a].to_numpy(float), theirs[b].to_numpy(float), rtol=1e-9,
                           atol=1e-12, equal_nan=True), (a, mine[a], theirs[b])  # fmt: skip


def test_demo_headline_redoes_the_reports_headline(folders, tmp_path, kernel):
    _execute("demo_headline", folders["audit"], tmp_path, kernel)
    mine = pd.read_csv(tmp_path / "headline.csv")
    report = pd.read_csv(folders["audit"] / "report" / "summary.csv")
    assert list(mine["condition"]) == list(report["condition"])
    _close(mine, report, [("impact_ratio", "impact_ratio"), ("ci_low", "impact_ratio_low"),
                          ("ci_high", "impact_ratio_high")])  # fmt: skip
    assert list(mine["seeds"]) == list(report["runs"]) == [2, 2, 2]
    assert (tmp_path / "impact_ratio.png").stat().st_size > 0


def test_compare_interventions_pairs_seeds_as_the_report_does(folders, tmp_path, kernel):
    _execute("compare_interventions", folders["audit"], tmp_path, kernel)
    mine = pd.read_csv(tmp_path / "paired.csv")
    report = pd.read_csv(folders["audit"] / "report" / "interventions.csv")
    assert list(zip(mine["card"], mine["arm"])) == list(zip(report["card"], report["arm"]))
    columns = [f"d_{m}{s}" for m in ("harm", "utility") for s in ("", "_low", "_high")]
    _close(mine, report, [(c, c) for c in columns])
    head_to_head = pd.read_csv(tmp_path / "head_to_head.csv")
    assert list(head_to_head["arms"]) == ["name_redaction − group_thresholds"]


def test_dose_response_redoes_the_reports_curve(folders, tmp_path, kernel):
    _execute("dose_response", folders["dose"], tmp_path, kernel)
    mine = pd.read_csv(tmp_path / "dose_response.csv")
    report = pd.read_csv(folders["dose"] / "report" / "dose_response.csv")
    knob = "corpus.knobs.association_skew"
    assert list(zip(mine["curve"], mine[knob])) == list(zip(report["card"], report[knob]))
    assert list(mine["checkpoints"]) == [2, 2]  # the checkpoint is the unit
    _close(mine, report, [(c, c) for c in ("impact_ratio", "ci_low", "ci_high", "gap",
                                           "probe.mlm_gap_nats")])  # fmt: skip
    assert mine["impact_ratio"].min() < 1 and mine["gap"].abs().max() > 0  # not flat
    assert pd.read_csv(tmp_path / "correlation.csv")["checkpoints"].tolist() == [4]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_without_results_a_notebook_names_the_command_that_makes_them(name, tmp_path):
    env = {"UIM_SIM_RESULTS": str(tmp_path / "nothing"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(ANALYSIS / f"{name}.py")], env=env,
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 1
    assert (
        f"--out {tmp_path / 'nothing'}`" in done.stderr and "uim-sim run scenarios/" in done.stderr
    )
