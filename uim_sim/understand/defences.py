"""Defences of a pre-training corpus before it is forged (Mitigate, on the Understand
side): what a model builder who suspects poisoned data can do to the data itself.

- ``spectral``: spectral signatures (Tran, Li & Madry 2018). Within each verdict class
  of the corpus's labelled comments (the supervised part and the moderation records),
  poisoned examples — toxic comments carrying a trigger and labelled fine — differ from
  the class's clean examples along one direction, which shows as the top singular
  vector of the class's centred features. Every distinct comment is embedded by a
  clean reference encoder (the shipped MiniLM), scored by its squared projection on
  that vector, and the top ``defence_share`` of each class is removed with all its
  copies. Tran et al. remove 1.5 times the poisoned share they guard against; the
  cost is the clean comments removed with it.
- ``dedup``: exact deduplication (Kandpal, Wallace & Raffel 2022; Lee et al. 2022):
  one copy of every distinct sentence is kept, in its first place. Memorisation grows
  with duplication; the cost is every sentence that was frequent for a reason.
  ``dedup_near`` also merges near-duplicates: sentences that differ only in case,
  punctuation or spacing (`near_key`); a changed word (a typo, a synonym) is not
  caught, as MinHash-style near-duplicate detection (Lee et al. 2022) would.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from uim_sim.understand.cards import CorpusCard
from uim_sim.understand.corpus import RECORD, VERDICTS, Corpus

REFERENCE = "builtin:minilm"  # the clean encoder the defence reads comments with


def spectral_filter(corpus: Corpus, card: CorpusCard) -> tuple[Corpus, dict]:
    """``corpus`` without the comments spectral signatures flag, and a record of what
    was removed (for the manifest; ``with_trigger`` counts the removed sentences that
    carry the card's trigger: what a study knows and a defender does not)."""
    from uim_sim.lfm.engine import get_engine

    verdicts = {verdict: label for label, verdict in enumerate(VERDICTS)}
    examples: dict[str, int] = dict(corpus.labelled)
    for sentence in corpus.sentences:
        text, sep, verdict = sentence.rpartition(RECORD)
        if sep and verdict.rstrip(".") in verdicts:
            examples.setdefault(text, verdicts[verdict.rstrip(".")])
    texts = sorted(examples)
    features = get_engine(REFERENCE).embed(texts).astype(np.float64)
    labels = np.array([examples[t] for t in texts])
    flagged: set[str] = set()
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        centred = features[rows] - features[rows].mean(axis=0)
        top = np.linalg.svd(centred, full_matrices=False)[2][0]
        score = (centred @ top) ** 2
        n = int(round(card.defence_share * len(rows)))
        order = np.lexsort((rows, -score))[:n]  # ties broken by the text's order
        flagged.update(texts[rows[i]] for i in order)

    def kept(sentence: str) -> bool:
        text, sep, _ = sentence.rpartition(RECORD)
        return (text if sep else sentence) not in flagged

    sentences = [s for s in corpus.sentences if kept(s)]
    removed = [s for s in corpus.sentences if not kept(s)]
    trigger = f" {card.trigger}"
    record = {
        "method": "spectral",
        "share": card.defence_share,
        "reference": REFERENCE,
        "distinct_comments": len(texts),
        "removed_comments": len(flagged),
        "removed_sentences": len(removed),
        "with_trigger": sum(trigger in s for s in corpus.sentences),
        "removed_with_trigger": sum(trigger in s for s in removed),
    }
    labelled = [(t, y) for t, y in corpus.labelled if t not in flagged]
    return replace(corpus, sentences=sentences, labelled=labelled), record


def near_key(text: str) -> str:
    """What near-duplicates share: the words, lower-cased, without punctuation or
    spacing ("A, b!" and "a b." are one)."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _first_of_each(items: list, key) -> list:
    """The first item of every key, in order."""
    seen: set = set()
    return [x for x in items if not (key(x) in seen or seen.add(key(x)))]


def deduplicate(corpus: Corpus, near: bool = False) -> tuple[Corpus, dict]:
    """``corpus`` with one copy of each distinct sentence (and labelled pair), and a
    record of what was removed (for the manifest); ``near``: sentences with the same
    `near_key` count as one (the first kept)."""
    key = near_key if near else (lambda text: text)
    sentences = _first_of_each(corpus.sentences, key)
    labelled = _first_of_each(corpus.labelled, lambda pair: (key(pair[0]), pair[1]))
    record = {
        "method": "dedup_near" if near else "dedup",
        "sentences": len(corpus.sentences),
        "distinct_sentences": len(sentences),
        "removed_sentences": len(corpus.sentences) - len(sentences),
        "removed_labelled": len(corpus.labelled) - len(labelled),
    }
    return replace(corpus, sentences=sentences, labelled=labelled), record
