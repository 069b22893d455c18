"""uim-sim: agents carrying foundation-model checkpoints in society-facing worlds.

Follows the UIM framework (Understand, Interpret, Mitigate) of Chen et al.,
"On Catastrophic Inheritance of Large Foundation Models" (DMLR 2024).
"""

from uim_sim.lfm.numerics import request_reproducible

__version__ = "0.1.0"

# before torch's first matrix product: MKL reads MKL_CBWR then (uim_sim.lfm.numerics)
request_reproducible()
