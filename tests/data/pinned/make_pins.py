"""Re-make the pinned tables that tests/test_pinned.py compares against: run every
spec of specs.yaml with the current code and copy its decisions and metrics here;
and measure each spec's spread over seeds (``spread.parquet``: the standard deviation
of every metric at the last step over ``SEEDS`` replicates, per card and arm), which
bounds how far a run whose trajectory diverged on another machine may land.

Run it only in a commit that changes results on purpose, and say in that commit why
(the pins' history is the list of such commits):

- dcea0fc: the first pins, before the reshape of the package layout;
- the commit that fitted logistic heads by Newton steps on one BLAS thread (the
  exact optimum; L-BFGS had stopped at its tolerance): scores of logistic heads
  moved by up to 0.014 in the audit and market, a few decisions of the moderation
  world flipped and its trajectories diverged from there; zero-shot runs unchanged;
- the commit whose engine stopped filling batches with empty rows (2 to 32 texts of
  one 2-token length bucket): embeddings moved in their 7th digit. Those tables were
  made on another CPU than the one that asked MKL for strict reproducibility (an
  Intel Xeon with AVX-512 and AMX, torch CPU capability AVX512): there they agree
  within the cross-machine tolerance, and they were kept as a pin from another
  machine; ``--spread-only`` added the spreads there.

- the commit that added the moderation world's pooled `others` rates and `fpr_gap`
  with its null: the three moderation pins re-made here (`make_pins.py PIN ...`) on
  the Xeon, their new metric rows merged into the pinned tables, every pinned
  decision and every earlier metric row kept as it was (here they agreed within
  1e-6 in scores, except the INLP arm, ill-conditioned, which diverged at step 4).

    .venv/bin/python tests/data/pinned/make_pins.py [--spread-only] [PIN ...]
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from uim_sim.run import plan, run_plan

SEEDS = 6  # replicates measured for the spread over seeds

pinned = Path(__file__).resolve().parent
root = pinned.parents[2]
sys.path.insert(0, str(root / "tests"))
from conftest import write_yaml  # noqa: E402
from pinning import arm_of, run_name  # noqa: E402


def spread(out: Path) -> pd.DataFrame:
    """SD over replicates of each metric at the last step, per card and arm."""
    metrics = pd.read_parquet(out / "metrics.parquet")
    metrics = metrics[metrics.step == metrics.step.max()]
    metrics = metrics.assign(arm=metrics.run_id.map(run_name).map(arm_of))
    sd = metrics.groupby(["arm", "metric", "group"])["value"].std().rename("sd")
    return sd.dropna().reset_index()


spread_only = "--spread-only" in sys.argv[1:]
only = [a for a in sys.argv[1:] if not a.startswith("--")]  # some pins only
specs = yaml.safe_load((pinned / "specs.yaml").read_text())
specs = {k: v for k, v in specs.items() if not only or k in only}
with tempfile.TemporaryDirectory() as tmp:
    for name, spec in specs.items():
        start = time.time()
        (pinned / name).mkdir(exist_ok=True)
        if not spread_only:
            source = write_yaml(Path(tmp) / "scenarios" / f"{name}.yaml", spec)
            out = Path(tmp) / name
            result = run_plan(plan(source, root / "agents"), out)
            assert not result.failed, result.failed
            for table in ("metrics.parquet", "decisions.parquet"):
                shutil.copy(out / table, pinned / name / table)
        seeds = write_yaml(Path(tmp) / "scenarios" / f"{name}_seeds.yaml",
                           {**spec, "replicates": SEEDS})  # fmt: skip
        result = run_plan(plan(seeds, root / "agents"), Path(tmp) / f"{name}_seeds")
        assert not result.failed, result.failed
        spread(Path(tmp) / f"{name}_seeds").to_parquet(pinned / name / "spread.parquet")
        print(name, result.done, round(time.time() - start, 1), flush=True)
