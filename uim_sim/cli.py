"""`uim-sim`: run scenario batches, validate inputs, write reports.

Every bad input ends with one line on stderr naming the field, exit status 2,
and nothing written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# a report table is wide: when piped or logged, do not squeeze it to 80 columns
out_console = Console(width=None if sys.stdout.isatty() else 200)  # tables fit WIDE
err_console = Console(stderr=True)


def _agents_dir():
    """The ``--agents-dir`` option: a folder that exists (a typo is an error)."""
    return typer.Option(None, exists=True, file_okay=False, help="Folder of agent cards.")


def _spec_path(value: Path | None) -> Path | None:
    """A SPEC argument: the file, else the shipped scenario it names (``builtin:NAME``,
    ``NAME``, or ``scenarios/NAME.yaml`` in a folder that has no such file)."""
    from uim_sim import builtin

    return None if value is None else builtin.resolve("scenarios", value)


def fail(message: str, code: int = 2) -> None:
    # the message may quote the user's input: one line, never read as Rich markup ('[/x]'
    # would raise)
    line = " ".join(str(message).splitlines())
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _members(spec: Path) -> list[tuple[str | None, Path]]:
    """A spec file as (None, spec), or a suite's members as (name, spec) each."""
    from uim_sim import builtin
    from uim_sim.matrix import is_matrix
    from uim_sim.schema import SpecError
    from uim_sim.spec import is_suite, load_suite

    try:
        if spec.is_file() and is_matrix(spec):
            where = builtin.shown(spec)
            fail(f"SPEC: {where} is an inheritance matrix: run it with `uim-sim matrix {where}`")
        return load_suite(spec) if is_suite(spec) else [(None, spec)]
    except SpecError as exc:
        fail(str(exc))


def _plan(spec: Path, agents_dir: Path | None):
    from uim_sim.run import plan
    from uim_sim.schema import SpecError

    try:
        return plan(spec, agents_dir)
    except SpecError as exc:
        fail(str(exc))


WIDE = 120  # the width a table printed to a file or pipe fits (a terminal: its own)
FIRST = 20  # the first column (the condition) wraps at spaces beyond this width


def _print_table(frame, title: str, full: str | None = None) -> None:
    """A table of display strings (or numbers) in the terminal, each column as wide as
    its widest cell (headers wrap at spaces). With ``full`` (where the whole table is
    written) it fits the terminal's width (`WIDE` off a terminal): columns kept in
    order while they fit, the others named below it."""
    from uim_sim.report.headline import fmt

    cells = {
        str(column): [fmt(v, 3) if isinstance(v, float) else str(v) for v in frame[column]]
        for column in frame.columns
    }
    width = min(out_console.width, WIDE) if sys.stdout.isatty() else WIDE
    kept, used = [], 0
    for i, (column, values) in enumerate(cells.items()):
        header = column.replace("_", " ")
        longest = max((len(w) for w in header.split()), default=0)  # headers wrap at spaces
        need = max([len(v) for v in values] + [longest]) + 2
        if i == 0 and full:  # the condition may wrap at its spaces ("card ·" / "arm")
            words = [len(w) for v in [header, *values] for w in v.split()]
            need = min(need, max(max(words, default=0), FIRST) + 2)
        if full and i and used + need > width:
            break
        kept.append((header, values, need))
        used += need
    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for i, (header, _, need) in enumerate(kept):
        # the first column names the condition: left-aligned (whole unless fitted); the
        # others right
        table.add_column(header, justify="left" if i == 0 else "right", min_width=need - 2,
                         max_width=need - 2 if full else None,
                         no_wrap=not full and i == 0)  # fmt: skip
    for row in zip(*(values for _, values, _ in kept)):
        table.add_row(*row)
    out_console.print(table)
    left = [c for c in cells if c.replace("_", " ") not in {h for h, _, _ in kept}]
    if left:
        where = f" in {full}" if full else ""
        out_console.print(f"(not shown here, to fit {width} columns: {', '.join(left)}{where})",
                          highlight=False, soft_wrap=True)  # fmt: skip


