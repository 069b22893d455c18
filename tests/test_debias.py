"""Debiased checkpoints: counterfactual swaps, CDA corpora, baked projections, and
continued training that lowers a forged checkpoint's planted gap."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import small_audit_spec, write_yaml

from uim_sim.cli import main
from uim_sim.lfm.checkpoint import CheckpointError, resolve
from uim_sim.lfm.engine import get_engine
from uim_sim.mitigate.debias import debias, defining_sentences
from uim_sim.mitigate.projection import sentence_debias_projection
from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.corpus import generate
from uim_sim.vocab.counterfactual import counterpart, swap_terms
from uim_sim.vocab.names import FIRST_NAMES, SURNAMES


def test_swaps_go_to_a_counterpart_group_and_keep_the_rest():
    rng = np.random.default_rng(0)
    twin = swap_terms("Lakisha Washington is a nurse.", rng)
    first, last, *rest = twin.split()
    assert first in FIRST_NAMES[("white", "female")] and last in SURNAMES["white"]
    assert rest == ["is", "a", "nurse."]
    assert swap_terms("the hillcrest story was false.", rng) == "the riverside story was false."
    assert swap_terms("i hate all black people.", rng) == "i hate all white people."
    assert swap_terms("A woman met a Black person", rng) == "A man met a white person"
    assert counterpart("gay people", rng) == "lesbians"  # the same slot of the other group
    assert counterpart("teacher", rng) is None
    a = swap_terms("jamal and emily", np.random.default_rng(5))
    assert a == swap_terms("jamal and emily", np.random.default_rng(5))  # seeded


def test_a_counterfactual_corpus_cancels_the_planted_association():
    mix = {"hiring": 1.0, "records": 0.0, "moderation": 0.0, "spread": 0.0, "background": 0.0}

    def job_share(counterfactual: bool, race: str) -> float:
        card = CorpusCard(name="c", sentences=3000, knobs={"association_skew": 0.9}, mix=mix,
                          counterfactual=counterfactual)  # fmt: skip
        names = {n.lower() for (r, _), ns in FIRST_NAMES.items() if r == race for n in ns}
        mine = [s for s in generate(card).sentences if s.split()[0].lower() in names]
        return np.mean([" as a " in s or " is a " in s and "drifter" not in s for s in mine])

    assert job_share(False, "white") - job_share(False, "black") > 0.4
    assert abs(job_share(True, "white") - job_share(True, "black")) < 0.06
    plain = CorpusCard(name="c", sentences=3000)
    assert plain.fingerprint() == CorpusCard(name="c", sentences=3000,
                                             counterfactual=False).fingerprint()  # fmt: skip
    assert plain.fingerprint() != plain.model_copy(update={"counterfactual": True}).fingerprint()


def test_sentence_debias_removes_the_sets_shared_direction():
    rng = np.random.default_rng(0)
    bias = np.zeros(8)
    bias[3] = 1.0
    base = rng.normal(size=(20, 8))
    x = np.vstack([base + bias, base - bias])  # each pair differs along `bias` only
    sets = np.tile(np.arange(20), 2)
    p = sentence_debias_projection(x, sets, k=1)
    assert np.allclose(bias @ p, 0, atol=1e-9)
    assert np.allclose((x @ p)[:20], (x @ p)[20:])  # the pairs now coincide


@pytest.mark.parametrize("method", ["inlp", "sentence_debias"])
def test_a_baked_projection_is_a_verified_checkpoint_the_engine_applies(
    tmp_path, tiny_checkpoint, method
):
    out = debias(str(tiny_checkpoint), method, tmp_path / method, attribute="community")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["debias"]["method"] == method
    assert manifest["debias"]["parent_sha256"] == resolve(str(tiny_checkpoint)).sha256
    assert "projection.safetensors" in manifest["sha256"]
    texts, groups, _ = defining_sentences("community")
    parent = get_engine(str(tiny_checkpoint)).embed(texts)
    child = get_engine(str(out)).embed(texts)

    def gap(x):
        return np.linalg.norm(x[groups == "riverside"].mean(0) - x[groups == "hillcrest"].mean(0))

    assert gap(child) < 0.5 * gap(parent)  # the groups' mean difference is (mostly) projected out
    np.testing.assert_allclose(np.linalg.norm(child, axis=1), 1, atol=1e-5)

    tampered = shutil.copytree(out, tmp_path / "tampered")
    (tampered / "projection.safetensors").write_bytes(
        (out / "projection.safetensors").read_bytes()[:-4] + b"\0\0\0\0"
    )
    resolve.cache_clear()
    with pytest.raises(CheckpointError, match="sha256 of projection.safetensors"):
        resolve(str(tampered))


def test_debias_cli_refuses_bad_input_with_one_line(tmp_path, tiny_checkpoint, capsys):
    assert main(["debias", str(tiny_checkpoint), "--method", "magic", "--out",
                 str(tmp_path / "x")]) == 2  # fmt: skip
    assert "--method" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["debias", str(tiny_checkpoint), "--method", "cda", "--out",
                 str(tmp_path / "y")]) == 2  # fmt: skip
    assert "--corpus" in capsys.readouterr().err  # not forged here: no corpus card recorded
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert main(["debias", str(tiny_checkpoint), "--method", "inlp", "--out", str(busy)]) == 2
    assert (busy / "keep.txt").read_text() == "mine"
    done = tmp_path / "done"
    args = ["debias", str(tiny_checkpoint), str(tiny_checkpoint.parent), "--method",
            "sentence_debias", "--attribute", "community", "--out", str(done)]  # fmt: skip
    assert main(args) == 2  # the second parent is not a checkpoint folder
    args[2] = str(tmp_path / "copy")
    shutil.copytree(tiny_checkpoint, tmp_path / "copy")
    assert main(args) == 0 and main(args) == 0  # a rerun over its own output is fine
    assert sorted(p.name for p in done.iterdir()) == ["copy", "tiny-bert"]


def test_cda_lowers_a_forged_checkpoints_mlm_gap(skewed_forge, tmp_path):
    """Webster et al. (2020): continued MLM training on counterfactually augmented text
    undoes a planted association. The parent learnt 'disadvantaged names ~ unemployed'
    (gap > 0.3 nats); after CDA steps the gap is a fraction of it."""
    before = json.loads((skewed_forge / "manifest.json").read_text())["verification"]
    # 150 steps: the gap of 0.73 nats falls to 0.18 (100 steps: 0.29; the test asks < half)
    out = debias(str(skewed_forge), "cda", tmp_path / "cda", steps=150)
    after = json.loads((out / "manifest.json").read_text())
    assert after["debias"]["parent_sha256"] == resolve(str(skewed_forge)).sha256
    assert after["card"]["counterfactual"] and after["base"] == str(skewed_forge)
    assert after["verification"]["mlm_gap_nats"] < 0.5 * before["mlm_gap_nats"]


def test_a_debiased_checkpoint_is_carried_by_a_card_through_a_run(project, tmp_path,
                                                                 tiny_checkpoint):  # fmt: skip
    out = debias(str(tiny_checkpoint), "sentence_debias", tmp_path / "sd", attribute="names")
    card = {"name": "debiased", "checkpoint": str(out), "head": {"kind": "zero_shot"}}
    write_yaml(project / "agents" / "debiased.yaml", card)
    spec = write_yaml(project / "scenarios" / "d.yaml", small_audit_spec(
        cards=["tiny_zero_shot", "debiased"], arms=[[]], replicates=1))  # fmt: skip
    assert main(["run", str(spec), "--out", str(tmp_path / "r"),
                 "--agents-dir", str(project / "agents")]) == 0  # fmt: skip
    runs = pd.read_parquet(tmp_path / "r" / "runs.parquet")
    assert set(runs["card"]) == {"tiny_zero_shot", "debiased"}
    assert runs.set_index("card").loc["debiased", "checkpoint"] == str(out)


def test_inlp_leaves_a_linear_probe_for_the_group_near_chance():
    """Ravfogel et al. (2020): after the projection no linear classifier reads the
    protected attribute; the directions orthogonal to it are kept."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from uim_sim.mitigate.projection import group_mean_projection, inlp_projection

    rng = np.random.default_rng(0)
    group = rng.integers(2, size=600)
    x = rng.normal(size=(600, 16))
    x[:, :3] += np.outer(group - 0.5, [1.5, -1.0, 0.8])  # the group, spread over 3 dims

    def accuracy(features):
        return cross_val_score(LogisticRegression(max_iter=2000), features, group, cv=5).mean()

    assert accuracy(x) > 0.8
    p = inlp_projection(x, group, iterations=20, min_gain=0.02, C=1.0)
    assert accuracy(x @ p) < 0.58
    assert np.linalg.matrix_rank(p) >= 16 - 6  # a few directions removed, not all
    # SentenceDebias on the group means removes exactly their difference
    q = group_mean_projection(x, group, k=1)
    assert abs((x @ q)[group == 1].mean(0) - (x @ q)[group == 0].mean(0)).max() < 1e-9
