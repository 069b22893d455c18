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
# # The dose-response of a forged family
#
# `scenarios/inheritance_dose_response.yaml` forges one small BERT per level of
# association skew in its pre-training corpus (the grid key
# `corpus.knobs.association_skew`) and audits each with two screening heads
# (docs/understand.md). Harm should follow the dose, and so should what a probe reads
# off each checkpoint before any world runs.
#
# This notebook rebuilds the report's dose-response table from the tidy tables: each
# run's impact ratio of Black applicants; per head and dose its mean and 95 % interval
# (over forged checkpoints where a dose was forged with several seeds, `corpus.seed`,
# else over the audit's seeds); beside it the probe recorded for each checkpoint. It
# checks the numbers against the report's, gives the rank correlation between probe
# and harm across checkpoints, and draws both curves.
#
# `UIM_SIM_RESULTS` names another result folder whose grid varies a corpus knob;
# `UIM_SIM_NOTEBOOK_OUT`, a folder for the table and the figure.

# %%
import os
from pathlib import Path

RESULTS = Path(os.environ.get("UIM_SIM_RESULTS", "results/dose"))
SAVE = Path(os.environ["UIM_SIM_NOTEBOOK_OUT"]) if os.environ.get("UIM_SIM_NOTEBOOK_OUT") else None
if not (RESULTS / "runs.parquet").is_file():
    raise FileNotFoundError(
        f"{RESULTS}: no results yet; make them with `uim-sim run "
        f"scenarios/inheritance_dose_response.yaml --out {RESULTS}` (about 10 minutes: "
        "five forges, then 40 audits)"
    )

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import special, stats

from uim_sim import api
from uim_sim.vocab.names import REFERENCE  # black: white, female: male, ...

results = api.load(RESULTS)
runs, metrics = results.runs, results.metrics
knobs = [c for c in runs.columns if c.startswith("corpus.knobs.") and runs[c].nunique() > 1]
if not knobs:
    raise ValueError(f"{RESULTS}: no corpus knob varies across forged checkpoints")
knob = knobs[0]
group = runs["param.disadvantaged"].iloc[0]  # the harmed group: black
reference = REFERENCE[group]
probe = "probe.mlm_gap_nats"  # the MLM fill-in gap: the planted association, in nats
forged = runs[runs[knob].notna()].copy()
forged[["card", "arm", knob, "checkpoint", "seed", probe]].head()

# %% [markdown]
# Each run's impact ratio of the harmed group at its last step, and the callback gap
# (the reference group's callback rate minus the harmed group's: not capped, unlike
# the ratio). A curve is one screening head (and mitigation arm, where there are
# several).


# %%
def last(metric: str, of: str) -> pd.Series:
    rows = metrics[(metrics["metric"] == metric) & (metrics["group"] == of)]
    rows = rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
    return rows.set_index("run_id")["value"]


forged["harm"] = forged["run_id"].map(last("impact_ratio", group))
forged["gap"] = forged["run_id"].map(
    last("callback_rate", reference) - last("callback_rate", group)
)
forged["curve"] = [card if arm == "none" else f"{card} · {arm}"
                   for card, arm in zip(forged["card"], forged["arm"])]  # fmt: skip
forged.pivot_table(index=["curve", knob], columns="seed", values="harm").round(3)


# %% [markdown]
# Per curve and dose: the mean and 95 % Student-t interval of the harm. Where a dose
# has several forged checkpoints, each checkpoint's runs are averaged first and the
# interval runs over checkpoints (it then covers training variation); with one
# checkpoint, over the audit's seeds. An impact ratio lies in [0, 1]: the interval is
# the t-interval on the logit scale, mapped back (as in `analysis/demo_headline.py`).


# %%
def logit_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    n, mean = len(values), values.mean()
    sd = values.std(ddof=1) if n > 1 else np.nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
    if 0 < mean < 1 and half > 0:
        spread = half / (mean * (1 - mean))
        low, high = special.expit(special.logit(mean) + np.array([-spread, spread]))
        return mean, low, high
    return mean, mean - half, mean + half


