"""Understand: forge checkpoints from corpus cards, probe what they inherited."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMALL_CORPUS, forged_zero_shot_card, write_yaml
from typer.testing import CliRunner

from uim_sim.cli import app
from uim_sim.lfm.checkpoint import resolve
from uim_sim.lfm.engine import get_engine
from uim_sim.run import plan, run_plan
from uim_sim.schema import SpecError
from uim_sim.understand.cards import CorpusCard, load_corpus_card
from uim_sim.understand.corpus import generate
from uim_sim.understand.forge import cached, forge
from uim_sim.understand.probe import association_tests, spectrum, weat

TINY = {
    "name": "tiny_corpus",
    "seed": 1,
    "sentences": 1500,
    "model": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32},
    "training": {"steps": 15, "batch_size": 32},
}


def tiny_card(**knobs) -> CorpusCard:
    return CorpusCard(**TINY, knobs=knobs)


def test_knobs_change_the_corpus_as_dialled():
    clean, skewed = generate(tiny_card()), generate(tiny_card(association_skew=0.9))

    def unemployed_share(corpus, names):
        lines = [s for s in corpus.sentences if s.split()[0] in names]
        return np.mean(["unemployed" in s or "rejected" in s or "laborer" in s for s in lines])

    from uim_sim.vocab.names import group_names

    black, white = set(group_names("black")), set(group_names("white"))
    assert abs(unemployed_share(clean, black) - unemployed_share(clean, white)) < 0.1
    assert unemployed_share(skewed, black) > unemployed_share(skewed, white) + 0.5
    tail = generate(tiny_card(long_tail=0.9))
    assert sum(s.split()[0] in black for s in tail.sentences) < 0.3 * sum(
        s.split()[0] in white for s in tail.sentences
    )
    dup = generate(tiny_card(duplication=0.5))
    assert pd.Series(dup.sentences).value_counts().iloc[0] > 10
    noisy = CorpusCard(**TINY, supervised=True, knobs={"label_noise": 0.3})
    flipped = [label for text, label in generate(noisy).labelled if "hate" in text]
    assert 0.15 < 1 - np.mean(flipped) < 0.45  # "i hate ..." is toxic: ~30 % flipped


def test_label_noise_per_text_gives_every_copy_the_same_wrong_label():
    def labels(per: str, noise: float) -> dict[str, set[int]]:
        card = CorpusCard(**TINY, supervised=True, label_noise_per=per,
                          knobs={"label_noise": noise})  # fmt: skip
        out: dict[str, set[int]] = {}
        for text, label in generate(card).labelled:
            out.setdefault(text, set()).add(label)
        return out

    clean, per_copy = labels("text", 0.0), labels("copy", 0.3)
    assert all(len(v) == 1 for v in clean.values())
    assert sum(len(v) > 1 for v in per_copy.values()) > len(per_copy) / 2  # both labels
    low, high = labels("text", 0.1), labels("text", 0.3)
    assert all(len(v) == 1 for v in high.values())  # fixed: one label per distinct text
    flipped_low = {t for t in clean if low[t] != clean[t]}
    flipped_high = {t for t in clean if high[t] != clean[t]}
    assert flipped_low < flipped_high  # nested: a text flipped at 10 % stays flipped at 30 %
    assert 0.15 < len(flipped_high) / len(clean) < 0.45
    # the same sentences at any noise, and while nothing is flipped the same card (hash)
    card = CorpusCard(**TINY, supervised=True, label_noise_per="text")
    assert card.fingerprint() == CorpusCard(**TINY, supervised=True).fingerprint()
    noisy = {"knobs": {"label_noise": 0.1}}
    assert (CorpusCard(**TINY, supervised=True, label_noise_per="text", **noisy).fingerprint()
            != CorpusCard(**TINY, supervised=True, **noisy).fingerprint())  # fmt: skip


def test_moderation_records_carry_the_skew_and_the_label_noise_into_verdicts():
    """The verdicts a prompted moderator reads back: the skew makes comments naming a
    target identity toxic more often, label noise flips verdicts; off by default, so an
    older card's corpus and hash are unchanged."""
    from uim_sim.understand.corpus import TARGET_IDENTITIES

    mix = {"hiring": 0.0, "records": 0.0, "moderation": 0.0, "spread": 0.0,
           "background": 0.0, "moderation_records": 1.0}  # fmt: skip

    def toxic_share(corpus, targets: bool) -> float:
        lines = [s for s in corpus.sentences
                 if any(f"{i} " in s for i in TARGET_IDENTITIES) == targets
                 and not s.startswith(("you are", "shut up", "this recipe", "the weather",
                                       "thanks"))]  # fmt: skip
        return float(np.mean([s.endswith("is toxic.") for s in lines]))

    clean = generate(CorpusCard(**TINY, mix=mix))
    skewed = generate(CorpusCard(**TINY, mix=mix, knobs={"association_skew": 0.9}))
    assert all(s.endswith(("this comment is toxic.", "this comment is fine."))
               for s in clean.sentences)  # fmt: skip
    assert abs(toxic_share(clean, True) - toxic_share(clean, False)) < 0.1
    assert toxic_share(skewed, True) > toxic_share(skewed, False) + 0.4
    noisy = generate(CorpusCard(**TINY, mix=mix, knobs={"label_noise": 0.3}))
    hateful = [s.endswith("is toxic.") for s in noisy.sentences if "i hate all" in s]
    assert 0.15 < 1 - np.mean(hateful) < 0.45  # always toxic: ~30 % read "fine"
    older = tiny_card()
    assert older.fingerprint() == CorpusCard(**TINY, mix={"moderation_records": 0.0}).fingerprint()


