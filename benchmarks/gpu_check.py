"""The engine on a GPU: a ~1.1B-parameter Llama-style causal LM (TinyLlama's shape:
22 layers, width 2048, 32 heads with 4 key-value heads, vocabulary 32,000) with
random weights, built from a config (`uim_sim.lfm.random_model`), saved as
safetensors and registered, then

1. throughput: the engine's next-token scoring on ``device: cuda`` (bf16, batch rows
   from free memory) against a researcher's loop over the same model on the same GPU
   (prompts sorted by length, batches of B padded on the left, position ids,
   ``logits_to_keep=1``; the fastest B kept) and against plain batches in the given
   order; goal engine / best loop >= 0.9;
2. CPU/GPU agreement: the same prompts scored on ``device: cpu`` (fp32) and on the
   GPU: the largest difference of log-probabilities and of head scores, the rank
   correlation of the scores, and how many of a top-half selection agree;
3. whether a prompt's scores on the GPU keep their bits alone and in company (on the
   CPU they do: tests/test_causal_lm.py).

Needs a CUDA build of torch in the venv (the project installs the CPU build). Prints
numbers; the exit code is 0 whatever they are, 1 where torch sees no GPU.

    bash benchmarks/gpu_check.sh [--n 2000] [--layers 22] [--agree 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_engine import WORDS, compare_next_token, make_prompts  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from uim_sim.lfm.checkpoint import register, resolve  # noqa: E402
from uim_sim.lfm.engine import Engine  # noqa: E402
from uim_sim.lfm.random_model import random_causal_lm  # noqa: E402


def scores(log_p: np.ndarray) -> np.ndarray:
    """The next_token head's score: P(" yes") / P(" yes" or " no")."""
    return 1 / (1 + np.exp(log_p[:, 1] - log_p[:, 0]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="distinct prompts timed")
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--agree", type=int, default=64, help="prompts scored on CPU and GPU")
    parser.add_argument("--sort-batches", default="16,32,64,128,256")
    parser.add_argument("--batch-size", type=int, default=128, help="raw batched, unsorted")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shapes", default="", help="also sweep GPU batch shapes: BUCKETxROWS,... e.g. 8x64,2x256"
    )
    parser.add_argument(
        "--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a dry run (small sizes)"
    )
    args = parser.parse_args()
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        print("torch sees no CUDA GPU (is this a CUDA build of torch?)", torch.__version__)
        return 1
    print(f"{torch.cuda.get_device_name() if gpu else 'CPU (dry run)'}; torch {torch.__version__}")

    prompts = make_prompts(args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = random_causal_lm(
            Path(tmp) / "llama", prompts + [p + w for p in prompts[:500] for w in WORDS],
            family="llama", layers=args.layers, hidden=args.hidden, heads=args.heads,
            kv_heads=args.kv_heads, intermediate=args.intermediate, vocab_size=args.vocab,
            positions=2048, seed=args.seed, device=args.device, dtype=torch.bfloat16,
        )  # fmt: skip
        built = time.perf_counter() - start
        start = time.perf_counter()
        register(str(folder))
        registered = time.perf_counter() - start
        checkpoint = resolve(str(folder))
        engine = Engine(checkpoint, device=args.device)
        tokenizer, model = checkpoint.load(args.device, engine.dtype)
        cpu_engine = Engine(checkpoint, device="cpu")
    tokens = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"random Llama-style model: {parameters / 1e9:.2f} B parameters, built in {built:.0f} s, "
        f"registered (sha256 of its weights) in {registered:.0f} s; engine dtype "
        f"{engine.dtype}, rows per batch at 64 tokens {engine._rows(64)}; {len(prompts)} "
        f"prompts, tokens min/mean/max {min(tokens)}/{np.mean(tokens):.1f}/{max(tokens)}"
    )

    # bf16 in batches of other shapes: the engine and the loop differ by rounding
    on_gpu = compare_next_token(engine, tokenizer, model, prompts, args, tolerance=0.1)
    if gpu:
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")

    subset = prompts[: args.agree]
    start = time.perf_counter()
    on_cpu = cpu_engine.next_token_log_probs(subset, WORDS)
    cpu_seconds = time.perf_counter() - start
    head = on_gpu[: args.agree]
    cpu_scores, gpu_scores = scores(on_cpu), scores(head)
    top_cpu = cpu_scores >= np.median(cpu_scores)
    top_gpu = gpu_scores >= np.median(gpu_scores)
    print(
        f"CPU (fp32, {cpu_seconds:.0f} s) vs GPU ({engine.dtype}) on {len(subset)} prompts: "
        f"max |log-probability difference| {np.abs(on_cpu - head).max():.3e}, max |score "
        f"difference| {np.abs(cpu_scores - gpu_scores).max():.3e}, Spearman "
        f"{spearmanr(cpu_scores, gpu_scores).statistic:.4f}, top-half selections agreeing "
        f"{(top_cpu == top_gpu).mean():.3f}"
    )

    print(f"GPU: {alone_in_company(engine, prompts, on_gpu)} of 8 prompts keep their bits "
          "alone and in company")  # fmt: skip
    if gpu and args.shapes:
        sweep_shapes(engine, prompts, args)
    return 0


def alone_in_company(engine: Engine, prompts: list[str], scored: np.ndarray) -> int:
    """How many of the first 8 prompts score the same bits alone as in ``scored``."""
    same = 0
    for i in range(8):
        engine.clear_cache()
        same += engine.next_token_log_probs([prompts[i]], WORDS)[0].tobytes() == scored[i].tobytes()
    return same


def sweep_shapes(engine: Engine, prompts: list[str], args: argparse.Namespace) -> None:
    """The engine's rate and bit-invariance with other GPU bucket widths and row counts
    (what chose `GPU_BUCKET` and `GPU_ROWS`)."""
    for shape in args.shapes.split(","):
        bucket, rows = (int(x) for x in shape.split("x"))
        engine.bucket, engine.gpu_rows = bucket, rows
        engine._gpu_rows.clear()
        best = float("inf")
        for _ in range(args.repeats):
            engine.clear_cache()
            torch.cuda.synchronize()
            start = time.perf_counter()
            scored = engine.next_token_log_probs(prompts, WORDS)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        same = alone_in_company(engine, prompts, scored)
        print(f"buckets of {bucket:<3} tokens, {rows:<4} rows: {len(prompts) / best:8.1f} "
              f"prompts/s; {same} of 8 keep their bits alone")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
