"""Engine throughput against hand-written loops over the plain transformers model:
embeddings on builtin:minilm, and next-token scores on a causal LM.

What is measured, on the same N distinct resume-like texts (~20-50 tokens, made
with the hiring world's resume generator):

- best hand-written loop: the plain model from ``resolve("builtin:minilm").load()``,
  texts sorted by token length, batches of B padded to their longest text, one
  forward each under ``torch.inference_mode()``, mean pooling, L2 norm, rows put
  back in order; timed for B in ``--sort-batches`` (default 8, 16, 32, 64, 128) and
  the fastest B kept: the best a researcher's own loop does on this machine;
- raw batched: the same recipe without sorting (batches of 128 in the given order);
- one at a time: the same plain model, one text per call (on a subset);
- engine: a fresh ``Engine`` (empty cache) embedding all texts in one ``embed``
  call (de-duplication, batches of 2 to ``BATCH_ROWS`` texts of one length bucket,
  cache writes included), then a second call with the same texts (all cache hits).

Goal: engine / best hand-written loop >= 0.95 (the batching that makes an embedding
a function of its text alone costs at most 5 %). The engine's embeddings
must match the raw ones up to float noise (~1e-6). Each throughput is the best of
``--repeats`` timings; the cases take turns within each repeat. The exit code is 0
whatever the result: this is a measurement.

The causal case (``--case causal``): a random-weight GPT-2 built from a config
(``--causal-layers``, ``--causal-hidden``; `uim_sim.lfm.random_model`) with a BPE
tokenizer trained on the texts, asked "{resume} Should {name} be hired? Answer:" for
the log-probabilities of " yes" and " no" as the next token. Baseline: the best
hand-written loop of a researcher who knows left padding (prompts sorted by length,
batches of B padded on the left to their longest, position ids from the mask,
``logits_to_keep=1``), the fastest B kept, and the same in the given order (raw
batched). Goal: engine / best loop >= 0.9; the engine's log-probabilities must match
the loop's up to float noise.

    .venv/bin/python benchmarks/bench_engine.py [--case minilm|causal|all] [--n 1500]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import REF, parse_args, verdict  # noqa: E402

from uim_sim.lfm.checkpoint import resolve  # noqa: E402
from uim_sim.lfm.engine import BATCH_ROWS, BUCKET, Engine  # noqa: E402
from uim_sim.lfm.random_model import random_causal_lm  # noqa: E402
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody  # noqa: E402
from uim_sim.vocab.names import GROUPS, draw_name  # noqa: E402


def make_texts(n: int, seed: int) -> list[str]:
    """N distinct resumes: random group, name, occupation, skill and gap."""
    rng = np.random.default_rng(seed)
    occupations = list(OCCUPATIONS)
    texts: dict[str, None] = {}
    while len(texts) < n:
        race, gender = GROUPS[rng.integers(len(GROUPS))]
        body = ResumeBody.from_skill(occupations[rng.integers(4)], rng.normal(), rng)
        gap = int(rng.integers(4)) if rng.random() < 0.3 else 0
        texts[body.render(draw_name(race, gender, rng), gap_years=gap)] = None
    return list(texts)


def raw_embed(tokenizer, model, texts: list[str], batch_size: int) -> np.ndarray:
    """The plain recipe: pad per batch, forward, mean-pool over the mask, L2-normalise."""
    out = []
    for lo in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[lo : lo + batch_size], padding=True, truncation=True, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def sorted_embed(tokenizer, model, texts: list[str], batch_size: int) -> np.ndarray:
    """The best hand-written loop: texts sorted by token length, batches padded to
    their longest text, rows put back in the given order."""
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    out[order] = raw_embed(tokenizer, model, [texts[i] for i in order], batch_size)
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="all", choices=("minilm", "causal", "all"))
    parser.add_argument("--n", type=int, default=1500, help="distinct texts (default 1500)")
    parser.add_argument("--single", type=int, default=200, help="texts timed one at a time")
    parser.add_argument("--batch-size", type=int, default=128, help="raw batched, unsorted")
    parser.add_argument(
        "--sort-batches", default="8,16,32,64,128", help="batch sizes of the sorted loop"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings per case; best is kept")
    parser.add_argument("--causal-layers", type=int, default=4, help="causal case: GPT-2 layers")
    parser.add_argument("--causal-hidden", type=int, default=256, help="causal case: width")
    args = parse_args(parser)
    if args.case in ("minilm", "all"):
        minilm_case(args)
    if args.case in ("causal", "all"):
        causal_case(args)


def minilm_case(args: argparse.Namespace) -> None:
    texts = make_texts(args.n, args.seed)
    single = texts[: args.single]
    checkpoint = resolve(REF)
    tokenizer, model = checkpoint.load()
    engine = Engine(checkpoint)
    tokens = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    bs = args.batch_size
    raw_padded = sum(
        max(tokens[i : i + bs]) * len(tokens[i : i + bs]) for i in range(0, len(tokens), bs)
    )
    widths: dict[int, int] = {}
    for t in tokens:
        widths[-(-t // BUCKET) * BUCKET] = widths.get(-(-t // BUCKET) * BUCKET, 0) + 1
    # padded to the bucket; a lone last row of a bucket is run twice
    eng_tokens = sum(w * (n + (n % BATCH_ROWS == 1)) for w, n in widths.items())
    print(
        f"{REF}: {len(texts)} distinct texts, tokens min/mean/max "
        f"{min(tokens)}/{np.mean(tokens):.1f}/{max(tokens)}; torch threads "
        f"{torch.get_num_threads()}; raw batch size {args.batch_size}, engine batches "
        f"up to {BATCH_ROWS} rows of one {BUCKET}-token bucket; best of {args.repeats}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    raw_embed(tokenizer, model, texts[:32], 32)  # warm-up, untimed
    raw_embed(tokenizer, model, texts[:1], 1)

    # The cases take turns in each repeat, so a burst of load elsewhere on the
    # machine hits all of them alike; the best time of each case is kept.
    sizes = [int(b) for b in args.sort_batches.split(",")]
    cases = ("raw", "one", "engine", "hits", *(f"sorted{b}" for b in sizes))
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeats):
        engine.clear_cache()  # an empty cache, as in a fresh Engine
        times = {}
        for b in sizes:
            times[f"sorted{b}"], _ = timed(lambda b=b: sorted_embed(tokenizer, model, texts, b))
        times["raw"], raw = timed(lambda: raw_embed(tokenizer, model, texts, args.batch_size))
        times["one"], _ = timed(lambda: raw_embed(tokenizer, model, single, 1))
        times["engine"], emb = timed(lambda: engine.embed(texts))
        encoded = engine.counters.texts_encoded
        times["hits"], hit = timed(lambda: engine.embed(texts))
        assert engine.counters.texts_encoded == encoded, "the second call re-encoded texts"
        best = {k: min(best[k], times[k]) for k in best}
    t_raw, t_one, t_eng, t_hit = (best[k] for k in ("raw", "one", "engine", "hits"))
    best_b = min(sizes, key=lambda b: best[f"sorted{b}"])
    t_sorted = best[f"sorted{best_b}"]

    for b in sizes:
        t = best[f"sorted{b}"]
        print(f"sorted, batches of {b:<4}{len(texts) / t:10.1f} texts/s  ({t:.2f} s)")
    rate_sorted = len(texts) / t_sorted
    rate_raw, rate_one = len(texts) / t_raw, len(single) / t_one
    rate_eng, rate_hit = len(texts) / t_eng, len(texts) / t_hit
    print(f"raw batched         {rate_raw:10.1f} texts/s  ({t_raw:.2f} s, {len(texts)} texts)")
    print(f"raw one at a time   {rate_one:10.1f} texts/s  ({t_one:.2f} s, {len(single)} texts)")
    print(f"engine, cold cache  {rate_eng:10.1f} texts/s  ({t_eng:.2f} s, {len(texts)} texts)")
    print(f"engine, cache hits  {rate_hit:10.1f} texts/s  ({t_hit:.4f} s, {len(texts)} texts)")

    vs_sorted = rate_eng / rate_sorted
    vs_raw, vs_one = rate_eng / rate_raw, rate_eng / rate_one
    print(
        f"ratio engine / best hand-written loop (sorted, batches of {best_b}) "
        f"{vs_sorted:6.2f}x  goal >= 0.95  {verdict(vs_sorted >= 0.95)}"
    )
    print(f"ratio engine / raw batched, unsorted  {vs_raw:6.2f}x")
    print(f"ratio engine / one at a time          {vs_one:6.2f}x")
    diff = float(np.abs(emb - raw).max())
    print(f"max |engine - raw batched| = {diff:.2e}  (expected ~1e-6)  {verdict(diff < 1e-5)}")
    print(f"cache hits equal cold-cache embeddings: {np.array_equal(emb, hit)}")
    print(
        f"tokens through the model: {sum(tokens)} real; padded, raw batched {raw_padded}, "
        f"engine {eng_tokens} (length buckets of {BUCKET}; a lone row of a bucket runs twice)"
    )
    print(
        f"load average at the end {os.getloadavg()[0]:.2f} (other work on the cores skews timings)"
    )


PROMPT = "{text} Should {subject} be hired? Answer:"
WORDS = [" yes", " no"]


def make_prompts(n: int, seed: int) -> list[str]:
    """N distinct screening prompts over the resumes of `make_texts`."""
    return [PROMPT.format(text=t, subject=t.split(".")[0]) for t in make_texts(n, seed)]


def raw_next_token(tokenizer, model, prompts: list[str], word_ids: list[int],
                   batch_size: int) -> np.ndarray:  # fmt: skip
    """A researcher's loop: batches padded on the left to their longest prompt,
    position ids from the mask, logits at the last position only."""
    out = []
    for lo in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[lo : lo + batch_size], padding=True, padding_side="left",
                          return_tensors="pt").to(model.device)  # fmt: skip
        positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(**batch, position_ids=positions, use_cache=False,
                           logits_to_keep=1).logits[:, -1].double()  # fmt: skip
        out.append(torch.log_softmax(logits, -1)[:, word_ids].cpu().numpy())
    return np.concatenate(out)


def sorted_next_token(tokenizer, model, prompts, word_ids, batch_size) -> np.ndarray:
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(prompts), len(word_ids)))
    out[order] = raw_next_token(tokenizer, model, [prompts[i] for i in order], word_ids,
                                batch_size)  # fmt: skip
    return out


def compare_next_token(engine, tokenizer, model, prompts, args, tolerance=1e-5) -> np.ndarray:
    """Time the engine's next-token scoring of ``prompts`` against the sorted loop (batch
    sizes ``args.sort_batches``, the best kept) and raw batches of ``args.batch_size``
    over the same model, best of ``args.repeats``; print rates, ratios and the largest
    difference (checked against ``tolerance``). Returns the engine's log-probabilities."""
    word_ids = engine.word_ids(WORDS)
    raw_next_token(tokenizer, model, prompts[:32], word_ids, 32)  # warm-up, untimed
    sizes = [int(b) for b in args.sort_batches.split(",")]
    cases = ("raw", "engine", "hits", *(f"sorted{b}" for b in sizes))
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeats):
        engine.clear_cache()
        times = {}
        for b in sizes:
            times[f"sorted{b}"], loop = timed(
                lambda b=b: sorted_next_token(tokenizer, model, prompts, word_ids, b)
            )
        times["raw"], _ = timed(
            lambda: raw_next_token(tokenizer, model, prompts, word_ids, args.batch_size)
        )
        times["engine"], scored = timed(lambda: engine.next_token_log_probs(prompts, WORDS))
        times["hits"], hit = timed(lambda: engine.next_token_log_probs(prompts, WORDS))
        best = {k: min(best[k], times[k]) for k in best}
    best_b = min(sizes, key=lambda b: best[f"sorted{b}"])
    for b in sizes:
        t = best[f"sorted{b}"]
        print(f"sorted, batches of {b:<4}{len(prompts) / t:10.1f} prompts/s  ({t:.2f} s)")
    rate = {k: len(prompts) / best[k] for k in ("raw", "engine", "hits")}
    rate_sorted = len(prompts) / best[f"sorted{best_b}"]
    print(f"raw batched         {rate['raw']:10.1f} prompts/s  (batches of {args.batch_size})")
    print(f"engine, cold cache  {rate['engine']:10.1f} prompts/s  ({best['engine']:.2f} s)")
    print(f"engine, cache hits  {rate['hits']:10.1f} prompts/s  ({best['hits']:.4f} s)")
    ratio = rate["engine"] / rate_sorted
    print(
        f"ratio engine / best hand-written loop (sorted, batches of {best_b}) "
        f"{ratio:6.2f}x  goal >= 0.9  {verdict(ratio >= 0.9)}"
    )
    print(f"ratio engine / raw batched, unsorted  {rate['engine'] / rate['raw']:6.2f}x")
    diff = float(np.abs(scored - loop).max())
    print(f"max |engine - loop| log-probability = {diff:.2e}  {verdict(diff < tolerance)}")
    print(f"cache hits equal cold-cache scores: {np.array_equal(scored, hit)}")
    return scored


def causal_case(args: argparse.Namespace) -> None:
    prompts = make_prompts(args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = random_causal_lm(
            Path(tmp) / "gpt2", prompts + [p + w for p in prompts[:200] for w in WORDS],
            layers=args.causal_layers, hidden=args.causal_hidden, heads=4, vocab_size=2000,
            positions=256, seed=args.seed,
        )  # fmt: skip
        checkpoint = resolve(str(folder))
        tokenizer, model = checkpoint.load()
        engine = Engine(checkpoint)
    tokens = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"\ncausal LM: random GPT-2, {args.causal_layers} layers, width {args.causal_hidden}, "
        f"vocabulary {model.config.vocab_size}, {parameters / 1e6:.1f} M parameters; "
        f"{len(prompts)} distinct prompts, tokens min/mean/max {min(tokens)}/"
        f"{np.mean(tokens):.1f}/{max(tokens)}; next token {WORDS}; torch threads "
        f"{torch.get_num_threads()}; best of {args.repeats}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    compare_next_token(engine, tokenizer, model, prompts, args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
