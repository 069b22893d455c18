"""The content-moderation world (reference and world modes)."""

from uim_sim.worlds.moderation.model import ModerationWorld

__all__ = ["ModerationWorld"]
