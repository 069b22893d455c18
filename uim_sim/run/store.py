"""The result folder: atomic writes, resume, and the gathered tables.

    OUT/spec.yaml                     the resolved spec (cards included)
    OUT/runs/<run_id>/                one finished run: run.json, execution.json,
                                      metrics.parquet, decisions.parquet
    OUT/checkpoints/<name>-<hash>/    checkpoints forged for the spec
    OUT/runs.parquet, metrics.parquet, decisions.parquet   the finished runs, in plan order
    OUT/execution.parquet             how each run executed (timings, cache counters)

A run's folder is written under a temporary name and renamed when complete, so a
killed batch leaves no partial run, and re-running resumes. Only the batch's driver
writes. The three result tables hold nothing that depends on the executor, the run
order or a resume: for the same spec and seed they are byte-identical; timings and
cache counters go to execution.parquet.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from uim_sim.identity import GRID, typed
from uim_sim.lfm.numerics import SCORE_TOLERANCE, describe, differences, from_columns
from uim_sim.run.execute import RunResult
from uim_sim.run.plan import Plan
from uim_sim.schema import SpecError, UimError
from uim_sim.understand.cards import CorpusCard

RESULT_FILES = ("runs.parquet", "metrics.parquet", "decisions.parquet")


def forged_folder(out: Path, corpus: CorpusCard) -> Path:
    """Where a result folder keeps the checkpoint forged from a corpus card (by hash)."""
    return Path(out) / "checkpoints" / f"{corpus.name}-{corpus.fingerprint()[:12]}"


def runs_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """runs.parquet from run rows, one typed column per grid key (`uim_sim.identity`)."""
    runs = pd.DataFrame(rows)
    for column in [c for c in runs.columns if c.startswith(GRID)]:
        runs[column] = typed([row.get(column) for row in rows])
    return runs


class OutputError(UimError):
    """The result folder cannot be written (disk full, read-only, no permission): one
    line naming the folder; the runs finished before it are intact."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


