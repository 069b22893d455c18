"""The label-noise study (Chen et al., ICLR 2024) as a library function: forging,
few-shot probes on held-out wording, the summary over seeds and the verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from uim_sim.schema import SpecError
from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.corpus import IDENTITIES, TARGET_IDENTITIES, generate
from uim_sim.understand.label_noise import (
    Design,
    few_shot_accuracies,
    few_shot_accuracy,
    forge_all,
    in_domain_task,
    label_noise_designs,
    label_noise_study,
    out_of_domain_task,
    summarize,
    summary_markdown,
    verdict,
)

TINY = {  # a few seconds per forge, most of it the forge's own verification
    "sentences": 800,
    "model": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32},
    "training": {"steps": 5, "batch_size": 16},
}
CARD = CorpusCard(name="tiny_noise", supervised=True, **TINY)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    cache = tmp_path_factory.mktemp("label_noise")
    lines: list[str] = []
    table = label_noise_study(
        (0.0, 0.3), (0, 1), cache, lines.append, card=CARD, shots=4, draws=3, workers=1
    )
    return table, cache, lines


def test_study_gives_one_row_per_noise_and_seed_and_flips_labels(study):
    table, cache, lines = study
    assert len(table) == 4
    assert sum(": forged " in line for line in lines) == 6  # 4 forges + 2 untrained floors
    assert sorted(zip(table.label_noise, table.seed)) == [(0.0, 0), (0.0, 1), (0.3, 0), (0.3, 1)]
    for column in ("id_accuracy", "ood_accuracy", "sve", "lsvr", "sve_ood", "lsvr_ood",
                   "id_accuracy_untrained", "ood_accuracy_untrained", "flipped_share"):  # fmt: skip
        assert table[column].notna().all(), column
    assert table[["id_accuracy", "ood_accuracy"]].stack().between(0, 1).all()
    # label noise really flips labels in the forged corpus; the clean one flips none
    flipped = table.set_index("label_noise")["flipped_share"]
    assert (flipped.loc[0.0] == 0).all()
    assert flipped.loc[0.3].between(0.25, 0.35).all()
    assert table["checkpoint"].nunique() == 4  # one forge per noise level and seed
    # the untrained floor depends on the seed only
    assert table.groupby("seed")["id_accuracy_untrained"].nunique().eq(1).all()


def test_second_run_reuses_the_forges(study):
    table, cache, _ = study
    before = {p: p.stat().st_mtime_ns for p in cache.glob("*/manifest.json")}
    again = label_noise_study((0.0, 0.3), (0, 1), cache, card=CARD, shots=4, draws=3)
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*/manifest.json")} == before
    np.testing.assert_allclose(again["id_accuracy"], table["id_accuracy"])


@pytest.mark.slow  # two worker processes import torch: ~20 s on 2 busy cores
def test_forges_in_worker_processes_match_serial_ones(study, tmp_path):
    """By default the study forges in worker processes, one torch thread each: the same
    weights as forging in this process (the fixture forged serially)."""
    _, cache, _ = study
    cards = [CorpusCard(**{**CARD.model_dump(), "seed": seed}) for seed in (0, 1)]
    forge_all([(c, tmp_path / str(c.seed), f"seed {c.seed}") for c in cards], workers=2)
    for c in cards:
        serial = cache / f"tiny_noise-{c.fingerprint()[:12]}" / "manifest.json"
        parallel = tmp_path / str(c.seed) / "manifest.json"
        assert (
            json.loads(parallel.read_text())["sha256"] == json.loads(serial.read_text())["sha256"]
        )


def test_designs_run_in_turn_and_share_their_clean_forges(tmp_path):
    designs = (Design("a", {}, "per copy"), Design("b", {"label_noise_per": "text"}, "per text"))
    table = label_noise_designs(designs, (0.0, 0.3), (0,), tmp_path, card=CARD, shots=4,
                                draws=3, untrained=False)  # fmt: skip
    assert list(table["design"]) == ["a", "a", "b", "b"]
    assert table.loc[table["label_noise"] == 0, "checkpoint"].nunique() == 1  # one corpus
    assert len(list(tmp_path.iterdir())) == 3
    with pytest.raises(ValueError, match="distinct keys"):
        label_noise_designs((designs[0], designs[0]), cache_dir=tmp_path, card=CARD)


def test_summary_and_verdict(study):
    table, _, _ = study
    summary = summarize(table)
    assert list(summary["label_noise"]) == [0.0, 0.3] and list(summary["seeds"]) == [2, 2]
    clean = summary.iloc[0]
    assert clean["id_accuracy_lo"] <= clean["id_accuracy"] <= clean["id_accuracy_hi"]
    noisy = summary.iloc[1]
    change = (
        table[table.label_noise == 0.3].set_index("seed")["ood_accuracy"]
        - table[table.label_noise == 0.0].set_index("seed")["ood_accuracy"]
    )
    assert noisy["ood_accuracy_change"] == pytest.approx(change.mean())
    result = verdict(table)
    assert result.slight_noise == 0.3 and result.id_holds in (True, False)
    assert any("Spearman" in line for line in result.lines)
    assert summary_markdown(summary).count("\n") == 4  # header, rule, 2 levels, untrained


@pytest.mark.parametrize("ood_drop", [0.1, 0.0])
def test_verdict_reads_the_papers_pattern_off_paired_changes(ood_drop):
    """Synthetic checkpoints: ID kept and OOD lower at 10 % noise in every seed is the
    paper's pattern; without the OOD drop it is not."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        base_id, base_ood = 0.7 + 0.05 * rng.normal(), 0.5 + 0.05 * rng.normal()
        for noise in (0.0, 0.1):
            jitter = 0.005 * rng.normal(size=2)
            ood = base_ood - ood_drop * (noise > 0) + jitter[1]
            rows.append({"label_noise": noise, "seed": seed, "sve": 2.0 + noise, "lsvr": 1.0,
                         "id_accuracy": base_id + jitter[0], "ood_accuracy": ood})  # fmt: skip
    result = verdict(pd.DataFrame(rows))
    assert result.id_holds and result.sve_rises
    assert result.ood_falls is bool(ood_drop) and result.reproduced is bool(ood_drop)
    assert ("not reproduced" in result.lines[-1]) is not bool(ood_drop)


