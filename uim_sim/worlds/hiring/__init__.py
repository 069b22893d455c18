"""The hiring world (audit and market modes)."""

from uim_sim.worlds.hiring.model import HiringWorld

__all__ = ["HiringWorld"]
