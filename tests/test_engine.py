"""The engine: de-duplicated, cached, batched, and batch-invariant."""

from __future__ import annotations

import numpy as np
import pytest

from uim_sim.lfm.checkpoint import resolve
from uim_sim.lfm.engine import Engine, get_engine

TEXTS = [
    "Emily Walsh. Sales representative with 5 years of experience.",
    "Jamal Jones. Office clerk with 1 years of experience. High school diploma.",
    "Hiring: administrative assistant. We seek an experienced, reliable candidate.",
    "ok",
    "Lakisha Washington. Customer service representative with 8 years of experience. "
    "Bachelor's degree. Skills: call handling, returns, Zendesk. Employee of the month award.",
]


@pytest.fixture(scope="module")
def minilm() -> Engine:
    return get_engine("builtin:minilm")


def test_batched_equals_one_at_a_time_bit_for_bit(minilm):
    engine = Engine(resolve("builtin:minilm"))
    batched = engine.embed(TEXTS)
    single = []
    for text in TEXTS:
        engine.clear_cache()
        single.append(engine.embed([text])[0])
    assert np.array_equal(batched, np.stack(single))


def test_matches_plain_mean_pooling(minilm):
    """Equals sentence-transformers' recipe: mean over the mask, then L2 normalise."""
    import torch

    tokenizer, model = minilm.tokenizer, minilm.model
    batch = tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    plain = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert np.allclose(minilm.embed(TEXTS), plain, atol=1e-5)
    assert np.allclose(np.linalg.norm(minilm.embed(TEXTS), axis=1), 1.0, atol=1e-5)


def test_dedup_and_cache_counters(tiny_checkpoint):
    engine = Engine(resolve(str(tiny_checkpoint)))
    out = engine.embed(["a b", "c d", "a b", "a b"])
    assert out.shape == (4, 32)
    assert np.array_equal(out[0], out[2])
    c = engine.counters
    assert (c.texts_requested, c.texts_encoded, c.cache_hits) == (4, 2, 2)
    engine.embed(["c d", "e f"])
    assert (c.texts_requested, c.texts_encoded, c.cache_hits) == (6, 3, 3)
    assert engine.embed([]).shape == (0, 32)


def test_one_engine_per_checkpoint(minilm):
    assert get_engine("builtin:minilm") is minilm


def test_a_texts_bits_do_not_depend_on_its_company_row_or_threads(tiny_checkpoint):
    """Measured here: without length buckets (texts unpadded, batched by exact length)
    a few texts in ~200 change their last bits with the batch's row count, their row
    or torch's thread count; a batch of one row takes another path too."""
    import torch

    from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
    from uim_sim.vocab.names import GROUPS, draw_name

    rng = np.random.default_rng(0)
    texts = ["ok", "no", "hi there", "the cat sat"]
    for _ in range(200):
        race, gender = GROUPS[rng.integers(len(GROUPS))]
        body = ResumeBody.from_skill(list(OCCUPATIONS)[rng.integers(4)], rng.normal(), rng)
        texts.append(body.render(draw_name(race, gender, rng), gap_years=int(rng.integers(3))))
    engine = Engine(resolve(str(tiny_checkpoint)))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        together = engine.embed(texts)
        for n, k in ((1, 150), (2, 60), (1, 7)):
            torch.set_num_threads(n)
            engine.clear_cache()
            idx = rng.permutation(len(texts))[:k]
            assert np.array_equal(engine.embed([texts[i] for i in idx]), together[idx]), (n, k)
        for i in range(4):  # alone in its bucket
            engine.clear_cache()
            assert engine.embed([texts[i]])[0].tobytes() == together[i].tobytes(), texts[i]
    finally:
        torch.set_num_threads(threads)