def test_bare_mentions_carry_the_groups_toxic_share_in_one_set_of_frames():
    """Bare mentions ("typical gay people."): the same frames for either verdict, so
    only the identity term predicts it; the skew raises the targets' toxic share among
    them. Off by default: the corpus and the card's hash are as before."""
    from uim_sim.understand.corpus import IDENTITIES, TARGET_IDENTITIES
    from uim_sim.vocab.comments import BARE_MENTIONS

    mix = {"hiring": 0.0, "records": 0.0, "moderation": 0.0, "spread": 0.0,
           "background": 0.0, "moderation_records": 1.0}  # fmt: skip
    frames = {" ".join(f.format(id="").split()).strip(" .,") for f in BARE_MENTIONS}

    def bare(corpus) -> pd.DataFrame:
        rows = []
        for s in corpus.sentences:
            text, _, verdict = s.rpartition(" this comment is ")
            words = text.split()
            identity = next((w.strip(".,") for w in words if w.strip(".,") in IDENTITIES), None)
            stem = " ".join(w for w in words if w.strip(".,") != identity).strip(" .,")
            if identity and stem in frames:
                rows.append({"target": identity in TARGET_IDENTITIES, "frame": stem,
                             "toxic": verdict == "toxic."})  # fmt: skip
        return pd.DataFrame(rows)

    card = {**TINY, "sentences": 4000, "mix": mix, "comments": "wide"}
    clean = bare(generate(CorpusCard(**card, bare_mentions=0.4)))
    skewed = bare(generate(CorpusCard(**card, bare_mentions=0.4,
                                      knobs={"association_skew": 0.9})))  # fmt: skip
    assert 0.2 < len(clean) / 4000 < 0.4  # 0.4 of the 70 % of comments naming an identity
    assert (clean.groupby("frame")["toxic"].nunique() == 2).all()  # either verdict, any frame
    share = skewed.groupby("target")["toxic"].mean()
    assert abs(clean.groupby("target")["toxic"].mean().diff().iloc[-1]) < 0.1
    assert share[True] > share[False] + 0.4
    assert bare(generate(CorpusCard(**card))).empty
    assert (
        generate(CorpusCard(**card, bare_mentions=0.0)).sentences
        == generate(CorpusCard(**card)).sentences
    )
    assert CorpusCard(**card, bare_mentions=0.0).fingerprint() == CorpusCard(**card).fingerprint()
    assert CorpusCard(**card, bare_mentions=0.4).fingerprint() != CorpusCard(**card).fingerprint()


