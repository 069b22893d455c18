"""How the pinned tables were made: run at commit dcea0fc (before the reshape of the
package layout), with that commit's API (`uim_sim.runner`). Kept as the record of the
pins that tests/test_pinned.py compares against; it does not run on later commits.
"""

import shutil
import time
from pathlib import Path

import yaml
from uim_sim.runner import plan, run_plan

root = Path("/work/main")
pinned = root / "tests/data/pinned"
specs = yaml.safe_load((pinned / "specs.yaml").read_text())
for name, spec in specs.items():
    t = time.time()
    src = Path(f"/tmp/pins/{name}.yaml")
    src.parent.mkdir(exist_ok=True, parents=True)
    src.write_text(yaml.safe_dump(spec))
    out = Path(f"/tmp/pins/out_{name}")
    shutil.rmtree(out, ignore_errors=True)
    res = run_plan(plan(src, root / "agents"), out)
    assert not res.failed, res.failed
    (pinned / name).mkdir(exist_ok=True)
    for f in ("metrics.parquet", "decisions.parquet"):
        shutil.copy(out / f, pinned / name / f)
    print(name, res.done, round(time.time() - t, 1), flush=True)
