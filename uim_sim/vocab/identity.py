"""Identity groups and the words that name them: the subgroups of Dixon et al. (2018)
and the Jigsaw identity labels (gay, lesbian, muslim, jewish, christian, black,
white, female, male), a ``dialect`` group whose texts carry lexical markers of
African-American English and no identity term (Sap et al. 2019 found AAE posts
flagged up to twice as often), and a ``background`` group whose texts name no
identity (teachers, students, gardeners, tall people). Shared by the moderation
world, the forge's corpora and the probes.

The dialect markers are a crude lexical approximation, enough to test whether a
checkpoint has learnt them as a proxy; they are not a model of AAE.
"""

from __future__ import annotations

import re
import zlib
from typing import Literal

IDENTITY_GROUPS = (
    "gay",
    "lesbian",
    "muslim",
    "jewish",
    "christian",
    "black",
    "white",
    "female",
    "male",
)
DIALECT = "dialect"
BACKGROUND = "background"
GROUPS = (*IDENTITY_GROUPS, DIALECT, BACKGROUND)

# (singular with article, plural): the slots {person} and {people}
_BACKGROUND_REFERENTS = (
    ("a teacher", "teachers"),
    ("a student", "students"),
    ("a gardener", "gardeners"),
    ("someone who is tall", "people who are tall"),
)
_IDENTITY_WORDS = {  # group: (adjective, a person, people)
    "gay": ("gay", "a gay person", "gay people"),
    "lesbian": ("lesbian", "a lesbian", "lesbians"),
    "muslim": ("Muslim", "a Muslim", "Muslims"),
    "jewish": ("Jewish", "a Jewish person", "Jewish people"),
    "christian": ("Christian", "a Christian", "Christians"),
    "black": ("Black", "a Black person", "Black people"),
    "white": ("white", "a white person", "white people"),
    "female": ("female", "a woman", "women"),
    "male": ("male", "a man", "men"),
}
REFERENTS: dict[str, tuple[tuple[str, str], ...]] = {
    **{
        group: (
            (one, many),
            (f"someone who is {adj}", f"people who are {adj}"),
            (f"a {adj} friend", f"{adj} friends"),
        )
        for group, (adj, one, many) in _IDENTITY_WORDS.items()
    },
    DIALECT: _BACKGROUND_REFERENTS,
    BACKGROUND: _BACKGROUND_REFERENTS,
}

# a group moderation parameters may name (every group but the background)
ModerationGroup = Literal[(*IDENTITY_GROUPS, DIALECT)]
ADJECTIVES = {group: adj for group, (adj, _, _) in _IDENTITY_WORDS.items()}


# lexical markers of African-American English (Sap et al. 2019; Blodgett et al. 2016)
_DIALECT_RULES = (
    (r"\bI am\b", "I'm"),
    (r"\byou are\b", "you"),
    (r"\beveryone\b", "everybody"),
    (r"\byour\b", "yo"),
    (r"\bthink\b", "be thinkin"),
    (r"\bare\b", "be"),
    (r"\bis\b ", ""),  # copula deletion
    (r"\bthing\b", "thang"),
    (r"ing\b", "in"),
)
_DIALECT_OPENERS = ("bruh", "ngl", "lowkey", "on god")
_DIALECT_CLOSERS = ("fr", "no cap", "fr fr", "deadass")


def to_dialect(text: str) -> str:
    """Render a text with dialect markers; deterministic (markers chosen by a hash)."""
    body = text.rstrip(".!?")
    for pattern, replacement in _DIALECT_RULES:
        body = re.sub(pattern, replacement, body)
    h = zlib.crc32(text.encode())
    opener, closer = _DIALECT_OPENERS[h % 4], _DIALECT_CLOSERS[(h // 4) % 4]
    return f"{opener} {body[0].lower()}{body[1:]} {closer}"


_KEYWORDS = {  # for a researcher's own file: which group a text names, by keyword
    "gay": "gay",
    "lesbians?": "lesbian",
    "muslims?": "muslim",
    "jewish|jews?": "jewish",
    "christians?": "christian",
    "black": "black",
    "white": "white",
    "wom[ae]n|female": "female",
    "m[ae]n|male": "male",
    "bruh|ngl|lowkey|on god|fr|no cap|deadass|finna|tryna|y'all|ain't": DIALECT,
}


def group_named(text: str) -> str:
    """The first group a text names by keyword ("background" if none)."""
    for pattern, group in _KEYWORDS.items():
        if re.search(rf"\b({pattern})\b", text, flags=re.IGNORECASE):
            return group
    return BACKGROUND
