"""MiniLM in fp32 and bf16 on this CPU, side by side in one run: the engine in each
precision (`precision: fp32 | bf16`), and the best hand-written loop in each, on the
same N distinct resume-like texts (the hiring world's resumes, as bench_engine.py).

- engine: a fresh cache each repeat, all texts in one ``embed`` call (length buckets
  of 2 tokens, 2 to 32 rows: uim_sim/lfm/engine.py);
- best hand-written loop: the plain model from ``checkpoint.load(dtype=...)``, texts
  sorted by token length, batches of B padded to their longest, mean pooling in fp32,
  L2 norm; B in ``--sort-batches``, the fastest kept.

The cases take turns in each repeat (a burst of load elsewhere hits them alike); the
best time of each is kept. Printed: the CPU's bf16 features (avx512_bf16, amx_bf16,
torch's CPU capability), texts/s of each case, the ratios bf16 / fp32 and engine /
loop in each precision, and bf16's fidelity to fp32 on these texts (the lowest
cosine between a text's two embeddings; Spearman between the pairwise similarities of
the first 256 texts; the largest |Δ| of a similarity). The exit code is 0 whatever
the result: this is a measurement. A CPU without native bf16 runs the fp32 cases only
(``--force`` times emulated bf16 too).

    .venv/bin/python benchmarks/bench_precision.py [--n 512] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import REF, parse_args, verdict  # noqa: E402
from bench_engine import make_texts  # noqa: E402

from uim_sim.lfm.checkpoint import resolve  # noqa: E402
from uim_sim.lfm.device import bf16_support  # noqa: E402
from uim_sim.lfm.engine import Engine  # noqa: E402
from uim_sim.lfm.fidelity import spearman  # noqa: E402


def loop_embed(tokenizer, model, texts: list[str], batch_size: int) -> np.ndarray:
    """The best hand-written loop: sorted by length, batches padded to their longest,
    mean pooling over the mask in fp32, L2 norm, rows put back in order."""
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    rows = []
    for lo in range(0, len(texts), batch_size):
        batch = tokenizer([texts[i] for i in order[lo : lo + batch_size]], padding=True,
                          truncation=True, return_tensors="pt")  # fmt: skip
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    out[order] = np.concatenate(rows)
    return out


class Autocast:
    """A model called under bf16 autocast (fp32 weights, bf16 matrix products)."""

    def __init__(self, model) -> None:
        self.model, self.config = model, model.config

    def __call__(self, **batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(**batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=512, help="distinct texts (default 512)")
    parser.add_argument("--sort-batches", default="16,32,64", help="batch sizes of the loop")
    parser.add_argument("--repeats", type=int, default=3, help="timings per case; best kept")
    parser.add_argument("--force", action="store_true", help="bf16 without native support")
    args = parse_args(parser)
    texts = make_texts(args.n, args.seed)
    checkpoint = resolve(REF)
    precisions = ["fp32", "bf16"] if (bf16_support() or args.force) else ["fp32"]
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    engines, loops = {}, {}
    for p in precisions:
        engine = Engine(checkpoint, precision="fp32" if p == "bf16" and args.force else p)
        engine.dtype = dtypes[p]  # --force: past the engine's refusal (else unchanged)
        engines[p] = engine
        engine.embed(texts[:8])  # warm-up, untimed
    tokenizer, fp32_model = checkpoint.load("cpu", torch.float32)
    loops["fp32"] = fp32_model
    if "bf16" in precisions:  # a researcher's two ways: the model cast, or autocast
        loops["bf16 cast"] = checkpoint.load("cpu", torch.bfloat16)[1]
        loops["bf16 autocast"] = Autocast(fp32_model)
    for model in loops.values():
        loop_embed(tokenizer, model, texts[:32], 32)  # warm-up, untimed
    sizes = [int(b) for b in args.sort_batches.split(",")]
    print(f"{REF}: {len(texts)} distinct texts; torch threads {torch.get_num_threads()}; "
          f"best of {args.repeats}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    best: dict[str, float] = {}
    out: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for p in precisions:
            engines[p].clear_cache()
            start = time.perf_counter()
            out[f"engine {p}"] = engines[p].embed(texts)
            key = f"engine {p}"
            best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
        for name, model in loops.items():
            for b in sizes:
                start = time.perf_counter()
                out[f"loop {name}"] = loop_embed(tokenizer, model, texts, b)
                key = f"loop {name} {b}"
                best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
    rate = {k: len(texts) / t for k, t in best.items()}
    for p in precisions:
        name, b = max(((n, b) for n in loops if n.startswith(p) for b in sizes),
                      key=lambda nb: rate[f"loop {nb[0]} {nb[1]}"])  # fmt: skip
        rate[f"loop {p}"] = rate[f"loop {name} {b}"]
        print(f"{p}: engine {rate[f'engine {p}']:7.1f} texts/s, best hand-written loop "
              f"{rate[f'loop {p}']:7.1f} ({name}, batches of {b}); engine / loop "
              f"{rate[f'engine {p}'] / rate[f'loop {p}']:.2f}x")  # fmt: skip
    fp32_ratio = rate["engine fp32"] / rate["loop fp32"]
    print(f"goal: fp32 engine >= 0.95x the best fp32 loop: {fp32_ratio:.2f}x  "
          f"{verdict(fp32_ratio >= 0.95)}")  # fmt: skip
    if "bf16" in precisions:
        speedup = rate["engine bf16"] / rate["engine fp32"]
        print(f"bf16 / fp32: engine {speedup:.2f}x, "
              f"loop {rate['loop bf16'] / rate['loop fp32']:.2f}x")  # fmt: skip
        bf16_ratio = rate["engine bf16"] / rate["loop bf16"]
        native = bf16_support()
        where = "" if native == "amx_bf16" else f" (set for AMX; this CPU: {native})"
        print(f"goals{where}: bf16 engine >= 2.5x fp32 engine: {speedup:.2f}x  "
              f"{verdict(speedup >= 2.5)}; bf16 engine >= 0.95x the best bf16 loop: "
              f"{bf16_ratio:.2f}x  {verdict(bf16_ratio >= 0.95)}")  # fmt: skip
        a, b = out["engine fp32"], out["engine bf16"]
        cosine = (a * b).sum(1)
        k = min(256, len(texts))
        i, j = np.triu_indices(k, 1)
        sa, sb = (a[:k] @ a[:k].T)[i, j], (b[:k] @ b[:k].T)[i, j]
        print(f"fidelity of the bf16 engine to fp32: lowest cosine {cosine.min():.5f} (mean "
              f"{cosine.mean():.5f}); pairwise similarities of {k} texts: Spearman "
              f"{spearman(sa, sb):.5f}, max |Δ| {np.abs(sa - sb).max():.4f}")  # fmt: skip
        cast = (a * out["loop bf16 cast"]).sum(1)
        print(f"  the model cast to bf16 instead (not the engine's way): lowest cosine "
              f"{cast.min():.5f} (mean {cast.mean():.5f})")  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other work skews timings)")


if __name__ == "__main__":
    main()
