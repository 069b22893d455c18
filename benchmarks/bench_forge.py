"""Forging in fp32 and in bf16 (a corpus card's ``training.precision``), side by side in
one run: the same card, seed and corpus forged twice (the forward pass under bf16
autocast where the CPU computes bf16 natively; weights, gradients and the saved
checkpoint stay fp32), the two taking turns. Printed: the machine (CPU, torch's
capability, its bf16 features), seconds per training step in each precision and their
ratio, the two loss curves side by side (mean loss over windows of steps), and what
each forge's verification read back (the planted association the card dials in).
The exit code is 0 whatever the result: this is a measurement.

    .venv/bin/python benchmarks/bench_forge.py [--card corpora/hiring_names.yaml]
        [--steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import parse_args

from uim_sim.lfm.device import bf16_support
from uim_sim.understand.cards import load_corpus_card
from uim_sim.understand.forge import forge


def forged(card, precision: str, folder: Path) -> tuple[float, list[float], dict]:
    """Seconds a step, the losses, the manifest of one forge of ``card`` in ``precision``."""
    card = card.model_copy(
        update={"training": card.training.model_copy(update={"precision": precision})}
    )
    losses: list[float] = []
    start = time.perf_counter()
    forge(card, folder, lambda step, steps, loss: losses.append(loss))
    seconds = time.perf_counter() - start
    manifest = json.loads((folder / "manifest.json").read_text())
    return seconds / max(1, len(losses)), losses, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", default="corpora/hiring_names.yaml")
    parser.add_argument("--steps", type=int, default=300, help="training steps a forge")
    parser.add_argument("--repeats", type=int, default=1, help="forges in each precision")
    args = parse_args(parser)
    if bf16_support() is None:
        print("no native bf16 on this CPU: forging in bf16 is refused; nothing to compare")
        return
    card = load_corpus_card(Path(args.card))
    card = card.model_copy(
        update={"training": card.training.model_copy(update={"steps": args.steps})}
    )
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    curves, verified = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for precision in ("fp32", "bf16"):
                folder = Path(scratch) / f"{precision}-{repeat}"
                per_step, losses, manifest = forged(card, precision, folder)
                times[precision].append(per_step)
                curves[precision], verified[precision] = losses, manifest.get("verification")
    fp32, bf16 = min(times["fp32"]), min(times["bf16"])
    print(f"card {card.name}, {args.steps} steps, batch {card.training.batch_size}")
    print(f"  fp32 {fp32 * 1000:8.1f} ms/step   bf16 {bf16 * 1000:8.1f} ms/step   "
          f"bf16 / fp32 speed {fp32 / bf16:.2f}x  (best of {args.repeats})")  # fmt: skip
    window = max(1, args.steps // 10)
    print(f"  mean loss over windows of {window} steps (fp32 | bf16 | difference):")
    a, b = np.asarray(curves["fp32"]), np.asarray(curves["bf16"])
    for lo in range(0, len(a), window):
        x, y = a[lo : lo + window].mean(), b[lo : lo + window].mean()
        print(f"    steps {lo + 1:5d}-{min(lo + window, len(a)):5d}  {x:7.3f} | {y:7.3f} | "
              f"{y - x:+.3f}")  # fmt: skip
    print(
        f"  largest per-step |loss difference| {np.abs(a - b).max():.4f} (of losses "
        f"{a.min():.2f}-{a.max():.2f}); final loss fp32 {a[-1]:.4f}, bf16 {b[-1]:.4f}"
    )
    for precision in ("fp32", "bf16"):
        print(f"  verification ({precision}): {json.dumps(verified[precision])[:300]}")


if __name__ == "__main__":
    main()
