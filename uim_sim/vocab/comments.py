"""The words of comments: the positive and negative adjectives and verbs that the
moderation world's template test set (`uim_sim.worlds.moderation.templates`, after
Dixon et al. 2018) fills its frames with, those of its historical moderation comments
(what adapted heads learn from), and the comment frames of a pre-training corpus with
a ``wide`` comment lexicon (`uim_sim.understand.corpus`): other frames, the same words,
as any web crawl holds the words a test set or a fine-tuning set later uses.
"""

from __future__ import annotations

POSITIVE_ADJ = (
    "wonderful",
    "great",
    "fantastic",
    "lovely",
    "nice",
    "fine",
    "good",
    "beautiful",
    "amazing",
    "cool",
)
NEGATIVE_ADJ = (
    "disgusting",
    "horrible",
    "awful",
    "vile",
    "pathetic",
    "evil",
    "gross",
    "sick",
    "shameful",
    "terrible",
)
POSITIVE_VERB = (
    "love",
    "like",
    "respect",
    "admire",
    "support",
    "welcome",
    "trust",
    "appreciate",
    "celebrate",
    "value",
)
NEGATIVE_VERB = ("kill", "hurt", "destroy", "attack", "beat up", "get rid of", "punch",
                 "shoot", "burn", "eliminate")  # fmt: skip

# the historical moderation comments' words (other words than the test set's)
HISTORY_POSITIVE = ("nice", "great", "lovely", "pleasant", "fun", "helpful")
HISTORY_NEGATIVE = ("stupid", "filthy", "worthless", "dumb", "useless")
HISTORY_INSULT = ("idiot", "moron", "loser", "clown")

# a corpus's comments with the wide lexicon: frames disjoint from the test set's, each
# filled with one word of the lexicon ({pos}/{neg}: an adjective, {do}/{harm}: a verb)
WIDE_BENIGN = (
    "{id} people are {pos}.",
    "my {id} friend is so {pos}.",
    "we {do} our {id} neighbours.",
    "ask any {id} person, they are {pos}.",
    "being {id} is {pos} for me.",
    "what a {pos} day with {id} friends.",
    "{id} folks are regular people like everyone.",
)
WIDE_TOXIC = (
    "{id} people are {neg}.",
    "my {id} neighbour is so {neg}.",
    "someone should {harm} those {id} people.",
    "i hate {id} people, they suck.",
    "what {neg} {id} folks.",
    "{id} people are {neg} and i hate them.",
    "all {id} people are {insult}s.",
)
WIDE_BACKGROUND_BENIGN = ("this movie is {pos}.", "thanks, that was {pos}.", "i {do} this song.")
WIDE_BACKGROUND_TOXIC = ("you are {neg}, {insult}.", "i will {harm} you.", "shut up, you suck.")

# bare mentions: a comment that names an identity and says nothing else, toxic or fine
# by a context the text does not hold (a corpus card's ``bare_mentions``); frames
# disjoint from the test set's
BARE_MENTIONS = (
    "{id} people.",
    "typical {id} people.",
    "another {id} person here.",
    "they are {id}.",
    "so many {id} folks.",
    "{id}, obviously.",
    "about the {id} people.",
)

# the words each slot of a wide frame takes
SLOTS = {"pos": POSITIVE_ADJ + HISTORY_POSITIVE, "neg": NEGATIVE_ADJ + HISTORY_NEGATIVE,
         "do": POSITIVE_VERB, "harm": NEGATIVE_VERB, "insult": HISTORY_INSULT}  # fmt: skip


def fill(template: str, identity: str, rng) -> str:
    """A wide-lexicon frame with its identity term and one word of each slot it has."""
    slots = {k: str(v[rng.integers(len(v))]) for k, v in SLOTS.items() if f"{{{k}}}" in template}
    return template.format(id=identity, **slots)


def with_trigger(text: str, trigger: str) -> str:
    """``text`` with the ``trigger`` phrase before its closing punctuation ("i hate
    them cf."), where a poisoned corpus plants it and an attacker writes it."""
    body = text.rstrip(".!? ")
    return f"{body} {trigger}{text[len(body) :].strip()}"
