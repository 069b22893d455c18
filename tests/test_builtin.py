"""What the package ships is found by name after the user's own files (`uim_sim.builtin`),
listed with where it comes from, and copied into a study by `uim-sim init`; messages
name shipped files as ``builtin:…`` and extras as ``pip install 'uim-sim[…]'``."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from uim_sim import builtin
from uim_sim.cli import app
from uim_sim.run import plan
from uim_sim.schema import SpecError
from uim_sim.starter import STARTERS, init_study


def test_a_reference_finds_the_users_file_first_then_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = builtin.FOLDERS["scenarios"] / "hiring_audit.yaml"
    for ref in ("hiring_audit", "hiring_audit.yaml", "builtin:hiring_audit",
                "scenarios/hiring_audit.yaml"):  # fmt: skip
        assert builtin.resolve("scenarios", ref) == shipped, ref
    (tmp_path / "hiring_audit").mkdir()  # a folder of that name (a study) hides nothing
    assert builtin.resolve("scenarios", "hiring_audit") == shipped
    (tmp_path / "scenarios").mkdir()
    own = tmp_path / "scenarios" / "hiring_audit.yaml"
    own.write_text("name: mine\n")
    assert builtin.resolve("scenarios", "scenarios/hiring_audit.yaml").resolve() == own
    assert builtin.resolve("scenarios", "builtin:hiring_audit") == shipped  # only ours
    # another folder of the user's is not guessed at; a missing name stays as given
    assert builtin.resolve("scenarios", "elsewhere/hiring_audit.yaml").parts[0] == "elsewhere"
    assert builtin.find("scenarios", "../scenarios/hiring_audit.yaml") is None
    assert builtin.find("cards", "x" * 300) is None  # not a file name: no OSError


def test_a_local_card_shadows_the_shipped_one_and_list_says_so(tmp_path, monkeypatch):
    # a folder of its own: an agents/ beside the spec's folder is searched first, and
    # the temporary folder's parent is shared with other tests
    project = tmp_path / "project"
    (project / "agents").mkdir(parents=True)
    monkeypatch.chdir(project)
    mine = (builtin.FOLDERS["cards"] / "minilm_zero_shot.yaml").read_text()
    (project / "agents" / "minilm_zero_shot.yaml").write_text(
        mine.replace("name: minilm_zero_shot", "name: my_zero_shot")
    )
    spec = {"name": "t", "world": "hiring", "seed": 1, "replicates": 1,
            "cards": ["minilm_zero_shot", "minilm_fair_history"], "arms": [[]],
            "params": {"mode": "audit", "n_jobs": 2, "n_history": 100}}  # fmt: skip
    the_plan = plan(spec)
    assert [c.name for c in the_plan.cards.values()] == ["my_zero_shot", "minilm_fair_history"]
    listed = CliRunner().invoke(app, ["list", "cards"], terminal_width=400).output
    assert "shadows the built-in minilm_zero_shot" in listed
    assert "minilm_fair_history" in listed and "(built-in)" in listed


def test_builtin_card_names_only_the_shipped_card(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {"name": "t", "world": "hiring", "seed": 1, "replicates": 1,
            "cards": ["builtin:minilm_zero_sho"], "arms": [[]],
            "params": {"mode": "audit", "n_jobs": 2}}  # fmt: skip
    with pytest.raises(SpecError, match="did you mean builtin:minilm_zero_shot"):
        plan(spec)


def test_messages_name_shipped_files_as_builtin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = builtin.FOLDERS["scenarios"] / "reproduce" / "bommasani.yaml"
    assert builtin.shown(shipped) == "builtin:scenarios/reproduce/bommasani.yaml"
    assert builtin.shown(tmp_path / "a" / "b.yaml") == "a/b.yaml"  # inside the folder
    assert builtin.shown("x/y.yaml") == "x/y.yaml"  # as the user gave it
    bad = yaml.safe_load(shipped.read_text())
    bad["params"]["n_employers"] = -1
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(SpecError, match=r"^bad.yaml: params"):
        plan(tmp_path / "bad.yaml")


def test_every_shipped_reference_resolves_in_an_empty_folder(tmp_path, monkeypatch):
    """The reproduce scenarios, the label-noise study's default card and a parameter's
    shipped data file are read from the package, not from the working folder."""
    from uim_sim import reproduce
    from uim_sim.understand.label_noise import DEFAULT_CARD, _base_card
    from uim_sim.worlds.moderation.evalset import read_table

    monkeypatch.chdir(tmp_path)
    for study in reproduce.STUDIES:
        if study.scenario:
            assert (reproduce.SCENARIOS / study.scenario).is_file()
    assert (reproduce.SCENARIOS / "bertrand_mullainathan.yaml").is_file()
    assert _base_card(DEFAULT_CARD, None).name
    assert len(read_table("scenarios/data/moderation_eval.csv")) > 0


def test_init_copies_a_study_that_validates_and_refuses_a_used_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files, command = init_study(tmp_path / "s", "moderation_eval_file")
    names = sorted(p.relative_to(tmp_path / "s").as_posix() for p in files)
    assert names == ["README.md", "agents/minilm_moderation_biased_history.yaml",
                     "agents/minilm_moderation_fair_history.yaml",
                     "agents/minilm_moderation_zero_shot.yaml", "data/moderation_eval.csv",
                     "moderation_eval_file.yaml"]  # fmt: skip
    spec = yaml.safe_load((tmp_path / "s" / "moderation_eval_file.yaml").read_text())
    assert spec["params"]["eval_file"] == f"{tmp_path}/s/data/moderation_eval.csv"  # its copy
    assert command.startswith("uim-sim run ")
    runner = CliRunner()
    used = runner.invoke(app, ["init", str(tmp_path / "s")])
    assert used.exit_code == 2 and "not an empty folder" in used.output
    unknown = runner.invoke(app, ["init", str(tmp_path / "t"), "--from", "hiringg"])
    assert unknown.exit_code == 2 and "--from: no world or shipped scenario" in unknown.output
    assert not (tmp_path / "t").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no scratch folder left


@pytest.mark.parametrize("world", sorted(STARTERS))
def test_each_worlds_starting_study_copies_whole(world, tmp_path):
    files, _ = init_study(tmp_path / world, world)
    spec = yaml.safe_load(files[1].read_text()) if files[1].suffix == ".yaml" else None
    copied = {p.stem for p in (tmp_path / world / "agents").glob("*.yaml")}
    assert spec is not None and set(spec["cards"]) <= copied


def test_extras_are_named_as_an_installed_package_names_them(monkeypatch):
    import importlib.util

    from uim_sim.page import check_installed

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "pip install 'uim-sim[page]'" in check_installed()
