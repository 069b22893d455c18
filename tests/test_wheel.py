"""The package as a researcher installs it: a wheel built from this tree, installed into
a fresh virtualenv outside the checkout, used from an empty folder. Everything the
package ships (scenarios, agent cards, corpus cards, their data) must come from the
wheel: ``uim-sim list`` names them, ``uim-sim init`` copies a study, which runs and is
reported.

The fresh environment takes its dependencies (torch, transformers, ...) from the test
environment through a ``.pth`` line, so that nothing is downloaded; uim_sim itself is
only the wheel's (the test environment's editable install is not read: a ``.pth``
file in a folder a ``.pth`` line adds is not executed)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the fresh virtualenv's bin folder, the environment to run it in)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    wheels = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "--wheel-dir", str(wheels), str(ROOT)], base, env)  # fmt: skip
    (wheel,) = wheels.glob("uim_sim-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   base, env).stdout.strip()  # fmt: skip
    deps = sysconfig.get_paths()["purelib"]  # this environment's packages, after the venv's
    (Path(purelib) / "_test_dependencies.pth").write_text(deps + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-deps", "--no-index", str(wheel)], base, env)  # fmt: skip
    return venv / "bin", env


def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    bin_, env = installed
    where = _run([str(bin_ / "python"), "-c", "import uim_sim; print(uim_sim.__file__)"],
                 tmp_path, env).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(bin_.parent), where
    assert not Path(where).is_relative_to(ROOT)
    shipped = Path(where).parent / "builtin"  # data files a scenario or card reads, too
    for data in (
        "scenarios/data/moderation_eval.csv",
        "agents/data/example_decisions.csv",
        "scenarios/reproduce/bertrand_mullainathan.yaml",
        "corpora/label_noise.yaml",
    ):
        assert (shipped / data).is_file(), data  # fmt: skip


def test_list_names_what_the_wheel_ships(installed, tmp_path):
    bin_, env = installed
    listed = _run([str(bin_ / "uim-sim"), "list"], tmp_path, env).stdout
    for name in ("hiring_audit", "reproduce/bertrand_mullainathan", "minilm_zero_shot",
                 "people_records", "name_redaction"):  # fmt: skip
        assert name in listed, name
    assert "(built-in)" in listed


def test_builtin_scenarios_validate_by_name_and_by_the_checkout_path(installed, tmp_path):
    bin_, env = installed
    uim = str(bin_ / "uim-sim")
    # the path a checkout has (a name with the prefix, and a shipped data file read from
    # the package: tests/test_builtin.py, in this process)
    for ref in ("scenarios/reproduce/bertrand_mullainathan.yaml",):
        out = _run([uim, "validate", ref], tmp_path, env).stdout
        assert out.startswith("ok builtin:scenarios/"), out
    missing = _run([uim, "validate", "builtin:no_such_scenario"], tmp_path, env, check=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())  # validating wrote nothing


def test_init_then_run_and_report_a_study_from_an_empty_folder(installed, tmp_path):
    bin_, env = installed
    uim = str(bin_ / "uim-sim")
    said = _run([uim, "init", "study"], tmp_path, env).stdout
    assert "uim-sim run study/hiring_audit.yaml --out study/results" in said
    study = tmp_path / "study"
    assert (study / "README.md").is_file() and (
        study / "agents" / "minilm_zero_shot.yaml"
    ).is_file()
    # a tiny version of the study: one card (the copy, edited), one arm, two seeds
    spec = yaml.safe_load((study / "hiring_audit.yaml").read_text())
    spec.update(cards=["minilm_zero_shot"], arms=[[]], replicates=2,
                statistics={"null_permutations": 0, "name_permutations": 0})  # fmt: skip
    spec["params"].update(n_jobs=4, n_history=100)
    (study / "hiring_audit.yaml").write_text(yaml.safe_dump(spec))
    card = study / "agents" / "minilm_zero_shot.yaml"
    card.write_text(card.read_text().replace("name: minilm_zero_shot", "name: my_screener"))
    _run([uim, "run", "study/hiring_audit.yaml", "--out", "study/results"], tmp_path, env)
    report = _run([uim, "report", "study/results"], tmp_path, env).stdout
    assert "my_screener" in report  # the study's own copy of the card, not the shipped one
    assert (study / "results" / "report" / "index.html").is_file()
    again = _run([uim, "init", "study"], tmp_path, env, check=False)
    assert again.returncode == 2 and "not an empty folder" in again.stderr
