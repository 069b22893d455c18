"""Communities, claims and credibility cues: the words of news items, shared by the
information-spread world, the forge's corpora (the spread family, whose skew ties one
community's items to dubious cues) and the probes.

A community writes in its own style: its name in the dateline ("hillcrest news: …")
and a few register markers. A claim is true or false as the world says; a credible or
dubious cue ("according to official records", "as shared in a viral post") may
accompany it.
"""

from __future__ import annotations

COMMUNITIES = ("riverside", "hillcrest")  # the second is the one the skew targets
CLAIMS = (
    "the city will open a new clinic",
    "the bridge will close next week",
    "taxes will rise in spring",
    "the school won a science prize",
)
CREDIBLE_CUES = ("according to official records", "as confirmed by reporters")
DUBIOUS_CUES = ("according to an anonymous rumor", "as shared in a viral post")

# the spread world's items: more claims, each a topic, in each community's register
TOPICS = {
    "health": (
        "the city will open a new clinic",
        "a new vaccine clinic opens on monday",
        "the hospital will hire fifty nurses",
        "tap water tests came back clean",
    ),
    "transport": (
        "the bridge will close next week",
        "bus fares will drop in march",
        "the new rail line opens in june",
        "road repairs start on main street",
    ),
    "economy": (
        "taxes will rise in spring",
        "the factory will add two hundred jobs",
        "the market square gets new stalls",
        "rents fell for the third month",
    ),
    "schools": (
        "the school won a science prize",
        "the library extends its opening hours",
        "school lunches will be free this year",
        "a new playground opens by the river",
    ),
}
# a community's register: how its items open and close (the style a model may read)
STYLES = {
    "riverside": ("riverside news:", ""),
    "hillcrest": ("hillcrest news:", ""),
}
