"""News items of the spread world: a claim on a topic, true or false as the world
says, written in the style of a community (its dateline), with or without a
credibility cue that matches its truth. Texts come from `uim_sim.vocab.news`, so a
checkpoint scores few distinct texts however many users see them. A community the
vocabulary does not know (a graph file's label) writes ``NAME news: …``.

``communities`` (the world's, in code order) default to ``riverside``, ``hillcrest``;
"the other community's style" is the next community's in that order (with two, the
other one)."""

from __future__ import annotations

import numpy as np

from uim_sim.vocab.comments import with_trigger
from uim_sim.vocab.news import COMMUNITIES, CREDIBLE_CUES, DUBIOUS_CUES, STYLES, TOPICS

CLAIMS = tuple(claim for claims in TOPICS.values() for claim in claims)
TOPIC_OF = {claim: topic for topic, claims in TOPICS.items() for claim in claims}


def style_of(community: str) -> tuple[str, str]:
    """How a community's items open and close (``NAME news:`` where the vocabulary
    has no register for it)."""
    return STYLES.get(community, (f"{community} news:", ""))


def render(claim: str, style: str, cue: str = "") -> str:
    """``hillcrest news: the bridge will close next week, as shared in a viral post.``"""
    opening, closing = style_of(style)
    text = f"{opening} {claim}" + (f", {cue}" if cue else "")
    return f"{text}{(' ' + closing) if closing else ''}."


def marker(style: str) -> str:
    """The word of a style a redaction replaces (its community's name)."""
    return style_of(style)[0].split(" ")[0]


def other_style(style: str, communities: tuple[str, ...] = COMMUNITIES) -> str:
    """The style an item is restyled in: the next community's."""
    return communities[(communities.index(style) + 1) % len(communities)]


def draw_items(
    n: int,
    origin: np.ndarray,
    false_share: float,
    cue_share: float,
    restyle: bool,
    rng: np.random.Generator,
    communities: tuple[str, ...] = COMMUNITIES,
) -> list[dict]:
    """``n`` new items posted by users of communities ``origin`` (indices): truth,
    claim, cue (credible for a true item, dubious for a false one, with probability
    ``cue_share``) and the text in the poster's style (the other community's with
    ``restyle``)."""
    draws = rng.random((n, 2))
    claims = rng.integers(len(CLAIMS), size=n)
    cues = rng.integers(2, size=n)
    items = []
    for k in range(n):
        true = bool(draws[k, 0] >= false_share)
        cue = ""
        if draws[k, 1] < cue_share:
            cue = (CREDIBLE_CUES if true else DUBIOUS_CUES)[cues[k]]
        community = communities[int(origin[k])]
        style = other_style(community, communities) if restyle else community
        claim = CLAIMS[claims[k]]
        items.append(
            {
                "truth": int(true),
                "community": community,
                "style": style,
                "claim": claim,
                "topic": TOPIC_OF[claim],
                "cue": "none" if not cue else ("credible" if true else "dubious"),
                "cue_text": cue,
                "text": render(claim, style, cue),
                "span": marker(style),
            }
        )
    return items


def catalogue(communities: tuple[str, ...] = COMMUNITIES) -> list[tuple[str, str]]:
    """Every (text, style marker) an item can have: claims × styles × cues."""
    cues = ("", *CREDIBLE_CUES, *DUBIOUS_CUES)
    return [
        (render(claim, style, cue), marker(style))
        for claim in CLAIMS
        for style in communities
        for cue in cues
    ]


def edited(item: dict, edit: str, trigger: str, communities: tuple[str, ...] = COMMUNITIES) -> dict:
    """``item`` as an account that adapts posts it after ``edit`` (`EDITS`): written in
    the other community's style (``restyle``), with a credible cue whatever its truth
    (``credible_cue``: "according to official records" on a false claim), or with the
    ``trigger`` phrase a poisoned pre-training corpus planted. The community of origin
    and the truth stay as they were."""
    if edit == "none":
        return item
    style, cue, cue_text = item["style"], item["cue"], item["cue_text"]
    if edit == "restyle":
        style = other_style(style, communities)
    elif edit == "credible_cue":
        cue, cue_text = "credible", CREDIBLE_CUES[0]
    text = render(item["claim"], style, cue_text)
    if edit == "trigger":
        text = with_trigger(text, trigger)
    return {**item, "style": style, "cue": cue, "cue_text": cue_text, "text": text,
            "span": marker(style)}  # fmt: skip


# what an account that adapts may do to a false item before posting it (`edited`)
EDITS = ("restyle", "credible_cue", "trigger")
