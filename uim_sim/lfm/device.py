"""Where a checkpoint computes: an agent card's ``device: auto | cpu | cuda``.

On the CPU a model computes in fp32 and the engine's batches are those its
bit-invariance was measured with (2 to ``BATCH_ROWS`` texts of one length bucket).
On a GPU it computes in bf16 (fp16 where the GPU lacks bf16) in batches of one shape
a length bucket (``GPU_BUCKET`` tokens, ``GPU_ROWS`` rows filled with copies, fewer
rows where memory is short): a GPU picks kernels by shape, and with batches of
varying rows no prompt kept its bits alone and in company (H200, 1.1 B parameters;
with fixed shapes all did). bf16 keeps about 3 significant digits: next-token
scores there differed from the CPU's by up to 0.016 (benchmarks/gpu_check.sh,
benchmarks/README.md). ``auto`` takes the GPU when torch sees one.
"""

from __future__ import annotations

from typing import Any

from uim_sim.lfm.checkpoint import CheckpointError

DEVICES = ("auto", "cpu", "cuda")
GPU_MAX_ROWS = 256  # more rows a forward pass gain nothing measurable on one GPU
# a GPU batch: texts padded to a multiple of GPU_BUCKET tokens, GPU_ROWS rows (copies
# fill it): one shape a bucket, so a row's bits do not depend on its company
GPU_BUCKET = 4
GPU_ROWS = 128
GPU_MEMORY_SHARE = 0.5  # of the memory free once the model is loaded, for activations


def pick_device(name: str) -> str:
    """``cpu`` or ``cuda`` for a card's ``device``; a one-line `CheckpointError` for
    ``cuda`` where torch sees no GPU."""
    import torch

    if name not in DEVICES:
        raise CheckpointError(f"device: {name!r} is not one of {', '.join(DEVICES)}")
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise CheckpointError(
            "device: cuda: torch sees no CUDA GPU on this machine; use device: cpu or auto"
        )
    return "cuda" if name == "cuda" or (name == "auto" and available) else "cpu"


def compute_dtype(device: str) -> Any:
    """fp32 on the CPU; bf16 on a GPU that has it, else fp16."""
    import torch

    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def free_memory(device: str) -> int | None:
    """Bytes free on a GPU now (None on the CPU)."""
    import torch

    if device == "cpu":
        return None
    free, _ = torch.cuda.mem_get_info()
    return int(free)


def gpu_batch_rows(free: int, width: int, config: Any, itemsize: int) -> int:
    """Rows of ``width`` tokens a forward pass may hold on a GPU with ``free`` bytes:
    a share of them over an estimate of one row's peak activations (one layer's
    hidden, attention and feed-forward values, and a full row of vocabulary logits
    in fp32 at every position: masked-LM scoring reads them all), a multiple of 8,
    2 to `GPU_MAX_ROWS`."""
    hidden = int(getattr(config, "hidden_size", 768))
    heads = int(getattr(config, "num_attention_heads", 12))
    inner = int(getattr(config, "intermediate_size", None) or 4 * hidden)
    vocab = int(getattr(config, "vocab_size", 32000))
    per_row = width * (4 * hidden + 2 * inner + 2 * heads * width) * itemsize + width * vocab * 4
    rows = int(GPU_MEMORY_SHARE * free // max(per_row, 1)) // 8 * 8
    return max(2, min(GPU_MAX_ROWS, rows))