@app.command()
def validate(
    spec: Path = typer.Argument(
        ...,
        help="Scenario spec: a YAML file, or a built-in scenario's name (uim-sim list).",
        callback=_spec_path,
    ),
    agents_dir: Path | None = _agents_dir(),
) -> None:
    """Check a spec (a suite of specs, or an inheritance matrix), its agent cards,
    checkpoints and mitigations; run nothing."""
    from uim_sim import builtin
    from uim_sim.matrix import is_matrix
    from uim_sim.schema import SpecError

    try:
        matrix = spec.is_file() and is_matrix(spec)
    except SpecError as exc:  # not YAML a spec can be: one line, as for any spec
        fail(str(exc))
    if matrix:
        _, cells, plans, remedies = _matrix_plans(spec, Path("OUT"), agents_dir)
        runs = sum(len(the_plan.tasks) for _, the_plan in plans)
        out_console.print(
            f"[green]ok[/] {builtin.shown(spec)}: inheritance matrix, {len(plans)} cell(s) to run "
            f"({len(cells) - len(plans)} n/a), {runs} runs, {len(remedies)} remedy "
            f"plan(s); run it with `uim-sim matrix {builtin.shown(spec)} --out OUT`"
        )
        return
    from uim_sim.run import precision_notes

    for _, member in _members(spec):
        the_plan = _plan(member, agents_dir)
        for line in precision_notes(the_plan):  # what precision: auto computes in here
            err_console.print(f"[yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)
        out_console.print(
            f"[green]ok[/] {builtin.shown(member)}: world {the_plan.spec.world}, "
            f"{len(the_plan.cards)} "
            f"card(s), {len(the_plan.spec.arms)} mitigation arm(s), "
            f"{len(the_plan.tasks)} runs"
        )


@app.command("list")
def list_(
    what: str = typer.Argument(
        "all", help="worlds, cards, mitigations, scenarios, corpora or all."
    ),
    agents_dir: Path | None = _agents_dir(),
) -> None:
    """What is available: worlds, agent cards, mitigations, scenarios, corpus cards."""
    from uim_sim.catalogue import CATALOGUE, catalogue

    if what not in (*CATALOGUE, "all"):
        fail(f"list: unknown kind {what!r} (one of: {', '.join(CATALOGUE)}, all)")
    for kind in CATALOGUE if what == "all" else [what]:
        table = Table(title=kind, title_justify="left", show_header=False)
        table.add_column("name", no_wrap=True, style="bold")
        table.add_column("what it is")
        for name, summary in catalogue(kind, agents_dir):
            table.add_row(Text(name), Text(summary))  # plain text: no Rich markup
        out_console.print(table)


@app.command()
def init(
    folder: Path = typer.Argument(..., help="The study folder to create (new or empty)."),
    source: str = typer.Option(
        "hiring",
        "--from",
        help="A world (hiring, moderation, spread: its starting scenario) or any built-in "
        "scenario's name (uim-sim list scenarios).",
    ),
) -> None:
    """Start a study: FOLDER gets editable copies of a built-in scenario, the agent cards
    and corpus cards it names and the files they read, and a README of what to change;
    then prints the command that runs it."""
    from uim_sim.schema import SpecError
    from uim_sim.starter import init_study

    try:
        files, command = init_study(folder, source)
    except SpecError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"DIR: {folder}: cannot write ({exc.strerror or exc})")
    out_console.print(
        f"wrote {len(files)} files to {folder}/ (README.md says what to change); run it with\n"
        f"  {command}\n  uim-sim report {folder / 'results'}",
        highlight=False,
    )


