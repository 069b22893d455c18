"""Local Hugging Face folders of every kind: causal LMs scored by their next token,
sequence classifiers by their own head, `uim-sim register`, and the card's device."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from conftest import ROOT, small_audit_spec, write_yaml
from pydantic import ValidationError

from uim_sim.cards import AgentCard, HeadSpec
from uim_sim.cli import main
from uim_sim.lfm import engine as engine_module
from uim_sim.lfm.checkpoint import CheckpointError, register, resolve
from uim_sim.lfm.engine import LAST_POSITIONS, Engine
from uim_sim.lfm.heads import NextTokenHead
from uim_sim.lfm.random_model import random_causal_lm
from uim_sim.schema import digest

PROMPT = "{text} Should {subject} be hired? Answer:"
HEAD = {"kind": "next_token", "prompt": PROMPT, "positive": [" yes"], "negative": [" no"]}
WORDS = [" yes", " no"]
# texts of many lengths (2 to ~60 tokens): the tokenizer learns their words
TEXTS = [
    "ok",
    "Answer:",
    "Emily Walsh. Sales representative with 5 years of experience.",
    "Jamal Jones. Office clerk with 1 years of experience. High school diploma.",
    "Lakisha Washington. Customer service representative with 8 years of experience. "
    "Bachelor's degree. Skills: call handling, returns, Zendesk. Employee of the month award.",
    "Greg Baker. Cook.",
    "Hiring: administrative assistant. We seek an experienced, reliable candidate.",
]
TRAINING = [PROMPT.format(text=t, subject=s) + a for t in TEXTS
            for s in ("Emily Walsh", "Jamal Jones") for a in WORDS] * 3  # fmt: skip
# a choose_one head: a job ad's resumes in one prompt (tests/test_position_bias.py)
POOL_PROMPT = "{context}\n{candidates}\nThe best candidate is Candidate"
POOL_HEAD = {"kind": "choose_one", "prompt": POOL_PROMPT}


def pool_training(n: int = 60, sizes=(8, 8, 12, 16), digits: bool = True) -> list[str]:
    """Pool prompts of ``sizes`` candidates, as a hiring world shows them, each with
    an answer: what a random model's tokenizer learns, so that resumes are few tokens
    and the labels " 1" … " 16" one each. Without ``digits``, resumes hold none and
    pools are of four: " 5" is then two tokens."""
    from uim_sim.lfm.heads import ChooseOneHead
    from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody, job_description
    from uim_sim.vocab.names import GROUPS, draw_name

    rng = np.random.default_rng(0)
    head, occupations, texts = ChooseOneHead(POOL_PROMPT), list(OCCUPATIONS), []
    for i in range(n):
        occupation, size = occupations[i % 4], sizes[i % len(sizes)] if digits else 4
        resumes = [ResumeBody.from_skill(occupation, rng.normal(), rng).render(
            draw_name(*GROUPS[rng.integers(4)], rng)) for _ in range(size)]  # fmt: skip
        if not digits:
            resumes = [re.sub(r"\d+ ", "", r) for r in resumes]
        answer = f" {rng.integers(1, size + 1)}"
        texts.append(head.pool_prompt(resumes, job_description(occupation)) + answer)
    return texts


def pool_lm(folder, positions: int = 1024, digits: bool = True, seed: int = 0):
    """A random 2-layer GPT-2 whose tokenizer learnt `pool_training`. (Engines are
    shared by weights: two folders of one seed and shape share the first one's
    tokenizer in a process; give another tokenizer another seed.)"""
    return random_causal_lm(folder, pool_training(digits=digits), vocab_size=700,
                            positions=positions, seed=seed)  # fmt: skip


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """A random 2-layer GPT-2 (n_embd 64) with a BPE tokenizer trained on TRAINING."""
    return random_causal_lm(tmp_path_factory.mktemp("causal") / "gpt2", TRAINING, vocab_size=400)


@pytest.fixture(scope="module")
def chooser(tmp_path_factory):
    """A random GPT-2 with 1,024 positions that reads a pool of resumes (`pool_lm`)."""
    return pool_lm(tmp_path_factory.mktemp("chooser") / "gpt2")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, tiny_checkpoint):
    """A random 2-layer BERT sequence classifier (labels benign, toxic), MiniLM tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("classifier") / "toxicity"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        id2label={0: "benign", 1: "toxic"})  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_checkpoint / name, folder / name)
    return folder


