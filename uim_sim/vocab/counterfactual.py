"""Counterfactual swaps of group terms, for counterfactual data augmentation (CDA).

Webster et al. (2020) and Zmigrod et al. (2019) augment text with copies whose group
terms are swapped for a counterpart group's, so that no group co-occurs with an
attribute more than another in the augmented data. The counterparts here:

- names: a first name of one race becomes a first name of the other race and the same
  gender, a surname a surname of the other race (Bertrand & Mullainathan's lists);
- communities of the spread world: ``riverside`` ↔ ``hillcrest``;
- identity terms of the moderation world: two-sided pairs where the vocabulary has a
  natural counterpart (Black ↔ white, female ↔ male, women ↔ men, a woman ↔ a man);
  the religious and sexual-orientation groups, which have several, go to another
  group of the same set drawn at random (so the augmented half names each group
  equally often in every context).

Every draw uses the generator passed in: the same text and generator state give the
same counterpart.
"""

from __future__ import annotations

import re

import numpy as np

from uim_sim.vocab.identity import REFERENTS
from uim_sim.vocab.names import FIRST_NAMES, SURNAMES
from uim_sim.vocab.news import COMMUNITIES

_PAIRED_GROUPS = {"black": "white", "white": "black", "female": "male", "male": "female"}
_SETS = (("gay", "lesbian"), ("muslim", "jewish", "christian"))


def _identity_alternatives() -> dict[str, list[str]]:
    """Each identity phrase (lower case) and the phrases it may become: the same slot
    (adjective, person, people …) of a counterpart group."""
    out: dict[str, list[str]] = {}
    groups = [g for g in REFERENTS if g in _PAIRED_GROUPS or any(g in s for s in _SETS)]
    for group in groups:
        if group in _PAIRED_GROUPS:
            partners = [_PAIRED_GROUPS[group]]
        else:
            partners = [g for s in _SETS if group in s for g in s if g != group]
        for slot, forms in enumerate(REFERENTS[group]):
            for k, phrase in enumerate(forms):
                out[phrase.lower()] = [REFERENTS[p][slot][k] for p in partners]
    return out


def _name_alternatives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (race, gender), names in FIRST_NAMES.items():
        other = list(FIRST_NAMES[(_PAIRED_GROUPS[race], gender)])
        for name in names:
            out[name.lower()] = other
    for race, names in SURNAMES.items():
        for name in names:
            out[name.lower()] = list(SURNAMES[_PAIRED_GROUPS[race]])
    return out


ALTERNATIVES: dict[str, list[str]] = {
    **_identity_alternatives(),
    **_name_alternatives(),
    COMMUNITIES[0]: [COMMUNITIES[1]],
    COMMUNITIES[1]: [COMMUNITIES[0]],
}
# longest phrases first, so "a Black person" is swapped whole, not just "Black"
_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(p) for p in sorted(ALTERNATIVES, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def counterpart(term: str, rng: np.random.Generator) -> str | None:
    """A counterpart of one group term (a name, a surname, an identity phrase, a
    community); None for a term with none."""
    options = ALTERNATIVES.get(term.lower())
    if options is None:
        return None
    choice = options[int(rng.integers(len(options)))] if len(options) > 1 else options[0]
    return _match_case(term, choice)


def swap_terms(text: str, rng: np.random.Generator) -> str:
    """``text`` with every group term replaced by a counterpart (two-sided CDA)."""
    return _PATTERN.sub(lambda m: counterpart(m.group(0), rng) or m.group(0), text)


def _match_case(template: str, word: str) -> str:
    """Lower-cased text (the forge's corpora) gets the counterpart in lower case; other
    text gets it as the vocabulary writes it ("Black", "white", "Jamal")."""
    if template.islower():
        return word.lower()
    if template[:1].isupper() and word[:1].islower():
        return word[:1].upper() + word[1:]  # e.g. the first word of a sentence
    return word
