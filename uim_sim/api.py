"""A Python API for scripted batches and notebooks: the code `uim-sim run` and
`uim-sim report` run, without the terminal.

`plan` validates a spec (a file, a shipped scenario's name or a mapping) and expands it
into runs; `run` executes them into a result folder (resuming what is there, refusing
a folder it would damage, as the CLI does) and returns the folder's `Results`; `load`
reads a folder any earlier batch wrote. `Results` holds tidy tables: the runs, the
metrics, their mean and 95 % interval over seeds, the report's headline, the
comparison of interventions, the dose-response and the bias-audit table, each
computed by the report's own functions, so that a notebook's numbers are the
report's. Bad input raises the project's one-line errors (`SpecError`, `ReportError`,
`ExecutorError`, `OutputError`: all `UimError`), never exits.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from uim_sim import api
    >>> out = Path(tempfile.mkdtemp()) / "example"
    >>> results = api.run(api.EXAMPLE, out, progress=False)  # 4 runs, a few seconds
    >>> results.runs[["card", "arm", "seed"]].to_dict("records")[:2]
    [{'card': 'minilm_zero_shot', 'arm': 'none', 'seed': ...},
     {'card': 'minilm_zero_shot', 'arm': 'none', 'seed': ...}]
    >>> list(results.headline["condition"])
    ['minilm_zero_shot · none', 'minilm_zero_shot · name_redaction']
    >>> api.run(api.EXAMPLE, out, progress=False).batch.done  # resumed: nothing computed
    0
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from uim_sim import builtin
from uim_sim.progress import BatchBar, bars
from uim_sim.report import build_report, context, suite_members
from uim_sim.report.audit_table import audit_table
from uim_sim.report.compare import compare
from uim_sim.report.dose import dose_response
from uim_sim.report.headline import build as build_headline
from uim_sim.report.load import ReportError, load_decisions, load_runs
from uim_sim.run import BatchResult, ExecutorError, Plan, Store, plan_numerics, run_plan
from uim_sim.run import plan as plan_spec
from uim_sim.run.executors import executor_error
from uim_sim.schema import SpecError, UimError
from uim_sim.worlds.section import Context, Section

__all__ = ["EXAMPLE", "Results", "RunFailed", "load", "plan", "run"]

SpecLike = str | os.PathLike[str] | Mapping[str, Any]

# a spec small enough to run in seconds (the examples here use it): a hiring audit of
# two job ads, MiniLM zero-shot with and without name redaction, two seeds
EXAMPLE: dict[str, Any] = {
    "name": "example",
    "world": "hiring",
    "seed": 7,
    "replicates": 2,
    "cards": ["minilm_zero_shot"],
    "arms": [[], ["name_redaction"]],
    "params": {"mode": "audit", "n_jobs": 2, "n_history": 100},
    "statistics": {"null_permutations": 0, "name_permutations": 0},
}


class RunFailed(UimError, RuntimeError):
    """Some runs of a batch failed (one line: how many, the first one's error). The
    runs that finished are kept in the folder; running the same spec again retries the
    failed ones. ``failed``: each failed run's id and error; ``out``: the folder."""

    def __init__(self, message: str, out: Path, failed: dict[str, str]) -> None:
        super().__init__(message)
        self.out = out
        self.failed = failed


def plan(spec: SpecLike, agents_dir: str | os.PathLike[str] | None = None) -> Plan:
    """Validate a spec and everything it names (cards, checkpoints, mitigations) and
    expand it into runs, as `uim-sim validate` and `uim-sim run` do.

    ``spec``: a YAML file, a shipped scenario's name (``builtin:hiring_audit``,
    ``hiring_audit``), or the spec itself as a mapping (its cards and relative paths
    are then found from the working folder). ``agents_dir``: a folder of agent cards
    searched first. Raises `SpecError` (one line, naming the field); a suite of specs
    or an inheritance matrix is refused with the command that runs it.

    >>> the_plan = plan("builtin:hiring_audit")
    >>> the_plan.spec.name, len(the_plan.tasks)  # 3 cards x 3 arms x 4 seeds
    ('hiring_audit', 36)
    >>> plan({**EXAMPLE, "replicates": 0})
    Traceback (most recent call last):
    ...
    uim_sim.schema.SpecError: replicates: ...
    """
    if not isinstance(spec, Mapping):
        path = builtin.resolve("scenarios", spec)
        if path.is_file():
            _refuse_suite_or_matrix(path)
        spec = path
    return plan_spec(spec, Path(agents_dir) if agents_dir is not None else None)


def _refuse_suite_or_matrix(path: Path) -> None:
    from uim_sim.matrix import is_matrix
    from uim_sim.spec import is_suite, load_suite

    shown = builtin.shown(path)
    if is_matrix(path):
        raise SpecError(f"SPEC: {shown} is an inheritance matrix: run it with `uim-sim matrix`")
    if is_suite(path):
        names = ", ".join(name for name, _ in load_suite(path))
        raise SpecError(
            f"SPEC: {shown} is a suite ({names}): run each member spec into its own folder "
            "(uim_sim.spec.load_suite lists them), or the whole suite with `uim-sim run`"
        )


def run(
    spec: SpecLike | Plan,
    out: str | os.PathLike[str],
    *,
    workers: int | None = 1,
    executor: Any = None,
    agents_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    strict: bool = False,
    threads: int | None = None,
) -> Results:
    """Run every run of a spec into the result folder ``out`` and return its `Results`;
    the runs ``out`` already holds are resumed, never recomputed (as `uim-sim run`).

    ``spec``: as for `plan`, or a `Plan`. ``workers``, ``executor`` (``"serial"``,
    ``"process"``, ``"ray"`` or an executor object): as the CLI's ``--workers`` and
    ``--executor``. ``progress``: a progress bar on stderr (False: silent).
    ``strict``: refuse a folder whose finished runs were computed under another
    numerics fingerprint (otherwise a warning says what differs). ``threads``: torch's
    threads in each worker, as ``--threads`` (default: fitted to the load).

    Raises, before anything is written, `SpecError` for a bad spec or a folder it would
    damage (another spec's runs) and `ExecutorError` for an executor that cannot
    start; `OutputError` where writing fails; `RunFailed` where some runs failed (the
    rest are kept: run again to retry them). ``Results.batch`` counts what this call
    did.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "example"
    >>> results = run(EXAMPLE, out, progress=False)
    >>> results.batch.total, results.batch.done, results.batch.skipped
    (4, 4, 0)
    >>> run({**EXAMPLE, "seed": 8}, out, progress=False)  # would orphan the runs there
    Traceback (most recent call last):
    ...
    uim_sim.schema.SpecError: --out: ... holds 4 finished run(s) of spec 'example' ...
    """
    if isinstance(executor, str) or executor is None:
        error = executor_error(executor, workers, None)
        if error:
            raise ExecutorError(error)
    the_plan = spec if isinstance(spec, Plan) else plan(spec, agents_dir)
    out = Path(out)
    store = Store(out)
    store.check(the_plan)  # as the CLI checks every folder before any runs
    change = store.numerics_change(plan_numerics(the_plan)) if store.finished() else None
    if change and strict:
        raise SpecError(f"strict: {change}; refused")
    if change:
        warnings.warn(change, stacklevel=2)
    with bars() if progress else contextlib.nullcontext() as shown:
        hooks = BatchBar(shown, the_plan.spec.name, len(the_plan.tasks)) if progress else None
        batch = run_plan(
            the_plan,
            out,
            workers,
            on_start=hooks.started if hooks else None,
            on_done=hooks.done if hooks else None,
            on_forge=hooks.forging if hooks else None,
            executor=executor,
            checked=True,
            threads=threads,
        )
    if batch.failed:
        first, error = next(iter(batch.failed.items()))
        raise RunFailed(
            f"{len(batch.failed)} of {batch.total} run(s) failed (first: {first}: {error}); "
            f"the {batch.total - len(batch.failed)} finished are kept in {out}: run again "
            "to retry the failed",
            out,
            dict(batch.failed),
        )
    results = load(out)
    results.batch = batch
    return results


def load(folder: str | os.PathLike[str]) -> Results:
    """The results in a folder `uim-sim run` (or `run`) wrote.

    Raises `ReportError` (one line) for a folder that holds no runs, saying which
    command makes it; a suite's folder names its members (load one of them).

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "example"
    >>> _ = run(EXAMPLE, out, progress=False)
    >>> results = load(out)
    >>> len(results.runs), sorted(results.metrics.columns)
    (4, ['group', 'metric', 'run_id', 'step', 'value'])
    >>> load(out / "nowhere")
    Traceback (most recent call last):
    ...
    uim_sim.report.load.ReportError: .../nowhere: no such folder: run `uim-sim run SPEC ...
    """
    folder = Path(folder)
    members = suite_members(folder)
    if members:
        raise ReportError(
            f"{folder}: a suite's folder; load one of its members: "
            + ", ".join(m.name for m in members)
        )
    runs, metrics, spec = load_runs(folder)
    return Results(folder, runs, metrics, spec)


@dataclass(eq=False)
class Results:
    """One result folder's tables, computed by the report's own code.

    - ``runs``: one row per run: ``run_id``, ``card``, ``arm`` (its mitigations joined
      by ``+``; ``none`` without), ``mitigations`` (a tuple), ``grid.*`` (the grid
      point), ``replicate``, ``seed``, ``condition`` (card · arm · grid point: its
      replicates are the seeds), every parameter as ``param.*``; forged checkpoints
      add ``corpus.*`` and ``probe.*`` (runs.parquet, as the report reads it).
    - ``metrics``: tidy, one row per run × step × metric × group (``group`` empty for a
      population-level metric): run_id, step, metric, group, value (metrics.parquet;
      join ``runs`` on ``run_id`` for the condition and seed).
    - ``spec``: the resolved spec (spec.yaml: the spec, every card's content).
    - ``batch``: what the `run` that returned these did (None from `load`).

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "example"
    >>> results = run(EXAMPLE, out, progress=False)
    >>> results
    Results('.../example': 4 runs, 2 conditions)
    >>> s = results.summary.query("metric == 'impact_ratio' and group == 'black'")
    >>> list(s.columns)
    ['condition', 'step', 'metric', 'group', 'mean', 'ci_low', 'ci_high', 'n']
    >>> bool((s["mean"].to_numpy() == results.headline["impact_ratio"].to_numpy()).all())
    True
    >>> results.comparison[["card", "arm", "seeds"]].to_dict("records")
    [{'card': 'minilm_zero_shot', 'arm': 'name_redaction', 'seeds': 2}]
    >>> results.dose_response is None  # no forged checkpoints vary a corpus knob
    True
    >>> len(results.decisions()) > 0, results.audit()["category"].iloc[0]
    (True, 'female')
    >>> results.report().name, sorted(p.name for p in (out / "report").glob("*.csv"))
    ('report', ['interventions.csv', 'metrics_summary.csv', 'summary.csv'])
    """

    folder: Path
    runs: pd.DataFrame
    metrics: pd.DataFrame
    spec: dict[str, Any]
    batch: BatchResult | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"Results({str(self.folder)!r}: {len(self.runs)} runs, "
            f"{self.runs['condition'].nunique()} conditions)"
        )

    @cached_property
    def _view(self) -> tuple[Context, Section]:
        ctx, section, _ = context(self.folder, (self.runs, self.metrics, self.spec))
        return ctx, section

    def decisions(self) -> pd.DataFrame:
        """Every decision of every run (decisions.parquet: who decided about whom, with
        which checkpoint, the score, the decision, the truth where the world knows it),
        read on each call: it can be large."""
        return load_decisions(self.folder)

    @property
    def summary(self) -> pd.DataFrame:
        """Mean and 95 % Student-t interval over seeds of every metric, per condition ×
        step × metric × group (rates and ratios on the logit or log scale, inside their
        range): condition, step, metric, group, mean, ci_low, ci_high, n (seeds with a
        value). The report's ``metrics_summary.csv``."""
        return self._view[0].summary

    @cached_property
    def headline(self) -> pd.DataFrame:
        """The report's headline numbers, one row per condition: the world's columns
        (hiring: the impact ratio of the disadvantaged group with its interval, the
        uncapped rate ratio, the null band, callback rates), the worst subgroup. The
        report's ``summary.csv``."""
        return build_headline(*self._view)[0]

    @cached_property
    def comparison(self) -> pd.DataFrame | None:
        """Each mitigation arm against no mitigation, seed by seed: the paired change in
        the world's harm (``d_harm``, ``d_harm_low``, ``d_harm_high``) and utility
        (``d_utility``…), ``seeds``, ``base_harm``, ``dominated``; one row per setting
        (card · grid point) and arm. None where the spec has no ``none`` arm beside
        others. The report's ``interventions.csv``."""
        ctx, section = self._view
        if section.harm is None:
            return None
        with tempfile.TemporaryDirectory() as figures:  # the report's figure, not kept
            found = compare(ctx.runs, self.metrics, section.harm, section.utility,
                            Path(figures), section.outcomes)  # fmt: skip
        return None if found is None else found.table

    @cached_property
    def dose_response(self) -> pd.DataFrame | None:
        """Where forged checkpoints vary a corpus knob (``grid: corpus.knobs.*``): the
        harm per card and dose, mean and 95 % interval (over forged checkpoints where a
        dose has several, else over seeds), beside what the probe read off the
        checkpoints; None otherwise. The report's ``dose_response.csv``."""
        ctx, section = self._view
        if section.harm is None:
            return None
        with tempfile.TemporaryDirectory() as figures:
            found = dose_response(self.folder, ctx.runs, self.metrics, section.harm,
                                  Path(figures))  # fmt: skip
        return None if found is None else found.table

    def audit(self, min_count: int | None = None) -> pd.DataFrame:
        """The bias-audit table in the form of NYC Local Law 144, one row per condition
        × category (what `uim-sim audit-table` writes); ``min_count`` as its
        ``--min-count``. Raises `ReportError` where the world declares none."""
        return audit_table(self.folder, min_count)

    def report(self, to: str | os.PathLike[str] | None = None) -> Path:
        """Write the report (what `uim-sim report` writes: summary.md, index.html, the
        CSVs, the figures) into ``to`` (default: the folder's ``report/``); its folder."""
        return build_report(self.folder, Path(to) if to is not None else None).folder
