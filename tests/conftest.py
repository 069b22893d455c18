"""Shared fixtures: tiny local checkpoints, small specs, the real MiniLM."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]

# `make test` runs the suite in two worker processes (pytest-xdist, one per core): each
# computes on one torch thread (results do not depend on it: tests/test_engine.py), and
# so do the processes it starts; two processes of two threads on two cores would spin
# against each other
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# modules that share an expensive session fixture run in one worker (the forged BERT;
# the page's batch); every other module stays whole in its own group, so its module
# fixtures are built once
SHARED = {"test_debias": "forge", "test_forge_probe": "forge",
          "test_page": "page", "test_page_browser": "page"}  # fmt: skip


# the longest groups first (measured, seconds in two workers), so that both workers end
# together: a worker takes the next group when it is free. make test passes
# --no-loadscope-reorder, or xdist would order the groups by their number of tests
FIRST = (
    "test_faults",  # 128
    "page",  # 110
    "test_ray",  # 83
    "test_other_machine",  # 66
    "test_hiring",  # 65
    "forge",  # 50
    "matrix",  # 60: two forges and a small matrix (test_matrix.py)
    "forge_causal",  # 40
    "test_wheel",  # 40: a wheel built, installed, five commands in subprocesses
    "test_notebooks",  # 35: three notebooks in a Jupyter kernel
    "test_pinned",  # 29
    "test_label_noise",  # 26
    "forge_clean",  # 21
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the marks
def pytest_collection_modifyitems(items):
    def group(item) -> str:
        mark = item.get_closest_marker("xdist_group")  # a test may name its own
        module = item.module.__name__.rsplit(".", 1)[-1]
        return mark.args[0] if mark else SHARED.get(module, module)

    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group(item)))
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(group(item), len(FIRST)))  # stable: files keep order


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT with MiniLM's tokenizer, safetensors + manifest.

    Built in about a second; stands in for "any local HF folder".
    """
    from transformers import BertConfig, BertModel

    from uim_sim.lfm.checkpoint import resolve, write_manifest

    folder = tmp_path_factory.mktemp("ckpt") / "tiny-bert"
    minilm = resolve("builtin:minilm").path
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm / name, folder / name)
    write_manifest(folder, family="bert-tiny", seed=0)
    return folder


# a quick recipe that still learns the planted association: ~18 s a forge on 2 threads;
# at skew 0.9 an MLM gap of 0.73 nats (p 5e-4, SEAT 1.41), at skew 0 -0.006 (1000 steps
# at rate 0.002 took twice as long for 1.33 and 0.02)
SMALL_CORPUS = {
    "name": "small_corpus",
    "seed": 0,
    "sentences": 8000,
    "model": {"hidden": 64, "layers": 2, "heads": 2, "intermediate": 128},
    "training": {"steps": 500, "batch_size": 64, "learning_rate": 0.003},
}


@pytest.fixture(scope="session")
def skewed_forge(tmp_path_factory) -> Path:
    """A small BERT forged on a corpus with association_skew 0.9 (shared by the tests
    that read or undo the planted association)."""
    from uim_sim.understand.cards import CorpusCard
    from uim_sim.understand.forge import forge

    card = CorpusCard(**SMALL_CORPUS, knobs={"association_skew": 0.9})
    return forge(card, tmp_path_factory.mktemp("forged") / "skewed")


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def ray_folders(pid: int) -> list[Path]:
    """The local Ray folders (``uim-ray-*``) of the session process ``pid`` started: a
    test may look for its own while other tests' Rays run beside it (two workers)."""
    import tempfile

    return [f for f in Path(tempfile.gettempdir()).glob("uim-ray-*")
            if any(s.name.endswith(f"_{pid}") for s in f.glob("session_2*"))]  # fmt: skip


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def project(tmp_path, tiny_checkpoint) -> Path:
    """A scratch project: scenarios/ and agents/ with the shipped cards copied in, plus
    cards on the tiny checkpoint (runner and report tests need no real model)."""
    return make_project(tmp_path, tiny_checkpoint)


def make_project(root: Path, tiny_checkpoint: Path) -> Path:
    """`project`'s folder at ``root`` (for a fixture of a wider scope)."""
    shutil.copytree(ROOT / "agents", root / "agents")
    (root / "scenarios").mkdir()
    for name, head in (("tiny_zero_shot", {"kind": "zero_shot"}),
                       ("tiny_biased_history", {"kind": "logistic", "train_on": "history",
                                                "history_bias": 2.5})):  # fmt: skip
        write_yaml(root / "agents" / f"{name}.yaml",
                   {"name": name, "checkpoint": str(tiny_checkpoint), "head": head})  # fmt: skip
    return root


def forged_zero_shot_card(project: Path, corpus: dict) -> Path:
    """Write ``corpus`` (a corpus card) into the project and a zero-shot agent card
    ``forged`` whose checkpoint is forged from it; returns the corpus card's path."""
    path = write_yaml(project / "corpora" / "tiny.yaml", corpus)
    write_yaml(
        project / "agents" / "forged.yaml",
        {"name": "forged", "checkpoint": f"forge:../corpora/{path.name}",
         "head": {"kind": "zero_shot"}},
    )  # fmt: skip
    return path


def small_audit_spec(**overrides) -> dict:
    spec = {
        "name": "tiny_audit",
        "world": "hiring",
        "seed": 3,
        "replicates": 2,
        "cards": ["tiny_zero_shot", "tiny_biased_history"],
        "arms": [[], ["name_redaction"]],
        "params": {"mode": "audit", "n_jobs": 6, "n_history": 120},
        "statistics": {"null_permutations": 2, "name_permutations": 200},
    }
    spec.update(overrides)
    return spec


@pytest.fixture(scope="session")
def page_batch(tmp_path_factory, tiny_checkpoint) -> dict[str, Path]:
    """For the page's tests: the project's cards plus two on the tiny checkpoint
    (``agents``), and a small audit batch with two mitigation arms (``out``, under
    ``root/results``); copy ``out`` before writing into it."""
    from uim_sim.cli import main

    root = make_project(tmp_path_factory.mktemp("page"), tiny_checkpoint)
    agents = root / "agents"
    spec = write_yaml(root / "scenarios" / "tiny.yaml", small_audit_spec(
        replicates=3, cards=["tiny_biased_history"],
        arms=[[], ["name_redaction"], ["group_thresholds"]]))  # fmt: skip
    out = root / "results" / "tiny"
    assert main(["run", str(spec), "--out", str(out), "--agents-dir", str(agents)]) == 0
    return {"root": root, "agents": agents, "out": out}
