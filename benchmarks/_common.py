"""What the benchmark scripts share (run as scripts: ``benchmarks/`` is on sys.path)."""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REF = "builtin:minilm"


def record_requests(engine) -> set[str]:
    """Wrap ``engine.embed`` on this instance to collect every text it is asked for."""
    seen: set[str] = set()
    embed = engine.embed

    def recording(texts):
        seen.update(texts)
        return embed(texts)

    engine.embed = recording
    return seen


def verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW GOAL"


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options every benchmark has (--seed, --threads), parse, apply threads,
    and print the machine (`cpu_flags`)."""
    import torch

    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(cpu_flags(), flush=True)  # which machine gave the numbers below
    return args


def cpu_flags() -> str:
    """The machine in one line: the CPU, torch's capability, its bf16 features (torch's
    view and /proc/cpuinfo's) and whether uim-sim computes bf16 natively here."""
    from pathlib import Path

    import torch

    from uim_sim.lfm.device import bf16_support

    found = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next(line for line in text.splitlines() if line.startswith("flags")).split()
        model = next(line for line in text.splitlines() if line.startswith("model name"))
        model = model.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        flags, model = [], "unknown"
    shown = {f: (found.get(f), f in flags) for f in ("avx512_bf16", "amx_bf16", "amx_tile")}
    features = ", ".join(f"{f} torch {t} cpuinfo {c}" for f, (t, c) in shown.items())
    return (
        f"CPU {model}; torch {torch.__version__}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}; {features}; native bf16 "
        f"{bf16_support() or 'none'}"
    )
