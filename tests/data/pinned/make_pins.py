"""Re-make the pinned tables that tests/test_pinned.py compares against: run every
spec of specs.yaml with the current code and copy its decisions and metrics here.

Run it only in a commit that changes results on purpose, and say in that commit why
(the pins' history is the list of such commits):

- dcea0fc: the first pins, before the reshape of the package layout;
- the commit that fitted logistic heads by Newton steps on one BLAS thread (the
  exact optimum; L-BFGS had stopped at its tolerance): scores of logistic heads
  moved by up to 0.014 in the audit and market, a few decisions of the moderation
  world flipped and its trajectories diverged from there; zero-shot runs unchanged;
- the commit whose engine stopped filling batches with empty rows (2 to 32 texts of
  one 2-token length bucket): embeddings moved in their 7th digit.

    .venv/bin/python tests/data/pinned/make_pins.py
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from uim_sim.run import plan, run_plan

pinned = Path(__file__).resolve().parent
root = pinned.parents[2]
sys.path.insert(0, str(root / "tests"))
from conftest import write_yaml  # noqa: E402

specs = yaml.safe_load((pinned / "specs.yaml").read_text())
with tempfile.TemporaryDirectory() as tmp:
    for name, spec in specs.items():
        start = time.time()
        source = write_yaml(Path(tmp) / "scenarios" / f"{name}.yaml", spec)
        out = Path(tmp) / name
        result = run_plan(plan(source, root / "agents"), out)
        assert not result.failed, result.failed
        (pinned / name).mkdir(exist_ok=True)
        for table in ("metrics.parquet", "decisions.parquet"):
            shutil.copy(out / table, pinned / name / table)
        print(name, result.done, round(time.time() - start, 1), flush=True)
