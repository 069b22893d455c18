"""uim-sim: agents carrying foundation-model checkpoints in society-facing worlds.

Follows the UIM framework (Understand, Interpret, Mitigate) of Chen et al.,
"On Catastrophic Inheritance of Large Foundation Models" (DMLR 2024).
"""

__version__ = "0.1.0"