def unpadded_log_probs(engine: Engine, prompt: str) -> np.ndarray:
    """The reference: the prompt alone, no padding, no mask, no position ids."""
    import torch

    ids = torch.tensor([engine.tokenizer(prompt)["input_ids"]])
    with torch.inference_mode():
        logits = engine.network(input_ids=ids).logits[0, -1].double()
    return torch.log_softmax(logits, -1)[engine.word_ids(WORDS)].numpy()


def scores_in_one_padded_batch(folder, monkeypatch):
    """Score every prompt of TEXTS in one batch (a length bucket of 128 tokens: up to
    ~60 tokens of left padding) and check each against the prompt alone, unpadded,
    within 1e-5; returns the engine, the prompts and their unpadded log-probabilities."""
    monkeypatch.setattr(engine_module, "BUCKET", 128)
    engine = Engine(resolve(str(folder)))
    prompts = [PROMPT.format(text=t, subject="Emily Walsh") for t in TEXTS]
    batched = engine.next_token_log_probs(prompts, WORDS)
    alone = np.stack([unpadded_log_probs(engine, p) for p in prompts])
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-5)
    return engine, prompts, alone


def refused(capsys, args: list[str], *needles: str) -> str:
    """The CLI exits 2 with one line on stderr holding every needle."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ------------------------------------------------------------ kinds of folder


def test_the_kind_of_a_folder_is_read_off_its_config(gpt2, classifier, tiny_checkpoint):
    assert resolve(str(gpt2)).kind == "causal_lm"
    assert resolve(str(classifier)).kind == "sequence_classifier"
    assert resolve(str(tiny_checkpoint)).kind == "encoder"
    assert resolve("builtin:minilm").kind == "encoder"


def _copy(src, tmp_path, name):
    return shutil.copytree(src, tmp_path / name)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"architectures": ["ViTForImageClassification"]}, "are none of what uim-sim loads"),
        ({"architectures": None, "model_type": None}, "names neither architectures nor"),
        ({"is_encoder_decoder": True}, "an encoder-decoder model"),
    ],
)
def test_a_folder_that_is_no_model_uim_sim_loads_is_refused(gpt2, tmp_path, capsys, change,
                                                            needle):  # fmt: skip
    folder = _copy(gpt2, tmp_path, "odd")
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=needle):
        resolve(str(folder))
    refused(capsys, ["register", str(folder)], needle, str(folder))
    assert not (folder / "manifest.json").exists()


def test_pickle_only_weights_and_a_missing_tokenizer_are_refused(gpt2, tmp_path, capsys):
    pickled = _copy(gpt2, tmp_path, "pickled")
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"not even a pickle")
    refused(capsys, ["register", str(pickled)], "pickle weight files ['pytorch_model.bin']")
    bare = _copy(gpt2, tmp_path, "bare")
    (bare / "tokenizer.json").unlink()
    refused(capsys, ["register", str(bare)], "no tokenizer files (one of tokenizer.json")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a model")
    refused(capsys, ["register", str(plain)], "no config.json: not a Hugging Face model folder")


def test_a_classifier_whose_weights_lack_its_head_is_refused(gpt2, tmp_path):
    folder = _copy(gpt2, tmp_path, "headless")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["GPT2ForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="lack score.weight"):
        resolve(str(folder)).load()


# ------------------------------------------------------------ register


def test_register_records_hashes_that_later_loads_verify(gpt2, tmp_path, capsys):
    folder = _copy(gpt2, tmp_path, "registered")
    assert main(["register", str(folder)]) == 0
    assert "registered" in capsys.readouterr().out
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["sha256"]) == {"model.safetensors"}
    assert manifest["kind"] == "causal_lm" and manifest["architectures"] == ["GPT2LMHeadModel"]
    assert main(["register", str(folder)]) == 0  # a second time: verified, not rewritten
    assert "already has a manifest.json" in capsys.readouterr().out
    assert json.loads((folder / "manifest.json").read_text()) == manifest

    # the config and tokenizer are recorded too: a changed tokenizer is refused
    tokenizer = (folder / "tokenizer.json").read_text()
    (folder / "tokenizer.json").write_text(tokenizer + " ")
    resolve.cache_clear()
    with pytest.raises(CheckpointError, match="config or tokenizer files changed"):
        resolve(str(folder))
    (folder / "tokenizer.json").write_text(tokenizer)
    resolve.cache_clear()
    assert resolve(str(folder)).kind == "causal_lm"

    blob = bytearray((folder / "model.safetensors").read_bytes())
    blob[-10] ^= 0xFF  # one byte of a weight
    (folder / "model.safetensors").write_bytes(bytes(blob))
    resolve.cache_clear()
    with pytest.raises(CheckpointError, match="sha256 of model.safetensors .* refused"):
        resolve(str(folder))
    refused(capsys, ["register", str(folder)], "sha256 of model.safetensors", "refused")
    with pytest.raises(CheckpointError, match="pinned hash"):
        register("builtin:minilm")


# ------------------------------------------------------------ next-token scoring


def test_a_prompt_scores_the_same_alone_and_among_longer_prompts(gpt2, monkeypatch):
    """Left padding with position ids: the short prompt shares one batch with prompts
    up to ~60 tokens longer (one bucket of 128 tokens), and scores as it does alone,
    unpadded. Without position ids the same batch is off by far more."""
    import torch

    engine, prompts, alone = scores_in_one_padded_batch(gpt2, monkeypatch)
    chunk, batch = next(engine._batches(prompts, left=True))
    assert batch["input_ids"].shape == (len(prompts), 128)  # really one padded batch
    del batch["position_ids"]
    with torch.inference_mode():
        logits = engine.network(**batch).logits[:, -1].double()
    naive = torch.log_softmax(logits, -1)[:, engine.word_ids(WORDS)].numpy()
    assert np.abs(naive[chunk] - alone).max() > 1e-3


def test_a_llama_style_model_is_padded_the_same_way(tmp_path, monkeypatch):
    """Rotary positions (Llama) read the same position ids: one padded batch of
    prompts of many lengths scores as each prompt alone, unpadded."""
    folder = random_causal_lm(tmp_path / "llama", TRAINING, family="llama", hidden=64,
                              heads=4, kv_heads=2, vocab_size=400)  # fmt: skip
    assert resolve(str(folder)).kind == "causal_lm"
    scores_in_one_padded_batch(folder, monkeypatch)


def test_next_token_scores_keep_their_bits_in_any_company_row_or_thread_count(gpt2):
    """As embeddings do (tests/test_engine.py). Measured here: with logits_to_keep=1
    instead of LAST_POSITIONS, ~20 % of these prompts changed their last bits."""
    import torch

    from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
    from uim_sim.vocab.names import GROUPS, draw_name

    rng = np.random.default_rng(0)
    prompts = [PROMPT.format(text=t, subject="Emily") for t in TEXTS]
    for _ in range(150):
        race, gender = GROUPS[rng.integers(len(GROUPS))]
        name = draw_name(race, gender, rng)
        body = ResumeBody.from_skill(list(OCCUPATIONS)[rng.integers(4)], rng.normal(), rng)
        prompts.append(PROMPT.format(text=body.render(name), subject=name))
    engine = Engine(resolve(str(gpt2)))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        together = engine.next_token_log_probs(prompts, WORDS)
        alone = [unpadded_log_probs(engine, p) for p in prompts[:20]]
        np.testing.assert_allclose(together[:20], alone, rtol=0, atol=1e-5)
        for n, k in ((1, 100), (2, 40), (1, 5), (2, 3)):
            torch.set_num_threads(n)
            engine.clear_cache()
            idx = rng.permutation(len(prompts))[:k]
            got = engine.next_token_log_probs([prompts[i] for i in idx], WORDS)
            assert np.array_equal(got, together[idx]), (n, k)
        for i in (0, 1, 5, 20, 21):  # alone in its bucket
            engine.clear_cache()
            assert (
                engine.next_token_log_probs([prompts[i]], WORDS).tobytes() == together[i].tobytes()
            )
    finally:
        torch.set_num_threads(threads)


def test_on_a_gpu_every_batch_of_a_bucket_has_one_shape(gpt2):
    """A GPU picks its kernels by shape (benchmarks/README.md: with varying row counts
    no prompt kept its bits there): the engine's GPU batches are GPU_BUCKET-token wide
    and filled to its row count. Emulated on the CPU by giving the engine free memory."""
    from uim_sim.lfm.device import GPU_BUCKET

    engine = Engine(resolve(str(gpt2)))
    engine._free, engine.bucket, engine.gpu_rows = 10**12, GPU_BUCKET, 8
    shapes = []
    forward = engine.network.forward
    engine.network.forward = lambda **kw: (
        shapes.append(tuple(kw["input_ids"].shape)) or forward(**kw)
    )
    prompts = [PROMPT.format(text=t, subject=s) for t in TEXTS for s in ("Emily", "Jamal Jones")]
    together = engine.next_token_log_probs(prompts, WORDS)
    assert {rows for rows, _ in shapes} == {8} and all(w % GPU_BUCKET == 0 for _, w in shapes)
    for i in (0, 5, 13):
        engine.clear_cache()
        assert engine.next_token_log_probs([prompts[i]], WORDS).tobytes() == together[i].tobytes()


def test_next_token_scoring_is_deduplicated_cached_and_keeps_last_positions(gpt2):
    engine = Engine(resolve(str(gpt2)))
    shapes = []
    forward = engine.network.forward

    def spy(*args, **kwargs):
        out = forward(*args, **kwargs)
        shapes.append(tuple(out.logits.shape))
        return out

    engine.network.forward = spy
    prompts = ["a b Answer:", "c d Answer:", "a b Answer:", "a b Answer:"]
    out = engine.next_token_log_probs(prompts, WORDS)
    assert out.shape == (4, 2) and np.all(out < 0) and np.array_equal(out[0], out[2])
    c = engine.counters
    assert (c.texts_requested, c.texts_encoded, c.cache_hits, c.calls) == (4, 2, 2, 1)
    assert shapes and all(s[1] == LAST_POSITIONS for s in shapes)  # not every position
    engine.next_token_log_probs(["c d Answer:", "e f Answer:"], WORDS)
    assert (c.texts_requested, c.texts_encoded, c.cache_hits) == (6, 3, 3)
    assert engine.next_token_log_probs([], WORDS).shape == (0, 2)
    assert engine.embed(["a b"]).shape == (1, 64)  # the model under the head embeds
    with pytest.raises(ValueError, match="' yes', with the space before it, is"):
        engine.next_token_log_probs(prompts, ["yes"])


def test_next_token_head_scores_a_hiring_audit(gpt2):
    from uim_sim.worlds.hiring import AuditStudy

    card = AgentCard(name="causal", checkpoint=str(gpt2), head=HeadSpec(**HEAD))
    engine = Engine(resolve(str(gpt2)))
    score = NextTokenHead(PROMPT, [" yes"], [" no"]).score_texts(engine, ["Greg Baker. Cook."],
                                                                ["Greg Baker"])  # fmt: skip
    log_p = engine.next_token_log_probs([PROMPT.format(text="Greg Baker. Cook.",
                                                       subject="Greg Baker")], WORDS)  # fmt: skip
    assert score[0] == pytest.approx(1 / (1 + np.exp(log_p[0, 1] - log_p[0, 0])))
    table = AuditStudy(n_jobs=2, cards=card, rng=1).simulate().decision_table()
    assert len(table) > 0 and table["score"].between(0, 1).all()


# ------------------------------------------------------------ classifier heads


def test_a_classifier_head_reads_the_probability_of_its_label(classifier):
    from uim_sim.lfm.heads import ClassifierHead

    engine = Engine(resolve(str(classifier)))
    texts = ["you are kind", "you are awful", "you are kind"]
    probs = engine.class_probs(texts)
    assert probs.shape == (3, 2) and np.allclose(probs.sum(1), 1)
    assert engine.counters.texts_encoded == 2
    score = ClassifierHead("toxic").score_texts(engine, texts, [""] * 3)
    np.testing.assert_array_equal(score, probs[:, 1])


def test_class_probabilities_keep_their_bits_in_any_company(classifier):
    """Measured here: in batches of 2 to 32 rows (not a multiple of 4), ~20 % of
    texts changed their last bits with their company."""
    import torch

    from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
    from uim_sim.vocab.names import GROUPS, draw_name

    rng = np.random.default_rng(1)
    texts = TEXTS.copy()
    for _ in range(150):
        race, gender = GROUPS[rng.integers(len(GROUPS))]
        body = ResumeBody.from_skill(list(OCCUPATIONS)[rng.integers(4)], rng.normal(), rng)
        texts.append(body.render(draw_name(race, gender, rng)))
    engine = Engine(resolve(str(classifier)))
    together = engine.class_probs(texts)
    threads = torch.get_num_threads()
    try:
        for n, k in ((1, 100), (2, 40), (1, 5), (2, 3)):
            torch.set_num_threads(n)
            engine.clear_cache()
            idx = rng.permutation(len(texts))[:k]
            assert np.array_equal(engine.class_probs([texts[i] for i in idx]), together[idx])
        for i in (0, 1, 7, 8):
            engine.clear_cache()
            assert engine.class_probs([texts[i]]).tobytes() == together[i].tobytes()
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------ cards and plans


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({**HEAD, "prompt": "{text} was [MASK]."}, "holds no [MASK]"),
        ({**HEAD, "prompt": "{text} Answer: "}, "must not end in whitespace"),
        ({**HEAD, "prompt": None}, "needs prompt"),
        ({**HEAD, "negative": []}, "needs positive and negative"),
        ({"kind": "classifier"}, "needs label"),
        ({"kind": "zero_shot", "label": "toxic"}, "label applies only to kind: classifier"),
    ],
)
def test_next_token_and_classifier_heads_are_validated(head, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        HeadSpec(**head)


def _spec(project, name, card):
    write_yaml(project / "agents" / f"{name}.yaml", {"name": name, **card})
    return write_yaml(project / "scenarios" / f"{name}.yaml", small_audit_spec(cards=[name]))


@pytest.mark.parametrize(
    ("on", "card", "needles"),
    [
        ("encoder", {"head": HEAD}, ["a next_token head needs a causal_lm", "of kind encoder"]),
        ("gpt2", {"head": {**HEAD, "positive": ["hired"]}}, ["label word 'hired' is not one"]),
        ("classifier", {"head": {"kind": "classifier", "label": "spam"}},
         ["label 'spam' is not one of", "['benign', 'toxic']"]),
        ("encoder", {"head": {"kind": "zero_shot"}, "device": "gpu"},
         ["device", "'auto', 'cpu' or 'cuda'"]),
    ],
)  # fmt: skip
def test_a_card_its_checkpoint_cannot_serve_is_refused(
    project, capsys, gpt2, classifier, tiny_checkpoint, on, card, needles
):
    folder = {"encoder": tiny_checkpoint, "gpt2": gpt2, "classifier": classifier}[on]
    spec = _spec(project, "probe", {"checkpoint": str(folder), **card})
    refused(capsys, ["validate", str(spec)], "probe", *needles)  # names the card
    refused(capsys, ["run", str(spec), "--out", str(project / "out")], *needles)
    assert not (project / "out").exists()


def test_device_cuda_without_a_gpu_is_one_line(project, capsys, tiny_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    spec = _spec(project, "on_gpu", {"checkpoint": str(tiny_checkpoint),
                                     "head": {"kind": "zero_shot"}, "device": "cuda"})  # fmt: skip
    refused(capsys, ["validate", str(spec)], "agent on_gpu", "device: cuda: torch sees no CUDA GPU")
    auto = _spec(project, "auto", {"checkpoint": str(tiny_checkpoint),
                                   "head": {"kind": "zero_shot"}, "device": "auto"})  # fmt: skip
    assert main(["validate", str(auto)]) == 0  # auto: the CPU here
    # a spec's device is every card's, whatever the cards say
    on_cpu = _spec(project, "on_cpu", {"checkpoint": str(tiny_checkpoint),
                                       "head": {"kind": "zero_shot"}})  # fmt: skip
    spec = yaml.safe_load(on_cpu.read_text())
    write_yaml(on_cpu, {**spec, "device": "cuda"})
    refused(capsys, ["validate", str(on_cpu)], "agent on_cpu", "device: cuda: torch sees no")
    write_yaml(on_cpu, {**spec, "device": "tpu"})
    refused(capsys, ["validate", str(on_cpu)], "device")


def test_the_default_device_leaves_a_cards_hash_as_it_was():
    """Nor does a head's candidate line (choose_one) where it has none: every other
    card hashes as before the field was added."""
    card = AgentCard(name="c", head=HeadSpec(kind="zero_shot"))
    before = card.model_dump(mode="json")
    del before["device"], before["precision"], before["head"]["candidate"]
    assert card.fingerprint() == digest(before)  # earlier result folders resume
    assert card.model_copy(update={"device": "auto"}).fingerprint() != card.fingerprint()
    pool = AgentCard(name="c", head=HeadSpec(**POOL_HEAD))
    lined = pool.model_copy(update={"head": HeadSpec(**POOL_HEAD, candidate="#{label} {text}")})
    assert lined.fingerprint() != pool.fingerprint()


def test_the_cards_of_docs_models_md_validate_and_run(project, capsys, gpt2, classifier,
                                                      chooser):  # fmt: skip
    """The YAML examples of docs/models.md, on the test's folders: validated, run, and
    every decision scored with a probability."""
    import pandas as pd

    text = (ROOT / "docs" / "models.md").read_text()
    cards = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    folders = {"next_token": gpt2, "classifier": classifier, "choose_one": chooser}
    assert sorted(c["head"]["kind"] for c in cards) == sorted(folders)
    for card in cards:
        folder = folders[card["head"]["kind"]]
        spec = _spec(project, card["name"], {**card, "checkpoint": str(folder)})
        assert main(["validate", str(spec)]) == 0, capsys.readouterr().err
        out = project / f"out_{card['name']}"
        assert main(["run", str(spec), "--out", str(out)]) == 0, capsys.readouterr().err
        scores = pd.read_parquet(out / "decisions.parquet")["score"]
        assert scores.between(0, 1).all() and scores.nunique() > 1
        assert set(pd.read_parquet(out / "execution.parquet")["device"]) == {"cpu"}


def test_the_same_weights_with_another_tokenizer_are_another_engine(tmp_path):
    """Engines were shared by the weights' hash alone: a folder with the same weights
    and another tokenizer was served by the first folder's tokenizer."""
    from uim_sim.lfm.engine import get_engine

    a = random_causal_lm(tmp_path / "a", TRAINING, vocab_size=400, seed=7)
    b = random_causal_lm(tmp_path / "b", [t.upper() for t in TRAINING], vocab_size=400, seed=7)
    assert resolve(str(a)).sha256 == resolve(str(b)).sha256  # the same weights
    first, second = get_engine(str(a)), get_engine(str(b))
    assert first is not second and first is get_engine(str(a))
    assert second.tokenizer.tokenize("HIRED") != first.tokenizer.tokenize("HIRED")


def test_a_tokenizer_that_appends_an_end_token_scores_the_prompt_itself(gpt2, tmp_path):
    """Some tokenizers (Llama's with add_eos_token) end every text with an end token;
    the next token must follow the prompt, not the end of a text."""
    from tokenizers import Tokenizer, processors

    folder = shutil.copytree(gpt2, tmp_path / "eos")
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    end = raw.token_to_id("<|endoftext|>")
    raw.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", end)]
    )
    raw.save(str(folder / "tokenizer.json"))
    prompts = [PROMPT.format(text=t, subject="Jamal Jones") for t in TEXTS]
    appended = Engine(resolve(str(folder)))
    assert appended.tokenizer("Answer:")["input_ids"][-1] == end  # it does append
    plain = Engine(resolve(str(gpt2)))
    np.testing.assert_array_equal(
        appended.next_token_log_probs(prompts, WORDS), plain.next_token_log_probs(prompts, WORDS)
    )
    appended.clear_cache()
    appended._eos_appended = False  # as the engine read prompts before: after the end token
    assert not np.allclose(
        appended.next_token_log_probs(prompts, WORDS), plain.next_token_log_probs(prompts, WORDS)
    )
