"""Property-based: mutated shipped specs and cards (a key dropped or repeated, a value
replaced by a wrong type, NaN, infinity, a huge number, an empty string or a boolean,
the file re-encoded) are either still valid or refused by `validate` and `run` alike:
exit status 2, one line on stderr naming the field or the file, no traceback, and
nothing written under --out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, copy_checkpoint, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uim_sim.cli import main
from uim_sim.lfm.checkpoint import write_manifest

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same examples on every machine: no flaky suite
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECS = [
    "scenarios/hiring_audit.yaml",
    "scenarios/hiring_market.yaml",
    "scenarios/moderation.yaml",
    "scenarios/moderation_eval_file.yaml",
    "scenarios/spread.yaml",
    "scenarios/attribution_market.yaml",
    "scenarios/inheritance_dose_response.yaml",
    "scenarios/compare_interventions.yaml",  # a suite
]
CARDS = {  # each card, and the world of the spec that carries it
    "agents/minilm_biased_history.yaml": "hiring",
    "agents/minilm_file_history.yaml": "hiring",
    "agents/minilm_study_callbacks.yaml": "hiring",
    "agents/forged_biased_history.yaml": "hiring",
    "agents/minilm_moderation_zero_shot.yaml": "moderation",
    "agents/minilm_nmtune_biased_history.yaml": "hiring",
    "agents/forged_credibility.yaml": "spread",
}
WRONG = [
    "text", "", "two\nlines", "[/x]", True, False, None,
    float("nan"), float("inf"), float("-inf"), 1e300, 10**30, -1, 0, 3, 0.5,
    [1, 2], {"x": 1}, [],
]  # fmt: skip
ENCODINGS = ["latin-1", "utf-16", "utf-16-le", "utf-32", "nul"]


@pytest.fixture(scope="module")
def root_cwd():
    """Shipped specs name some files relative to the working directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        yield


@pytest.fixture(scope="module")
def counter():
    return iter(range(10**6))


def sandbox(base: Path, n: int) -> Path:
    """A fresh copy of the shipped agents, corpora and scenarios."""
    folder = base / f"m{n}"
    for part in ("agents", "corpora", "scenarios"):
        shutil.copytree(ROOT / part, folder / part)
    return folder


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a YAML document (mapping keys and list indices)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list) and value:
            found += paths(value, (*prefix, key))
    return found


def mutate(data: dict, text: str, draw) -> tuple[bytes, str]:
    """One mutation of a YAML file: its new bytes and a word the error should name."""
    kind = draw(st.sampled_from(["drop", "replace", "replace", "duplicate", "encode"]))
    if kind == "encode":
        encoding = draw(st.sampled_from(ENCODINGS))
        if encoding == "nul":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            return "".join(lines[:i] + ["\0"] + lines[i:]).encode(), ""
        return ("# café\n" + text).encode(encoding), ""
    if kind == "duplicate":
        key = draw(st.sampled_from(sorted(data)))
        line = yaml.safe_dump({key: data[key]}, sort_keys=False)
        return (text + line).encode(), str(key)
    path = draw(st.sampled_from(paths(data)))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if kind == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.sampled_from(WRONG))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode(), str(path[-1])


def check(capsys, spec: Path, names: list[str], out: Path, agents_dir: Path | None) -> int:
    """`validate`; where it refuses, `run` must refuse too and write nothing."""
    extra = ["--agents-dir", str(agents_dir)] if agents_dir else []
    code = main(["validate", str(spec), *extra])
    captured = capsys.readouterr()
    assert code in (0, 2), captured
    if code == 0:
        return 0
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "Traceback" not in err
    assert any(n and n in err for n in names), (names, err)
    assert main(["run", str(spec), "--out", str(out), *extra]) == 2
    again = capsys.readouterr().err.strip()
    assert again == err, (again, err)
    assert not out.exists()
    return 2


@SETTINGS
@given(data=st.data())
def test_mutated_specs_are_valid_or_refused_in_one_line(
    data, root_cwd, counter, tmp_path_factory, capsys
):
    folder = sandbox(tmp_path_factory.getbasetemp() / "specs", next(counter))
    spec = folder / data.draw(st.sampled_from(SPECS))
    text = spec.read_text()
    blob, key = mutate(yaml.safe_load(text), text, data.draw)
    spec.write_bytes(blob)
    check(capsys, spec, [spec.name, key], folder / "out", None)


