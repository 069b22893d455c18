"""The hiring world: screening by foundation-model checkpoints.

Two Mesa models on one base (`HiringWorld`): `AuditStudy`, the correspondence audit
of Bertrand & Mullainathan (2004), and `LabourMarket`, applicants and employers over
rounds. A scenario picks one with ``params.mode`` (``audit`` or ``market``).
"""

from uim_sim.metrics.stats import UNIT
from uim_sim.worlds.base import WorldInfo
from uim_sim.worlds.hiring.audit import AuditStudy
from uim_sim.worlds.hiring.market import LabourMarket
from uim_sim.worlds.hiring.membership import MembershipAudit
from uim_sim.worlds.hiring.report import section
from uim_sim.worlds.hiring.world import HiringWorld

# shares whose names do not say so (rates, shares and ratios are told by name)
SHARES = ("systemic_exclusion", "systemic_exclusion_expected", "hire_qualified",
          "edit_found")  # fmt: skip

WORLD = WorldInfo(
    name="hiring",
    summary="resume screening: a Bertrand & Mullainathan audit (mode audit), a "
    "labour market over rounds (mode market), or members of the screener's pre-training "
    "corpus against non-members (mode membership)",
    models={"audit": AuditStudy, "market": LabourMarket, "membership": MembershipAudit},
    section=section,
    ranges=dict.fromkeys(SHARES, UNIT),
)

__all__ = ["WORLD", "AuditStudy", "HiringWorld", "LabourMarket", "MembershipAudit"]
