"""The information-spread world: news items, true and false, written in the styles
of different communities, spread over a social network whose feeds are ranked by a
checkpoint-carrying agent. Two Mesa models: `SpreadPlatform` (``mode: world``) and
`SpreadReference` (``mode: reference``, independent cascades without a model)."""

from uim_sim.metrics.stats import UNIT
from uim_sim.worlds.base import WorldInfo
from uim_sim.worlds.spread.platform import SpreadPlatform
from uim_sim.worlds.spread.reference import SpreadReference
from uim_sim.worlds.spread.report import section
from uim_sim.worlds.spread.world import describe

WORLD = WorldInfo(
    name="spread",
    summary="news spreading through ranked feeds on a social network (mode world), or "
    "independent cascades without a model (mode reference)",
    models={"world": SpreadPlatform, "reference": SpreadReference},
    section=section,
    describe=describe,
    ranges={"exposure_gini": UNIT},  # a Gini coefficient of non-negative counts
)

__all__ = ["WORLD", "SpreadPlatform", "SpreadReference"]
