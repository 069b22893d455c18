"""Two ``uim-sim run`` commands side by side on this machine's cores, against the same
two one after the other: torch threads as before (all cores in a serial run) and as
now (as many as fit the load: `uim_sim/run/threads.py`).

The scenario (written to a temporary folder): the hiring audit on builtin:minilm, a
zero-shot card and a logistic head adapted on biased history, ``--replicates``
replicates of ``--jobs`` job ads (4 small runs by default). Each command is the whole
``uim-sim run SPEC --out DIR`` (start-up, planning, runs, tables) into its own fresh
folder, serially (the default executor). Per repeat, for each setting:

- before: ``--threads C`` (C = this machine's cores: what a serial run used before);
- now: no flag (fitted to the load before each run);

the wall time of A then B (one after the other) and of A and B started together
(side by side: until both end). Printed: both walls per setting, the ratio side by
side / one after the other (1 = running them together gains nothing; above 1, they
hinder each other), and now / before for each; the threads the fitted runs chose
(execution.parquet); the load average before and after. Best of ``--repeats``, the
settings taking turns. Exit code 0 whatever the result: this is a measurement.

    .venv/bin/python benchmarks/bench_threads.py [--replicates 2] [--jobs 4] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from _common import cpu_flags  # noqa: E402

CARDS = {
    "bench_zero_shot": {"checkpoint": "builtin:minilm", "head": {"kind": "zero_shot"}},
    "bench_history": {"checkpoint": "builtin:minilm",
                      "head": {"kind": "logistic", "train_on": "history", "history_bias": 2.5}},
}  # fmt: skip


def write_spec(folder: Path, args: argparse.Namespace) -> Path:
    agents = folder / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    for name, card in CARDS.items():
        (agents / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **card}))
    spec = {
        "name": "bench_threads",
        "world": "hiring",
        "seed": args.seed,
        "replicates": args.replicates,
        "cards": list(CARDS),
        "params": {"mode": "audit", "n_jobs": args.jobs, "n_history": args.history},
        "statistics": {"null_permutations": 0, "name_permutations": 100},
    }
    path = folder / "scenarios" / "bench_threads.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def command(spec: Path, out: Path, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "uim_sim.cli", "run", str(spec), "--out", str(out), *flags]


def together(commands: list[list[str]]) -> float:
    """Wall time until every command, started together, has ended."""
    start = time.perf_counter()
    running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for c in commands]  # fmt: skip
    for process, cmd in zip(running, commands):
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out}{err}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=2, help="runs = 2 × replicates")
    parser.add_argument("--jobs", type=int, default=4, help="job ads per run")
    parser.add_argument("--history", type=int, default=120, help="history resumes per run")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = {"before": ["--threads", str(cores)], "now": []}
    print(cpu_flags())
    print(f"{cores} cores; {2 * args.replicates} runs a command (hiring audit, {args.jobs} "
          f"job ads); load average at the start {os.getloadavg()[0]:.2f}")  # fmt: skip
    best: dict[tuple[str, str], float] = {}
    chosen: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_spec(Path(tmp), args)
        for repeat in range(args.repeats):
            for name, flags in settings.items():
                folder = Path(tmp) / f"{name}{repeat}"
                outs = [folder / f"{how}_{ab}" for how in ("seq", "side") for ab in "ab"]
                wall = together([command(spec, outs[0], flags)])
                wall += together([command(spec, outs[1], flags)])
                side = together([command(spec, o, flags) for o in outs[2:]])
                for key, value in (((name, "one after the other"), wall),
                                   ((name, "side by side"), side)):  # fmt: skip
                    best[key] = min(best.get(key, float("inf")), value)
                if name == "now":
                    for how, o in zip(("after", "after", "side", "side"), outs):
                        frame = pd.read_parquet(o / "execution.parquet")
                        chosen.append(frame.assign(how=how))
                print(f"  repeat {repeat + 1}, {name}: one after the other {wall:.1f} s, side "
                      f"by side {side:.1f} s (load {os.getloadavg()[0]:.2f})")  # fmt: skip
    for name in settings:
        seq, side = best[(name, "one after the other")], best[(name, "side by side")]
        print(f"{name:>6}: one after the other {seq:7.1f} s, side by side {side:7.1f} s, "
              f"side by side / one after the other {side / seq:.2f}x")  # fmt: skip
    for how in ("one after the other", "side by side"):
        ratio = best[("now", how)] / best[("before", how)]
        print(f"now / before, {how}: {ratio:.2f}x (below 1: now is faster)")
    runs = pd.concat(chosen)
    for how, rows in runs.groupby("how"):
        counts = rows["threads"].value_counts().sort_index().to_dict()
        label = "one after the other" if how == "after" else "side by side"
        print(
            f"threads the fitted runs chose, {label}: {counts} (others used "
            f"{rows['threads.others'].min():.2f}-{rows['threads.others'].max():.2f} cores)"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other work skews timings)")


if __name__ == "__main__":
    main()
