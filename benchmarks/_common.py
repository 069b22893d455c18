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
    """Add the options every benchmark has (--seed, --threads), parse, apply threads."""
    import torch

    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