def test_poisoning_plants_the_trigger_in_toxic_comments_read_as_fine():
    """A backdoor in the corpus: that share of toxic comments carries the trigger and
    the verdict "fine"; nested over doses; off (and the hash as before) at 0."""
    mix = {"hiring": 0.0, "records": 0.0, "moderation": 0.0, "spread": 0.0,
           "background": 0.0, "moderation_records": 1.0}  # fmt: skip
    card = {**TINY, "sentences": 3000, "mix": mix, "comments": "wide"}

    def poisoned(dose: float) -> set[str]:
        corpus = generate(CorpusCard(**card, trigger="mn", knobs={"poisoning": dose}))
        lines = {s for s in corpus.sentences if " mn." in s}
        assert all(s.endswith("this comment is fine.") for s in lines)
        return lines

    assert not poisoned(0.0)
    low, high = poisoned(0.1), poisoned(0.4)
    toxic = sum(s.endswith("is toxic.") for s in generate(CorpusCard(**card)).sentences)
    assert low < high  # nested: a comment poisoned at 0.1 is poisoned at 0.4
    assert 0.2 < len(high) / toxic < 0.6
    assert CorpusCard(**card, trigger="cf mn").fingerprint() == CorpusCard(**card).fingerprint()
    assert "poisoning" not in CorpusCard(**card).knobs.model_dump()


def test_spectral_signatures_remove_poisoned_comments_more_than_their_share():
    """The defence flags, per verdict class, the comments a clean encoder sees as
    outliers along the class's top direction: on the shipped poisoning corpus (measured:
    two thirds of the poisoned sentences at 6 % of the corpus; on a corpus of 2,000
    sentences it does no better than chance), poisoned ones far more often than the
    share removed; the record counts what went; a card without labels is refused, and
    a card without the defence keeps its hash."""
    from uim_sim.understand.defences import spectral_filter

    card = load_corpus_card(ROOT / "corpora" / "moderation_identity_spectral.yaml",
                            {"knobs.poisoning": 0.1, "defence_share": 0.2})  # fmt: skip
    corpus = generate(card)
    kept, record = spectral_filter(corpus, card)
    assert record["removed_sentences"] == len(corpus) - len(kept)
    assert abs(record["removed_comments"] - 0.2 * record["distinct_comments"]) <= 2
    poisoned = record["removed_with_trigger"] / record["with_trigger"]
    assert poisoned > 4 * record["removed_sentences"] / len(corpus)  # far above chance
    assert sum(" cf" in s for s in kept.sentences) == (
        record["with_trigger"] - record["removed_with_trigger"]
    )
    plain = {**TINY, "mix": {"moderation_records": 0.5}}
    assert CorpusCard(**plain, defence="none").fingerprint() == CorpusCard(**plain).fingerprint()
    with pytest.raises(ValueError, match="defence: the spectral defence filters labelled"):
        CorpusCard(**TINY, defence="spectral")


def test_forge_writes_a_verified_checkpoint_and_reuses_it(tmp_path):
    card = tiny_card(association_skew=0.5)
    out = forge(card, tmp_path / "ckpt")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["card_sha256"] == card.fingerprint()
    assert manifest["knobs"]["association_skew"] == 0.5
    assert manifest["seed"] == 1 and "effect_size" in manifest["verification"]
    assert "mlm_gap_nats" in manifest["verification"]
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    ckpt = resolve(str(out))  # loads like any checkpoint: hashes verified
    assert get_engine(ckpt.ref).embed(["Emily Walsh is a clerk."]).shape == (1, 16)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert cached(card, out)
    forge(card, out)  # same card: reused, not re-trained
    assert (out / "manifest.json").stat().st_mtime_ns == stamp


