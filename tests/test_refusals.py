"""What is refused, one finding at a time: every bad spec, card, checkpoint folder or
flag is one line on stderr naming the field or file, exit status 2, nothing written
(docs/specs.md, "What is refused")."""

from __future__ import annotations

import importlib
import json

import pytest
import yaml
from conftest import copy_checkpoint, small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.lfm.checkpoint import CheckpointError, resolve, write_manifest
from uim_sim.schema import SpecError

plan_module = importlib.import_module("uim_sim.run.plan")  # the module, not the function


def refused(capsys, args: list[str], *needles: str) -> str:
    """Run the CLI; it must exit 2 with one line on stderr holding every needle."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def refused_everywhere(capsys, project, spec, *needles: str) -> str:
    """`validate` and `run` both refuse, and `run` writes nothing."""
    err = refused(capsys, ["validate", str(spec)], *needles)
    out = project / "out"
    refused(capsys, ["run", str(spec), "--out", str(out)], *needles)
    assert not out.exists()
    return err


def card_on(project, folder, name="probe") -> None:
    write_yaml(
        project / "agents" / f"{name}.yaml",
        {"name": name, "checkpoint": str(folder), "head": {"kind": "zero_shot"}},
    )


# ------------------------------------------------------------------ checkpoints


def _manifest_list(folder):
    (folder / "manifest.json").write_text("[1, 2]")


def _garbage_weights(folder):
    (folder / "model.safetensors").write_bytes(b"abc")
    write_manifest(folder)  # the hashes match: the file itself is refused


def _config_not_json(folder):
    (folder / "config.json").write_text("{bad")


def _config_remote_code(folder):
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))


def _unknown_model_type(folder):
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "wizard"
    (folder / "config.json").write_text(json.dumps(config))


def _pickle_only(folder):
    (folder / "model.safetensors").unlink()
    (folder / "manifest.json").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")


def _no_tokenizer(folder):
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()


@pytest.mark.parametrize(
    ("corrupt", "needle"),
    [
        (_manifest_list, "manifest.json holds a JSON list, not an object"),
        (_garbage_weights, "model.safetensors is not a readable safetensors file"),
        (_config_not_json, "config.json is not valid JSON"),
        (_config_remote_code, "config.json asks for remote code (auto_map); refused"),
        (_unknown_model_type, "does not load (ValueError"),
        (_pickle_only, "pickle weight files ['pytorch_model.bin'] are refused"),
        (_no_tokenizer, "no tokenizer files (one of tokenizer.json"),
    ],
)
def test_a_checkpoint_is_opened_the_way_a_run_opens_it(
    project, tiny_checkpoint, capsys, corrupt, needle
):
    folder = copy_checkpoint(tiny_checkpoint, project / f"ckpt_{corrupt.__name__}")
    corrupt(folder)
    card_on(project, folder)
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["probe"]))
    refused_everywhere(capsys, project, spec, needle, "agent probe", str(folder))


def test_a_manifest_with_a_bad_table_is_refused(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path / "c")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"]["model.safetensors"] = 7
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="sha256.model.safetensors: not a sha256"):
        resolve(str(folder))
    manifest["sha256"] = {"../../outside.safetensors": "0" * 64}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="outside the folder"):
        resolve(str(folder))


def test_an_empty_checkpoint_names_the_field(project, capsys):
    card_on(project, "")
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["probe"]))
    refused_everywhere(capsys, project, spec, "probe.yaml: checkpoint: '' names no checkpoint")
    with pytest.raises(CheckpointError, match="an empty checkpoint reference"):
        resolve(" ")


# ------------------------------------------------------------------ YAML files


@pytest.mark.parametrize(
    ("encode", "needle"),
    [
        (lambda t: t.replace("tiny_audit", "café").encode("latin-1"), "line 1: not UTF-8 text"),
        (lambda t: t.encode("utf-16"), "the file is UTF-16 text; save it as UTF-8"),
        (lambda t: t.encode("utf-16-le"), "line 1: the character U+0000 is not allowed"),
        (lambda t: t.encode("utf-32"), "the file is UTF-32 text"),
        (lambda t: t.replace("world:", "\0world:").encode(), "line 2: the character U+0000"),
    ],
)
def test_a_spec_that_is_not_utf8_yaml_is_one_line(project, capsys, encode, needle):
    text = yaml.safe_dump(small_audit_spec(), sort_keys=False)
    spec = project / "scenarios" / "s.yaml"
    spec.write_bytes(encode(text))
    refused_everywhere(capsys, project, spec, str(spec), needle)


def test_a_utf8_byte_order_mark_is_accepted(project, capsys):
    spec = project / "scenarios" / "s.yaml"
    spec.write_bytes(yaml.safe_dump(small_audit_spec()).encode("utf-8-sig"))
    assert main(["validate", str(spec)]) == 0


def test_a_card_in_latin1_is_one_line(project, capsys):
    card = project / "agents" / "probe.yaml"
    card.write_bytes("name: probe\ndescription: café\nhead: {kind: zero_shot}\n".encode("latin-1"))
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["probe"]))
    refused_everywhere(capsys, project, spec, "probe.yaml: line 2: not UTF-8 text")
    monkey_list = main(["list", "cards", "--agents-dir", str(project / "agents")])
    assert monkey_list == 0  # listed with the reason, not a traceback
    assert "not UTF-8" in capsys.readouterr().out


def test_a_repeated_key_is_refused_with_both_lines(project, capsys):
    spec = project / "scenarios" / "s.yaml"
    spec.write_text(yaml.safe_dump(small_audit_spec(), sort_keys=False) + "seed: 5\n")
    refused_everywhere(capsys, project, spec, "key 'seed' appears twice (first on line 3)")
    nested = "params: {mode: audit, n_jobs: 6, n_jobs: 7}\n"
    spec.write_text(yaml.safe_dump(small_audit_spec(), sort_keys=False).replace("params:", "x:"))
    spec.write_text(spec.read_text() + nested)
    with pytest.raises(SpecError, match="key 'n_jobs' appears twice"):
        plan_module.plan(spec)


def test_yaml_merge_keys_may_be_overridden(project):
    spec = project / "scenarios" / "s.yaml"
    text = yaml.safe_dump(small_audit_spec(), sort_keys=False)
    text = text.replace("params:\n", "base: &b {mode: audit, n_jobs: 6}\nparams:\n  <<: *b\n")
    spec.write_text(text.replace("base:", "description: merged\nx-base:"))
    with pytest.raises(SpecError, match="x-base: unknown field"):  # the merge itself reads
        plan_module.plan(spec)


# ------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"seed": True}, "seed: true is a boolean, not a number"),
        ({"replicates": False}, "replicates: false is a boolean"),
        ({"params": {"mode": "audit", "n_jobs": True}}, "params.n_jobs: true is a boolean"),
        ({"statistics": {"null_permutations": True}}, "statistics.null_permutations: true"),
        ({"grid": {"n_jobs": [4, True]}}, "grid.n_jobs=True: n_jobs: true is a boolean"),
        ({"params": {"mode": "audit", "history_skill_weight": float("inf")}}, "finite number"),
        ({"params": {"mode": "audit", "history_skill_weight": float("nan")}}, "finite number"),
        ({"params": {"mode": "audit", "history_skill_weight": 1e300}}, "less than or equal to 20"),
        ({"params": {"mode": "market", "scarring": 1e300}}, "params.scarring: Input should be"),
        ({"params": {"mode": "market", "qualified_skill": float("-inf")}}, "qualified_skill"),
        ({"params": {"mode": "audit", "n_jobs": 10**12}}, "params.n_jobs: Input should be less"),
        ({"params": {"mode": "audit", "n_history": 10**9}}, "params.n_history: Input should be"),
        ({"seed": 10**30}, "seed: Input should be less than or equal to"),
        (
            {"arms": [[{"name": "reject_option", "params": {"theta": float("inf")}}]]},
            "arms.0.0.params: theta: Input should be a finite number",
        ),
    ],
)
def test_booleans_non_finite_and_huge_numbers_are_refused(project, capsys, change, needle):
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(**change))
    refused_everywhere(capsys, project, spec, "s.yaml", needle)


@pytest.mark.parametrize(
    ("head", "decision", "needle"),
    [
        ({"kind": "logistic", "train_on": "history", "C": True}, {}, "head.C: true is a boolean"),
        ({"kind": "logistic", "train_on": "history", "C": float("inf")}, {}, "head.C: Input"),
        (
            {"kind": "logistic", "train_on": "history", "history_bias": 1e300},
            {},
            "head.history_bias: Input should be less than or equal to 20",
        ),
        ({"kind": "zero_shot"}, {"rule": "threshold", "threshold": 1e300}, "decision.threshold"),
        ({"kind": "zero_shot"}, {"rule": "threshold", "threshold": float("nan")}, "finite"),
        ({"kind": "zero_shot"}, {"share": True}, "decision.share: true is a boolean"),
    ],
)
def test_card_values_are_refused(project, capsys, head, decision, needle):
    write_yaml(
        project / "agents" / "probe.yaml",
        {"name": "probe", "head": head, **({"decision": decision} if decision else {})},
    )
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["probe"]))
    refused_everywhere(capsys, project, spec, "probe.yaml", needle)


def test_a_corpus_axis_with_no_forged_card_is_refused(project, capsys):
    spec = write_yaml(
        project / "scenarios" / "s.yaml",
        small_audit_spec(grid={"corpus.knobs.association_skew": [0.1, 0.5]}),
    )
    refused_everywhere(
        capsys, project, spec, "grid.corpus.knobs.association_skew", "no card of the spec is forged"
    )


def test_a_missing_agents_dir_is_refused(project, capsys):
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec())
    for args in (["validate", str(spec)], ["run", str(spec), "--out", str(project / "o")],
                 ["list", "cards"]):  # fmt: skip
        refused(capsys, [*args, "--agents-dir", "/nonexistent"], "--agents-dir", "/nonexistent")
    assert not (project / "o").exists()
    with pytest.raises(SpecError, match="--agents-dir: /nonexistent: no such folder"):
        plan_module.plan(spec, "/nonexistent")


# ------------------------------------------------------------------ sizes and memory


def test_a_run_larger_than_the_memory_available_is_refused(project, capsys, monkeypatch):
    monkeypatch.setattr(plan_module, "available_memory", lambda: 2**30)  # 1 GiB free
    spec = write_yaml(
        project / "scenarios" / "s.yaml",
        small_audit_spec(grid={"n_jobs": [6, 20_000]}),
    )
    err = refused_everywhere(
        capsys, project, spec, "s.yaml: params (with n_jobs=20000): a run needs about 1.5 GiB"
    )
    assert "160,000 resumes" in err and "more than the 1.0 GiB available" in err
    monkeypatch.setattr(plan_module, "available_memory", lambda: None)  # unknown: not checked
    assert main(["validate", str(spec)]) == 0


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"mode": "world", "n_users": 10**9}, "params.n_users: Input should be less than"),
        ({"mode": "world", "n_users": 50_000_000, "mean_degree": 1000}, "users, ~25,000,000,000"),
        ({"mode": "reference", "n_users": 40_000_000, "n_cascades": 100_000}, "100,000 cascades"),
    ],
)
def test_spread_sizes_beyond_the_machine_are_refused(project, capsys, params, needle):
    spec = write_yaml(
        project / "scenarios" / "s.yaml",
        {"name": "big", "world": "spread", "cards": ["tiny_zero_shot"], "params": params},
    )
    refused_everywhere(capsys, project, spec, "s.yaml: params", needle)


def test_moderation_sizes_beyond_the_machine_are_refused(project, capsys):
    spec = write_yaml(
        project / "scenarios" / "s.yaml",
        {
            "name": "big",
            "world": "moderation",
            "cards": ["tiny_zero_shot"],
            "params": {"mode": "world", "n_users": 10_000_000, "n_steps": 10_000},
        },
    )
    refused_everywhere(capsys, project, spec, "a run needs about", "10,000,000 users posting")


def test_user_text_quoted_in_a_message_stays_one_plain_line(project, capsys):
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(arms=[["[/x]"]]))
    refused_everywhere(capsys, project, spec, "unknown mitigation '[/x]'")  # not Rich markup
    card_on(project, "two\nlines")
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["probe"]))
    refused_everywhere(capsys, project, spec, "agent probe: two lines: not a checkpoint folder")


def test_a_spec_of_too_many_runs_is_refused_before_expanding(project, capsys):
    spec = write_yaml(
        project / "scenarios" / "s.yaml",
        small_audit_spec(grid={"n_jobs": list(range(1, 1001))}, replicates=200),
    )
    refused_everywhere(
        capsys, project, spec, "s.yaml: up to 800,000 runs (2 cards × 2 arms × 1,000 grid "
        "points × 200 replicates), more than 100,000; split the spec",
    )  # fmt: skip


def test_every_refusal_a_user_meets_is_one_kind_of_error():
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.lfm.heads import HeadError
    from uim_sim.report.load import ReportError
    from uim_sim.run.executors import ExecutorError
    from uim_sim.run.store import OutputError
    from uim_sim.schema import SpecError, UimError
    from uim_sim.worlds.check import WorldCheckError
    from uim_sim.worlds.moderation.evalset import EvalFileError
    from uim_sim.worlds.spread.network import NetworkError

    kinds = [CheckpointError, HeadError, ReportError, ExecutorError, OutputError, SpecError,
             WorldCheckError, EvalFileError, NetworkError]  # fmt: skip
    assert all(issubclass(k, UimError) for k in kinds)
    assert all(issubclass(k, ValueError) for k in kinds if k not in (ExecutorError, OutputError))
