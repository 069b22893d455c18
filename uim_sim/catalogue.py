"""What is available to a researcher, one line each (`uim-sim list`): the registered
worlds, the mitigations, and the agent cards, scenarios and corpus cards in the
working folder (``agents/``, ``scenarios/``, ``corpora/``, or ``--agents-dir``) and
those the package ships (`uim_sim.builtin`), each with where it comes from."""

from __future__ import annotations

from pathlib import Path

from uim_sim import builtin
from uim_sim.cards import card_folders
from uim_sim.mitigate import REGISTRY
from uim_sim.schema import SpecError, read_yaml
from uim_sim.worlds import WORLDS, world_info

CATALOGUE = ("worlds", "mitigations", "cards", "scenarios", "corpora")


def _first_sentence(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text.split(". ")[0].rstrip(".") if text else ""


def _yaml_files(folders: list[Path], kind: str) -> list[tuple[str, str]]:
    """(name, first sentence (where from)) of each YAML file in ``folders`` (the user's,
    first wins), then of each shipped one (`uim_sim.builtin`) not shadowed by them."""
    shipped = builtin.FOLDERS[kind]
    found: dict[str, Path] = {}
    for folder in [*folders, shipped]:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        files = folder.rglob("*.yaml") if kind == "scenarios" else folder.glob("*.yaml")
        for path in sorted(files):
            found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    out = []
    for name, path in sorted(found.items()):
        try:
            data = read_yaml(path)
        except SpecError as exc:  # listed, with why it would be refused
            data = {"description": f"(not valid: {str(exc).removeprefix(f'{path}: ')})"}
        own = path.resolve().is_relative_to(builtin.ROOT)
        where = "built-in" if own else str(path)
        if not own and builtin.find(kind, name) is not None:
            where += f"; shadows the built-in {name}"
        out.append((name, f"{_first_sentence(data.get('description'))} ({where})"))
    return out


def catalogue(kind: str, agents_dir: Path | None = None) -> list[tuple[str, str]]:
    """(name, one line) for every item of ``kind`` (one of `CATALOGUE`): for cards,
    scenarios and corpora, the working folder's (``agents/``, ``scenarios/``,
    ``corpora/``, or ``--agents-dir``) and those the package ships, each line saying
    where it comes from (a local file of a shipped name shadows the shipped one)."""
    if kind == "worlds":
        return [
            (name, f"{world_info(name).summary}; modes: {', '.join(world_info(name).models)}")
            for name in WORLDS
        ]
    if kind == "mitigations":
        return [(name, f"[{cls.stage}] {cls.summary}") for name, cls in sorted(REGISTRY.items())]
    if kind == "cards":
        return _yaml_files(card_folders(None, agents_dir)[:-1], "cards")
    return _yaml_files([Path(kind)], kind)