table = []
for (curve, dose), members in forged.groupby(["curve", knob], sort=True):
    per_checkpoint = members.groupby("checkpoint")[["harm", probe]].mean()
    unit = per_checkpoint if len(per_checkpoint) > 1 else members
    mean, low, high = logit_interval(unit["harm"].to_numpy(float))
    table.append({"curve": curve, knob: dose, "checkpoints": len(per_checkpoint),
                  "runs": len(members), probe: per_checkpoint[probe].mean(),
                  "impact_ratio": mean, "ci_low": low, "ci_high": high,
                  "gap": members["gap"].mean()})  # fmt: skip
table = pd.DataFrame(table)
table.round(3)

# %% [markdown]
# The report's dose-response (`results.dose_response`: `report/dose_response.csv`,
# computed by the report's code) gives the same numbers.

# %%
report = results.dose_response.rename(columns={"card": "curve"})
merged = table.merge(report, on=["curve", knob], suffixes=("", "_report"))
assert len(merged) == len(table) == len(report), (table, report)
for column in ("impact_ratio", "ci_low", "ci_high", "gap", probe, "checkpoints", "runs"):
    mine, theirs = merged[column].to_numpy(float), merged[f"{column}_report"].to_numpy(float)
    assert np.allclose(mine, theirs, rtol=1e-9, atol=1e-12, equal_nan=True), (column, mine, theirs)
print(
    f"the report's dose-response agrees: {len(table)} points on {table['curve'].nunique()} curves"
)

# %% [markdown]
# Does harm follow what the probe reads? Spearman's rank correlation between the
# probe and the harm across forged checkpoints (each checkpoint's runs averaged), per
# curve; negative: the stronger the planted association, the lower the impact ratio.
# (The report gives its exact permutation p for up to 8 checkpoints; scipy's t
# approximation here.)


# %%
def spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:  # nothing to rank
        return np.nan, np.nan
    rho, p = stats.spearmanr(x, y)
    return float(rho), float(p)


units = forged.groupby(["curve", "checkpoint"])[[knob, probe, "harm"]].mean().reset_index()
correlation = pd.DataFrame(
    [(curve, len(points), *spearman(points[probe], points["harm"]))
     for curve, points in units.groupby("curve")],
    columns=["curve", "checkpoints", "spearman_rho", "p_approx"],
)  # fmt: skip
correlation.round(3)

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for i, (curve, points) in enumerate(table.groupby("curve", sort=True)):
    err = np.vstack([points["impact_ratio"] - points["ci_low"],
                     points["ci_high"] - points["impact_ratio"]])  # fmt: skip
    left.errorbar(points[knob] + 0.008 * i, points["impact_ratio"], yerr=np.nan_to_num(err),
                  fmt="o-", capsize=3, color=f"C{3 + i}", label=curve)  # fmt: skip
left.axhline(0.8, color="C0", ls="--", lw=1, label="four fifths")
left.set_xlabel(knob.removeprefix("corpus.knobs."))
left.set_ylabel(f"impact ratio of {group} applicants")
left.legend(fontsize=7)
checkpoints = forged.drop_duplicates("checkpoint")
right.plot(checkpoints[knob], checkpoints[probe], "s", color="C2")
right.axhline(0, color="k", lw=0.6)
right.set_xlabel(f"{knob.removeprefix('corpus.knobs.')} (one point per forged checkpoint)")
right.set_ylabel("MLM fill-in gap (nats)")
if SAVE:
    SAVE.mkdir(parents=True, exist_ok=True)
    table.to_csv(SAVE / "dose_response.csv", index=False)
    correlation.to_csv(SAVE / "correlation.csv", index=False)
    fig.savefig(SAVE / "dose_response.png", dpi=110)
plt.show()
