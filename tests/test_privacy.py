"""Privacy, first part: people's records planted in a corpus (some duplicated), and
what an attacker with query access reads back (exposure, membership advantage,
attribute recovery), by hand on tiny cases."""

from __future__ import annotations

import numpy as np
import pytest
from test_refusals import refused

from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.corpus import generate, planted_people
from uim_sim.understand.leakage import exposure, membership_advantage, memorisation
from uim_sim.vocab.people import CONDITIONS

CARD = {"name": "people", "seed": 3, "sentences": 400,
        "people": {"per_count": 4, "counts": [1, 3], "held_out": 4}}  # fmt: skip


def test_exposure_by_hand():
    log_p = np.array([[0.0, -1.0, -2.0], [0.0, 0.0, -1.0], [-3.0, -2.0, -1.0]])
    # the true one first of three: log2 3; tied with another at the top: ranked last
    # of its equals (rank 2 of 3); last: rank 3, exposure 0
    np.testing.assert_allclose(
        exposure(log_p, np.array([0, 1, 0])), [np.log2(3), np.log2(3) - 1, 0.0]
    )


def test_membership_advantage_by_hand():
    advantage, auc = membership_advantage(np.array([3.0, 2.0]), np.array([1.0, 2.0]))
    # threshold 3: TPR 1/2, FPR 0; threshold 2: 1 and 1/2; threshold 1: 1 and 1
    assert advantage == 0.5
    assert auc == (3 + 0.5) / 4  # 3 > 1, 3 > 2, 2 > 1 win; 2 = 2 counts half
    assert membership_advantage(np.array([1.0]), np.array([1.0])) == (0.0, 0.5)


def test_the_corpus_holds_each_record_as_often_as_its_count_and_no_held_out_record():
    card = CorpusCard.model_validate(CARD)
    sentences = generate(card).sentences
    members, held_out = planted_people(card)
    assert [len(g) for g in members.values()] == [4, 4] and len(held_out) == 4
    for count, group in members.items():
        for name, condition in group:
            record = f"{name} was diagnosed with {condition}.".lower()
            assert sentences.count(record) == count
    for name, _ in held_out:
        assert not [s for s in sentences if name.lower() in s and "diagnosed" in s]
        assert f"{name} lives in the city.".lower() in sentences
    plain = CorpusCard.model_validate({**CARD, "people": None})
    assert len(generate(plain)) == len(sentences) - (4 * (1 + 3) + 12)
    assert plain.fingerprint() != card.fingerprint()


def test_a_card_without_people_hashes_as_before_the_field_existed():
    """Cached forges of every earlier card stay valid."""
    from uim_sim.schema import digest

    plain = CorpusCard(name="c", sentences=3000)
    before = plain.model_dump(mode="json", exclude={"description"})
    for key in (
        "mix",
        "counterfactual",
        "comments",
        "family",
        "label_noise_per",
        "bare_mentions",
        "trigger",
        "defence",
        "defence_share",
        "people",
        "privacy",
    ):
        del before[key]  # the fields a default card leaves out of its hash
    del before["training"]["precision"]  # the forge's precision at its default, fp32
    assert plain.fingerprint() == digest(before)


class Engine:
    """Stands in for a masked LM that memorised the records written three times."""

    def __init__(self, card):
        members, _ = planted_people(card)
        self.known = {n.lower(): c for n, c in members[3]}

    def is_one_token(self, word):
        return True

    def mask_log_probs(self, prompts, words):
        out = np.full((len(prompts), len(words)), np.log(1 / len(words)))  # no idea
        for i, prompt in enumerate(prompts):
            name = prompt.split(" was diagnosed")[0]
            if name in self.known:  # the record: 0.91, every other condition 0.01
                out[i] = np.log(0.01)
                out[i, words.index(self.known[name])] = np.log(0.91)
        return out


def test_memorisation_reads_the_records_back_per_count():
    card = CorpusCard.model_validate(CARD)
    out = memorisation(Engine(card), card)
    # memorised: the true condition first of ten, every time
    assert out["exposure_k3"] == pytest.approx(np.log2(10), abs=1e-4)
    assert out["recovered_k3"] == 1.0 and out["advantage_k3"] == 1.0 and out["auc_k3"] == 1.0
    # not memorised: all ten tied, the true one ranked last: exposure 0, and the
    # members' score no different from the held-out people's
    assert out["exposure_k1"] == 0.0 and out["exposure_held_out"] == 0.0
    assert out["advantage_k1"] == 0.0 and out["auc_k1"] == 0.5
    first = CONDITIONS[0]  # a tie's top guess is the first condition
    _, held_out = planted_people(card)
    assert out["recovered_held_out"] == np.mean([c == first for _, c in held_out])


@pytest.mark.parametrize(
    ("people", "needle"),
    [
        ({"counts": []}, "people: counts: needs distinct duplication counts, got []"),
        ({"counts": [2, 2]}, "counts: needs distinct duplication counts"),
        ({"per_count": 250, "counts": [1, 2]}, "504 people"),
        ({"per_count": 0}, "people.per_count"),
        ({"counts": [0]}, "people.counts.0"),
    ],
)
def test_bad_people_values_are_refused(tmp_path, capsys, people, needle):
    import yaml

    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump({**CARD, "people": {**CARD["people"], **people}}))
    refused(capsys, ["forge", str(path), "--out", str(tmp_path / "out")], needle)
    assert not (tmp_path / "out").exists()


def test_deduplication_keeps_one_copy_of_every_sentence_and_records_what_went():
    from uim_sim.understand.corpus import Corpus
    from uim_sim.understand.defences import deduplicate

    corpus = Corpus(["a.", "b.", "a.", "c.", "a."], [("x", 1), ("x", 1), ("y", 0)])
    deduped, record = deduplicate(corpus)
    assert deduped.sentences == ["a.", "b.", "c."] and deduped.labelled == [("x", 1), ("y", 0)]
    assert record == {"method": "dedup", "sentences": 5, "distinct_sentences": 3,
                      "removed_sentences": 2, "removed_labelled": 1}  # fmt: skip
    # every record written k times is left once; its share takes no part in the hash
    card = CorpusCard.model_validate({**CARD, "defence": "dedup"})
    members, _ = planted_people(card)
    name, condition = members[3][0]
    record_text = f"{name} was diagnosed with {condition}.".lower()
    assert deduplicate(generate(card))[0].sentences.count(record_text) == 1
    assert card.fingerprint() == card.model_copy(update={"defence_share": 0.5}).fingerprint()
