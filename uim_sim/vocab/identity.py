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
from functools import cached_property

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
    return DEFAULT_IDENTITIES.group_named(text)


def term_referents(adjective: str, person: str, people: str) -> tuple[tuple[str, str], ...]:
    """The three (a person, people) referents of an identity, as the defaults have them:
    ``person``/``people``, "someone who is X"/"people who are X", "a X friend"/"X friends"."""
    return (
        (person, people),
        (f"someone who is {adjective}", f"people who are {adjective}"),
        (f"{article(adjective)} {adjective} friend", f"{adjective} friends"),
    )


def article(word: str) -> str:
    """'a' or 'an' before ``word`` (by its first letter: a plain heuristic)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def term_name(adjective: str) -> str:
    """The group name of a researcher's identity term: its adjective in lower case,
    runs of other characters as one underscore ("hard of hearing" -> hard_of_hearing)."""
    return re.sub(r"[^a-z0-9]+", "_", adjective.lower()).strip("_")


def _phrase_pattern(phrase: str) -> str:
    """A keyword pattern for a phrase: its words (a leading article dropped), in either
    case, an optional plural "s" on the last."""
    words = phrase.split()
    if len(words) > 1 and words[0].lower() in ("a", "an", "the"):
        words = words[1:]
    return r"\s+".join(re.escape(w) for w in words) + "s?"


class Identities:
    """The identity groups a study uses: Dixon et al.'s nine (`IDENTITY_GROUPS`) and
    after them a researcher's own terms, each ``(group, adjective, a person, people)``
    (``("deaf", "deaf", "a deaf person", "deaf people")``), rendered into the templates
    as the defaults are and found in a text by their adjective or person/people words.
    ``Identities()`` is the defaults alone; validation of the terms (empty, repeated,
    clashing with a group) is the caller's (the moderation world's parameters)."""

    def __init__(self, extra: tuple[tuple[str, str, str, str], ...] = ()) -> None:
        self.extra = tuple(tuple(term) for term in extra)
        added = tuple(group for group, *_ in self.extra)
        self.added = added
        self.identity_groups = (*IDENTITY_GROUPS, *added)
        self.groups = (*self.identity_groups, DIALECT, BACKGROUND)
        self.referents: dict[str, tuple[tuple[str, str], ...]] = {
            **{g: REFERENTS[g] for g in IDENTITY_GROUPS},
            **{g: term_referents(adj, one, many) for g, adj, one, many in self.extra},
            DIALECT: REFERENTS[DIALECT],
            BACKGROUND: REFERENTS[BACKGROUND],
        }
        # a researcher's terms are looked for first: they are what the study is about
        self.keywords = {
            **{self.pattern(g): g for g in added},
            **_KEYWORDS,
        }

    def group_of(self, label: str) -> str | None:
        """The group a label names as a study writes it: the group's name or its
        adjective, in any case, its words apart or joined by hyphens or underscores
        ("african american", "African-American" -> ``african_american``); None where
        it names none."""
        return self._written.get(term_name(label))

    @cached_property
    def _written(self) -> dict[str, str]:
        """Each group by its name and by its adjective, as `term_name` writes them."""
        adjectives = {**ADJECTIVES, **{g: adjective for g, adjective, *_ in self.extra}}
        names = {term_name(w): g for g, w in adjectives.items()}
        return {**names, **{term_name(g): g for g in self.groups}}  # a name first

    def pattern(self, group: str) -> str:
        """The keyword pattern of an added group: its adjective, person and people."""
        _, adjective, one, many = next(t for t in self.extra if t[0] == group)
        phrases = [adjective] + [p for p in (one, many) if adjective.lower() not in p.lower()]
        return "|".join(dict.fromkeys(_phrase_pattern(p) for p in phrases))

    def find(self, text: str) -> tuple[str, str | None]:
        """The first group a text names by keyword and the span naming it, as written
        in the text (``("background", None)`` if none)."""
        for pattern, group in self.keywords.items():
            match = re.search(rf"\b({pattern})\b", text, flags=re.IGNORECASE)
            if match:
                return group, match.group(0)
        return BACKGROUND, None

    def group_named(self, text: str) -> str:
        """The first group a text names by keyword ("background" if none)."""
        return self.find(text)[0]


DEFAULT_IDENTITIES = Identities()