@SETTINGS
@given(data=st.data())
def test_mutated_cards_are_valid_or_refused_in_one_line(
    data, root_cwd, counter, tmp_path_factory, capsys
):
    folder = sandbox(tmp_path_factory.getbasetemp() / "cards", next(counter))
    card = folder / data.draw(st.sampled_from(sorted(CARDS)))
    world = CARDS[str(card.relative_to(folder))]
    params = {"mode": "audit", "n_jobs": 2} if world == "hiring" else {}
    spec = write_yaml(
        folder / "scenarios" / "probe.yaml",
        {"name": "probe", "world": world, "cards": [card.stem], "params": params},
    )
    text = card.read_text()
    blob, key = mutate(yaml.safe_load(text), text, data.draw)
    card.write_bytes(blob)
    check(capsys, spec, [card.name, card.stem, key], folder / "out", None)


TINY_SPEC = {
    "name": "tiny",
    "world": "hiring",
    "seed": 3,
    "replicates": 1,
    "cards": ["tiny_zero_shot"],
    "arms": [[]],
    "params": {"mode": "audit", "n_jobs": 2, "n_history": 40},
    "statistics": {"null_permutations": 0, "name_permutations": 10},
}


@settings(SETTINGS, max_examples=25)
@given(data=st.data())
def test_a_mutated_tiny_spec_that_validates_also_runs(
    data, tiny_checkpoint, counter, tmp_path_factory, capsys
):
    """On a spec small enough to run (a tiny checkpoint, two job ads): whatever
    `validate` accepts, `run` runs; whatever it refuses, `run` refuses."""
    folder = tmp_path_factory.getbasetemp() / "tiny" / f"m{next(counter)}"
    write_yaml(
        folder / "agents" / "tiny_zero_shot.yaml",
        {
            "name": "tiny_zero_shot",
            "checkpoint": str(tiny_checkpoint),
            "head": {"kind": "zero_shot"},
        },
    )
    spec = folder / "scenarios" / "tiny.yaml"
    text = yaml.safe_dump(TINY_SPEC, sort_keys=False)
    blob, key = mutate(json.loads(json.dumps(TINY_SPEC)), text, data.draw)
    spec.parent.mkdir(parents=True)
    spec.write_bytes(blob)
    out = folder / "out"
    if check(capsys, spec, [spec.name, key], out, folder / "agents") == 0:
        assert (
            main(["run", str(spec), "--out", str(out), "--agents-dir", str(folder / "agents")]) == 0
        )
        capsys.readouterr()
        assert (out / "runs.parquet").is_file()


def _corrupt_bytes(blob: bytes, draw) -> bytes:
    how = draw(st.sampled_from(["truncate", "garbage", "empty", "json_list", "flip"]))
    if how == "truncate":
        return blob[: draw(st.integers(0, max(0, len(blob) - 1)))]
    if how == "garbage":
        return draw(st.binary(min_size=1, max_size=64))
    if how == "json_list":
        return b"[1, 2, 3]"
    if how == "flip" and blob:
        i = draw(st.integers(0, min(len(blob), 4096) - 1))  # the header, mostly
        return blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1 :]
    return b""


@settings(SETTINGS, max_examples=20)
@given(data=st.data())
def test_a_corrupted_checkpoint_folder_is_refused_in_one_line(
    data, tiny_checkpoint, counter, tmp_path_factory, capsys
):
    """Any file of a checkpoint folder corrupted (and, or not, the manifest's hashes
    rewritten to match): `validate` refuses in one line naming the folder, or the
    checkpoint still opens."""
    folder = tmp_path_factory.getbasetemp() / "ckpts" / f"m{next(counter)}"
    checkpoint = copy_checkpoint(tiny_checkpoint, folder / "ckpt")
    name = data.draw(st.sampled_from(sorted(p.name for p in checkpoint.iterdir())))
    target = checkpoint / name
    target.write_bytes(_corrupt_bytes(target.read_bytes(), data.draw))
    if name != "manifest.json" and data.draw(st.booleans()):
        write_manifest(checkpoint)
    write_yaml(
        folder / "agents" / "probe.yaml",
        {"name": "probe", "checkpoint": str(checkpoint), "head": {"kind": "zero_shot"}},
    )
    spec = write_yaml(folder / "scenarios" / "s.yaml", {**TINY_SPEC, "cards": ["probe"]})
    check(capsys, spec, [str(checkpoint)], folder / "out", folder / "agents")
