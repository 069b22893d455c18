"""`uim-sim init DIR`: a new study folder with editable copies of a shipped scenario,
the agent cards and corpus cards it names, the data files they read, and a README of
what to change and the command to run. The copies are found before the shipped files
(a card name is looked up in ``DIR/agents/`` first), so editing them changes the study.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "study"
    >>> files, command = init_study(folder, "hiring")
    >>> command.endswith("hiring_audit.yaml --out " + str(folder / "results"))
    True
    >>> sorted(p.relative_to(folder).as_posix() for p in files)[:3]
    ['README.md', 'agents/minilm_biased_history.yaml', 'agents/minilm_fair_history.yaml']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from uim_sim import builtin
from uim_sim.cards import FORGE_PREFIX
from uim_sim.schema import SpecError, read_yaml

# a world's starting scenario (any shipped scenario may be named instead)
STARTERS = {"hiring": "hiring_audit", "moderation": "moderation", "spread": "spread"}


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def _files(source: Path, data: dict[str, Any]) -> list[str]:
    """The relative paths in ``data`` (a spec or card read from ``source``) that name a
    file beside it: a head's ``file``, an ``eval_file``, a forged card's corpus card."""
    found = []
    for text in _strings(data):
        rel = text.removeprefix(FORGE_PREFIX)
        if rel and "\n" not in rel and len(rel) < 256 and not Path(rel).is_absolute():
            if (source.parent / rel).is_file():
                found.append(rel)
    return found


def scenario_of(choice: str) -> Path:
    """The shipped scenario a world's name (`STARTERS`) or a scenario's name picks."""
    name = STARTERS.get(choice, choice)
    path = builtin.find("scenarios", builtin.PREFIX + name)
    if path is None:
        known = ", ".join([*STARTERS, *(n for n, _ in builtin.names("scenarios"))])
        raise SpecError(f"--from: no world or shipped scenario named {choice!r} (one of: {known})")
    return path


def init_study(folder: Path, choice: str = "hiring") -> tuple[list[Path], str]:
    """Write the study folder (refused if it exists and is not empty; written whole or
    not at all); the files written and the command that runs the study."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SpecError(f"DIR: {folder} exists and is not an empty folder; name a new one")
    scenario = scenario_of(choice)
    copies: dict[Path, Path] = {scenario: Path(scenario.name)}  # source → path in the study
    spec = read_yaml(scenario)
    pending = [(scenario, spec, Path("."))]
    cards = {t for t in _strings(spec) if builtin.find("cards", builtin.PREFIX + t)}
    for name in sorted(cards):
        card = builtin.find("cards", builtin.PREFIX + name)
        copies[card] = Path("agents") / card.name
        pending.append((card, read_yaml(card), Path("agents")))
    while pending:  # the files a copy reads, and what those read (a corpus card's data)
        source, data, at = pending.pop()
        for rel in _files(source, data):
            target = (source.parent / rel).resolve()
            if target not in copies:
                copies[target] = Path(os.path.normpath(at / rel))
                if target.suffix in builtin.SUFFIXES:
                    pending.append((target, read_yaml(target), copies[target].parent))
    text = scenario.read_text(encoding="utf-8")
    for value in {t for t in _strings(spec) if len(t) < 256 and "\n" not in t}:
        shipped = builtin.locate(value)  # a parameter's data file, named from the checkout
        if shipped != Path(value) and shipped.resolve().is_relative_to(builtin.ROOT):
            copies[shipped] = Path("data") / shipped.name
            text = text.replace(value, (folder / "data" / shipped.name).as_posix())
    outside = [str(p) for p in copies.values() if p.parts[0] == ".."]
    if outside:  # a shipped file that reads beyond its folder: the layout changed
        raise SpecError(f"init: {scenario.name} reads {outside[0]}, outside the study folder")
    verb = "matrix" if "weaknesses" in spec else "run"  # an inheritance matrix
    command = f"uim-sim {verb} {folder / scenario.name} --out {folder / 'results'}"
    readme = README.format(
        name=scenario.stem,
        source=builtin.shown(scenario),
        command=command,
        report=f"uim-sim report {folder / 'results'}",
        index=folder / "results" / "report" / "index.html",
        cards="\n".join(f"  - `{p.as_posix()}`" for s, p in copies.items() if s != scenario),
    )
    parent = folder.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=parent))
    try:
        for source, rel in copies.items():
            (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, scratch / rel)
        (scratch / scenario.name).write_text(text, encoding="utf-8")  # paths made the copy's
        (scratch / "README.md").write_text(readme, encoding="utf-8")
        if folder.exists():
            folder.rmdir()
        scratch.rename(folder)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return [folder / "README.md", *(folder / rel for rel in copies.values())], command


README = """# Study: {name}

Made by `uim-sim init` from `{source}`. Everything here is yours to
edit: the copies are found before the files the package ships (a card named in the
scenario is looked up in `agents/` beside it first).

## Run it

```bash
{command}
{report}
```

then open `{index}` in a browser. Running the same command again
resumes; a changed spec that would orphan finished runs is refused (use a new `--out`).

## What to change

- `{name}.yaml`, the scenario: `params` (the world's knobs: `uim-sim check-world WORLD`
  and the world's page in the documentation list them), `cards` (the agents),
  `arms` (mitigations: `uim-sim list mitigations`), `replicates` (seeds: more seeds,
  narrower intervals), `grid` (values to sweep), `seed`.
- The agent cards and the files they read (a card's checkpoint, head, adaptation
  data; a forged card's corpus card and its weakness knobs):
{cards}
- Check a change before running it: `uim-sim validate {name}.yaml` (from this folder).
"""
