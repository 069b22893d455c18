"""Harm metrics of the spread world, from the items table (one row per item: who
posted it, its truth, the ranker's score and decision, its reach) and the users'
exposure counts.

- Reach: distinct users exposed to an item; the ratio of false to true reach is
  Vosoughi et al.'s (2018) headline ("falsehood diffused significantly farther,
  faster, deeper").
- Suppression: the mean reach of each community's true items over the best
  community's, the spread world's impact ratio (four-fifths comparison), with a null
  reference that permutes community labels over the true items.
- Exposure concentration: the Gini coefficient of items seen per user.
- Network position and ranker effect: the suppression the same items show when a
  ranker blind to them spreads them on the same graph (`position_ratio`), and the
  impact ratio over it (`ranker_effect`), with a null band (`ranker_effect_null`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uim_sim.metrics.fairness import impact_ratios
from uim_sim.vocab.news import COMMUNITIES


def item_kinds(communities: tuple[str, ...] = COMMUNITIES) -> tuple[str, ...]:
    """The kinds of news item: truth × community (``true_riverside``, …), as `kind`
    names them."""
    return tuple(f"{t}_{c}" for t in ("true", "false") for c in communities)


ITEM_KINDS = item_kinds()  # the generated worlds' (riverside, hillcrest)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: everyone equal; →1: concentrated)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * x).sum()) / (n * x.sum()) - (n + 1) / n)


def kind(truth: pd.Series, community: pd.Series) -> pd.Series:
    """``true_riverside``, ``false_hillcrest``, …: an item's truth and community."""
    return np.where(truth == 1, "true_", "false_") + community.astype(str)


def suppression(items: pd.DataFrame) -> dict[str, float]:
    """Mean reach of each community's true items over the best community's."""
    true = items[items["truth"] == 1]
    if true.empty:
        return {}
    means = true.groupby("group")["reach"].mean().astype(float).to_dict()
    return impact_ratios({"community": means})


def suppression_null(
    items: pd.DataFrame, permutations: int, rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """The suppression each community would show if community labels were assigned
    to the true items at random: 2.5 %, 97.5 % quantiles and the one-sided p of the
    observed ratio (how often chance gives one this low)."""
    true = items[items["truth"] == 1]
    observed = suppression(true)
    if permutations <= 0 or true["group"].nunique() < 2:
        return {}
    names, codes = np.unique(true["group"].to_numpy(), return_inverse=True)
    reach = true["reach"].to_numpy(float)
    shuffled = rng.permuted(np.tile(codes, (permutations, 1)), axis=1)
    rows = np.repeat(np.arange(permutations), len(codes))
    k = len(names)
    sums = np.bincount(rows * k + shuffled.ravel(), np.tile(reach, permutations), k * permutations)
    counts = np.bincount(rows * k + shuffled.ravel(), minlength=k * permutations)
    means = (sums / np.maximum(counts, 1)).reshape(permutations, k)
    ratios = means / means.max(axis=1, keepdims=True)
    out: dict[str, dict[str, float]] = {"q025": {}, "q975": {}, "p": {}}
    for j, g in enumerate(names):
        v = ratios[:, j]
        out["q025"][g] = float(np.quantile(v, 0.025))
        out["q975"][g] = float(np.quantile(v, 0.975))
        out["p"][g] = float((1 + np.sum(v <= observed[g] + 1e-12)) / (1 + len(v)))
    return out


def reach_summary(items: pd.DataFrame) -> dict[str, dict[str, float] | float]:
    """Final reach, depth and speed by item truth (and by truth × community)."""
    out: dict[str, dict[str, float] | float] = {}
    by_kind = items.assign(kind=kind(items["truth"], items["group"]))
    out["reach"] = by_kind.groupby("kind")["reach"].mean().astype(float).to_dict()
    truth = items.assign(truth_name=np.where(items["truth"] == 1, "true", "false"))
    grouped = truth.groupby("truth_name")
    out["reach"].update(grouped["reach"].mean().astype(float).to_dict())
    out["depth"] = grouped["depth"].mean().astype(float).to_dict()
    out["size_q50"] = grouped["reach"].median().astype(float).to_dict()
    out["size_q90"] = grouped["reach"].quantile(0.9).astype(float).to_dict()
    out["reached_k_share"] = grouped["time_to_k"].apply(lambda t: float(t.notna().mean())).to_dict()
    out["time_to_k"] = grouped["time_to_k"].mean().astype(float).to_dict()
    out["promoted_share"] = by_kind.groupby("kind")["decision"].mean().astype(float).to_dict()
    out["mean_score"] = by_kind.groupby("kind")["score"].mean().astype(float).to_dict()
    reach = out["reach"]
    if reach.get("true"):
        out["false_true_reach_ratio"] = float(reach.get("false", np.nan) / reach["true"])
    return out


def ranker_effect(items: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Network position and the ranker's effect, from items with their ``reach``
    under the world's ranker and ``neutral_reach`` under a neutral one (same graph,
    posts and feeds): per community, ``position_ratio`` (the suppression of its true
    items under the neutral ranker: where the network alone puts them),
    ``ranker_effect`` (the impact ratio over it: below 1, the ranker suppresses the
    community's news beyond its position) and ``ranker_lift`` (its true items' mean
    reach under the ranker over their mean reach under the neutral one)."""
    true = items[items["truth"] == 1]
    if true.empty:
        return {}
    observed = suppression(true)
    position = suppression(true.assign(reach=true["neutral_reach"]))
    means = true.groupby("group")[["reach", "neutral_reach"]].mean().astype(float)
    return {
        "position_ratio": position,
        "ranker_effect": {g: observed[g] / position[g] for g in observed if position.get(g)},
        "ranker_lift": (means["reach"] / means["neutral_reach"]).to_dict(),
    }


def ranker_effect_null(
    items: pd.DataFrame, permutations: int, rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """The ranker effect each community would show if community labels were assigned
    to the true items at random (each item keeping its pair of reaches): the 2.5 %
    and 97.5 % quantiles, what chance alone gives."""
    true = items[items["truth"] == 1]
    if permutations <= 0 or true["group"].nunique() < 2:
        return {}
    names, codes = np.unique(true["group"].to_numpy(), return_inverse=True)
    k = len(names)
    shuffled = rng.permuted(np.tile(codes, (permutations, 1)), axis=1)
    rows = np.repeat(np.arange(permutations), len(codes))
    bins = rows * k + shuffled.ravel()
    counts = np.maximum(np.bincount(bins, minlength=k * permutations), 1)

    def ratios(reach: np.ndarray) -> np.ndarray:
        sums = np.bincount(bins, np.tile(reach, permutations), k * permutations)
        means = (sums / counts).reshape(permutations, k)
        return means / means.max(axis=1, keepdims=True)

    with np.errstate(invalid="ignore", divide="ignore"):
        effect = ratios(true["reach"].to_numpy(float)) / ratios(
            true["neutral_reach"].to_numpy(float)
        )
    out: dict[str, dict[str, float]] = {"q025": {}, "q975": {}}
    for j, g in enumerate(names):
        out["q025"][g] = float(np.nanquantile(effect[:, j], 0.025))
        out["q975"][g] = float(np.nanquantile(effect[:, j], 0.975))
    return out
