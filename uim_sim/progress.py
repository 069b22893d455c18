"""Progress bars on stderr (rich), one look for the command line and the Python API:
a batch's runs (done of total, the last run, resumed runs counted in) and one bar per
forge, shown from its first training step on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def bars(console: Console | None = None) -> Progress:
    """An empty set of bars (a context manager: shown while inside it)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[last]}"),
        console=console or Console(stderr=True),
    )  # fmt: skip


def forge_bar(progress: Progress, label: str, total: int) -> Callable[[int, int, float], None]:
    """A training progress callback, its bar added at the first step (a card refused
    before training leaves none behind)."""
    added: list = []

    def update(step: int, steps: int, loss: float) -> None:
        if not added:
            added.append(progress.add_task(label, total=total, last=""))
        if step % 20 == 0 or step == steps:
            progress.update(added[0], completed=step, last=f"loss {loss:.3f}")

    return update


class BatchBar:
    """`run_plan`'s hooks (``on_start``, ``on_done``, ``on_forge``) drawing one bar for
    the batch's runs in ``progress``."""

    def __init__(self, progress: Progress, name: str, total: int) -> None:
        self.progress = progress
        self.bar = progress.add_task(name, total=total, last="")

    def started(self, total: int, skipped: int) -> None:
        last = f"{skipped} already done" if skipped else ""
        self.progress.update(self.bar, completed=skipped, last=last)

    def done(self, task: Any, error: str | None) -> None:
        status = "" if error is None else " [red]failed[/]"
        self.progress.update(self.bar, advance=1, last=f"{task.run_id}{status}")

    def forging(self, corpus: Any) -> Callable[[int, int, float], None]:
        return forge_bar(self.progress, f"forge {corpus.name}", corpus.training.steps)
