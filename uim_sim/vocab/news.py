"""Communities, claims and credibility cues: the words of news items, shared by the
forge's corpora (the spread family, whose skew ties one community's items to dubious
cues) and the probes."""

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
