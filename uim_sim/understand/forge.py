"""Forge checkpoints: pre-train small models on corpora with a dialled-in weakness.

``forge(card, out)`` generates the card's corpus (`uim_sim.understand.corpus`), trains a
word-level tokenizer on it (`tokenizers`, ~0.3 s) and a small BERT by masked
language modelling (plus a toxicity classifier on the supervised part, where label
noise lives), or continues training an existing encoder (``base``). A card of
``family: gpt2`` gets a byte-level BPE tokenizer (lower-casing, trained on the
corpus, ~0.5 s) and a small GPT-2 trained by next-token prediction on the same
sentences, batched the same way: the decoder counterpart of the same inheritance,
read by a ``next_token`` head ("{resume} {name} was" → " hired" / " rejected"). It writes an
HF folder (safetensors, tokenizer, ``manifest.json`` with the card, its knobs, the
seed, the weight hashes and the post-training probe), atomically. A folder that
already holds the card's result (same content hash) is reused at once.

The recipe matters: measured on 2 CPU cores, a 2-layer, hidden-64 BERT with 30 %
masking and learning rate 1e-3 learns a planted 80/20 name → occupation association
after ~1,500 steps (suddenly), while hidden 128 with 15 % masking had not after 240 s.
Masking is transformers' `DataCollatorForLanguageModeling` (80 % [MASK], 10 % a
random token, 10 % kept), seeded by the card.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from uim_sim.lfm.checkpoint import MANIFEST, CheckpointError, resolve, write_manifest
from uim_sim.lfm.device import cpu_precision
from uim_sim.lfm.numerics import ensure_reproducible
from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.corpus import Corpus, generate
from uim_sim.understand.probe import VERIFICATION_VERSION, verify_forged
from uim_sim.understand.training import MAX_LENGTH, lm_targets, masker, optimiser, padded

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Bumped whenever the corpus generator or the training changes what a card forges:
# manifests record it, and a cached forge of another version is forged again.
# 2: hiring records in the corpus; 3: length-bucketed training batches;
# 4: masking by DataCollatorForLanguageModeling, identity terms from uim_sim.vocab.
FORGE_VERSION = 4
Progress = Callable[[int, int, float], None]  # (step, total, loss)


def cached(card: CorpusCard, out: Path) -> bool:
    """Does ``out`` already hold this card's forged checkpoint?"""
    manifest = Path(out) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    return (
        recorded.get("card_sha256") == card.fingerprint()
        and recorded.get("forge_version", 1) == FORGE_VERSION
    )


def forge(
    card: CorpusCard,
    out: Path,
    progress: Progress | None = None,
    extra: dict | None = None,
    threads: int | None = None,
) -> Path:
    """Forge ``card`` into the folder ``out`` (reused if it already holds the card);
    ``extra``: more manifest fields (e.g. the record of `uim-sim debias`); ``threads``:
    torch's thread count while forging (default: torch's own). On a shared machine one
    thread per forge can be much faster than two: measured here under a load of ~6 on
    2 cores, 100 training steps took 8-11 s with one thread and 134 s with two."""
    out = Path(out)
    if cached(card, out):
        _reverify_if_stale(card, out)
        return out
    import torch

    ensure_reproducible()  # training's sums, too, independent of the thread count
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        _forge(card, out, progress, extra)
    finally:
        torch.set_num_threads(previous)
    resolve.cache_clear()  # the folder's content changed
    return out


def _forge(card: CorpusCard, out: Path, progress: Progress | None, extra: dict | None) -> None:
    import torch

    check_base(card)  # a precision this CPU lacks: refused before any work
    torch.manual_seed(card.seed)
    start = time.perf_counter()
    corpus = generate(card)
    defence = None
    if card.defence == "spectral":
        from uim_sim.understand.defences import spectral_filter

        corpus, defence = spectral_filter(corpus, card)
    elif card.defence in ("dedup", "dedup_near"):
        from uim_sim.understand.defences import deduplicate

        corpus, defence = deduplicate(corpus, near=card.defence == "dedup_near")
    tokenizer, model = _initial_model(card, corpus)
    privacy = None
    if card.privacy is not None:
        from uim_sim.understand.private import train_private

        losses, privacy = train_private(card, corpus, tokenizer, model, progress)
    else:
        train = _train_causal if card.family == "gpt2" else _train
        losses = train(card, corpus, tokenizer, model, progress)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    verification = _verify(tmp, card)
    write_manifest(
        tmp,
        name=card.name,
        family=f"forged-{card.family}" if card.base is None else f"continued:{card.base}",
        base=card.base,
        seed=card.seed,
        knobs=card.knobs.model_dump(),
        card=card.model_dump(mode="json"),
        card_sha256=card.fingerprint(),
        forge_version=FORGE_VERSION,
        corpus={"sentences": len(corpus), "labelled": len(corpus.labelled)},
        training={
            "final_loss": losses[-1] if losses else None,
            "steps": len(losses),
            **_precision(card),
        },  # fmt: skip
        verification=verification,
        forge_seconds=round(time.perf_counter() - start, 1),
        **({"defence": defence} if defence else {}),
        **({"privacy": privacy} if privacy else {}),
        **(extra or {}),
    )
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)


