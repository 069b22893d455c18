"""Worlds from other packages, and the rules every world keeps (`check_world`).

``tests/worlds/lending`` is a researcher's world as they would ship it: its own
pyproject with one ``uim_sim.worlds`` entry point. It is installed with pip into a
folder of its own (the project's environment stays as it was) and driven through the
CLI in a child process that has the folder on its path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, write_yaml

from uim_sim import worlds
from uim_sim.cards import AgentCard, HeadSpec
from uim_sim.cli import main
from uim_sim.worlds import BUILT_IN, WorldCheckError, check_world, world_info, world_problems
from uim_sim.worlds.base import ScreeningWorld

LENDING = ROOT / "tests" / "worlds" / "lending"


@pytest.fixture(scope="module")
def lending(tmp_path_factory):
    """The lending package installed with pip (into a target folder), and its module."""
    source = shutil.copytree(LENDING, tmp_path_factory.mktemp("src") / "lending")
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(target.glob("uim_lending-*.dist-info/entry_points.txt"))
    sys.path.insert(0, str(target))
    try:
        import uim_lending

        yield {"site": target, "module": uim_lending}
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("uim_lending", None)


def cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "uim_sim.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def tiny(checkpoint: Path) -> AgentCard:
    return AgentCard(name="tiny", checkpoint=str(checkpoint), head=HeadSpec(kind="zero_shot"))


@pytest.fixture
def registered(lending):
    """The registry as a process with the package on its path builds it (the entry
    points read again), for the in-process CLI calls below; restored after."""
    before = dict(worlds.WORLDS)
    worlds.WORLDS.update(worlds._declared())  # modules hold this dict: update it in place
    yield
    worlds.WORLDS.clear()
    worlds.WORLDS.update(before)


def test_a_fresh_process_finds_the_world_through_its_entry_point(lending):
    listed = cli(lending["site"], "list", "worlds")
    assert listed.returncode == 0, listed.stderr
    assert "lending" in listed.stdout and "loan desk" in listed.stdout.lower()
    assert "lending" not in worlds.WORLDS  # not on this process's path when it started


def test_a_world_from_another_package_is_checked_run_and_reported(
    registered, project, tmp_path, capsys, monkeypatch
):
    assert worlds.WORLDS["lending"] == "uim_lending"
    assert main(["check-world", "lending", "-p", "n_applicants=8"]) == 0
    assert "ok lending" in capsys.readouterr().out
    assert main(["check-world", "lending", "-p", "n_wizards=1"]) == 2
    assert "--param: n_wizards: unknown field" in capsys.readouterr().err
    spec = write_yaml(project / "scenarios" / "lending.yaml", {
        "name": "lending", "world": "lending", "seed": 1, "replicates": 2,
        "cards": ["tiny_zero_shot"], "arms": [[], ["group_thresholds"]],
        "params": {"n_applicants": 12, "n_rounds": 2},
        "statistics": {"null_permutations": 0, "name_permutations": 0},
    })  # fmt: skip
    monkeypatch.chdir(project)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    runs = pd.read_parquet(out / "runs.parquet")
    assert set(runs["world"]) == {"lending"} and len(runs) == 4
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert set(decisions["group"]) == {"black", "white"} and len(decisions) == 4 * 2 * 12
    assert main(["report", str(out)]) == 0
    summary = (out / "report" / "summary.md").read_text()
    assert "Loan desk" in summary and "Impact ratio (black)" in summary


def test_without_the_package_the_world_is_unknown_in_one_line(project, tmp_path, capsys):
    spec = {"name": "lending", "world": "lending", "cards": ["tiny_zero_shot"]}
    spec = write_yaml(project / "scenarios" / "lending.yaml", spec)
    assert main(["run", str(spec), "--out", str(tmp_path / "none")]) == 2
    assert "unknown world 'lending'" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_the_outside_world_keeps_the_rules_and_a_broken_copy_is_named(lending, tiny_checkpoint):
    desk = lending["module"].LoanDesk
    small = {"n_applicants": 8, "cards": tiny(tiny_checkpoint)}
    check_world(desk, **small)
    check_world(lending["module"].WORLD, **small)

    class NeverEnds(desk):
        def step(self):
            super().step()
            self.running = True

    class Unscalar(desk):
        def measure(self):
            return {**super().measure(), "approval_rate": [0.5, 0.5]}

    class NoGroup(desk):
        def decision_table(self):
            return super().decision_table().drop(columns="group")

    class Undeclared(desk):
        def measures(self):
            return {"approval_rate": ("black", "white")}

    class OwnStep(desk):  # the step written out, as before the base world's step
        act = ScreeningWorld.act

        def step(self):
            desk.act(self)
            self.datacollector.collect(self)

    class Unaudited(desk):  # audited, but not told what an audit reads
        hooks = desk.hooks | {"audit"}

    broken = {
        NeverEnds: "running: still True after 20 steps",
        Unscalar: "'approval_rate[black]' failed validation",  # Mesa's own check, at step 0
        NoGroup: "decision table: missing column(s) group",
        Undeclared: "measure(): 'impact_ratio' is not declared by measures()",
        OwnStep: "act: not implemented (what the world does in one step",
        Unaudited: "audited: not implemented",
    }
    for world, rule in broken.items():
        with pytest.raises(WorldCheckError) as caught:
            check_world(world, max_steps=20, **small)
        lines = str(caught.value).splitlines()
        assert any(rule in line for line in lines), (world.__name__, lines)
        assert all(line.startswith(f"{world.__name__}: ") for line in lines)


def test_the_built_in_worlds_keep_the_rules(tiny_checkpoint):
    from test_mesa import SMALL, tiny_card

    for name in BUILT_IN:
        for model in world_info(name).models.values():
            card = tiny_card(tiny_checkpoint, model)
            assert world_problems(model, **SMALL[model], cards=card) == [], model.__name__


def test_a_class_that_is_not_a_world_is_one_line():
    assert world_problems(dict) == [
        "dict: not a subclass of uim_sim.worlds.base.ScreeningWorld (a mesa.Model)"
    ]