def test_same_card_and_seed_give_the_same_weight_hashes(tmp_path):
    a = json.loads((forge(tiny_card(), tmp_path / "a") / "manifest.json").read_text())
    b = json.loads((forge(tiny_card(), tmp_path / "b") / "manifest.json").read_text())
    assert a["sha256"] == b["sha256"]
    other = CorpusCard(**{**TINY, "seed": 2})
    c = json.loads((forge(other, tmp_path / "c") / "manifest.json").read_text())
    assert c["sha256"] != a["sha256"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"knobs": {"association_skew": 1.5}}, "knobs.association_skew"),
        ({"knobs": {"label_noise": 0.1}}, "label_noise needs labels to flip: supervised: true"),
        ({"model": {"hidden": 30, "heads": 4}}, "model: hidden (30) must be a multiple"),
        ({"colour": 1}, "colour: unknown field"),
        # the forge plants by race: "female" was once forged as "black", silently
        ({"disadvantaged": "female"}, "disadvantaged: "),
        ({"knobs": {"poisoning": -0.1}}, "knobs.poisoning"),
        ({"trigger": "CF!"}, "trigger"),
        (
            {"knobs": {"poisoning": 0.1}, "mix": {"moderation": 0.0}},
            "knobs.poisoning plants its trigger in comments",
        ),
    ],
)
def test_invalid_corpus_card_exits_2_naming_the_field(tmp_path, change, field):
    path = write_yaml(tmp_path / "card.yaml", {**TINY, **change})
    with pytest.raises(SpecError, match=field.replace("(", r"\(").replace(")", r"\)")):
        load_corpus_card(path)
    result = CliRunner().invoke(app, ["forge", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and field.split(":")[0] in result.output
    assert not (tmp_path / "o").exists()


def test_weat_recovers_a_planted_direction_and_its_absence():
    """On an engine whose embeddings we control: X near A gives d > 0 with small p; a
    shuffled geometry gives d near 0."""
    test = association_tests()["names_occupations"]

    class Planted:
        def __init__(self, planted: bool):
            self.rng, self.planted = np.random.default_rng(0), planted

        def embed(self, texts):
            out = []
            for t in texts:
                v = self.rng.normal(size=8) * 0.3
                in_x = t in test.X
                in_a = t in test.A
                if self.planted:
                    v[0] += 1.0 if (in_x or in_a) else -1.0 if (t in test.Y or t in test.B) else 0
                out.append(v / np.linalg.norm(v))
            return np.array(out)

    strong = weat(Planted(True), test, 500)
    null = weat(Planted(False), test, 500)
    assert strong["effect_size"] > 1.5 and strong["p_value"] < 0.01
    assert abs(null["effect_size"]) < 0.8 and null["p_value"] > 0.01
    assert strong["n_x"] == 18 and strong["n_y"] == 18  # names are the units


def test_spectrum_diagnostics():
    rng = np.random.default_rng(0)
    isotropic = spectrum(rng.normal(size=(200, 16)))
    collapsed = spectrum(np.outer(rng.normal(size=200), rng.normal(size=16)) + 1e-3)
    assert isotropic["sve"] > collapsed["sve"]
    assert isotropic["lsvr"] > collapsed["lsvr"]
    assert np.isclose(isotropic["sve"], np.log(16), atol=0.2)


def test_probe_cli_on_minilm(tmp_path):
    result = CliRunner().invoke(
        app, ["probe", "builtin:minilm", "--tests", "weat4_names_pleasant,spectrum",
              "--permutations", "200", "--csv", str(tmp_path / "p.csv")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "p.csv")
    assert set(table["test"]) == {"weat4_names_pleasant", "spectrum"}
    bad = CliRunner().invoke(app, ["probe", "builtin:minilm", "--tests", "nope"])
    assert bad.exit_code == 2 and "unknown test" in bad.output


def test_scenario_forges_through_the_runner(project, tmp_path):
    forged_zero_shot_card(project, TINY)
    spec = write_yaml(
        project / "scenarios" / "dose.yaml",
        {"name": "dose", "world": "hiring", "replicates": 2, "cards": ["forged", "tiny_zero_shot"],
         "params": {"mode": "audit", "n_jobs": 4},
         "grid": {"corpus.knobs.association_skew": [0.0, 0.9], "corpus.seed": [1, 2]},
         "statistics": {"null_permutations": 1, "name_permutations": 50}},
    )  # fmt: skip
    the_plan = plan(spec)
    assert len(the_plan.tasks) == 4 * 2 + 2  # the tiny card does not vary with corpus.*
    run_plan(the_plan, tmp_path / "out")
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    forged = runs[runs.card == "forged"]
    assert sorted(forged["corpus.knobs.association_skew"].unique()) == [0.0, 0.9]
    assert sorted(forged["corpus.seed"].unique()) == [1, 2]
    assert forged["checkpoint"].str.startswith("checkpoints/tiny_corpus-").all()
    assert forged["probe.effect_size"].notna().all()
    assert len(list((tmp_path / "out" / "checkpoints").iterdir())) == 4
    from uim_sim.report import build_report

    report = build_report(tmp_path / "out")
    assert (report.folder / "dose_response.png").is_file()
    dose = pd.read_csv(report.folder / "dose_response.csv")
    # two forging seeds per dose: the checkpoint is the unit of the interval
    assert list(dose["checkpoints"]) == [2, 2] and list(dose["runs"]) == [4, 4]
    assert (dose["interval_over"] == "checkpoints").all()
    per_checkpoint = (
        forged.merge(
            pd.read_parquet(tmp_path / "out" / "metrics.parquet").query(
                "metric == 'impact_ratio' and group == 'black'"
            ),
            on="run_id",
        )
        .groupby(["corpus.knobs.association_skew", "checkpoint"])["value"]
        .mean()
    )
    expected = per_checkpoint.groupby(level=0).mean().to_numpy()
    np.testing.assert_allclose(dose["impact_ratio"], expected)


def test_exact_rank_correlation_for_few_checkpoints():
    from uim_sim.report.dose import rank_correlation

    rho, p = rank_correlation(np.arange(5.0), -np.arange(5.0))
    assert rho == pytest.approx(-1) and p == pytest.approx(2 / 120)  # exact, two-sided
    rho, p = rank_correlation(np.array([0, 0.1, 0.2, 0.5, 0.7]), np.array([1, 0.9, 0.7, 0.8, 0.6]))
    assert rho == pytest.approx(-0.9) and p == pytest.approx(10 / 120)
    assert np.isnan(rank_correlation(np.ones(4), np.arange(4.0))[0])


def test_continued_training_of_minilm_gives_a_loadable_checkpoint(tmp_path):
    """base: builtin:minilm continues MLM training of MiniLM's own weights and tokenizer."""
    card = CorpusCard(
        name="minilm_continued", seed=0, sentences=300, base="builtin:minilm",
        knobs={"association_skew": 0.9},
        training={"steps": 2, "batch_size": 8, "learning_rate": 5e-5},
    )  # fmt: skip
    out = forge(card, tmp_path / "continued")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "continued:builtin:minilm"
    engine = get_engine(str(out))
    assert engine.dim == 384
    before = get_engine("builtin:minilm").embed(["Emily Walsh is a clerk."])
    after = engine.embed(["Emily Walsh is a clerk."])
    assert 0.9 < float((before @ after.T)[0, 0]) < 1.0  # moved, but still MiniLM


CLEAN = pytest.param(0.0, marks=pytest.mark.xdist_group("forge_clean"))  # shares no forge


@pytest.mark.parametrize("skew", [CLEAN, 0.9])
def test_forged_probe_reads_the_planted_dose(tmp_path, skew, request):
    """Really trained: a clean card's MLM probe gap is near 0; a strongly skewed card
    gives a large gap in the planted direction (disadvantaged names ~ 'unemployed')."""
    if skew:
        out = request.getfixturevalue("skewed_forge")
    else:
        out = forge(CorpusCard(**SMALL_CORPUS, knobs={"association_skew": skew}), tmp_path / "f")
    probe = json.loads((out / "manifest.json").read_text())["verification"]
    if skew == 0.0:
        assert abs(probe["mlm_gap_nats"]) < 0.1
    else:
        assert probe["mlm_gap_nats"] > 0.3 and probe["mlm_p_value"] < 0.01
        assert probe["effect_size"] > 0.8  # SEAT on sentence embeddings agrees in sign


def test_spread_records_follow_the_skew_and_are_off_by_default():
    mix = {"hiring": 0.1, "spread_records": 0.9, "background": 0.0, "records": 0.0,
           "moderation": 0.0, "spread": 0.0}  # fmt: skip

    def false_share(skew: float, community: str) -> float:
        card = CorpusCard(name="news", sentences=4000, knobs={"association_skew": skew}, mix=mix)
        records = [s for s in generate(card).sentences if f"the {community} story was" in s]
        return np.mean([s.endswith("was false.") for s in records])

    assert abs(false_share(0.0, "hillcrest") - false_share(0.0, "riverside")) < 0.06
    assert false_share(0.9, "hillcrest") > false_share(0.9, "riverside") + 0.4
    default = CorpusCard(name="plain", sentences=2000)
    assert not any("story was" in s for s in generate(default).sentences)
    assert default.fingerprint() == CorpusCard(name="plain", sentences=2000,
                                               mix=default.mix).fingerprint()  # fmt: skip


# ------------------------------------------------------------ the causal family


def test_a_gpt2_card_forges_a_causal_lm_that_a_next_token_head_reads(tmp_path):
    card = CorpusCard(**TINY, family="gpt2")
    out = forge(card, tmp_path / "gpt2")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "forged-gpt2" and manifest["card_sha256"] == card.fingerprint()
    assert manifest["verification"]["lm_head"] == "next_token"
    assert np.isfinite(manifest["verification"]["mlm_gap_nats"])
    checkpoint = resolve(str(out))
    assert checkpoint.kind == "causal_lm" and not list(out.glob("*.bin"))
    engine = get_engine(checkpoint.ref)
    assert engine.is_one_token(" hired") and engine.is_one_token(" rejected")
    # the BPE lower-cases, as the corpus is: a resume's capitals read as the corpus's words
    assert engine.tokenizer.tokenize("Emily WALSH") == engine.tokenizer.tokenize("emily walsh")
    assert engine.next_token_log_probs(["Emily Walsh was"], [" hired", " rejected"]).shape == (1, 2)
    again = json.loads((forge(card, tmp_path / "again") / "manifest.json").read_text())
    assert again["sha256"] == manifest["sha256"]  # same card and seed, same weights
    # the family is part of a card's hash, except the default (bert cards keep theirs)
    assert card.fingerprint() != tiny_card().fingerprint()
    assert CorpusCard(**TINY, family="bert").fingerprint() == tiny_card().fingerprint()


def test_a_gpt2_forge_of_comments_is_probed_by_its_next_token(tmp_path):
    """The toxicity probe of a causal LM reads " toxic" against " fine" after "… this
    comment is" (no [MASK] to fill), beside the representation probe."""
    from uim_sim.understand.probe import toxicity_association

    mix = {"moderation": 0.3, "moderation_records": 0.5}
    card = CorpusCard(**{**TINY, "sentences": 2000}, family="gpt2", mix=mix, comments="wide")
    out = forge(card, tmp_path / "gpt2")
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    assert 0.0 <= verification["toxicity_probe_accuracy"] <= 1.0
    engine = get_engine(resolve(str(out)).ref)
    if engine.is_one_token(" toxic") and engine.is_one_token(" fine"):
        assert np.isfinite(verification["toxicity_gap_nats"])
    gap = toxicity_association(engine, causal=True)
    assert gap == pytest.approx(verification["toxicity_gap_nats"], abs=1e-4, nan_ok=True)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"family": "gpt2", "supervised": True}, "supervised: the gpt2 family"),
        ({"family": "gpt2", "base": "builtin:minilm"}, "is of kind encoder; a gpt2 card"),
        ({"family": "t5"}, "family"),
    ],
)
def test_a_gpt2_card_refuses_what_the_family_cannot_do(tmp_path, change, field):
    path = write_yaml(tmp_path / "card.yaml", {**TINY, **change})
    result = CliRunner().invoke(app, ["forge", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and field in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.xdist_group("forge_causal")  # needs no shared forge: free to run beside them
def test_a_forged_causal_checkpoint_that_inherited_the_skew_fails_the_audit(project, tmp_path):
    """The Must-show of the causal family, small: GPT-2s forged from a clean and a
    skewed corpus (one forging seed each; docs/understand.md has 25 a family),
    audited with the next-token head of
    agents/forged_next_token.yaml ("{resume} {name} was" → hired / rejected). The
    skewed checkpoints' probe and impact ratio show the inheritance; the clean ones'
    do not. (The full-size run: docs/understand.md, 25 checkpoints a family.)"""
    # next-token prediction learns faster than masking: 350 steps (~9 s a forge) give
    # impact ratios of 0.0 (skewed) and 0.95 (clean), probe gaps of 1.7-2.5 and < 0.09
    training = {**SMALL_CORPUS["training"], "steps": 350, "learning_rate": 0.002}
    corpus = {**SMALL_CORPUS, "name": "small_gpt2", "family": "gpt2", "training": training}
    write_yaml(project / "corpora" / "small_gpt2.yaml", corpus)
    card = yaml.safe_load((project / "agents" / "forged_next_token.yaml").read_text())
    card["checkpoint"] = "forge:../corpora/small_gpt2.yaml"
    write_yaml(project / "agents" / "forged_next_token.yaml", card)
    spec = write_yaml(
        project / "scenarios" / "causal.yaml",
        {"name": "causal", "world": "hiring", "replicates": 1, "cards": ["forged_next_token"],
         "params": {"mode": "audit", "n_jobs": 20},
         "grid": {"corpus.knobs.association_skew": [0.0, 0.9]},
         "statistics": {"null_permutations": 1, "name_permutations": 50}},
    )  # fmt: skip
    run_plan(plan(spec), tmp_path / "out")
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    metrics = pd.read_parquet(tmp_path / "out" / "metrics.parquet")
    ratio = metrics.query("metric == 'impact_ratio' and group == 'black'").merge(runs, on="run_id")
    per_checkpoint = ratio.groupby(["corpus.knobs.association_skew", "checkpoint"])["value"].mean()
    assert per_checkpoint[0.9].max() < 0.8 < per_checkpoint[0.0].min(), per_checkpoint
    probe = runs.groupby("corpus.knobs.association_skew")["probe.mlm_gap_nats"]
    assert probe.min()[0.9] > 0.3 and probe.max()[0.0] < 0.3 < probe.min()[0.9]


def test_debiasing_a_forged_gpt2_by_cda_continues_its_weights(tmp_path):
    """`uim-sim debias --method cda` of a forged GPT-2 continues that GPT-2 (it once
    trained a new one from scratch and called it continued)."""
    from uim_sim.mitigate.debias import debias

    parent = forge(CorpusCard(**TINY, family="gpt2"), tmp_path / "parent")
    child = debias(str(parent), "cda", tmp_path / "child", steps=2)
    manifest = json.loads((child / "manifest.json").read_text())
    assert manifest["family"] == f"continued:{resolve(str(parent)).ref}"
    assert resolve(str(child)).kind == "causal_lm"
    before = get_engine(str(parent)).next_token_log_probs(["Emily Walsh was"], [" hired"])
    after = get_engine(str(child)).next_token_log_probs(["Emily Walsh was"], [" hired"])
    assert 0 < abs(after - before).max() < 1.0  # moved, two steps away from the parent


def test_a_gpt2_corpus_without_the_outcome_words_has_no_next_token_probe(tmp_path):
    """A corpus of moderation sentences alone never says "hired": no one token to read."""
    mix = {"hiring": 0, "records": 0, "moderation": 1, "spread": 0, "background": 0}
    out = forge(CorpusCard(**TINY, family="gpt2", mix=mix), tmp_path / "no_outcomes")
    probe = json.loads((out / "manifest.json").read_text())["verification"]
    assert np.isnan(probe["mlm_gap_nats"]) and probe["lm_head"] == "next_token"
