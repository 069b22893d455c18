"""The content-moderation world: moderators carrying checkpoints decide which posts
stay up. Two Mesa models on one base (`ModerationWorld`): `ModerationPlatform`, users
posting, appealing and being chilled over time, and `ModerationReference`, the
template test set of Dixon et al. (2018) scored once. A scenario picks one with
``params.mode`` (``world`` or ``reference``).
"""

from uim_sim.metrics.stats import POSITIVE, UNIT
from uim_sim.worlds.base import WorldInfo
from uim_sim.worlds.moderation.platform import ModerationPlatform
from uim_sim.worlds.moderation.reference import ModerationReference
from uim_sim.worlds.moderation.report import section
from uim_sim.worlds.moderation.world import ModerationWorld

# shares whose names do not say so (rates, shares and ratios are told by name)
SHARES = ("participation", "silencing", "toxic_left_up", "toxic_kept", "adaptive_kept",
          "static_kept", "edit_found")  # fmt: skip

WORLD = WorldInfo(
    name="moderation",
    summary="content moderation: a platform with appeals and chilling (mode world) or "
    "the Dixon et al. template test (mode reference)",
    models={"world": ModerationPlatform, "reference": ModerationReference},
    section=section,
    # FPED and FNED: sums of absolute gaps, never below 0 (their intervals on the log scale)
    ranges={**dict.fromkeys(SHARES, UNIT), "fped": POSITIVE, "fned": POSITIVE},
)

__all__ = ["WORLD", "ModerationPlatform", "ModerationReference", "ModerationWorld"]