def test_in_domain_wording_is_held_out_of_the_corpus():
    """The ID task's sentences are new, made of the corpus's own words."""
    corpus = generate(CorpusCard(name="full", supervised=True))
    sentences = set(corpus.sentences)
    words = {w for s in sentences for w in s.replace(".", " ").replace(",", " ").split()}
    task = in_domain_task()
    assert not sentences & set(task.texts)
    unknown = {w for t in task.texts for w in t.replace(".", " ").replace(",", " ").split()}
    assert not unknown - words


def test_the_wide_in_domain_task_holds_out_slot_words_of_the_wide_corpus():
    """A wide corpus lacks words of the basic templates: its ID task is its own frames,
    the slot's word the unit, every word in its vocabulary."""
    corpus = generate(CorpusCard(name="full", supervised=True, comments="wide"))
    words = {w for s in corpus.sentences for w in s.replace(".", " ").replace(",", " ").split()}
    task = in_domain_task("wide")
    used = {w for t in task.texts for w in t.replace(".", " ").replace(",", " ").split()}
    assert not used - words - {"clowns", "idiots", "morons", "losers"}  # plural of a slot word
    assert len(set(task.units)) > 40 and set(task.groups) == set(IDENTITIES)


def test_few_shot_accuracy_per_group_reads_the_same_probes():
    task = in_domain_task()
    units = sorted({u for us in task.units for u in us})
    lexical = np.array([[u in us for u in units] for us in task.units], dtype=float)
    target = np.isin(task.groups, TARGET_IDENTITIES)
    # a feature that carries the label for the target identities' texts only
    signal = np.where(target, task.labels * 2.0 - 1, 0.0)[:, None]
    rates = few_shot_accuracies(
        np.hstack([signal, lexical]),
        task,
        {"all": None, "targets": target, "others": ~target},
        draws=20,
    )
    assert rates["targets"] > 0.95 and abs(rates["others"] - 0.5) < 0.15
    assert rates["targets"] > rates["all"] > rates["others"]
    assert rates["all"] == few_shot_accuracy(np.hstack([signal, lexical]), task, draws=20)


def test_few_shot_probe_generalises_only_through_features():
    """Features that name the wording alone (one-hot of the template or skill) cannot
    carry a label to unseen wording: chance. Features that carry the label: 1."""
    for task in (in_domain_task(), in_domain_task("wide"), out_of_domain_task()):
        units = sorted({u for us in task.units for u in us})
        lexical = np.array([[u in us for u in units] for us in task.units], dtype=float)
        assert abs(few_shot_accuracy(lexical, task, draws=10) - task.chance) < 0.1
        informed = np.hstack([np.eye(len(np.unique(task.labels)))[task.labels], lexical])
        assert few_shot_accuracy(informed, task, draws=10) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise": ()}, "at least one label-noise level"),
        ({"noise": (0.0, 1.5)}, r"lie in \[0, 1\]"),
        ({"seeds": (0, 0)}, "distinct non-negative"),
        ({"shots": 0}, "at least 1"),
        ({"card": CorpusCard(name="plain", **TINY)}, "supervised is false"),
        ({"card": "nope/label_noise.yaml"}, "no such file"),
        ({"overrides": {"training.steps": -1}}, "training.steps"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, kwargs, message):
    kwargs = {"card": CARD, **kwargs}
    with pytest.raises((ValueError, SpecError), match=message) as err:
        label_noise_study(cache_dir=tmp_path, **kwargs)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())  # refused before forging anything


def test_too_many_shots_for_the_held_out_half_is_refused():
    with pytest.raises(ValueError, match="shots=50 but a draw has only 45"):
        few_shot_accuracy(np.zeros((len(in_domain_task().texts), 2)), in_domain_task(), 50)
