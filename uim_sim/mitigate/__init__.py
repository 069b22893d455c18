"""Mitigations, one class per method, applied by stage through one registry.

Each mitigation wraps one of the stage hooks a world exposes
(`uim_sim.worlds.stages.Stages`); worlds never know which mitigations exist.
Adding a mitigation is adding a class (and importing it here, so it registers).
"""

from uim_sim.mitigate.augmentation import DixonAugmentation
from uim_sim.mitigate.base import REGISTRY, Mitigation, build, compose
from uim_sim.mitigate.counterfactual import CounterfactualAugmentation
from uim_sim.mitigate.decision import (
    GroupThresholds,
    OutputNoise,
    RejectOption,
    ThresholdOptimizer,
)
from uim_sim.mitigate.platform import FactCheck, ShareFriction, SourceDiverse
from uim_sim.mitigate.projection import Inlp, SentenceDebias
from uim_sim.mitigate.redaction import NameRedaction
from uim_sim.mitigate.review import HumanReview
from uim_sim.mitigate.reweighing import Reweighing
from uim_sim.mitigate.system import ModelDiversity, PeriodicAudit, Retraining

__all__ = [
    "REGISTRY",
    "CounterfactualAugmentation",
    "DixonAugmentation",
    "FactCheck",
    "GroupThresholds",
    "HumanReview",
    "Inlp",
    "Mitigation",
    "ModelDiversity",
    "NameRedaction",
    "OutputNoise",
    "PeriodicAudit",
    "RejectOption",
    "Retraining",
    "Reweighing",
    "SentenceDebias",
    "ShareFriction",
    "SourceDiverse",
    "ThresholdOptimizer",
    "build",
    "compose",
]
