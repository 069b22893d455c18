# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The demo's headline, redone by hand
#
# `make demo` runs `scenarios/hiring_audit.yaml` (a Bertrand & Mullainathan audit of
# three MiniLM screeners under three mitigation arms, 4 seeds each) into
# `results/hiring_audit`. Its report leads with the impact ratio of Black applicants
# per condition (card × arm): the callback rate over the best group's, capped at 1 in
# each seed, with its mean and 95 % t-interval over seeds on the logit scale.
#
# Here the same numbers come from the two tidy tables alone (`runs`, `metrics`) with
# pandas and scipy, are checked against the report's, and drawn.
#
# Open it in Jupyter with `jupytext --to notebook analysis/demo_headline.py`, or run
# it as a script. `UIM_SIM_RESULTS` names another result folder of a hiring audit;
# `UIM_SIM_NOTEBOOK_OUT`, a folder for the table and the figure.

# %%
import os
from pathlib import Path

RESULTS = Path(os.environ.get("UIM_SIM_RESULTS", "results/hiring_audit"))
SAVE = Path(os.environ["UIM_SIM_NOTEBOOK_OUT"]) if os.environ.get("UIM_SIM_NOTEBOOK_OUT") else None
if not (RESULTS / "runs.parquet").is_file():
    raise FileNotFoundError(
        f"{RESULTS}: no results yet; make them with `make demo`, or "
        f"`uim-sim run scenarios/hiring_audit.yaml --out {RESULTS}` (about 2 minutes)"
    )

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import special, stats

from uim_sim import api

results = api.load(RESULTS)
runs, metrics = results.runs, results.metrics
group = runs["param.disadvantaged"].iloc[0]  # the group the audit targets: black
runs[["run_id", "card", "arm", "seed", "condition"]].head()

# %% [markdown]
# Each run's impact ratio of the targeted group at its last step (an audit has one
# step), with the run's condition and seed.

# %%
rows = metrics[(metrics["metric"] == "impact_ratio") & (metrics["group"] == group)]
rows = rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
per_run = rows.merge(runs[["run_id", "condition", "seed"]], on="run_id")
per_run.pivot(index="condition", columns="seed", values="value").round(3)

# %% [markdown]
# Mean and 95 % Student-t interval over seeds. An impact ratio lies in [0, 1], so the
# interval is the t-interval on the logit scale (the delta method: half-width over
# mean × (1 − mean)), mapped back: it holds the mean and stays inside [0, 1]. Where
# every seed gives the same value (e.g. 1.00 under name redaction) it is the mean.


# %%
def logit_interval(values: pd.Series, level: float = 0.95) -> pd.Series:
    n, mean, sd = len(values), values.mean(), values.std(ddof=1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
    if 0 < mean < 1 and half > 0:
        spread = half / (mean * (1 - mean))
        low, high = special.expit(special.logit(mean) + np.array([-spread, spread]))
    else:
        low, high = mean - half, mean + half
    return pd.Series({"impact_ratio": mean, "ci_low": low, "ci_high": high, "seeds": n})


conditions = list(dict.fromkeys(runs["condition"]))  # in the spec's order
table = per_run.groupby("condition")["value"].apply(logit_interval).unstack().loc[conditions]
table["seeds"] = table["seeds"].astype(int)
table["shown"] = [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in
                  table[["impact_ratio", "ci_low", "ci_high"]].to_numpy()]  # fmt: skip
table

# %% [markdown]
# The report's headline (`results.headline`: the numbers of `report/summary.csv`,
# computed by the report's code) gives the same numbers.

# %%
report = results.headline.set_index("condition").loc[conditions]
mine = table[["impact_ratio", "ci_low", "ci_high"]].to_numpy(float)
theirs = report[["impact_ratio", "impact_ratio_low", "impact_ratio_high"]].to_numpy(float)
assert np.allclose(mine, theirs, rtol=1e-9, atol=1e-12, equal_nan=True), (mine, theirs)
print(f"the report's headline agrees: {len(table)} conditions, {len(runs)} runs")

# %%
fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2), layout="constrained")
y = np.arange(len(table))[::-1]
err = np.vstack([table["impact_ratio"] - table["ci_low"], table["ci_high"] - table["impact_ratio"]])
ax.errorbar(table["impact_ratio"], y, xerr=np.nan_to_num(err.astype(float)), fmt="o", capsize=3)
ax.axvline(0.8, color="C3", ls="--", lw=1, label="four fifths")
ax.set_yticks(y, table.index)
ax.set_xlim(0, 1.05)
ax.set_xlabel(f"impact ratio of {group} applicants\n(mean, 95 % CI over seeds)")
ax.legend(loc="lower left", fontsize=8)
if SAVE:
    SAVE.mkdir(parents=True, exist_ok=True)
    table.to_csv(SAVE / "headline.csv")
    fig.savefig(SAVE / "impact_ratio.png", dpi=110)
plt.show()
