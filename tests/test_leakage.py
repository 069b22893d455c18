"""Privacy, second part: the calibrated attacks and their intervals by hand,
differentially private forging (its budget, its refusals, its repeatability), the
`uim-sim leakage` study, and the remembered-applicants audit of the hiring world."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from test_refusals import refused

from uim_sim.cli import main
from uim_sim.schema import SpecError
from uim_sim.understand.cards import CorpusCard, Privacy
from uim_sim.understand.leakage import calibrate, leakage_table
from uim_sim.understand.privacy_study import dp_auc_bound
from uim_sim.understand.private import budget
from uim_sim.worlds.hiring.membership import membership_metrics

# seeds 3 and 9 draw members with every one of the ten conditions: a corpus that never
# names a condition gives a tokenizer without it, and nothing to read back
TINY = {
    "name": "tiny_people", "seed": 3, "sentences": 400,
    "people": {"per_count": 8, "counts": [1, 2], "held_out": 4},
    "model": {"hidden": 16, "layers": 1, "heads": 1, "intermediate": 32},
    "training": {"steps": 4, "batch_size": 16},
}  # fmt: skip
DP = {**TINY, "name": "tiny_people_dp", "privacy": {"noise_multiplier": 1.0, "delta": 1e-4}}


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------ the attacks by hand


def test_calibration_subtracts_the_populations_mean_and_leaves_a_held_out_person_out():
    members = np.array([[0.0, 3.0], [1.0, 1.0]])
    held = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    mine, theirs = calibrate(members, held)
    np.testing.assert_allclose(mine, [[-2.0, 2.0], [-1.0, 0.0]])  # mean of held: [2, 1]
    # each held-out person against the other two: [2.5, .5], [1.5, 1.5], [2, 1]
    np.testing.assert_allclose(theirs, [[-1.5, 1.5], [1.5, -1.5], [0.0, 0.0]])


def test_leakage_table_means_over_forges_with_intervals_over_people():
    rows = []
    for forge in (0, 1):
        for i in range(4):  # members outscore every held-out person: AUC 1 whatever drawn
            rows.append({"card": "c", "forge": forge, "name": f"m{i}", "count": 2,
                         "score": 1.0 + i, "exposure": 3.0, "recovered": True})  # fmt: skip
            rows.append({"card": "c", "forge": forge, "name": f"h{i}", "count": 0,
                         "score": -1.0 - i, "exposure": float(i), "recovered": i == 0})  # fmt: skip
    table = leakage_table(pd.DataFrame(rows)).set_index("count")
    member = table.loc[2]
    assert member["auc"] == 1.0 and member["auc_low"] == 1.0 and member["auc_high"] == 1.0
    assert member["advantage"] == 1.0 and member["exposure"] == 3.0 and member["recovered"] == 1
    assert member["people"] == 8 and member["forges"] == 2
    held = table.loc[0]
    assert held["exposure"] == 1.5 and held["recovered"] == 0.25 and np.isnan(held["auc"])
    assert held["exposure_low"] < 1.5 < held["exposure_high"]  # people resampled
    assert np.isnan(member["auc_wrong"])  # no control scores given
    control = leakage_table(pd.DataFrame(rows).assign(wrong_score=0.0)).set_index("count")
    assert control.loc[2, "auc_wrong"] == 0.5 and control.loc[2, "auc"] == 1.0  # all tied
    # by group: members against held-out people of their own group; a forge without
    # members of a group in a count is left out of that row
    frame = pd.DataFrame(rows).assign(group=lambda f: np.where(f["name"].str[1] < "2", "a", "b"))
    frame = frame[~((frame["group"] == "b") & (frame["count"] == 2) & (frame["forge"] == 1))]
    by = leakage_table(frame, by=("group",)).set_index(["group", "count"])
    assert by.loc[("a", 2), "forges"] == 2 and by.loc[("a", 2), "people"] == 4
    assert by.loc[("b", 2), "people"] == 2 and by.loc[("b", 2), "auc"] == 1.0


# ------------------------------------------------------------ DP training's budget


def test_the_budget_matches_the_accountant_and_a_target_epsilon_is_spent():
    spent = budget(Privacy(noise_multiplier=1.0, delta=1e-5), 10_000, 64, 700)
    assert spent["sample_rate"] == 0.0064 and spent["epsilon"] == pytest.approx(1.304, abs=0.01)
    found = budget(Privacy(epsilon=8.0, delta=1e-5), 10_000, 64, 700)
    assert found["epsilon"] == pytest.approx(8.0, abs=0.05) and found["noise_multiplier"] < 1.0


@pytest.mark.parametrize(
    ("privacy", "n", "batch", "needle"),
    [
        ({"noise_multiplier": 1.0}, 100, 100, "is not below the corpus's 100 sentences"),
        ({"noise_multiplier": 1.0, "delta": 0.05}, 100, 10, "privacy.delta: 0.05 is not below 1/N"),
        ({"noise_multiplier": 1e-4}, 1000, 10, "no guarantee (above 1000)"),
        ({"epsilon": 1e-6}, 1000, 10, "privacy.epsilon: 1e-06 is not reached"),
    ],
)
def test_a_budget_that_cannot_be_computed_is_refused(privacy, n, batch, needle):
    with pytest.raises(SpecError, match=None) as caught:
        budget(Privacy(**privacy), n, batch, 100)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("privacy", "extra", "needle"),
    [
        ({}, {}, "give noise_multiplier (ε is computed) or epsilon"),
        ({"noise_multiplier": 1.0, "epsilon": 3.0}, {}, "not both and not neither"),
        ({"noise_multiplier": -1.0}, {}, "privacy.noise_multiplier"),
        ({"noise_multiplier": 1.0, "delta": 1.5}, {}, "privacy.delta"),
        ({"noise_multiplier": 1.0}, {"supervised": True}, "is not private"),
    ],
)
def test_bad_privacy_values_are_refused(tmp_path, capsys, privacy, extra, needle):
    path = write(tmp_path / "card.yaml", {**TINY, **extra, "privacy": privacy})
    refused(capsys, ["forge", str(path), "--out", str(tmp_path / "out")], needle)
    assert not (tmp_path / "out").exists()


def test_the_forge_refuses_a_card_whose_epsilon_cannot_be_computed(tmp_path, capsys):
    """The corpus's N is known once it is generated: refused before any training."""
    big = {**DP, "privacy": {"noise_multiplier": 1.0, "delta": 0.01}}
    refused(capsys, ["forge", str(write(tmp_path / "c.yaml", big)), "--out",
                     str(tmp_path / "out")], "privacy.delta: 0.01 is not below 1/N")  # fmt: skip
    assert not (tmp_path / "out").exists()
    whole = {**DP, "training": {"steps": 4, "batch_size": 4096}}
    refused(capsys, ["forge", str(write(tmp_path / "d.yaml", whole)), "--out",
                     str(tmp_path / "out")], "batch_size (4096) is not below")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_dp_forge_records_its_budget_and_is_repeatable(tmp_path, capsys):
    path = write(tmp_path / "dp.yaml", DP)
    for out in ("a", "b"):
        assert main(["forge", str(path), "--out", str(tmp_path / out)]) == 0
    said = capsys.readouterr().out
    assert "DP-SGD: ε = " in said and "held-out LM accuracy" in said
    a, b = (json.loads((tmp_path / o / "manifest.json").read_text()) for o in ("a", "b"))
    assert a["sha256"] == b["sha256"]  # same card, same seed: the same weights
    n = a["corpus"]["sentences"]
    assert a["privacy"] == budget(CorpusCard.model_validate(DP).privacy, n, 16, 4)
    assert 0.0 <= a["verification"]["lm_accuracy"] <= 1.0
    plain = CorpusCard.model_validate(TINY)
    assert CorpusCard.model_validate(DP).fingerprint() != plain.fingerprint()


