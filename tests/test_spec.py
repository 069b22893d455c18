"""Every user-facing input is validated: one line naming the field, exit 2, nothing written."""

from __future__ import annotations

import pytest
from conftest import small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cards import load_card
from uim_sim.cli import app, main
from uim_sim.run import plan
from uim_sim.schema import SpecError

runner = CliRunner()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"replicates": 0}, "replicates"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"params": {"mode": "audit", "n_jobs": -1}}, "params.n_jobs"),
        (
            {"params": {"mode": "market", "n_employers": 2, "applications_per_round": 3}},
            "applications_per_round",
        ),
        ({"grid": {"n_wizards": [1, 2]}}, "n_wizards"),
        ({"grid": {"n_jobs": [4, 0]}}, "grid.n_jobs=0: n_jobs: Input should be greater"),
        ({"cards": ["no_such_card"]}, "no card named 'no_such_card'"),
        ({"arms": [["teleport"]]}, "unknown mitigation 'teleport'"),
        (
            {"arms": [[{"name": "name_redaction", "params": {"colour": 1}}]]},
            "arms.0.0.params: colour: unknown field",
        ),
        ({"world": "mars"}, "world"),
    ],
)
def test_bad_spec_names_the_field(project, change, field):
    path = write_yaml(project / "scenarios" / "bad.yaml", small_audit_spec(**change))
    with pytest.raises(SpecError) as err:
        plan(path)
    message = str(err.value)
    assert "\n" not in message
    assert field in message
    assert str(path) in message


def test_bad_card_names_the_field(project):
    card = write_yaml(
        project / "agents" / "broken.yaml",
        {"name": "broken", "head": {"kind": "logistic"}, "decision": {"share": 1.5}},
    )
    with pytest.raises(SpecError, match=r"broken.yaml: head: a logistic head needs train_on"):
        load_card(card)
    write_yaml(card, {"name": "broken", "head": {"kind": "zero_shot"}, "decision": {"share": 1.5}})
    with pytest.raises(SpecError, match=r"decision.share: Input should be less than or equal to 1"):
        load_card(card)


def test_invalid_yaml_is_one_line(project):
    path = project / "scenarios" / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        plan(path)


def test_cli_bad_spec_exits_2_and_writes_nothing(project):
    path = write_yaml(project / "scenarios" / "bad.yaml", small_audit_spec(replicates=-3))
    out = project / "results"
    for args in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "replicates" in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--workers", "0"], "--workers"), (["--colour", "red"], "--colour"), ([], "--out")],
)
def test_cli_bad_flag_is_one_line_and_exits_2(project, capsys, args, field):
    path = write_yaml(project / "scenarios" / "ok.yaml", small_audit_spec())
    out = ["--out", str(project / "o")] if field != "--out" else []
    assert main(["run", str(path), *out, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1
    assert not (project / "o").exists()


def test_valid_spec_expands_the_grid(project):
    path = write_yaml(
        project / "scenarios" / "ok.yaml",
        small_audit_spec(grid={"n_jobs": [4, 8]}, replicates=3),
    )
    the_plan = plan(path)
    assert len(the_plan.tasks) == 2 * 2 * 2 * 3  # cards × arms × grid × replicates
    assert len({t.run_id for t in the_plan.tasks}) == len(the_plan.tasks)
    # arms of one replicate share a seed: paired comparisons (common random numbers)
    seeds = {(t.replicate, t.seed) for t in the_plan.tasks}
    assert len(seeds) == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"arms": [[], ["human_review"]]}, "review hook (system stage), which the hiring"),
        (
            {"cards": ["tiny_zero_shot"], "arms": [["inlp"]]},
            "card tiny_zero_shot's zero_shot head is not trained",
        ),
        ({"arms": [["dixon_augmentation"]]}, "needs a supplement"),
    ],
)
def test_a_mitigation_that_cannot_act_is_refused_with_the_reason(project, change, reason):
    path = write_yaml(project / "scenarios" / "noop.yaml", small_audit_spec(**change))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert reason in result.output and "arms." in result.output


def test_an_arm_limited_to_the_cards_it_acts_on_is_accepted(project):
    arm = {"apply": ["inlp"], "cards": ["tiny_biased_history"]}
    path = write_yaml(project / "scenarios" / "ok.yaml", small_audit_spec(arms=[[], arm]))
    the_plan = plan(path)
    assert {(t.card.name, t.arm) for t in the_plan.tasks} == {
        ("tiny_zero_shot", "none"), ("tiny_biased_history", "none"),
        ("tiny_biased_history", "inlp"),
    }  # fmt: skip
    bad = write_yaml(
        project / "scenarios" / "bad.yaml",
        small_audit_spec(arms=[{"apply": ["inlp"], "cards": ["nobody"]}]),
    )
    with pytest.raises(SpecError, match=r"arms.0.cards: \[.nobody.\] not among"):
        plan(bad)


def test_renamed_spec_keys_still_work_with_one_line_each(project, capsys):
    """``agents:`` is now ``cards:``, ``mitigations:`` ``arms:`` (an arm's ``agents:``
    too): an old spec plans the same runs and says so, one line per key."""
    old = small_audit_spec()
    old["agents"], old["mitigations"] = old.pop("cards"), old.pop("arms")
    old["mitigations"].append({"apply": ["inlp"], "agents": ["tiny_biased_history"]})
    limited = {"apply": ["inlp"], "cards": ["tiny_biased_history"]}
    new = small_audit_spec(arms=[[], ["name_redaction"], limited])
    with pytest.warns(FutureWarning) as said:
        from_old = plan(write_yaml(project / "scenarios" / "old.yaml", old))
    lines = sorted(str(w.message).split(": ", 1)[1] for w in said)
    assert lines == ["agents: is now called cards (the old name still works)",
                     "arms.2.agents: is now called cards (the old name still works)",
                     "mitigations: is now called arms (the old name still works)"]  # fmt: skip
    from_new = plan(write_yaml(project / "scenarios" / "new.yaml", new))
    assert [t.run_id for t in from_old.tasks] == [t.run_id for t in from_new.tasks]
    assert main(["validate", str(project / "scenarios" / "old.yaml")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 3 and "old.yaml: agents: is now called cards" in err
    both = write_yaml(project / "scenarios" / "both.yaml", {**new, "agents": new["cards"]})
    with pytest.raises(SpecError, match="agents: renamed cards; give cards only"):
        plan(both)


def test_a_misspelled_card_names_every_folder_and_the_closest_name(project):
    path = write_yaml(
        project / "scenarios" / "typo.yaml", small_audit_spec(cards=["tiny_zero_shoot"])
    )
    with pytest.raises(SpecError) as err:
        plan(path)
    message = str(err.value)
    assert "did you mean 'tiny_zero_shot'?" in message
    assert str(project / "agents") in message and "scenarios/agents" in message


def test_list_names_worlds_mitigations_cards_and_scenarios(project, monkeypatch):
    monkeypatch.chdir(project)
    write_yaml(project / "scenarios" / "tiny.yaml", {**small_audit_spec(), "description": "A. B."})
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for word in ("hiring", "moderation", "audit", "group_thresholds", "[system]",
                 "tiny_zero_shot", "minilm_biased_history", "tiny"):  # fmt: skip
        assert word in result.output, word
    assert runner.invoke(app, ["list", "planets"]).exit_code == 2
