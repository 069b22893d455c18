"""Checkpoints load only from verified safetensors, never with remote code."""

from __future__ import annotations

import json

import pytest
from conftest import copy_checkpoint, small_audit_spec, write_yaml
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.lfm.checkpoint import CheckpointError, resolve

EXPECTED_MINILM = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def test_builtin_minilm_is_verified():
    ckpt = resolve("builtin:minilm")
    assert ckpt.manifest["sha256"]["model.safetensors"] == EXPECTED_MINILM
    assert (ckpt.path / "model.safetensors").is_file()


def test_local_folder_with_manifest_loads(tiny_checkpoint):
    ckpt = resolve(str(tiny_checkpoint))
    tokenizer, model = ckpt.load()
    assert model.config.hidden_size == 32
    assert ckpt.manifest["family"] == "bert-tiny"


def test_tampered_weights_are_refused(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path / "tampered")
    weights = folder / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-10] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256 of model.safetensors"):
        resolve(str(folder))


def test_pickle_weights_are_refused(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path / "pickled")
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(CheckpointError, match="pickle weight files"):
        resolve(str(folder))


def test_unlisted_weights_are_refused(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path / "extra")
    (folder / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="not in manifest"):
        resolve(str(folder))


def test_remote_code_is_refused(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="remote code"):
        resolve(str(folder)).load()


def test_missing_folder_and_unknown_builtin():
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        resolve("/no/such/folder")
    with pytest.raises(CheckpointError, match="unknown builtin"):
        resolve("builtin:gpt9")


def test_cli_refuses_a_tampered_checkpoint(project, tiny_checkpoint):
    folder = copy_checkpoint(tiny_checkpoint, project / "ckpt")
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    write_yaml(
        project / "agents" / "tampered.yaml",
        {"name": "tampered", "checkpoint": str(folder), "head": {"kind": "zero_shot"}},
    )
    spec = write_yaml(project / "scenarios" / "s.yaml", small_audit_spec(cards=["tampered"]))
    result = CliRunner().invoke(app, ["run", str(spec), "--out", str(project / "out")])
    assert result.exit_code == 2
    assert "refused" in result.output
    assert not (project / "out").exists()