class Store:
    """The result folder of one spec (``out``)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.runs = self.out / "runs"

    def _folders(self) -> list[Path]:
        """The finished runs' folders, sorted: not a write a kill interrupted (a
        ``.tmp-`` folder, renamed into place only once whole: `write`)."""
        if not self.runs.is_dir():
            return []
        return sorted(p.parent for p in self.runs.glob("*/run.json")
                      if not p.parent.name.startswith(".tmp-"))  # fmt: skip

    def finished(self) -> set[str]:
        return {folder.name for folder in self._folders()}

    def done(self, run_id: str) -> bool:
        return (self.runs / run_id / "run.json").is_file()

    def check(self, plan: Plan) -> None:
        """Refuse a folder this plan would damage: one that is not a result folder, or
        one whose finished runs the plan does not contain (they would be orphaned).
        The same spec resumes; a spec that contains every finished run extends it."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise SpecError(f"--out: {out} exists and is not a folder")
        self._check_writable()
        # a folder holding only forged checkpoints (e.g. a link to the ones a matrix of
        # scenarios shares: `uim_sim.matrix`) is as good as empty
        if not out.is_dir() or not [p for p in out.iterdir() if p.name != "checkpoints"]:
            return
        if not (out / "spec.yaml").is_file():
            raise SpecError(
                f"--out: {out} is a non-empty folder without uim-sim results; refusing to "
                "write into it"
            )
        orphans = self.finished() - {t.run_id for t in plan.tasks}
        if orphans:
            old = yaml.safe_load((out / "spec.yaml").read_text()) or {}
            name = (old.get("spec") or {}).get("name", "?")
            raise SpecError(
                f"--out: {out} holds {len(orphans)} finished run(s) of spec {name!r} "
                f"({old.get('source', '?')}) that spec {plan.spec.name!r} ({plan.source}) does "
                "not contain; use another --out folder"
            )

    def numerics(self) -> dict[str, dict[str, Any]]:
        """The numerics fingerprints of the finished runs, by hash, each with
        ``runs``: how many runs it computed (`uim_sim.lfm.numerics`)."""
        found: dict[str, dict[str, Any]] = {}
        for folder in self._folders():
            timing = folder / "execution.json"
            if not timing.is_file():
                continue
            fields = from_columns(json.loads(timing.read_text()))
            if "numerics" in fields:
                entry = found.setdefault(fields["numerics"], {**fields, "runs": 0})
                entry["runs"] += 1
        return found

    def numerics_change(self, current: dict[str, Any]) -> str | None:
        """One line where finished runs of this folder were computed under another
        numerics fingerprint than ``current`` (this machine's): the runs added now may
        differ from them in their last digits. None where they agree (or none
        recorded one: a folder of an earlier uim-sim)."""
        others = {k: v for k, v in self.numerics().items() if k != current["numerics"]}
        if not others:
            return None
        runs = sum(v["runs"] for v in others.values())
        first = next(iter(others.values()))
        return (
            f"{self.out}: {runs} finished run(s) were computed under another numerics "
            f"fingerprint ({differences(first, current) or describe(first)}); runs added "
            f"here may differ from them within {SCORE_TOLERANCE:g} in scores, and in decisions "
            "that close to their boundary"
        )

    def _check_writable(self) -> None:
        """Refuse (as bad input, before anything is written) an --out that cannot be
        written: probe the folder, or the nearest folder above it that exists."""
        probe_in = self.out
        while not probe_in.exists() and probe_in != probe_in.parent:
            probe_in = probe_in.parent
        if not probe_in.is_dir():
            return  # the caller reports an --out that is a file
        probe = probe_in / f".uim-sim-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SpecError(f"--out: {self.out}: cannot write there ({_reason(exc)})") from None

    def prepare(self, plan: Plan) -> None:
        """Create the folder, drop what a killed batch left half-written, record the spec."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            for stale in self.runs.glob(".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            write_atomic(self.out / "spec.yaml", yaml.safe_dump(plan.resolved(), sort_keys=False))
        except OSError as exc:
            raise OutputError(f"--out: {self.out}: cannot write there ({_reason(exc)})") from None

    def write(self, result: RunResult) -> None:
        """Write one finished run atomically (a folder renamed into place). A write that
        fails (disk full, read-only) leaves nothing half-written and raises
        `OutputError`; the runs written before are intact."""
        run_id = result.row["run_id"]
        tmp = self.runs / f".tmp-{run_id}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            result.metrics.to_parquet(tmp / "metrics.parquet", index=False)
            result.decisions.to_parquet(tmp / "decisions.parquet", index=False)
            (tmp / "execution.json").write_text(json.dumps(result.execution, indent=2))
            (tmp / "run.json").write_text(json.dumps(result.row, indent=2, default=str))
            os.rename(tmp, self.runs / run_id)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if self.done(run_id):  # finished by another batch on the same folder first
                return
            raise OutputError(
                f"--out: {self.out}: writing run {run_id} failed ({_reason(exc)}); the "
                f"{len(self.finished())} finished run(s) there are intact: make room (or "
                "make the folder writable) and run the same command again to resume"
            ) from None

    def gather(
        self, run_ids: list[str], identities: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, pd.DataFrame]:
        """Gather finished runs (in plan order) into the result tables.

        ``identities``: the plan's identity columns of each run (`RunTask.identity`). A
        run is identified by what it computes, so a run finished under another spec
        (e.g. without a ``corpus.seed`` axis) is reused; its row is labelled with this
        plan's arm and grid point.
        """
        runs, metrics, decisions, execution = [], [], [], []
        for run_id in run_ids:
            folder = self.runs / run_id
            if not (folder / "run.json").is_file():
                continue
            row = json.loads((folder / "run.json").read_text())
            if identities is not None and run_id in identities:
                for old in ("mitigation", "grid"):  # a run finished by an older uim-sim
                    row.pop(old, None)
                row = {k: v for k, v in row.items() if not k.startswith(GRID)}
                row.update(identities[run_id])
            runs.append(row)
            metrics.append(pd.read_parquet(folder / "metrics.parquet"))
            decisions.append(pd.read_parquet(folder / "decisions.parquet"))
            timing = folder / "execution.json"
            if timing.is_file():
                execution.append(json.loads(timing.read_text()))
        tables = {
            "runs.parquet": runs_table(runs),
            "metrics.parquet": pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame(),
            "decisions.parquet": (
                pd.concat(decisions, ignore_index=True) if decisions else pd.DataFrame()
            ),
            "execution.parquet": pd.DataFrame(execution),
        }
        for name, frame in tables.items():
            tmp = self.out / f".{name}.{uuid.uuid4().hex[:8]}"
            try:
                frame.to_parquet(tmp, index=False)
                os.replace(tmp, self.out / name)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise OutputError(
                    f"--out: {self.out}: writing {name} failed ({_reason(exc)}); every "
                    "finished run is intact under runs/: make room and run the same "
                    "command again to gather them"
                ) from None
        return tables
