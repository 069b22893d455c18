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
# # Two interventions against no mitigation, seed by seed
#
# Every mitigation arm of a spec runs on the same seeds as the arm without one (the
# same applicants, job ads and draws: common random numbers), so an arm's effect is
# read as the paired difference, seed by seed, against `none` on the same card: most
# of what varies between seeds cancels, and the interval over seeds is much narrower
# than two unpaired ones.
#
# From the demo's result folder (`make demo`: name redaction and per-group thresholds
# against no mitigation, on three screeners), this notebook pairs the runs by seed,
# takes the paired differences of the harm (the impact ratio of Black applicants) and
# of the utility (the callback gap between high- and low-quality resumes), checks them
# against the report's comparison, and then compares the two interventions with each
# other, which the report does not.
#
# `UIM_SIM_RESULTS` names another result folder of a hiring audit with a `none` arm;
# `UIM_SIM_NOTEBOOK_OUT`, a folder for the tables and the figure.

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
from scipy import stats

from uim_sim import api
from uim_sim.vocab.names import REFERENCE  # black: white, female: male, ...

results = api.load(RESULTS)
runs, metrics = results.runs, results.metrics
group = runs["param.disadvantaged"].iloc[0]  # the harmed group: black
reference = REFERENCE[group]
arms = [a for a in dict.fromkeys(runs["arm"]) if a != "none"]
print(f"{len(runs)} runs; cards {list(dict.fromkeys(runs['card']))}; arms beside none: {arms}")


# %% [markdown]
# One value per run at its last step: the harm is the impact ratio of the harmed group;
# the utility, the callback gap between high- and low-quality resumes, averaged over
# the harmed and the reference group (how closely callbacks still follow quality).


# %%
def per_run(metric: str, groups: list[str]) -> pd.Series:
    rows = metrics[(metrics["metric"] == metric) & metrics["group"].isin(groups)]
    rows = rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
    return rows.groupby("run_id")["value"].mean()


values = runs[["run_id", "card", "arm", "replicate", "seed"]].assign(
    harm=lambda r: r["run_id"].map(per_run("impact_ratio", [group])),
    utility=lambda r: r["run_id"].map(per_run("quality_gap", [group, reference])),
)
wide = values.pivot_table(index=["card", "replicate"], columns="arm", values=["harm", "utility"])
wide["harm"].round(3)

# %% [markdown]
# Paired differences against `none`, one per seed (same card, same replicate: the same
# seed), then their mean and 95 % Student-t interval over seeds.


# %%
def t_interval(diff: pd.Series, level: float = 0.95) -> tuple[float, float, float, int]:
    diff = diff.dropna()
    n, mean = len(diff), diff.mean()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * diff.std(ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half, n


def paired_difference(card: str, arm: str, against: str) -> dict:
    """``arm`` − ``against`` for one card, seed by seed: mean and 95 % t-interval of the
    difference in harm and in utility, and the seeds paired."""
    row = {}
    for measure in ("harm", "utility"):
        diff = wide[measure].loc[card, arm] - wide[measure].loc[card, against]
        mean, low, high, n = t_interval(diff)
        row |= {f"d_{measure}": mean, f"d_{measure}_low": low, f"d_{measure}_high": high}
    return row | {"seeds": n}


paired = pd.DataFrame(
    [
        {"card": card, "arm": arm, **paired_difference(card, arm, "none")}
        for card in dict.fromkeys(runs["card"])
        for arm in arms
    ]
)
paired.round(3)

# %% [markdown]
# The report's comparison (`results.comparison`: `report/interventions.csv`, computed
# by the report's code) gives the same numbers.

# %%
report = results.comparison.set_index(["card", "arm"]).loc[list(zip(paired["card"], paired["arm"]))]
columns = [f"d_{m}{s}" for m in ("harm", "utility") for s in ("", "_low", "_high")]
mine, theirs = paired[columns].to_numpy(float), report[columns].to_numpy(float)
assert np.allclose(mine, theirs, rtol=1e-9, atol=1e-12, equal_nan=True), (mine, theirs)
assert (paired["seeds"].to_numpy() == report["seeds"].to_numpy()).all()
print(f"the report's comparison agrees: {len(paired)} arms")

# %% [markdown]
# The two interventions against each other, seed by seed: a positive difference in
# harm means the first arm leaves the harmed group better off than the second.

# %%
first, second = (arms + [None, None])[:2]
head_to_head = pd.DataFrame(
    [
        {"card": card, "arms": f"{first} − {second}", **paired_difference(card, first, second)}
        for card in dict.fromkeys(runs["card"])
    ]
    if second
    else []
)
head_to_head.round(3)

# %%
cards = list(dict.fromkeys(runs["card"]))
fig, axes = plt.subplots(
    1, len(cards), figsize=(4 * len(cards), 3.4), squeeze=False, layout="constrained"
)
for ax, card in zip(axes[0], cards):
    for i, arm in enumerate(arms):
        diff = (wide["harm"].loc[card, arm] - wide["harm"].loc[card, "none"]).dropna()
        row = paired[(paired["card"] == card) & (paired["arm"] == arm)].iloc[0]
        ax.plot(np.full(len(diff), i) + np.linspace(-0.1, 0.1, len(diff)), diff, ".",
                color=f"C{i}", alpha=0.5)  # fmt: skip
        err = [[row["d_harm"] - row["d_harm_low"]], [row["d_harm_high"] - row["d_harm"]]]
        ax.errorbar([i + 0.25], [row["d_harm"]], yerr=np.nan_to_num(err), fmt="s",
                    color=f"C{i}", capsize=4)  # fmt: skip
    ax.axhline(0, color="k", lw=0.7)
    ax.set_xticks(range(len(arms)), arms, fontsize=8)
    ax.set_title(card, fontsize=9)
axes[0][0].set_ylabel(f"change in impact ratio of {group}\n(seeds; mean, 95 % CI)")
if SAVE:
    SAVE.mkdir(parents=True, exist_ok=True)
    paired.to_csv(SAVE / "paired.csv", index=False)
    head_to_head.to_csv(SAVE / "head_to_head.csv", index=False)
    fig.savefig(SAVE / "paired.png", dpi=110)
plt.show()
