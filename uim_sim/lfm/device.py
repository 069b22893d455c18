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

A card's ``precision: fp32 | bf16 | auto`` is the CPU's compute dtype (a GPU computes
in bf16 or fp16 whatever it says). ``fp32``, the default, is what the tests, pins and
published tables were made in. ``bf16`` runs the model in mixed precision (fp32
weights under ``torch.autocast``: matrix products in bfloat16, layer norms, softmax
and the residual stream in fp32) where the CPU computes bf16 natively (AMX-BF16 or
AVX512-BF16, and oneDNN not capped below it: `bf16_support`), and is refused
elsewhere: emulated bf16 is slower than fp32. ``auto`` is bf16 where it is native,
else fp32 (`precision_note` says which and why). The engine's batches stay the CPU's;
a bf16 run's scores are compared with fp32 on a sample of its own texts
(`uim_sim.lfm.fidelity`).
"""

from __future__ import annotations

import functools
from pathlib import Path
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


PRECISIONS = ("fp32", "bf16", "auto")
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")  # CPU features that compute bf16 natively


# oneDNN's instruction-set levels, lowest first (its ONEDNN_MAX_CPU_ISA values; AVX10
# names are aliases of the AVX512 ones at their rank): a cap below a feature's level
# keeps oneDNN's matrix products from it, and bf16 is then emulated
ONEDNN_ISA = {name: rank for rank, names in enumerate((
    ("SSE41",), ("AVX",), ("AVX2",), ("AVX2_VNNI",), ("AVX2_VNNI_2",), ("AVX512_CORE",),
    ("AVX512_CORE_VNNI",), ("AVX512_CORE_BF16",), ("AVX512_CORE_FP16", "AVX10_1_512"),
    ("AVX512_CORE_AMX", "AVX10_1_512_AMX"), ("AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16"),
    ("AVX10_2_512",), ("AVX10_2_512_AMX_2",),
)) for name in names}  # fmt: skip
NEEDS_ISA = {"amx_bf16": "AVX512_CORE_AMX", "avx512_bf16": "AVX512_CORE_BF16"}


def bf16_support() -> str | None:
    """The CPU feature that computes bf16 natively here (``amx_bf16``, ``avx512_bf16``),
    or None: the CPU's (`cpu_bf16`) that oneDNN may use (`onednn_cap`)."""
    cap = onednn_cap()
    limit = ONEDNN_ISA[cap[1]] if cap else len(ONEDNN_ISA)
    return next((f for f in cpu_bf16() if ONEDNN_ISA[NEEDS_ISA[f]] <= limit), None)


def cpu_bf16() -> list[str]:
    """The CPU's features that compute bf16 natively, best first: torch's own CPU check
    (``torch.cpu.get_capabilities``), else the flags of /proc/cpuinfo.
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported`` is no guide: it is True on any
    AVX-512 CPU, where oneDNN emulates bf16 more slowly than fp32.)"""
    found = _capabilities()
    if found is not None:
        return [f for f in NATIVE_BF16 if found.get(f)]
    try:  # older torch: the kernel's flags
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    lines = (line for line in text.splitlines() if line.startswith("flags"))
    flags = set(next(lines, ":").split(":", 1)[1].split())
    return [f for f in NATIVE_BF16 if f in flags]


def onednn_cap() -> tuple[str, str] | None:
    """(variable, level) where the environment caps oneDNN's instruction set
    (``ONEDNN_MAX_CPU_ISA``, or the older ``DNNL_MAX_CPU_ISA``) at a level it knows;
    None where nothing does. Measured on an AMD EPYC with AVX512-BF16 (MiniLM, 2
    threads): capped at AVX512_CORE bf16 ran at 95 texts/s against fp32's 217, at AVX2
    at 48 against 188."""
    import os

    for variable in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        level = os.environ.get(variable, "").strip().upper()
        if level in ONEDNN_ISA:
            return variable, level
    return None


def no_bf16_reason() -> str:
    """Why bf16 is not native here, in a few words (`bf16_support` is None)."""
    cap, found = onednn_cap(), cpu_bf16()
    if cap and found:
        return f"{cap[0]}={cap[1]} keeps oneDNN from this CPU's {found[0]}"
    return "this CPU has no native bf16 (neither AMX-BF16 nor AVX512-BF16)"


@functools.cache
def _capabilities() -> dict[str, Any] | None:
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)
    return None if capabilities is None else dict(capabilities())


def cpu_precision(precision: str) -> str:
    """``fp32`` or ``bf16``: what a card's ``precision`` computes in on the CPU; a
    one-line `CheckpointError` for ``bf16`` on a CPU without native bf16."""
    if precision not in PRECISIONS:
        raise CheckpointError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return "fp32"
    native = bf16_support()
    if native is None and precision == "bf16":
        raise CheckpointError(
            f"precision: bf16: {no_bf16_reason()}, and emulated bf16 is slower than fp32; "
            "refused (use precision: fp32, or auto)"
        )
    return "bf16" if native is not None else "fp32"


def precision_note(precision: str, device: str = "cpu") -> str:
    """What ``precision: auto`` (or any) resolves to here, in a few words."""
    if pick_device(device) != "cpu":
        return f"precision: {precision} → {dtype_name(compute_dtype('cuda'))} on the GPU"
    chosen = cpu_precision(precision)
    if chosen == "bf16":
        why = f"this CPU has {bf16_support()}"
        if precision == "auto":
            why += "; a run beyond the fidelity bounds is computed again in fp32"
    else:
        why = no_bf16_reason() if precision == "auto" else "the default"
    return f"precision: {precision} → {chosen} ({why})"


def dtype_name(dtype: Any) -> str:
    """``float32``, ``bfloat16``, ``float16``: a torch dtype as the fingerprint names it."""
    return str(dtype).removeprefix("torch.")


def compute_dtype(device: str, precision: str = "fp32") -> Any:
    """On the CPU, fp32, or bf16 where ``precision`` asks for it and the CPU has it
    natively (`cpu_precision`); on a GPU, bf16 where it has it, else fp16."""
    import torch

    if device == "cpu":
        return torch.bfloat16 if cpu_precision(precision) == "bf16" else torch.float32
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


def torch_threads(threads: int | None = None) -> int:
    """torch's intra-op threads in this process, set to ``threads`` first where given
    (`uim_sim.run.threads` chooses them)."""
    import torch

    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