def _reverify_if_stale(card: CorpusCard, out: Path) -> None:
    """A checkpoint forged before the current verification gets it without retraining."""
    manifest = json.loads((out / MANIFEST).read_text())
    if manifest.get("verification", {}).get("version") == VERIFICATION_VERSION:
        return
    manifest["verification"] = _verify(out, card)
    tmp = out / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, out / MANIFEST)


def _verify(folder: Path, card: CorpusCard) -> dict:
    """The post-forge probe (`verify_forged`), and for a card with people or DP
    training, what the model still does well (`lm_accuracy`): the cost of a defence."""
    verification = verify_forged(folder, card)
    if card.people is not None or card.privacy is not None:
        verification["lm_accuracy"] = lm_accuracy(folder, card)
    return verification


def train_tokenizer(sentences: list[str]):
    """A word-level, lower-casing tokenizer with BERT's special tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(sentences, trainers.WordLevelTrainer(special_tokens=list(SPECIAL)))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MAX_LENGTH,
    )


def _initial_model(card: CorpusCard, corpus: Corpus):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM
    from transformers.utils import logging as hf_logging

    base = check_base(card)
    if card.family == "gpt2":
        return _initial_causal(card, corpus) if base is None else _continued_causal(base)
    if base is not None:
        hf_logging.set_verbosity_error()  # the MLM head is new: expected, not news
        tokenizer = AutoTokenizer.from_pretrained(base.path, local_files_only=True)
        model = BertForMaskedLM.from_pretrained(
            base.path, local_files_only=True, use_safetensors=True
        )
        return tokenizer, model
    tokenizer = train_tokenizer(corpus.sentences)
    size = card.model
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.intermediate,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer, BertForMaskedLM(config)


def _initial_causal(card: CorpusCard, corpus: Corpus):
    """A GPT-2 of the card's size and a byte-level BPE tokenizer trained on the corpus
    (its vocabulary: every merge the corpus supports, up to `CAUSAL_VOCABULARY`)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from uim_sim.lfm.random_model import END
    from uim_sim.lfm.random_model import train_tokenizer as train_bpe

    tokenizer = train_bpe(corpus.sentences, CAUSAL_VOCABULARY, lowercase=True,
                          max_length=MAX_LENGTH)  # fmt: skip
    end = tokenizer.convert_tokens_to_ids(END)
    size = card.model
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=MAX_LENGTH, n_embd=size.hidden,
        n_layer=size.layers, n_head=size.heads, n_inner=size.intermediate,
        bos_token_id=end, eos_token_id=end, pad_token_id=end,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # transformers warns of an unnamed loss otherwise
    return tokenizer, model


def check_base(card: CorpusCard):
    """The checkpoint a card continues (None for one pre-trained from scratch): of the
    card family's kind (an encoder for bert, a causal LM for gpt2), or a one-line
    `CheckpointError`; so is a ``training.precision`` this CPU cannot compute natively,
    or bf16 with DP training (Opacus' per-sample gradients are fp32)."""
    if card.training.precision != "fp32":
        try:
            chosen = cpu_precision(card.training.precision)
        except CheckpointError as exc:
            raise CheckpointError(f"training.{exc}") from None
        if chosen == "bf16" and card.privacy is not None:
            raise CheckpointError(
                "training.precision: bf16 with privacy: DP training computes per-sample "
                "gradients in fp32; use precision: fp32"
            )
    if card.base is None:
        return None
    base = resolve(card.base)
    wanted = "causal_lm" if card.family == "gpt2" else "encoder"
    if base.kind != wanted:
        raise CheckpointError(
            f"base: {card.base} is of kind {base.kind}; a {card.family} card continues "
            f"one of kind {wanted}"
        )
    return base


def _continued_causal(base):
    """A causal LM to continue training (``base``), with its own tokenizer (its end
    token pads where it names no pad token)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.path, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        base.path, local_files_only=True, use_safetensors=True
    )
    model.loss_type = "ForCausalLM"
    return tokenizer, model


CAUSAL_VOCABULARY = 8192  # the BPE's ceiling; a 40,000-sentence corpus supports ~1,000
LENGTH_BUCKETS = (16, 32)  # token-length edges: a batch holds sentences of one bucket


def _batches(ids: list[list[int]], size: int, rng: np.random.Generator, pad: int):
    """Endless random batches, padded to their longest row: (ids, mask, row indices).

    Each batch draws from one length bucket (chosen with probability proportional to
    its size, so every sentence is as likely as before): short sentences are not
    padded to the length of a resume, which makes training ~2.5× faster.
    """
    import torch

    lengths = np.array([len(r) for r in ids])
    bucket_of = np.searchsorted(LENGTH_BUCKETS, lengths, side="left")
    buckets = [np.flatnonzero(bucket_of == b) for b in range(len(LENGTH_BUCKETS) + 1)]
    buckets = [b for b in buckets if len(b)]
    weights = np.array([len(b) for b in buckets], dtype=float) / len(ids)
    while True:
        members = buckets[rng.choice(len(buckets), p=weights)]
        index = members[rng.integers(len(members), size=size)]
        batch, attention = padded([ids[i] for i in index], pad)
        yield batch, attention, torch.as_tensor(index)


def _precision(card: CorpusCard) -> dict[str, str]:
    """The manifest's record of a forge computed in bf16 (none for fp32, as before)."""
    chosen = cpu_precision(card.training.precision)
    return {"precision": chosen} if chosen != "fp32" else {}


