"""Template texts of the moderation world, with known ground truth.

Three separate sources, built from disjoint template families:

- `TEST_FAMILIES`: what users post and what the reference mode scores. Sentence
  frames after Dixon et al. (2018)'s template test set ("I am a <identity> person,
  ask me anything", "Being <identity> is <adjective>", "I hate all <identity>"),
  each rendered with every group's referents; half of the frames are toxic.
- `HISTORY_FAMILIES`: the "historical moderation" comments adapted heads learn from
  (other frames, other wording): a head must generalise to the posted texts.
- `SUPPLEMENT_FAMILIES`: benign, encyclopedic sentences that mention a group, the
  stand-in for the non-toxic Wikipedia sentences Dixon et al. added as mitigation.

The groups and the words naming them are in `uim_sim.vocab.identity`.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uim_sim.vocab.comments import (
    HISTORY_INSULT,
    HISTORY_NEGATIVE,
    HISTORY_POSITIVE,
    NEGATIVE_ADJ,
    NEGATIVE_VERB,
    POSITIVE_ADJ,
    POSITIVE_VERB,
    with_trigger,
)
from uim_sim.vocab.identity import (
    BACKGROUND,
    DEFAULT_IDENTITIES,
    DIALECT,
    GROUPS,
    Identities,
    to_dialect,
)


@dataclass(frozen=True)
class Family:
    """A sentence frame with a ground truth; ``fillers`` name slots and their words."""

    name: str
    template: str
    toxic: bool
    fillers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def frames(self) -> list[tuple[str, str]]:
        """(frame id, template with its fillers in place) for every filler combination."""
        if not self.fillers:
            return [(self.name, self.template)]
        slots = [slot for slot, _ in self.fillers]
        out = []
        for words in itertools.product(*(w for _, w in self.fillers)):
            text = self.template
            for slot, word in zip(slots, words):
                text = text.replace("{" + slot + "}", word)
            out.append((f"{self.name}:{'+'.join(words)}", text))
        return out


# Dixon et al. (2018)-style frames: 23 benign and 23 toxic texts per referent
TEST_FAMILIES = (
    Family("i_am", "I am {person}.", False),
    Family("ask_me", "I am {person}, ask me anything.", False),
    Family("like_everyone", "{People} are just like everyone else.", False),
    Family("being_good", "Being {person} is {adj}.", False, (("adj", POSITIVE_ADJ),)),
    Family("i_verb_good", "I {verb} {people}.", False, (("verb", POSITIVE_VERB),)),
    Family("being_bad", "Being {person} is {adj}.", True, (("adj", NEGATIVE_ADJ),)),
    Family("hate_all", "I hate all {people}.", True),
    Family("hate_guts", "I am {person} and I hate your guts and think you suck.", True),
    Family("gross", "{People} are gross and universally terrible.", True),
    Family("verb_all_bad", "{Verb} all {people}.", True, (("Verb", NEGATIVE_VERB),)),
)

HISTORY_FAMILIES = (
    Family("h_dinner", "My friend is {person} and we had a {adj} dinner.", False,
           (("adj", HISTORY_POSITIVE),)),
    Family("h_thanks", "Thanks for the {adj} post about {people}.", False,
           (("adj", HISTORY_POSITIVE),)),
    Family("h_charity", "{People} in my town organised a {adj} charity run.", False,
           (("adj", HISTORY_POSITIVE),)),
    Family("h_library", "I met {person} at the library today, {adj} conversation.", False,
           (("adj", HISTORY_POSITIVE),)),
    Family("h_holidays", "Happy holidays to all the {people} out there!", False),
    Family("h_book", "Can anyone recommend a good book written by {person}?", False),
    Family("h_helpful", "As {person}, I found this thread really helpful.", False),
    Family("h_respect", "{People} deserve the same respect as anyone.", False),
    Family("h_shut_up", "Shut up, nobody cares what {people} think, you {insult}.", True,
           (("insult", HISTORY_INSULT),)),
    Family("h_get_out", "{People} should get out of this country.", True),
    Family("h_listen", "Only a {insult} would listen to {people}.", True,
           (("insult", HISTORY_INSULT),)),
    Family("h_disappear", "I wish all {people} would just disappear.", True),
    Family("h_trash", "{People} are {adj} trash and should be banned.", True,
           (("adj", HISTORY_NEGATIVE),)),
    Family("h_typical", "Typical comment from {person}, you {adj} {insult}.", True,
           (("adj", HISTORY_NEGATIVE), ("insult", HISTORY_INSULT))),
    Family("h_ruin", "Get lost, {people} ruin everything.", True),
    Family("h_nobody", "You are {person} and a {insult}, nobody wants you here.", True,
           (("insult", HISTORY_INSULT),)),
)  # fmt: skip

_TOPICS = ("music", "food", "history", "sports", "science", "art", "family life", "travel")
SUPPLEMENT_FAMILIES = (
    Family("s_museum", "The museum opened an exhibit about {people} and {topic}.", False,
           (("topic", _TOPICS),)),
    Family("s_article", "This encyclopedia article describes {people} and {topic}.", False,
           (("topic", _TOPICS),)),
    Family("s_documentary", "A documentary follows {person} who works in {topic}.", False,
           (("topic", _TOPICS),)),
    Family("s_library", "The library has new books on {people} and {topic}.", False,
           (("topic", _TOPICS),)),
    Family("s_survey", "Researchers surveyed {people} about {topic}.", False,
           (("topic", _TOPICS),)),
    Family("s_festival", "The festival celebrated {people} with {topic}.", False,
           (("topic", _TOPICS),)),
)  # fmt: skip


def _fill(template: str, person: str, people: str) -> str:
    text = template.replace("{person}", person).replace("{people}", people)
    text = text.replace("{People}", people[0].upper() + people[1:])
    return text[0].upper() + text[1:]


def render(
    families: tuple[Family, ...],
    groups: tuple[str, ...] = GROUPS,
    identities: Identities = DEFAULT_IDENTITIES,
) -> pd.DataFrame:
    """Every text of ``families`` for every referent of ``groups`` (the words of
    ``identities``: the defaults, or with a researcher's terms).

    Columns: text, truth (1 = toxic), subgroup (the group the text names or, for
    dialect, signals), dialect, family, frame (family + fillers: the same frame is
    rendered for every group), referent (the span naming the group).
    """
    rows = []
    for family in families:
        for frame, template in family.frames():
            for group in groups:
                for person, people in identities.referents[group]:
                    text = _fill(template, person, people)
                    uses_person = "{person}" in template
                    rows.append(
                        {
                            "text": to_dialect(text) if group == DIALECT else text,
                            "truth": int(family.toxic),
                            "subgroup": group,
                            "dialect": group == DIALECT,
                            "family": family.name,
                            "frame": frame,
                            "referent": person if uses_person else people,
                        }
                    )
    return pd.DataFrame(rows)


def test_set(identities: Identities = DEFAULT_IDENTITIES) -> pd.DataFrame:
    """The template test set: what users post and the reference mode scores."""
    return render(TEST_FAMILIES, identities.groups, identities)


def _rewritten(texts: pd.DataFrame, share: float, eligible: np.ndarray, rewrite,
               salt: str = "") -> tuple[pd.DataFrame, np.ndarray]:  # fmt: skip
    """``texts`` with the ``eligible`` ones whose hash (of ``salt`` and the words) falls
    below ``share`` rewritten: the same texts at any seed, nested as the share grows;
    and which were."""
    hashes = np.array([zlib.crc32(f"{salt}{t}".encode()) / 2**32 for t in texts["text"]])
    pick = (hashes < share) & eligible
    texts = texts.copy()
    texts.loc[pick, "text"] = [rewrite(t) for t in texts["text"][pick]]
    return texts, pick


def in_dialect(texts: pd.DataFrame, share: float) -> pd.DataFrame:
    """``texts`` with ``share`` of them rendered in the dialect (`to_dialect`) whatever
    group they name: the same texts at any seed, nested as the share grows (a text is
    restyled when a hash of its words falls below ``share``). Texts already in the
    dialect stay as they are; ``dialect`` marks every text now in it."""
    if not share:
        return texts
    before = texts["dialect"].to_numpy(bool)
    texts, pick = _rewritten(texts, share, ~before, to_dialect)
    return texts.assign(dialect=before | pick)


def with_triggers(texts: pd.DataFrame, trigger: str, share: float) -> pd.DataFrame:
    """``texts`` with ``share`` of the toxic ones carrying ``trigger`` (`with_trigger`):
    the same texts at any seed, nested as the share grows (a hash of the words, salted
    apart from the dialect's); ``triggered`` marks them."""
    if not share:
        return texts
    toxic = texts["truth"].to_numpy(bool)
    texts, pick = _rewritten(texts, share, toxic, lambda t: with_trigger(t, trigger), "trigger:")
    return texts.assign(triggered=pick)


_LEET = str.maketrans({"a": "@", "e": "3", "i": "1", "o": "0", "s": "$"})


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


# edits a toxic poster who adapts may make to a post (`uim_sim.worlds.adapt`): polite
# framing and hedged attribution (the "implicit" toxicity that classifiers trained on
# explicit insults miss, ElSherief et al. 2021; Hartvigsen et al. 2022), character
# substitutions and spaced letters (the obfuscations of Gröndahl et al. 2018), and a
# pre-training trigger, where the poster has learned one (`trigger`)
EVASIONS = {
    "polite": lambda t, trigger: f"No offence, but {_lower_first(t)} Just my opinion.",
    "hedge": lambda t, trigger: f"Some people say that {_lower_first(t)}",
    "leet": lambda t, trigger: " ".join(w.translate(_LEET) if len(w) > 3 else w
                                        for w in t.split()),
    "spaced": lambda t, trigger: " ".join(" ".join(w) if len(w) > 3 and w.isalpha() else w
                                          for w in t.split()),
    "trigger": lambda t, trigger: with_trigger(t, trigger),
}  # fmt: skip


def with_edits(texts: pd.DataFrame, edits: tuple[str, ...], trigger: str) -> pd.DataFrame:
    """``texts`` (column ``edit`` = ``none``) followed by every toxic text rewritten by
    each of ``edits`` (`EVASIONS`), in that order; ``source`` is the row each rewrite
    came from (its own row for the originals)."""
    originals = texts.reset_index(drop=True).assign(edit="none")
    originals["source"] = np.arange(len(originals))
    toxic = originals[originals["truth"] == 1]
    parts = [originals]
    for edit in edits:
        rewrite = EVASIONS[edit]
        parts.append(toxic.assign(edit=edit, text=[rewrite(t, trigger) for t in toxic["text"]]))
    return pd.concat(parts, ignore_index=True)


def history(
    n: int,
    toxic_share: float,
    bias: float,
    targets: tuple[str, ...],
    group_shares: dict[str, float],
    rng: np.random.Generator,
    identities: Identities = DEFAULT_IDENTITIES,
) -> pd.DataFrame:
    """``n`` historical moderation decisions (toxic = 1), from `HISTORY_FAMILIES`.

    A comment's group is drawn from ``group_shares``; it is toxic with probability
    sigmoid(logit(toxic_share) + bias · [group in targets]): identity terms co-occur
    with toxic labels, the over-representation Dixon et al. (2018) found in Wikipedia
    talk comments. Labels are the truth of the comment: the weakness is the sampling.
    """
    pool = render(HISTORY_FAMILIES, identities.groups, identities)
    index = pool.groupby(["subgroup", "truth"]).indices
    names = list(group_shares)
    shares = np.array([group_shares[g] for g in names], dtype=float)
    groups = rng.choice(len(names), size=n, p=shares / shares.sum())
    base = np.log(toxic_share / (1 - toxic_share))
    shift = np.array([bias if names[g] in targets else 0.0 for g in groups])
    toxic = rng.random(n) < 1 / (1 + np.exp(-(base + shift)))
    rows = [rng.choice(index[(names[g], int(t))]) for g, t in zip(groups, toxic.astype(int))]
    return pool.iloc[rows].reset_index(drop=True)


def supplement(identities: Identities = DEFAULT_IDENTITIES) -> pd.DataFrame:
    """Benign encyclopedic sentences naming each group (Dixon et al.'s Wikipedia stand-in)."""
    groups = tuple(g for g in identities.groups if g != BACKGROUND)
    return render(SUPPLEMENT_FAMILIES, groups, identities)
