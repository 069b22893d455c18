"""Executors on this machine: one 48-run grid, serial vs a process pool vs Ray.

The grid (written to a temporary folder): the hiring audit on builtin:minilm (the
embedded model), two cards (zero-shot and a logistic head adapted on biased history)
× two arms (none, name redaction) × 12 replicates, small runs (``--jobs`` job ads,
one null re-run). Each executor runs the whole ``uim-sim run`` command in its own
process, into its own result folder, as a user would:

- serial: ``uim-sim run SPEC --out DIR``;
- process: ``--executor process --workers W`` (a pool of spawned processes);
- ray: ``--executor ray --workers W`` (a local Ray started and stopped by the
  command: W actors, each keeping its loaded models).

Printed per executor: wall time of the command (start-up, planning, runs, the
gathered tables), its ratio to serial, and model loads: in the workers (summed
``model_loads`` of execution.parquet: 0 where a model was loaded already) and in the
driver (planning opens each checkpoint once, and the serial executor reuses it).
The result tables must be byte-identical across executors (checked). Exit code 0
whatever the result: this is a measurement.

    .venv/bin/python benchmarks/bench_executors.py [--workers 2] [--replicates 12]
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from _common import parse_args, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILES = ("runs.parquet", "metrics.parquet", "decisions.parquet")


def write_spec(folder: Path, args: argparse.Namespace) -> Path:
    spec = {
        "name": "bench_executors",
        "world": "hiring",
        "seed": args.seed,
        "replicates": args.replicates,
        "agents": ["minilm_zero_shot", "minilm_biased_history"],
        "mitigations": [[], ["name_redaction"]],
        "params": {"mode": "audit", "n_jobs": args.jobs, "n_history": args.history},
        "statistics": {"null_permutations": 1, "name_permutations": 100},
    }
    path = folder / "bench_executors.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(spec: Path, out: Path, flags: list[str]) -> float:
    cmd = [sys.executable, "-m", "uim_sim.cli", "run", str(spec), "--out", str(out),
           "--agents-dir", str(ROOT / "agents"), *flags]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="processes / Ray actors")
    parser.add_argument("--replicates", type=int, default=12, help="runs = 4 × replicates")
    parser.add_argument("--jobs", type=int, default=4, help="job ads per run")
    parser.add_argument("--history", type=int, default=200, help="history resumes per run")
    args = parse_args(parser)

    executors = {
        "serial": [],
        "process": ["--executor", "process", "--workers", str(args.workers)],
        "ray": ["--executor", "ray", "--workers", str(args.workers)],
    }
    if importlib.util.find_spec("ray") is None:
        print("ray is not installed (pip install 'uim-sim[ray]'): measuring without it")
        del executors["ray"]
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        spec = write_spec(Path(tmp), args)
        runs = 4 * args.replicates
        print(
            f"{runs} runs (2 cards × 2 arms × {args.replicates} replicates, builtin:minilm, "
            f"{args.jobs} job ads, {args.history} history resumes); {args.workers} workers; "
            f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}"
        )
        rows = []
        for name, flags in executors.items():
            out = Path(tmp) / name
            wall = run(spec, out, flags)
            execution = pd.read_parquet(out / "execution.parquet")
            assert len(execution) == runs
            rows.append(
                {
                    "executor": name if not flags else " ".join([name, *flags[2:]]),
                    "wall_s": wall,
                    "runs_per_s": runs / wall,
                    "model_loads_workers": int(execution["model_loads"].sum()),
                    "run_s_sum": float(execution["wall_seconds"].sum()),
                    "model_s_sum": float(execution["model_seconds"].sum()),
                    "same_tables": all(
                        filecmp.cmp(Path(tmp) / "serial" / f, out / f, shallow=False)
                        for f in RESULT_FILES
                    ),
                }
            )
            print(
                f"  {rows[-1]['executor']}: {wall:.1f} s (load average now "
                f"{os.getloadavg()[0]:.2f}: other work on the cores skews it)",
                flush=True,
            )
        table = pd.DataFrame(rows)
        table.insert(2, "speedup", table["wall_s"].iloc[0] / table["wall_s"])  # serial wall / wall
        print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
        print(
            "model loads in the driver: 1 (planning opens builtin:minilm once; the serial "
            "executor runs on it)"
        )
        print(
            f"goal: each model loaded at most once per worker ({args.workers}): "
            + verdict(bool((table["model_loads_workers"] <= args.workers).all()))
        )
        print(f"goal: byte-identical tables: {verdict(bool(table['same_tables'].all()))}")


if __name__ == "__main__":
    main()
