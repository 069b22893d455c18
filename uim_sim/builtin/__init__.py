"""What the package ships: scenarios (``scenarios/``, with ``scenarios/reproduce/``),
agent cards (``agents/``), corpus cards (``corpora/``) and the small data files they
read, as package data, so that an installed wheel runs them from any folder.

A reference is found in the user's own folders first (a path that exists, or a card
name in an ``agents/`` folder the search reaches), then here: as ``builtin:NAME``
(only here), as a plain name (``hiring_audit``), or as the path a checkout would have
(``scenarios/hiring_audit.yaml``, ``corpora/people_records.yaml``), so that every
command of the README works in an empty folder.

    >>> find("scenarios", "builtin:hiring_audit").name
    'hiring_audit.yaml'
    >>> find("scenarios", "scenarios/reproduce/bertrand_mullainathan.yaml").parent.name
    'reproduce'
    >>> find("cards", "minilm_zero_shot") == FOLDERS["cards"] / "minilm_zero_shot.yaml"
    True
    >>> shown(FOLDERS["scenarios"] / "hiring_audit.yaml")
    'builtin:scenarios/hiring_audit.yaml'
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PREFIX = "builtin:"
# a kind's folder here, and the folder name a checkout (and `uim-sim init`) gives it
FOLDERS = {"scenarios": ROOT / "scenarios", "cards": ROOT / "agents", "corpora": ROOT / "corpora"}
SUFFIXES = (".yaml", ".yml")


def find(kind: str, ref: str | os.PathLike[str]) -> Path | None:
    """The shipped file of ``kind`` (scenarios, cards, corpora) that ``ref`` names, or
    None: ``builtin:NAME``, a name without a folder, or a path under the kind's folder
    name (``scenarios/x.yaml``). The caller has already looked for ``ref`` itself."""
    text = os.fspath(ref)
    parts = Path(text.removeprefix(PREFIX)).parts
    if not parts or Path(text).is_absolute() or ".." in parts:
        return None
    if parts[0] == FOLDERS[kind].name and len(parts) > 1:
        parts = parts[1:]  # the checkout's path: scenarios/hiring_audit.yaml
    elif len(parts) > 1 and not text.startswith(PREFIX):
        return None  # some other folder of the user's: not ours to guess
    candidate = FOLDERS[kind].joinpath(*parts)
    for path in (candidate, *(candidate.with_name(candidate.name + s) for s in SUFFIXES)):
        try:
            if path.is_file():
                return path
        except OSError:  # not a file name at all (e.g. too long for one)
            return None
    return None


def resolve(kind: str, ref: str | os.PathLike[str]) -> Path:
    """``ref`` itself where it is a file (the user's own file wins, and ``builtin:`` never
    looks there; a folder of that name, e.g. a study called ``hiring_audit``, does not
    hide the shipped scenario), else the shipped file it names, else ``ref`` unchanged
    (the caller's "no such file" then names it as given)."""
    text = os.fspath(ref)
    if not text.startswith(PREFIX) and Path(text).is_file():
        return Path(text)
    return find(kind, text) or Path(text)


def locate(path: str | os.PathLike[str]) -> Path:
    """A data file a spec's parameter names (relative to the working folder, e.g. an
    ``eval_file``): itself where it exists, else the shipped file at the path a
    checkout has (``scenarios/data/moderation_eval.csv``), else as given."""
    path = Path(path)
    if path.is_absolute() or path.exists() or ".." in path.parts:
        return path
    for folder in FOLDERS.values():
        if len(path.parts) > 1 and path.parts[0] == folder.name:
            candidate = folder.joinpath(*path.parts[1:])
            if candidate.is_file():
                return candidate
    return path


def names(kind: str) -> list[tuple[str, Path]]:
    """(name, file) of every shipped item of ``kind``; scenarios in sub-folders are named
    with their folder (``reproduce/bertrand_mullainathan``)."""
    folder = FOLDERS[kind]
    files = folder.rglob("*.yaml") if kind == "scenarios" else folder.glob("*.yaml")
    return sorted((p.relative_to(folder).with_suffix("").as_posix(), p) for p in files)


def shown(path: str | os.PathLike[str]) -> str:
    """A path as a message shows it: as the user gave it where relative; an absolute one
    as ``builtin:…`` for a shipped file, relative to the working folder where it lies
    inside it, else as it is."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        resolved = path.resolve()
    except OSError:
        return str(path)
    if resolved.is_relative_to(ROOT):
        return PREFIX + resolved.relative_to(ROOT).as_posix()
    if resolved.is_relative_to(Path.cwd().resolve()):
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    return str(path)
