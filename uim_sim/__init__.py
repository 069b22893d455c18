"""uim-sim: agents carrying foundation-model checkpoints in society-facing worlds.

Follows the UIM framework (Understand, Interpret, Mitigate) of Chen et al.,
"On Catastrophic Inheritance of Large Foundation Models" (DMLR 2024).

From Python (`uim_sim.api`, docs/api.md): ``uim_sim.load(folder)`` reads a result
folder, ``uim_sim.plan(spec)`` validates a spec, and ``uim_sim.api.run(spec, out)`` runs
one (``uim_sim.run`` is the runner package). They are imported on first use, so that
``import uim_sim`` stays cheap.
"""

from importlib import import_module
from typing import Any

from uim_sim.lfm.numerics import request_reproducible

__version__ = "0.1.0"

# before torch's first matrix product: MKL reads MKL_CBWR then (uim_sim.lfm.numerics)
request_reproducible()


_API = ("load", "plan", "Results", "RunFailed")  # re-exported from uim_sim.api


def __getattr__(name: str) -> Any:
    # called once the package is initialised, for a name it lacks: the API's module
    # (pandas, the report) is imported on first use only
    if name in _API:
        return getattr(import_module("uim_sim.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