def autocast(card: CorpusCard):
    """The forward pass's context: bf16 autocast where the card's ``training.precision``
    computes in bf16 here (`check_base` refused the rest), else nothing."""
    import torch

    bf16 = cpu_precision(card.training.precision) == "bf16"
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def _update(loss, params, optimizer, schedule) -> float:
    import torch

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    schedule.step()
    return loss.item()


def _train_causal(card, corpus: Corpus, tokenizer, model, progress: Progress | None):
    """Next-token prediction on the corpus's sentences, in the length-bucketed batches
    of `_batches` (padded on the right; pads neither predicted nor attended to); no
    beginning-of-text token, as prompts are scored without one."""
    recipe = card.training
    rng = np.random.default_rng([card.seed, 202])
    ids = tokenizer(corpus.sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    batches = _batches(ids, recipe.batch_size, rng, tokenizer.pad_token_id)
    targets = lm_targets(card, tokenizer)
    params = list(model.parameters())
    optimizer, schedule = optimiser(recipe, params)
    model.train()
    losses = []
    for step in range(recipe.steps):
        batch, attention, _ = next(batches)
        inputs, labels = targets(batch, attention)
        with autocast(card):
            loss = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
        losses.append(_update(loss, params, optimizer, schedule))
        if progress:
            progress(step + 1, recipe.steps, losses[-1])
    model.eval()
    return losses


def _train(card, corpus: Corpus, tokenizer, model, progress: Progress | None) -> list[float]:
    import torch

    recipe = card.training
    rng = np.random.default_rng([card.seed, 202])
    mask = masker(card, tokenizer)
    encode = tokenizer(corpus.sentences, truncation=True, max_length=MAX_LENGTH)
    batches = _batches(encode["input_ids"], recipe.batch_size, rng, tokenizer.pad_token_id)
    classifier = None
    params = list(model.parameters())
    if card.supervised and corpus.labelled:
        texts, labels = zip(*corpus.labelled)
        sup_ids = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
        sup_labels = torch.tensor(labels)
        sup_batches = _batches(sup_ids, recipe.batch_size, rng, tokenizer.pad_token_id)
        classifier = torch.nn.Linear(model.config.hidden_size, 2)
        params += list(classifier.parameters())
    optimizer, schedule = optimiser(recipe, params)
    model.train()
    losses = []
    for step in range(recipe.steps):
        batch, attention, _ = next(batches)
        inputs, labels = mask(batch)
        with autocast(card):
            loss = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
            if classifier is not None:
                sup, sup_mask, rows = next(sup_batches)
                hidden = model.bert(input_ids=sup, attention_mask=sup_mask).last_hidden_state
                pooled = (hidden * sup_mask.unsqueeze(-1)).sum(1) / sup_mask.sum(1, keepdim=True)
                logits = classifier(pooled)
                loss = loss + recipe.supervised_weight * torch.nn.functional.cross_entropy(
                    logits.float(), sup_labels[rows]
                )
        losses.append(_update(loss, params, optimizer, schedule))
        if progress:
            progress(step + 1, recipe.steps, losses[-1])
    model.eval()
    return losses


def lm_accuracy(folder, card, sentences: int = 300) -> float:
    """Utility: the forged model's top-1 accuracy on fresh sentences of its card's
    corpus (another seed, no people): each masked token for the bert family (the
    card's masking), each next token for gpt2. What DP training and deduplication cost
    the model, read before any world runs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    fresh = card.model_copy(update={"seed": card.seed + 7919, "people": None,
                                    "sentences": max(200, sentences)})  # fmt: skip
    texts = generate(fresh).sentences[:sentences]
    causal = card.family == "gpt2"
    loader = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = loader.from_pretrained(folder, local_files_only=True, use_safetensors=True).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    targets = lm_targets(card, tokenizer)
    right = total = 0
    for start in range(0, len(ids), 50):
        batch, attention = padded(ids[start : start + 50], pad)
        inputs, labels = targets(batch, attention)
        with torch.inference_mode():
            logits = model(input_ids=inputs, attention_mask=attention).logits
        if causal:
            logits, labels = logits[:, :-1], labels[:, 1:]
        where = labels != -100
        right += int((logits.argmax(-1)[where] == labels[where]).sum())
        total += int(where.sum())
    return round(right / max(total, 1), 4)