@app.command("check-world")
def check_world(
    world: str = typer.Argument(..., help="A registered world (uim-sim list worlds)."),
    param: list[str] = typer.Option(  # noqa: B008 - typer reads its options this way
        [],
        "--param",
        "-p",
        help="A parameter, KEY=VALUE (defaults otherwise); "
        "e.g. -p n_applicants=20; -p mode=NAME checks that mode alone.",
    ),
    max_steps: int = typer.Option(1000, min=1, help="Steps before 'still running' is a fault."),
) -> None:
    """Check that a world keeps the rules the runner, the report and the page rely on:
    built from keywords with defaults, stepped to its end, its collected numbers,
    measures, decision table, null draw and page declarations read. One line per
    broken rule (exit 1); a world from another package is checked the same way."""
    import yaml

    from uim_sim.schema import format_error
    from uim_sim.worlds import WORLDS, world_info, world_problems

    if world not in WORLDS:
        fail(f"world: unknown world {world!r} (known: {', '.join(WORLDS)})")
    keywords = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--param: {item!r} is not KEY=VALUE")
        keywords[key.strip()] = yaml.safe_load(value)
    info = world_info(world)
    try:
        models = [info.model(keywords.get("mode"))] if "mode" in keywords else info.models.values()
    except ValueError as exc:
        fail(f"--param: {exc}")
    for model in models:
        try:
            model.Params.model_validate(keywords)
        except ValueError as exc:
            fail(format_error(exc, "--param: ") if hasattr(exc, "errors") else f"--param: {exc}")
    target = next(iter(models)) if "mode" in keywords else info
    problems = world_problems(target, max_steps, **keywords)
    for line in problems:
        err_console.print(f"[bold red]broken:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    out_console.print(f"[green]ok[/] {world}: keeps every rule check_world reads")


def _workers():
    return typer.Option(
        None,
        min=1,
        max=1024,
        help="Workers: processes of the pool (default 1, i.e. serial; with --executor "
        "process, one per core), or Ray actors (default: one per CPU of the cluster).",
    )


def _executor():
    return typer.Option(
        None,
        "--executor",
        help="serial, process or ray (default: process with --workers > 1, else serial). "
        "ray needs the extra: pip install 'uim-sim\\[ray]'.",
    )


def _address():
    return typer.Option(
        None,
        "--address",
        help="With --executor ray: the cluster to join, 'auto' (the one this machine is a "
        "node of), ray://HOST:PORT (its Ray Client server) or HOST:PORT (its head); "
        "default: a local Ray for this command.",
    )


def _check_executor(executor: str | None, workers: int | None, address: str | None) -> None:
    from uim_sim.run.executors import executor_error

    error = executor_error(executor, workers, address)
    if error:
        fail(error)


@app.command()
def run(
    spec: Path = typer.Argument(
        ...,
        help="Scenario spec: a YAML file, or a built-in scenario's name (uim-sim list).",
        callback=_spec_path,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Result folder (created; resumed if present)."
    ),
    workers: int | None = _workers(),
    agents_dir: Path | None = _agents_dir(),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
    executor: str | None = _executor(),
    address: str | None = _address(),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Refuse to resume or extend DIR where its finished runs were "
        "computed under another numerics fingerprint (another CPU's kernels, other library "
        "versions), instead of a note.",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=1024,
        help="torch threads per worker (default: cores ÷ workers in a pool or on Ray; "
        "serially, all cores where the machine is otherwise idle, else the cores others "
        "leave, at least 1).",
    ),
) -> None:
    """Run every run of a spec's grid (or of every spec of a suite, each into its own
    sub-folder), resuming what an earlier call finished: in this process, in a pool of
    worker processes, or on a Ray cluster. Only this process writes results."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    _check_executor(executor, workers, address)
    members = _members(spec)
    plans = [(out / name if name else out, _plan(file, agents_dir)) for name, file in members]
    _run_plans(plans, workers, executor, address, strict, threads)


def _run_plans(plans, workers, executor, address, strict: bool = False, threads=None) -> None:
    """Every (folder, plan) checked before any runs, then each run (exit 1 if any failed)."""
    from uim_sim.run import precision_notes

    _check_folders(plans, strict)
    for line in dict.fromkeys(n for _, the_plan in plans for n in precision_notes(the_plan)):
        err_console.print(f"[yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)
    failed = 0
    with _ray_session(executor, address):
        for folder, the_plan in plans:
            failed += _run_plan(the_plan, folder, workers, executor, address, threads)
    if failed:
        raise typer.Exit(1)


def _check_folders(plans, strict: bool = False) -> None:
    """Every result folder checked before anything runs: refused (exit 2) where its
    plan would damage it; a note where its finished runs were computed under another
    numerics fingerprint than this machine's (refused with ``strict``)."""
    from uim_sim.run import Store, plan_numerics
    from uim_sim.schema import SpecError

    for folder, the_plan in plans:
        store = Store(folder)
        try:
            store.check(the_plan)
        except SpecError as exc:
            fail(str(exc))
        change = store.numerics_change(plan_numerics(the_plan)) if store.finished() else None
        if change and strict:
            fail(f"--strict: {change}; refused")
        if change:
            err_console.print(f"[yellow]note:[/] {escape(change)}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _ray_session(executor: str | None, address: str | None):
    """With --executor ray, Ray is joined (or started) before anything is written, so an
    unreachable cluster is a one-line error that leaves DIR as it was; every member of
    a suite then runs on it (a local Ray starts once)."""
    if executor != "ray":
        yield
        return
    from uim_sim.run import ExecutorError
    from uim_sim.run.ray_executor import session

    try:
        with session(address):
            yield
    except ExecutorError as exc:
        fail(str(exc))


def _run_plan(
    the_plan, out: Path, workers: int | None, executor: str | None = None, address=None,
    threads: int | None = None,
) -> int:  # fmt: skip
    """Run one plan with a progress bar; the number of failed runs."""
    from uim_sim.progress import BatchBar
    from uim_sim.run import ExecutorError, OutputError, run_plan

    with _bars() as progress:
        bar = BatchBar(progress, the_plan.spec.name, len(the_plan.tasks))
        try:
            result = run_plan(
                the_plan,
                out,
                workers,
                on_start=bar.started,
                on_done=bar.done,
                on_forge=bar.forging,
                executor=executor,
                address=address,
                checked=True,  # every caller here ran _check_folders first
                threads=threads,
            )
        except KeyboardInterrupt:
            progress.stop()
            fail(f"interrupted: finished runs are kept in {out}; run again to resume", 130)
        except ExecutorError as exc:
            progress.stop()
            fail(str(exc))
        except OutputError as exc:
            progress.stop()
            fail(str(exc), 1)
    out_console.print(
        f"{result.done} run(s) computed, {result.skipped} resumed, {len(result.failed)} failed "
        f"→ {out}/runs.parquet, metrics.parquet, decisions.parquet; "
        f"`uim-sim report {out}` writes the report"
    )
    for run_id, error in result.failed.items():
        err_console.print(f"[red]failed[/] {run_id}: {error}", highlight=False)
    return len(result.failed)


@app.command()
def attribute(
    spec: Path = typer.Argument(
        ..., help="Scenario spec with an attribution: block.", callback=_spec_path
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Result folder (resumed if present)."),
    workers: int | None = _workers(),
    agents_dir: Path | None = _agents_dir(),
    executor: str | None = _executor(),
    address: str | None = _address(),
) -> None:
    """Where does the harm come from? Run every combination of stages clean or not, then
    split the harm over the stages (Shapley values, intervals over seeds)."""
    from uim_sim.report import ReportError, build_report

    _check_executor(executor, workers, address)
    the_plan = _plan(spec, agents_dir)
    if the_plan.spec.attribution is None:
        fail(f"{spec}: attribution: missing; name the stages and what makes each clean, "
             "e.g. attribution: {stages: {adaptation: {card.head.history_bias: 0}}}")  # fmt: skip
    _run_plans([(out, the_plan)], workers, executor, address)  # planned once
    try:
        result = build_report(out)
    except ReportError as exc:
        fail(str(exc))
    table = result.tables.get("Attribution: where the harm comes from")
    if table is not None:
        _print_table(table, f"uim-sim attribute: {out}")
    out_console.print(f"report → open {result.folder / 'index.html'} in a browser")


@app.command()
def forge(
    card: Path = typer.Argument(..., help="Corpus card (YAML)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint folder to write."),
) -> None:
    """Forge a checkpoint from a corpus card (reused if OUT already holds that card)."""
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.schema import SpecError
    from uim_sim.understand.cards import load_corpus_card
    from uim_sim.understand.forge import cached, check_base
    from uim_sim.understand.forge import forge as forge_checkpoint

    try:
        corpus = load_corpus_card(card)
        check_base(corpus)
    except (SpecError, CheckpointError) as exc:
        fail(str(exc))
    if out.exists() and not out.is_dir():
        fail(f"--out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        fail(f"--out: {out} is a non-empty folder that holds no checkpoint; refusing to replace it")
    reused = cached(corpus, out)
    try:
        with _bars() as progress:
            forge_checkpoint(
                corpus,
                out,
                None if reused else _forge_bar(progress, corpus.name, corpus.training.steps),
            )
    except SpecError as exc:  # a DP budget that cannot be computed: before any training
        fail(str(exc))
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    check = manifest["verification"]
    out_console.print(
        f"{'reused' if reused else 'forged'} {out} ({manifest['forge_seconds']} s to forge): "
        f"probe {check['test']} d = {check['effect_size']:+.2f}, p = {check['p_value']:.3g}; "
        f"{'next-token' if check.get('lm_head') == 'next_token' else 'MLM fill-in'} gap "
        f"{check['mlm_gap_nats']:+.2f} nats, p = {check['mlm_p_value']:.3g}"
        f"{'' if check['measurable'] else ' [yellow](planted association not measurable)[/]'}"
    )
    if corpus.people is not None and "exposure_held_out" in check:
        out_console.print(memorisation_line(check, corpus.people.counts))
    if "privacy" in manifest or "lm_accuracy" in check:
        out_console.print(privacy_line(manifest))


def _bars():
    from uim_sim.progress import bars

    return bars(err_console)


def _forge_bar(progress, label: str, total: int):
    from uim_sim.progress import forge_bar

    return forge_bar(progress, label, total)


def privacy_line(manifest: dict) -> str:
    """DP training's spent budget (ε at δ, the noise) and the model's held-out accuracy."""
    dp = manifest.get("privacy")
    spent = (
        f"DP-SGD: ε = {dp['epsilon']:.2f} at δ = {dp['delta']:g} "
        f"(noise {dp['noise_multiplier']:.3g}, "
        f"clip {dp['max_grad_norm']:g}, rate {dp['sample_rate']:.3g}, {dp['steps']} steps; "
        "per sentence)"
        if dp
        else "no DP training (ε = ∞)"
    )
    accuracy = manifest["verification"].get("lm_accuracy")
    return spent + (f"; held-out LM accuracy {accuracy:.3f}" if accuracy is not None else "")


@app.command()
def leakage(
    cards: list[Path] = typer.Argument(..., help="Corpus cards with people (YAML)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for forges, tables, figure."),
    seeds: str = typer.Option("0,1,2", help="Forging seeds, comma-separated."),
    reference: bool = typer.Option(
        False,
        help="Also forge each card with stand-ins' records (NAME_reference) and attack by "
        "the likelihood ratio against it.",
    ),
) -> None:
    """Privacy leakage by duplication: forge each card at each seed (reused where
    already there), read the planted people back as an attacker with query access
    would (exposure, membership advantage and AUC, attribute recovery; 95 % intervals
    over people and forges), beside each forge's utility and privacy budget."""
    from uim_sim.schema import SpecError
    from uim_sim.understand.cards import load_corpus_card
    from uim_sim.understand.forge import cached
    from uim_sim.understand.privacy_study import check_cards, forge_folder, study

    try:
        seed_list = sorted({int(s) for s in seeds.split(",") if s.strip()})
    except ValueError:
        fail(f"--seeds: {seeds!r} is not a comma-separated list of integers")
    if not seed_list or min(seed_list) < 0:
        fail(f"--seeds: {seeds!r}: give one or more non-negative integers")
    try:
        loaded = [load_corpus_card(c) for c in cards]
    except SpecError as exc:
        fail(str(exc))
    for path, card in zip(cards, loaded):
        if card.people is None:
            fail(f"{path}: people: the card plants nobody's records; nothing to read back")
    if len({c.name for c in loaded}) < len(loaded):
        fail("CARDS: two cards share a name; their forges would collide")
    if out.exists() and not out.is_dir():
        fail(f"--out: {out} exists and is not a folder")
    try:
        check_cards(loaded, seed_list, reference)
        with _bars() as progress:
            forges = len(loaded) * len(seed_list)
            total = progress.add_task("leakage", total=forges, last="")

            def on_forge(card):
                if cached(card, forge_folder(out, card)):
                    return None
                label = f"forge {card.name} seed {card.seed}"
                return _forge_bar(progress, label, card.training.steps)

            advance = lambda: progress.advance(total)  # noqa: E731
            result = study(loaded, seed_list, out, advance, on_forge, reference)
    except SpecError as exc:
        fail(str(exc))
    _print_table(_leakage_rows(result["table"]), f"leakage: {len(seed_list)} forging seed(s)")
    _print_table(_utility_rows(result["utility"]), "utility and privacy budget (mean over forges)")
    written = ("leakage.csv", "leakage_by_group.csv", "people.csv", "utility.csv")
    out_console.print(f"→ {', '.join(str(out / w) for w in written)}, {result['figure']}")


def _interval(rows, what: str, digits: int = 2) -> list[str]:
    triples = zip(rows[what], rows[f"{what}_low"], rows[f"{what}_high"])
    return [f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if m == m else "—"
            for m, lo, hi in triples]  # fmt: skip


def _leakage_rows(table):
    import pandas as pd

    return pd.DataFrame({
        "card": [c if a == "population" else f"{c} vs reference"
                 for c, a in zip(table["card"], table["attack"])],
        "copies": ["held out" if k == 0 else str(k) for k in table["count"]],
        "people": table["people"],
        "exposure (bits)": _interval(table, "exposure"),
        "membership AUC": _interval(table, "auc"),
        "AUC, wrong condition": _interval(table, "auc_wrong"),
        # DP's promise for a person of k copies (privacy_study.dp_auc_bound); – without DP
        "AUC allowed by ε": [
            f"{b:.3g}" if k and e < float("inf") else "–"
            for b, k, e in zip(table["auc_bound"], table["count"], table["epsilon"])
        ] if "auc_bound" in table else "–",
        "advantage": _interval(table, "advantage"),
        "recovered": _interval(table, "recovered"),
    })  # fmt: skip


def _utility_rows(utility):
    means = utility.groupby("card", sort=False).agg(
        lm_accuracy=("lm_accuracy", "mean"), epsilon=("epsilon", "mean"),
        delta=("delta", "first"), sentences=("sentences", "mean"),
        removed=("removed_sentences", "mean"),
    ).reset_index()  # fmt: skip
    means["epsilon"] = [f"{e:.2f} (δ {d:g})" if e < float("inf") else "∞"
                        for e, d in zip(means["epsilon"], means["delta"])]  # fmt: skip
    names = {"lm_accuracy": "held-out LM accuracy", "removed": "removed sentences"}
    return means.drop(columns="delta").rename(columns=names)


def memorisation_line(check: dict, counts: list[int]) -> str:
    """The forge's privacy read-out, one line: per duplication count, exposure (bits),
    membership AUC and attribute recovery; the held-out people's beside them."""
    per = "; ".join(
        f"k={k}: exposure {check[f'exposure_k{k}']:.2f}, AUC {check[f'auc_k{k}']:.2f}, "
        f"recovered {check[f'recovered_k{k}']:.2f}"
        for k in counts
    )
    return (
        f"people's records: {per}; held out: exposure {check['exposure_held_out']:.2f}, "
        f"recovered {check['recovered_held_out']:.2f} (chance 0.10)"
    )


@app.command()
def probe(
    checkpoint: str = typer.Argument(..., help="builtin:minilm, a forged or a local HF folder."),
    tests: str | None = typer.Option(None, help="Comma-separated tests (default: all)."),
    disadvantaged: str = typer.Option("black", help="Group the name tests target."),
    permutations: int = typer.Option(2000, min=10, max=100_000, help="Permutations per test."),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the table as CSV."),
    people: Path | None = typer.Option(
        None, help="A corpus card with people: read its planted people back instead."
    ),
    reference: str | None = typer.Option(
        None, help="With --people: a reference checkpoint for the likelihood-ratio attack."
    ),
) -> None:
    """Association tests (WEAT/SEAT effect size, permutation p) and spectrum (SVE, LSVR);
    with --people, privacy leakage instead: exposure, membership advantage and AUC,
    attribute recovery of the card's planted people, by number of copies."""
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.understand.probe import probe as run_probe

    if disadvantaged not in ("black", "white"):
        fail("--disadvantaged: must be black or white")
    if reference is not None and people is None:
        fail("--reference: reads people back against a reference; give --people CARD too")
    if people is not None:
        _probe_people(checkpoint, people, csv, reference)
        return
    try:
        table = run_probe(
            checkpoint, tests.split(",") if tests else None, disadvantaged, permutations
        )
    except (CheckpointError, ValueError) as exc:
        fail(f"{exc}")
    wide = table.pivot_table(index="test", columns="statistic", values="value", sort=False)
    _print_table(wide.reset_index(), f"probe: {checkpoint}")
    if csv:
        table.to_csv(csv, index=False)
        out_console.print(f"→ {csv}")


def _probe_people(checkpoint: str, path: Path, csv: Path | None, reference: str | None) -> None:
    """`uim-sim probe CHECKPOINT --people CARD`: the card's planted people read back."""
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.lfm.engine import get_engine
    from uim_sim.schema import SpecError
    from uim_sim.understand.cards import load_corpus_card
    from uim_sim.understand.leakage import leakage_table, read_people

    try:
        card = load_corpus_card(path)
        if card.people is None:
            fail(f"--people: {path}: the card plants nobody's records")
        engine = get_engine(checkpoint)
        against = get_engine(reference) if reference is not None else None
        read = read_people(engine, card, engine.checkpoint.kind == "causal_lm", against)
    except (SpecError, CheckpointError, ValueError) as exc:
        fail(f"{exc}")
    if read.empty:
        fail(f"--people: {checkpoint}: the ten conditions are not single tokens of its "
             "vocabulary; nothing to read back")  # fmt: skip
    attack = "population" if reference is None else "reference"
    table = leakage_table(read.assign(card=card.name, attack=attack, forge=card.seed))
    _print_table(_leakage_rows(table), f"probe: {checkpoint}, the people of {path}")
    if csv:
        table.to_csv(csv, index=False)
        out_console.print(f"→ {csv}")


@app.command()
def register(
    folder: Path = typer.Argument(
        ..., help="A local Hugging Face model folder (safetensors), or a causal LM's GGUF file."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="GGUF: the folder to write (default: the file's name less .gguf)."
    ),
) -> None:
    """Record the sha256 of every weight file of a local model folder (an encoder, a
    sequence classifier or a causal LM) in its manifest.json: every later load
    verifies them and refuses a changed file. The folder is loaded first. A GGUF file
    is first dequantised into a new safetensors folder (needs the gguf extra)."""
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.lfm.checkpoint import register as register_folder
    from uim_sim.lfm.engine import check_loads
    from uim_sim.lfm.from_gguf import is_gguf, register_gguf

    gguf = is_gguf(folder)
    if out is not None and not gguf:
        fail(f"--out: only for a GGUF file; {folder} is registered where it is")
    if gguf and out is None:
        if folder.suffix.lower() != ".gguf":
            fail(f"--out: {folder} is a GGUF file not named *.gguf; name the folder to write")
        out = folder.with_suffix("")
    try:
        if gguf:
            checkpoint, origin = register_gguf(folder, out)
        else:
            check_loads(str(folder))  # nothing is recorded for a folder that does not load
            checkpoint, written = register_folder(str(folder))
    except CheckpointError as exc:
        fail(str(exc))
    files = len(checkpoint.manifest["sha256"])
    what = f"a {checkpoint.kind}, {files} weight file(s)"
    if gguf:
        quantisation = origin["quantisation"] or "GGUF"
        line = (f"registered {folder} → {out}: {what} dequantised from {quantisation} to "
                f"{origin['dequantised_to']}, hashed → {out / 'manifest.json'}")  # fmt: skip
    elif written:
        line = f"registered {folder}: {what} hashed → {folder / 'manifest.json'}"
    else:
        line = f"{folder}: already has a manifest.json; {what} verified against it"
    out_console.print(escape(line), highlight=False)  # a path is not Rich markup


def _debias_output(out: Path) -> bool:
    """Is ``out`` empty, or only what `uim-sim debias` wrote (a rerun reuses it)?"""
    import json

    def written(folder: Path) -> bool:
        try:
            return "debias" in json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            return False

    if not out.is_dir():
        return False
    entries = [e for e in out.iterdir() if not e.name.startswith(".")]
    return not entries or written(out) or all(e.is_dir() and written(e) for e in entries)


@app.command()
def debias(
    checkpoints: list[str] = typer.Argument(
        ..., help="Parent(s): builtin:minilm, forged or local folders (e.g. forging seeds)."
    ),
    method: str = typer.Option(..., help="cda | clean | inlp | sentence_debias."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (one per parent inside)."),
    attribute: str = typer.Option("names", help="Projections: names | identity | community."),
    k: int = typer.Option(1, min=1, max=64, help="sentence_debias: bias subspace dimension."),
    steps: int = typer.Option(600, min=1, max=100_000, help="cda, clean: training steps."),
    corpus: Path | None = typer.Option(None, help="cda, clean: corpus card (default: parent's)."),
) -> None:
    """Write debiased child checkpoints (each manifest records its parent's hash, the
    method and its params), then probe parents and children side by side."""
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.mitigate.debias import ATTRIBUTES, METHODS, probe_effect, seed_spread
    from uim_sim.mitigate.debias import debias as run_debias
    from uim_sim.schema import SpecError
    from uim_sim.understand.cards import load_corpus_card

    if method not in METHODS:
        fail(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    if attribute not in ATTRIBUTES:
        fail(f"--attribute: {attribute!r} is not one of {', '.join(ATTRIBUTES)}")
    if out.exists() and not _debias_output(out):
        fail(f"--out: {out} exists and holds something other than `uim-sim debias` "
             "checkpoints; refusing to replace it")  # fmt: skip
    names = [Path(c).name if not c.startswith("builtin:") else c.split(":")[1] for c in checkpoints]
    if len(set(names)) < len(names):
        fail("CHECKPOINTS: two parents share a folder name; their children would collide")
    targets = [out] if len(checkpoints) == 1 else [out / n for n in names]
    try:
        card = load_corpus_card(corpus) if corpus else None
        children = []
        with _bars() as progress:
            for parent, target in zip(checkpoints, targets):
                bar = (
                    _forge_bar(progress, f"{method} {Path(parent).name}", steps)
                    if method in ("cda", "clean")
                    else None
                )
                children.append(str(run_debias(
                    parent, method, target, attribute=attribute, k=k, steps=steps, corpus=card,
                    progress=bar,
                )))  # fmt: skip
        before = probe_effect(checkpoints, attribute)
        after = probe_effect(children, attribute)
    except (SpecError, CheckpointError) as exc:
        fail(str(exc))
    title = f"debias {method}: {len(checkpoints)} parent(s) → {out}"
    if len(checkpoints) == 1:
        table = before.set_axis([f"parent {before.columns[0]}"], axis=1)
        table[f"child {after.columns[0]}"] = after.iloc[:, 0]
        _print_table(table.reset_index(names="measure"), title)
    else:
        _print_table(seed_spread(before, after).reset_index(names="measure"), title)
    out_console.print(f"wrote {len(children)} checkpoint(s) under {out} (manifest.json records "
                      "each parent's hash and the method)")  # fmt: skip


@app.command()
def report(
    out: Path = typer.Argument(..., help="Result folder written by `uim-sim run`."),
    folder: Path | None = typer.Option(None, "--to", help="Report folder (default OUT/report)."),
) -> None:
    """Per condition: mean and 95 % interval over seeds; tables, figures, a web page.
    A suite's folder gets one report per member and an index."""
    from uim_sim.report import ReportError, build_report, build_suite_report, suite_members

    if suite_members(out):
        if folder is not None:
            fail("--to: a suite's reports go into each member's folder; drop --to")
        try:
            reports, index = build_suite_report(out)
        except ReportError as exc:
            fail(str(exc))
        for result in reports:
            _report_summary(result, result.folder.parent)
        out_console.print(f"suite report → open {index / 'index.html'} in a browser")
        return
    try:
        result = build_report(out, folder)
    except ReportError as exc:
        fail(str(exc))
    _report_summary(result, out)


@app.command("audit-table")
def audit_table(
    out: Path = typer.Argument(..., help="Result folder of a hiring, moderation or spread run."),
    folder: Path | None = typer.Option(None, "--to", help="Folder (default OUT/report)."),
    min_count: int | None = typer.Option(
        None,
        "--min-count",
        help="Moderation and spread: a category with fewer units a run is marked "
        "excludable (default 30; hiring keeps LL144's 2 % rule).",
    ),
) -> None:
    """A bias-audit table in the form of NYC Local Law 144, per category: hiring,
    selection rates and impact ratios by sex, race/ethnicity and intersection;
    moderation, false-positive and false-negative rates by the identity a text names;
    spread, users reached by true and false news by community. Counts pooled over
    seeds; small categories marked excludable (hiring: under 2 % of the applicants,
    LL144's rule; moderation and spread: fewer than --min-count units a run);
    applicants of unknown category in a row of their own with bounds on each impact
    ratio, intervals over seeds beside them. Written as CSV, Markdown, JSON (with its
    schema) and a print-ready HTML page."""
    from uim_sim.report import ReportError
    from uim_sim.report.audit_file import FILES, write_audit_table

    try:
        _, shown, where = write_audit_table(out, folder, min_count)
    except ReportError as exc:
        fail(str(exc))
    _print_table(shown, f"bias audit: {out}", str(where / "audit_table.md"))
    out_console.print(f"→ {where}/: {', '.join(FILES)}", highlight=False, soft_wrap=True)


@app.command()
def page(
    results: Path = typer.Argument(Path("results"), help="Folder of result folders to compare."),
    port: int = typer.Option(8765, min=1, max=65535, help="Port to serve on."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to bind (other than this machine: a warning)."
    ),
    agents_dir: Path | None = _agents_dir(),
) -> None:
    """Serve the analyst page: Watch a world run with two arms side by side on the same
    seed (cards, mitigations, parameter sliders, step or play); Compare a result
    folder's figures interactively, with its intervention comparison, audit table and
    spec. Open the printed address in a browser; Ctrl-C stops it."""
    import socket

    from uim_sim.page import LOCAL_HOSTS, check_installed, serve

    if results.exists() and not results.is_dir():
        fail(f"RESULTS: {results} is not a folder")
    missing = check_installed()
    if missing:
        fail(missing)
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(f"--port: cannot serve on {host}:{port} ({exc.strerror or exc})")
    if host not in LOCAL_HOSTS:
        err_console.print(
            f"[yellow]⚠[/] --host {escape(host)}: the page is open to other machines, without "
            "a password; anyone who reaches it can run models on this one",
            highlight=False,
        )
    out_console.print(f"uim-sim page → http://{host}:{port}  (results: {results}; Ctrl-C stops)")
    serve(results, host, port, agents_dir)


@app.command()
def reproduce(
    out: Path = typer.Option(
        Path("results/reproduce"), "--out", "-o", help="Result folder (resumed if present)."
    ),
    only: list[str] = typer.Option(None, "--only", help="Reproduce only this study (repeat)."),
    workers: int = typer.Option(1, min=1, max=256, help="Worker processes."),
) -> None:
    """Hold each world's reference mode against the published study it follows: the
    published number beside the sandbox's, its 95 % interval over seeds, a verdict.
    Studies: bertrand_mullainathan, wilson_caliskan, dixon, borkan, vosoughi,
    bommasani, chen_label_noise (scenarios in scenarios/reproduce/)."""
    import time

    from uim_sim import reproduce as rep
    from uim_sim.schema import SpecError

    start = time.perf_counter()
    try:
        chosen = rep.studies(only)
    except SpecError as exc:
        fail(str(exc))
    plans = {}
    for study in chosen:  # every scenario checked before anything runs
        if study.scenario and rep.folder(out, study) not in plans:
            plans[rep.folder(out, study)] = _plan(rep.SCENARIOS / study.scenario, None)
    _check_folders(plans.items())
    failed = sum(_run_plan(the_plan, folder, workers) for folder, the_plan in plans.items())
    for study in chosen:
        if study.compute is not None:
            with err_console.status(f"{study.key}: {study.what}") as status:
                study.compute(rep.folder(out, study), lambda m, s=status: s.update(m))
    if failed:
        fail(f"{failed} run(s) failed: run again to retry them (finished runs are kept)", 1)
    findings = [f for study in chosen for f in study.read(rep.folder(out, study))]
    table = rep.findings_table(findings)
    minutes = (time.perf_counter() - start) / 60
    path = rep.write(table, out, minutes if not only else None)
    _print_table(rep.display(table), f"published results, reproduced ({minutes:.1f} min)")
    out_console.print(f"→ {path}, {out / 'reproduce.csv'}")


@app.command()
def matrix(
    spec: Path = typer.Argument(
        ..., help="Inheritance matrix (YAML with weaknesses:).", callback=_spec_path
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Result folder (created; resumed if present)."
    ),
    workers: int | None = _workers(),
    agents_dir: Path | None = _agents_dir(),
    executor: str | None = _executor(),
    address: str | None = _address(),
) -> None:
    """The inheritance matrix: every weakness of pre-training data (a corpus knob, or a
    world parameter) × every world × the harms it reports, each over its doses and the
    forging seeds. Runs each cell into OUT/WORLD/WEAKNESS (forges shared in
    OUT/checkpoints, resumed like `run`), then writes OUT/matrix.csv, matrix.md,
    matrix.png and matrix_curves.png: the slope of each harm per unit dose with its 95 %
    interval over checkpoints, Benjamini-Hochberg over the cells, and the probe's rank
    correlation with the harm."""
    from uim_sim import matrix as mx
    from uim_sim.report import ReportError
    from uim_sim.schema import SpecError

    _check_executor(executor, workers, address)
    if not spec.is_file():
        fail(f"SPEC: {spec}: no such file")
    the_matrix, cells, plans, remedy_plans = _matrix_plans(spec, out, agents_dir)
    if out.exists() and not out.is_dir():
        fail(f"--out: {out} exists and is not a folder")
    _check_folders(plans + list(remedy_plans.values()))  # remedies run later, if at all
    for cell in cells:
        if cell.spec:
            mx.link_checkpoints(out, cell)
    skipped = [c for c in cells if not c.spec]
    for cell in skipped:
        err_console.print(f"[dim]{cell.name}: not run: {escape(cell.reason)}[/]", highlight=False)
    failed = 0
    with _ray_session(executor, address):
        for folder, the_plan in plans:
            failed += _run_plan(the_plan, folder, workers, executor, address)
    if failed:
        fail(f"{failed} run(s) failed: run again to retry them (finished runs are kept)", 1)
    try:
        result = mx.analyse(out, the_matrix, cells, mx.describe_worlds(the_matrix, spec.parent))
        due = mx.remedies_due(result.table, cells, the_matrix.remedies_where)
        if due:
            err_console.print(f"remedies: {len(due)} cell(s) with a significant effect")
        with _ray_session(executor, address):
            for cell in due:
                for name in cell.remedies:
                    folder, the_plan = remedy_plans[cell.name, name]
                    mx.link_checkpoints(out, cell, name)
                    failed += _run_plan(the_plan, folder, workers, executor, address)
        if failed:
            fail(f"{failed} run(s) failed: run again to retry them (finished runs are kept)", 1)
        remedies = mx.analyse_remedies(out, the_matrix, cells, result.table)
    except (ReportError, SpecError) as exc:
        fail(str(exc))
    text = result.markdown + mx.remedies_markdown(remedies)
    (out / "matrix.md").write_text(text)
    out_console.print(text, markup=False, highlight=False, soft_wrap=True)
    out_console.print(
        f"→ {out / 'matrix.md'}, matrix.csv, {result.figure.name}, {result.curves.name}"
        + (", remedies.csv" if not remedies.empty else "")
    )


def _matrix_plans(spec: Path, out: Path, agents_dir: Path | None):
    """A matrix file's spec and cells, each cell's plan with the folder it runs into,
    and each remedy's (by cell name and remedy): every card, checkpoint and mitigation
    checked, nothing run; a bad one fails naming the cell."""
    from uim_sim import matrix as mx
    from uim_sim.schema import SpecError

    try:
        the_matrix, cells = mx.load_matrix(spec)
    except SpecError as exc:
        fail(str(exc))
    plans, remedy_plans = [], {}
    for cell in cells:
        where = f"{spec}: worlds.{cell.world} × weaknesses.{cell.weakness}"
        try:
            if cell.spec:
                plans.append((cell.result_folder(out), plan_of(cell.spec, cell, agents_dir)))
            for name, remedy in cell.remedies.items():
                where = f"{spec}: worlds.{cell.world}.remedies.{cell.weakness}.{name}"
                folder = cell.result_folder(out, name)
                remedy_plans[cell.name, name] = (folder, plan_of(remedy, cell, agents_dir))
        except SpecError as exc:
            fail(f"{where}: {exc}")
    return the_matrix, cells, plans, remedy_plans


def plan_of(scenario: dict, cell, agents_dir: Path | None):
    """The plan of a matrix cell's scenario (or of one of its remedies)."""
    from uim_sim.run import plan

    return plan(scenario, agents_dir, folder=cell.folder)


def _report_summary(result, out: Path) -> None:
    _print_table(result.display, f"uim-sim report: {out}", str(result.folder / "summary.md"))
    for warning in result.warnings:
        err_console.print(f"[yellow]⚠[/] {warning}", highlight=False, soft_wrap=True)
    out_console.print(
        f"report → open {result.folder / 'index.html'} in a browser "
        f"(also summary.md, summary.csv, metrics_summary.csv, "
        + ", ".join(f.name for f in result.figures)
        + ")"
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line (e.g. a renamed spec key), not Python's two."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False,
                      soft_wrap=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Console entry point: a usage error (bad flag, missing option) is one line, exit 2.

    Typer vendors its own click, so its exceptions are matched by what they offer
    (``format_message``, ``exit_code``) rather than by an import path.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.showwarning = _show_warning
    try:
        result = app(args=argv, standalone_mode=False)
    except Exception as exc:
        kind = type(exc).__name__
        if kind == "NoArgsIsHelpError":
            typer.echo(exc.ctx.get_help())
            return 0
        if kind == "Abort":
            return 130
        if not hasattr(exc, "format_message"):
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True
        )
        return getattr(exc, "exit_code", 2)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
