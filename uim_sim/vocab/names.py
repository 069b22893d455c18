"""The people of the hiring audit: Bertrand & Mullainathan (2004, AER), "Are Emily
and Greg More Employable than Lakisha and Jamal?", first names by race and gender
and surnames by race, shared by the hiring world, the forge's corpora and the probes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

FIRST_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("white", "female"): (
        "Emily",
        "Anne",
        "Jill",
        "Allison",
        "Sarah",
        "Meredith",
        "Laurie",
        "Carrie",
        "Kristen",
    ),
    ("black", "female"): (
        "Aisha",
        "Keisha",
        "Tamika",
        "Lakisha",
        "Tanisha",
        "Latoya",
        "Kenya",
        "Latonya",
        "Ebony",
    ),
    ("white", "male"): (
        "Neil",
        "Geoffrey",
        "Brett",
        "Brendan",
        "Greg",
        "Todd",
        "Matthew",
        "Jay",
        "Brad",
    ),
    ("black", "male"): (
        "Rasheed",
        "Tremayne",
        "Kareem",
        "Darnell",
        "Tyrone",
        "Jamal",
        "Hakim",
        "Leroy",
        "Jermaine",
    ),
}
SURNAMES: dict[str, tuple[str, ...]] = {
    "white": (
        "Baker",
        "Kelly",
        "McCarthy",
        "Murphy",
        "Murray",
        "O'Brien",
        "Ryan",
        "Sullivan",
        "Walsh",
    ),
    "black": ("Jackson", "Jones", "Robinson", "Washington", "Williams"),
}
GROUPS: tuple[tuple[str, str], ...] = tuple(FIRST_NAMES)

RACES = ("black", "white")
GENDERS = ("female", "male")
Group = Literal["black", "white", "female", "male"]
# the attribute each protected group belongs to, and the group it is compared with
ATTRIBUTE = {"black": "race", "white": "race", "female": "gender", "male": "gender"}
REFERENCE = {"black": "white", "white": "black", "female": "male", "male": "female"}


def intersection(race: str, gender: str) -> str:
    """The name of a race × gender subgroup, e.g. ``black_female``."""
    return f"{race}_{gender}"


def group_names(race: str) -> list[str]:
    """Every first name of one race (both genders), in the study's order."""
    return [n for (r, _), names in FIRST_NAMES.items() if r == race for n in names]


def draw_name(race: str, gender: str, rng: np.random.Generator) -> str:
    first = FIRST_NAMES[(race, gender)]
    last = SURNAMES[race]
    return f"{first[rng.integers(len(first))]} {last[rng.integers(len(last))]}"


def first_name(full_name: str) -> str:
    return full_name.split(" ", 1)[0]


_KNOWN_NAMES = frozenset(
    [n for names in FIRST_NAMES.values() for n in names]
    + [n for names in SURNAMES.values() for n in names]
)


@lru_cache(maxsize=1 << 16)  # a file's texts are parsed again for each null draw
def name_spans(text: str) -> tuple[str, ...]:
    """The study's first names and surnames that occur as words in ``text``: the
    identity spans of a text from a researcher's file, where no name field exists."""
    words = {w.strip(".,;:()") for w in text.split()}
    return tuple(sorted(words & _KNOWN_NAMES, key=len, reverse=True))


@lru_cache(maxsize=1 << 16)
def name_groups(spans: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """The (race, gender) groups whose first names, or the race whose surnames, occur."""
    found = set()
    for span in spans:
        for (race, gender), names in FIRST_NAMES.items():
            if span in names:
                found.add((race, gender))
        for race, names in SURNAMES.items():
            if span in names:
                found.update({(race, "female"), (race, "male")})
    return frozenset(found)


def first_unplaced(names: list[str]) -> int | None:
    """The index of the first name whose words are none of the study's names (its group
    cannot be read off the lists), or None when every name is placed."""
    for i, name in enumerate(names):
        if not name_groups(tuple(name.split())):
            return i
    return None
