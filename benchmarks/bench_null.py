"""The null reference's cost: one hiring-audit run with and without its null draws.

The run is the one a researcher's own decisions make expensive: an audit (50 job ads,
400 resumes) screened by a logistic head adapted on a 4,870-row labelled file (the
size of Bertrand & Mullainathan's sample, drawn from the hiring world's biased
history generator). Its null reference (8 draws, the default) re-trains the head on
permuted labels and re-scores the audit; the embeddings are the run's own (the
engine's cache), so the null draws encode no text.

Measured in this process, each case after the model is loaded:

- cold: the engine's cache emptied first, as for a run of its own (`uim-sim run` of
  one run): run alone (``null_permutations: 0``) vs run with its null reference;
- warm: every text already embedded (a later run of a batch on the same checkpoint).

Prints the wall times, the ratio with / alone (goal ≤ 2×), and the texts encoded by
the null draws (goal 0). Exit code 0 always.

    .venv/bin/python benchmarks/bench_null.py [--draws 8] [--rows 4870]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from _common import REF, parse_args, verdict  # noqa: E402

from uim_sim.lfm.engine import get_engine  # noqa: E402
from uim_sim.run import plan  # noqa: E402
from uim_sim.run.execute import execute  # noqa: E402
from uim_sim.worlds.hiring import AuditStudy  # noqa: E402

GOAL_RATIO = 2.0


def write_inputs(folder: Path, rows: int, draws: int, seed: int) -> Path:
    """The labelled file, its card and a one-run audit spec; returns the spec's path."""
    history = AuditStudy(n_history=rows, n_jobs=1, rng=99).history(bias=1.5)
    pd.DataFrame({"resume": history.texts, "callback": history.labels}).to_csv(
        folder / "decisions.csv", index=False
    )
    card = {
        "name": "file_head",
        "checkpoint": REF,
        "head": {"kind": "logistic", "train_on": "file", "file": "decisions.csv",
                 "text_column": "resume", "label_column": "callback"},
        "decision": {"rule": "top_share", "share": 0.5},
    }  # fmt: skip
    spec = {
        "name": "bench_null",
        "world": "hiring",
        "seed": seed,
        "agents": ["file_head"],
        "params": {"mode": "audit", "n_jobs": 50},
        "statistics": {"null_permutations": draws},
    }
    (folder / "file_head.yaml").write_text(yaml.safe_dump(card))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return folder / "spec.yaml"


def timed(task, cold: bool) -> tuple[float, int]:
    """Wall seconds of one run and the texts it encoded."""
    if cold:
        get_engine(REF).clear_cache()
    start = time.perf_counter()
    result = execute(task)
    return time.perf_counter() - start, result.execution["texts_encoded"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=8, help="null draws")
    parser.add_argument("--rows", type=int, default=4870, help="rows of the labelled file")
    args = parse_args(parser)
    print(
        f"{REF} hiring audit, 50 ads, head on a {args.rows}-row file, {args.draws} null "
        f"draws; torch threads {torch.get_num_threads()}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_inputs(Path(tmp), args.rows, args.draws, args.seed)
        task = plan(spec, Path(tmp)).tasks[0]
        alone = replace(
            task, statistics=task.statistics.model_copy(update={"null_permutations": 0})
        )
        get_engine(REF)  # loaded once, outside every timing
        rows = []
        for cold in (True, False):
            t_alone, enc_alone = timed(alone, cold)
            t_null, enc_null = timed(task, cold)
            rows.append((cold, t_alone, t_null, enc_alone, enc_null))

    print()
    print("| cache | run alone | run + null draws | ratio | texts encoded (alone / with) |")
    print("|---|---|---|---|---|")
    for cold, t_alone, t_null, enc_alone, enc_null in rows:
        print(
            f"| {'cold' if cold else 'warm'} | {t_alone:.2f} s | {t_null:.2f} s | "
            f"{t_null / t_alone:.2f}× | {enc_alone:,} / {enc_null:,} |"
        )
    cold_ratio = rows[0][2] / rows[0][1]
    extra = rows[1][2] - rows[1][1]
    print()
    print(
        f"run with its null reference / run alone (cold, a run of its own): "
        f"{cold_ratio:.2f}× (goal ≤ {GOAL_RATIO:.0f}×: {verdict(cold_ratio <= GOAL_RATIO)})"
    )
    print(
        f"texts the null draws encoded: {rows[0][4] - rows[0][3]} "
        f"(goal 0: {verdict(rows[0][4] == rows[0][3])})"
    )
    print(
        f"each null draw (warm): {extra / max(args.draws, 1):.3f} s (re-training the head "
        f"on permuted labels and re-scoring from cached embeddings)"
    )


if __name__ == "__main__":
    main()
