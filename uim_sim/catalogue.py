"""What is available to a researcher, one line each (`uim-sim list`): the registered
worlds, the mitigations, and the agent cards, scenarios and corpus cards in the
project's folders (``agents/``, ``scenarios/``, ``corpora/`` of the working
directory, or ``--agents-dir``)."""

from __future__ import annotations

from pathlib import Path

from uim_sim.cards import card_folders
from uim_sim.mitigate import REGISTRY
from uim_sim.schema import SpecError, read_yaml
from uim_sim.worlds import WORLDS, world_info

CATALOGUE = ("worlds", "mitigations", "cards", "scenarios", "corpora")


def _first_sentence(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text.split(". ")[0].rstrip(".") if text else ""


def _yaml_files(folders: list[Path]) -> list[tuple[str, str]]:
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.yaml")) if Path(folder).is_dir() else []:
            try:
                data = read_yaml(path)
            except SpecError as exc:  # listed, with why it would be refused
                data = {"description": f"(not valid: {str(exc).removeprefix(f'{path}: ')})"}
            out.setdefault(path.stem, f"{_first_sentence(data.get('description'))} ({path})")
    return sorted(out.items())


def catalogue(kind: str, agents_dir: Path | None = None) -> list[tuple[str, str]]:
    """(name, one line) for every item of ``kind`` (one of `CATALOGUE`)."""
    if kind == "worlds":
        return [
            (name, f"{world_info(name).summary}; modes: {', '.join(world_info(name).models)}")
            for name in WORLDS
        ]
    if kind == "mitigations":
        return [(name, f"[{cls.stage}] {cls.summary}") for name, cls in sorted(REGISTRY.items())]
    if kind == "cards":
        return _yaml_files(card_folders(None, agents_dir))
    return _yaml_files([Path(kind)])
