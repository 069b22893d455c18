"""Label noise in pre-training → few-shot probes in and out of domain, and the spectrum.

A thin command over `uim_sim.understand.label_noise.label_noise_study` (Chen et al.,
ICLR 2024; docs/understand.md, "Label noise"): forges ``corpora/label_noise.yaml`` at
each noise level × forging seed (cached under OUT/checkpoints by card hash), prints the
summary over seeds and the verdict, and writes OUT/label_noise.csv (one row per
checkpoint) and OUT/label_noise_summary.csv.

    .venv/bin/python analysis/label_noise_study.py --out results/label_noise \
        [--noise 0 0.1 0.3] [--seeds 0 1 2 3 4] [--shots 8] [--draws 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from uim_sim.schema import SpecError
from uim_sim.understand.label_noise import (
    DEFAULT_CARD,
    label_noise_study,
    summarize,
    summary_markdown,
    verdict,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/label_noise"))
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--shots", type=int, default=8, help="labelled items per class")
    parser.add_argument("--draws", type=int, default=50, help="few-shot draws per probe")
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD)
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        table = label_noise_study(
            args.noise, args.seeds, args.out / "checkpoints",
            lambda line: print(line, file=sys.stderr, flush=True),
            card=args.card, shots=args.shots, draws=args.draws,
        )  # fmt: skip
    except (SpecError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    summary = summarize(table)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "label_noise.csv", index=False)
    summary.to_csv(args.out / "label_noise_summary.csv", index=False)
    columns = ["label_noise", "seed", "id_accuracy", "ood_accuracy", "sve", "lsvr",
               "id_accuracy_untrained", "ood_accuracy_untrained", "flipped_share"]  # fmt: skip
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(summary_markdown(summary))
    print()
    print("\n".join(verdict(table).lines))
    print(f"→ {args.out / 'label_noise.csv'}, {args.out / 'label_noise_summary.csv'}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
