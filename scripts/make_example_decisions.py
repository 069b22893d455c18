"""Write example_decisions.csv: 400 synthetic historical hiring decisions.

Drawn from the hiring world's own history generator (uim_sim.worlds.hiring), with a
log-odds penalty of 1.5 against Black applicants. Synthetic: it only shows the file
format that `train_on: file` reads (a text column and a 0/1 label column).

    .venv/bin/python scripts/make_example_decisions.py
"""

from pathlib import Path

import pandas as pd

from uim_sim.worlds.hiring import AuditStudy

world = AuditStudy(n_history=400, n_jobs=1, rng=99)
history = world.history(bias=1.5)
pd.DataFrame({"resume": history.texts, "callback": history.labels}).to_csv(
    Path(__file__).resolve().parents[1] / "uim_sim/builtin/agents/data/example_decisions.csv",
    index=False,
)