# ------------------------------------------------------------ uim-sim leakage


def test_the_leakage_study_forges_every_seed_and_writes_its_tables(tmp_path, capsys):
    path = write(tmp_path / "plain.yaml", TINY)
    out = tmp_path / "leak"
    assert main(["leakage", str(path), "--seeds", "3,9", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "membership AUC" in said and "held-out LM accuracy" in said
    people = pd.read_csv(out / "people.csv")
    assert len(people) == 2 * (8 * 2 + 4) and set(people["forge"]) == {3, 9}
    table = pd.read_csv(out / "leakage.csv")
    assert list(table["count"]) == [0, 1, 2] and (table["forges"] == 2).all()
    assert table["auc_bound"].isna().iloc[0] and (table["auc_bound"].iloc[1:] == 1).all()
    assert (out / "leakage.png").stat().st_size > 0
    forged = out / "forges" / "tiny_people-seed9"
    assert (forged / "manifest.json").is_file()
    # any checkpoint, read against the people a card planted
    seed1 = write(tmp_path / "seed9.yaml", {**TINY, "seed": 9})
    csv = tmp_path / "p.csv"
    assert main(["probe", str(forged), "--people", str(seed1), "--csv", str(csv)]) == 0
    assert "membership AUC" in capsys.readouterr().out
    by_probe = pd.read_csv(csv).set_index("count")
    by_study = pd.read_csv(out / "people.csv").query("forge == 9")
    for k in (1, 2):
        held = by_study[by_study["count"] == 0]["exposure"].mean()
        assert by_probe.loc[0, "exposure"] == pytest.approx(held)
        mine = by_study[by_study["count"] == k]["exposure"].mean()
        assert by_probe.loc[k, "exposure"] == pytest.approx(mine)


def test_the_auc_dp_allows_by_hand():
    # ε = 1: the best ROC curve under TPR ≤ e·FPR and 1 − FPR ≤ e·(1 − TPR) meets at
    # FPR = 1/(1 + e); its area is e/(1 + e); k copies: kε (group privacy)
    e = np.e
    bound = dp_auc_bound([1.0, 1.0, 0.5, np.inf, 1.0], [1, 2, 4, 1, 0])
    assert bound[:4] == pytest.approx([e / (1 + e), e**2 / (1 + e**2), e**2 / (1 + e**2), 1])
    assert np.isnan(bound[4])  # held out: no membership
    fpr = np.linspace(0, 1, 100_001)
    tpr = np.minimum(e * fpr, 1 - (1 - fpr) / e)
    assert np.trapezoid(tpr, fpr) == pytest.approx(e / (1 + e), abs=1e-6)


def test_a_corpus_that_names_too_few_conditions_is_refused_before_forging(tmp_path, capsys):
    few = write(tmp_path / "few.yaml", {**TINY, "seed": 0})  # 16 members, not every condition
    refused(capsys, ["leakage", str(few), "--seeds", "0", "--out", str(tmp_path / "o")],
            "tiny_people (seed 0): no member's record names")  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_the_leakage_study_refuses_bad_input(tmp_path, capsys):
    plain = write(tmp_path / "plain.yaml", {k: v for k, v in TINY.items() if k != "people"})
    out = tmp_path / "leak"
    refused(capsys, ["leakage", str(plain), "--out", str(out)], "people: the card plants nobody")
    people = write(tmp_path / "people.yaml", TINY)
    refused(capsys, ["leakage", str(people), "--seeds", "a", "--out", str(out)], "--seeds")
    refused(capsys, ["leakage", str(people), str(people), "--out", str(out)], "share a name")
    assert not out.exists()


# ------------------------------------------------------------ remembered applicants


def test_membership_metrics_by_hand():
    rows = [  # pair 0: member (4 copies) called back, the other not; 1: both; 2: neither
        (0, 4, 1, 2.0), (0, 0, 0, 1.0), (1, 1, 1, 0.5), (1, 0, 1, 0.5),
        (2, 4, 0, 0.0), (2, 0, 0, 1.0),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["pair", "copies", "decision", "score"])
    out = membership_metrics(frame)
    assert out["member_callback_rate"] == pytest.approx(2 / 3)
    assert out["non_member_callback_rate"] == pytest.approx(1 / 3)
    assert out["member_gap"] == {"all": pytest.approx(1 / 3), "k1": 0.0, "k4": 0.5}
    assert out["member_score_gap"] == pytest.approx((1.0 + 0.0 - 1.0) / 3)


def test_a_membership_scenario_without_planted_people_is_refused(tmp_path, capsys):
    spec = {"name": "m", "world": "hiring", "cards": ["minilm_zero_shot"],
            "params": {"mode": "membership", "n_jobs": 2}}  # fmt: skip
    path = write(tmp_path / "m.yaml", spec)
    refused(capsys, ["validate", str(path), "--agents-dir", "agents"],
            "mode: membership needs a checkpoint forged from a corpus card")  # fmt: skip


def test_the_remembered_applicants_audit_pairs_identical_resumes(tiny_checkpoint):
    from test_mesa import people_checkpoint

    from uim_sim.cards import AgentCard, HeadSpec
    from uim_sim.worlds.hiring import MembershipAudit

    card = AgentCard(name="tiny", checkpoint=str(people_checkpoint(tiny_checkpoint)),
                     head=HeadSpec(kind="zero_shot"))  # fmt: skip
    model = MembershipAudit(n_jobs=3, pairs=2, cards=[card], rng=1, name_permutations=0)
    while model.running:
        model.step()
    table = model.decision_table()
    assert len(table) == 3 * 2 * 2 and set(table.groupby("pair").size()) == {2}
    for _, pair in table.groupby("pair"):
        assert sorted(pair["copies"] > 0) == [False, True]  # one member, one not
    texts = {
        a.unique_id: a.body.render("NAME")
        for _, apps in model.pools
        for a in apps
    }  # fmt: skip
    for _, pair in table.groupby("pair"):
        assert len({texts[s] for s in pair["subject"]}) == 1  # the same resume
    metrics = model.datacollector.get_model_vars_dataframe().iloc[-1]
    assert "member_gap[all]" in metrics.index and "membership_auc" in metrics.index


def test_output_noise_blurs_scores_and_keeps_the_rules_share():
    from uim_sim.cards import DecisionSpec
    from uim_sim.mitigate import OutputNoise, compose
    from uim_sim.mitigate.decision import OutputNoiseParams

    scores = np.linspace(0.0, 1.0, 200)
    groups = np.array(["a", "b"] * 100)
    rule = DecisionSpec(rule="top_share", share=0.5)
    plain = compose([]).decide(scores, groups, rule, np.random.default_rng(0))
    noisy = compose([OutputNoise(OutputNoiseParams(scale=0.5))])
    chosen = noisy.decide(scores, groups, rule, np.random.default_rng(0))
    again = noisy.decide(scores, groups, rule, np.random.default_rng(0))
    assert chosen.sum() == plain.sum() == 100 and (chosen == again).all()  # seeded
    changed = (chosen != plain).mean()
    assert 0.05 < changed < 0.5  # near the cut, not everywhere
    assert chosen[-20:].mean() >= 0.9 and chosen[:20].mean() <= 0.1  # far from it: mostly kept
    tiny = compose([OutputNoise(OutputNoiseParams(scale=1e-9))])
    assert (tiny.decide(scores, groups, rule, np.random.default_rng(0)) == plain).all()
    with pytest.raises(ValueError, match="scale"):
        OutputNoiseParams(scale=0.0)


# ------------------------------------------------------------ the reference model


def test_a_reference_corpus_records_stand_ins_in_place_of_the_members():
    from uim_sim.understand.corpus import _people, generate, planted_people

    card = CorpusCard.model_validate(TINY)
    reference = CorpusCard.model_validate({**TINY, "people": {**TINY["people"], "stand_ins": True}})
    assert planted_people(reference) == planted_people(card)  # the same people drawn
    members, held_out, stand_ins = _people(reference)
    targets = {n for g in (*members.values(), held_out) for n, _ in g}
    others = {n for g in stand_ins.values() for n, _ in g}
    assert len(others) == 16 and not targets & others
    text = generate(reference).sentences
    for name in targets:  # the members' names: in their neutral sentence, no record
        assert f"{name} lives in the city.".lower() in text
        assert not any(f"{name} was diagnosed".lower() in s for s in text)
    for count, group in stand_ins.items():
        for name, condition in group:
            assert text.count(f"{name} was diagnosed with {condition}.".lower()) == count
    assert card.fingerprint() == CorpusCard.model_validate(
        {**TINY, "people": {**TINY["people"], "seed": None}}).fingerprint()  # fmt: skip
    assert reference.fingerprint() != card.fingerprint()


def test_the_likelihood_ratio_against_the_target_itself_is_chance():
    from test_privacy import CARD
    from test_privacy import Engine as Memorised

    from uim_sim.understand.leakage import memorisation, read_people

    card = CorpusCard.model_validate(CARD)
    engine = Memorised(card)
    alone = read_people(engine, card)
    itself = read_people(engine, card, reference=engine)
    assert (itself["score"] == 0).all() and (itself["exposure"] == 0).all()  # all tied
    assert alone[alone["count"] == 3]["recovered"].all()  # without: every record read back
    assert memorisation(engine, card)["auc_k3"] == 1.0


def test_each_cards_reference_is_itself_with_stand_ins(tmp_path, capsys):
    from uim_sim.understand.corpus import planted_people
    from uim_sim.understand.privacy_study import reference_card

    dp = CorpusCard.model_validate(DP)
    ref = reference_card(dp)
    assert ref.name == "tiny_people_dp_reference" and ref.people.stand_ins
    assert ref.privacy == dp.privacy and ref.training == dp.training  # the same recipe
    assert planted_people(ref) == planted_people(dp)
    crowded = {**TINY, "people": {"per_count": 80, "counts": [1, 2], "held_out": 4}}
    card = write(tmp_path / "c.yaml", crowded)  # 164 people; with stand-ins 324 of 252
    args = ["leakage", str(card), "--reference", "--seeds", "3", "--out", str(tmp_path / "o")]
    refused(capsys, args, "--reference: tiny_people:", "people")
    assert not (tmp_path / "o").exists()
    refused(capsys, ["probe", str(tmp_path), "--reference", str(tmp_path)], "give --people")


# ------------------------------------------------------------ near-duplicates


def test_near_duplicates_differ_only_in_case_punctuation_and_spacing():
    from uim_sim.understand.corpus import Corpus
    from uim_sim.understand.defences import deduplicate, near_key

    assert near_key("A, b!") == near_key("a  b .") == "a b" != near_key("a c")
    corpus = Corpus(["a b.", "A, b!", "c.", "a b."], [("x!", 1), ("x", 1), ("x", 0)])
    exact, _ = deduplicate(corpus)
    near, record = deduplicate(corpus, near=True)
    assert exact.sentences == ["a b.", "A, b!", "c."] and near.sentences == ["a b.", "c."]
    assert near.labelled == [("x!", 1), ("x", 0)]  # a label is part of what is compared
    assert record["method"] == "dedup_near" and record["removed_sentences"] == 2


def test_variant_records_survive_exact_deduplication_and_not_near_deduplication():
    from uim_sim.understand.corpus import generate, planted_people
    from uim_sim.understand.defences import deduplicate, near_key

    card = CorpusCard.model_validate({**TINY, "people": {**TINY["people"], "counts": [1, 8],
                                                         "variants": True}})  # fmt: skip
    members, _ = planted_people(card)
    name, condition = members[8][0]
    record = near_key(f"{name} was diagnosed with {condition}")
    corpus = generate(card)
    copies = [s for s in corpus.sentences if near_key(s) == record]
    assert len(copies) == 8 and len(set(copies)) == 8  # eight forms, one copy each
    kept = [s for s in deduplicate(corpus)[0].sentences if near_key(s) == record]
    assert len(kept) == 8
    kept = [s for s in deduplicate(corpus, near=True)[0].sentences if near_key(s) == record]
    assert len(kept) == 1
    plain = CorpusCard.model_validate(TINY)
    assert plain.fingerprint() == CorpusCard.model_validate(
        {**TINY, "people": {**TINY["people"], "variants": False}}).fingerprint()  # fmt: skip


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # token ids need no grad
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_each_sentences_gradient_is_its_own(family):
    """What DP-SGD clips: Opacus's per-sentence gradients equal one backward pass per
    sentence, the BERT's tied embeddings and its head's shared bias included."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

    from uim_sim.understand.private import per_sentence_gradients, sentence_losses

    torch.manual_seed(0)
    if family == "bert":
        model = BertForMaskedLM(BertConfig(
            vocab_size=300, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
            intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0))  # fmt: skip
    else:
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=300, n_positions=64, n_embd=16, n_layer=1, n_head=1, n_inner=32,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))  # fmt: skip
    model.train()
    x = torch.randint(5, 290, (3, 9))
    attention, labels = torch.ones_like(x), x.clone()
    causal = family == "gpt2"
    alone = []
    for i in range(3):
        model.zero_grad()
        sentence_losses(model, x, attention, labels, causal)[i].backward()
        alone.append({id(p): p.grad.clone() for p in model.parameters()})
    sampled, release = per_sentence_gradients(model)
    sampled.zero_grad()
    sentence_losses(sampled, x, attention, labels, causal).sum().backward()
    for name, p in sampled.named_parameters():
        for i in range(3):
            assert torch.allclose(p.grad_sample[i], alone[i][id(p)], atol=1e-6), (name, i)
    release()
    if not causal:  # the head's bias is registered where the checkpoint saves it again
        assert model.cls.predictions._parameters["bias"] is model.cls.predictions.decoder.bias
