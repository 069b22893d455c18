"""Label noise in pre-training → few-shot probes in and out of domain, and the spectrum.

A thin command over `uim_sim.understand.label_noise` (Chen et al., ICLR 2024;
docs/understand.md, "Label noise"): forges ``corpora/label_noise.yaml`` in each design
of the study (`DESIGNS`: how the noise is planted, the lexicon, the model's size) at
each noise level × forging seed (cached under OUT/checkpoints by card hash), prints the
summary over seeds and the verdict per design, and writes OUT/label_noise.csv (one row
per design × checkpoint) and OUT/label_noise_summary.csv.

    .venv/bin/python analysis/label_noise_study.py --out results/label_noise \
        [--design per_text ...] [--noise 0 0.1 0.3] [--seeds 0 1 2 3 4] [--shots 8] [--draws 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from uim_sim.schema import SpecError
from uim_sim.understand.label_noise import (
    DEFAULT_CARD,
    DESIGNS,
    label_noise_designs,
    summarize,
    summary_markdown,
    verdict,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/label_noise"))
    parser.add_argument(
        "--design", choices=[d.key for d in DESIGNS], action="append",
        help="a design of the study (repeat for several; default: all)",
    )  # fmt: skip
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--shots", type=int, default=8, help="labelled items per class")
    parser.add_argument("--draws", type=int, default=50, help="few-shot draws per probe")
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD)
    args = parser.parse_args()
    designs = [d for d in DESIGNS if not args.design or d.key in args.design]
    start = time.perf_counter()
    try:
        table = label_noise_designs(
            designs, args.noise, args.seeds, args.out / "checkpoints",
            lambda line: print(line, file=sys.stderr, flush=True),
            card=args.card, shots=args.shots, draws=args.draws,
        )  # fmt: skip
    except (SpecError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "label_noise.csv", index=False)
    summaries = []
    for design in designs:
        rows = table[table["design"] == design.key]
        summary = summarize(rows)
        summaries.append(summary.assign(design=design.key))
        print(f"## {design.key}: {design.tests}\n")
        print(summary_markdown(summary))
        print()
        print("\n".join(verdict(rows).lines))
        print()
    pd.concat(summaries).to_csv(args.out / "label_noise_summary.csv", index=False)
    print(f"→ {args.out / 'label_noise.csv'}, {args.out / 'label_noise_summary.csv'}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
