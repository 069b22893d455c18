"""The moderation world's report section: headline table, figures, explanation.

Per condition (card · mitigation arm): Dixon et al. (2018)'s FPED and FNED with a
95 % t-interval over seeds and the term-permutation null band, Borkan et al.
(2019)'s overall AUC and final score, false-positive rates of benign texts by the
group they name, and, in world mode, the participation of the history's target
groups relative to the others at the last step, and the appeal backlog.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HEADLINE = (  # (column, metric, group)
    ("fped", "fped", ""),
    ("fped_null_q975", "fped_null_q975", ""),
    ("fned", "fned", ""),
    ("overall_auc", "overall_auc", ""),
    ("final_bias_score", "final_bias_score", ""),
    ("fpr_background", "false_positive_rate", "background"),
    ("fpr_identity", "false_positive_rate", "identity"),
    ("fpr_targets", "false_positive_rate", "targets"),
    ("fpr_dialect", "false_positive_rate", "dialect"),
    ("fnr", "false_negative_rate", ""),
)
WORLD_HEADLINE = (
    ("participation_ratio", "participation_ratio", ""),
    ("appeal_backlog", "appeal_backlog", ""),
)
WITH_INTERVAL = ("fped", "overall_auc", "participation_ratio")
COMPACT = (  # the columns printed and kept in summary.csv; all go to moderation_summary.csv
    "condition", "fped", "fped_low", "fped_high", "fped_null_q975", "overall_auc",
    "fpr_background", "fpr_targets", "fpr_dialect", "participation_ratio",
)  # fmt: skip
SUBGROUPS = (
    "background", "gay", "lesbian", "muslim", "jewish", "christian", "black", "white",
    "female", "male", "dialect",
)  # fmt: skip


def _last(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["step"] == summary.groupby("condition")["step"].transform("max")]


def headline(runs: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per condition, from the last step's summary (mean over seeds)."""
    last = _last(summary).set_index(["condition", "metric", "group"])
    world = runs["param.mode"].iloc[0] == "world"
    columns = HEADLINE + (WORLD_HEADLINE if world else ())
    rows = []
    for condition, members in runs.groupby("condition", sort=False):
        row: dict = {"condition": condition, "runs": len(members)}
        for column, metric, group in columns:
            key = (condition, metric, group)
            hit = last.loc[key] if key in last.index else None
            row[column] = float(hit["mean"]) if hit is not None else np.nan
            if column in WITH_INTERVAL:
                row[f"{column}_low"] = float(hit["ci_low"]) if hit is not None else np.nan
                row[f"{column}_high"] = float(hit["ci_high"]) if hit is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fped(head: pd.DataFrame, path: Path) -> Path:
    """FPED per condition: mean and 95 % interval over seeds, beside the null's 97.5 %."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(head) + 1.8))
    y = np.arange(len(head))[::-1]
    err = np.vstack([head["fped"] - head["fped_low"], head["fped_high"] - head["fped"]])
    ax.errorbar(head["fped"], y, xerr=np.nan_to_num(err), fmt="o", color="C3", capsize=3,
                label="FPED (mean, 95 % CI over seeds)")  # fmt: skip
    ax.scatter(head["fped_null_q975"], y, marker="|", s=200, color="0.5",
               label="97.5 % of the term-permutation null")  # fmt: skip
    ax.set_yticks(y, head["condition"])
    ax.set_xlabel("FPED = Σ_t |FPR − FPR_t| (Dixon et al. 2018)")
    ax.legend(loc="lower left", fontsize=8, bbox_to_anchor=(0, 1.01), ncol=1, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fpr_by_group(summary: pd.DataFrame, path: Path) -> Path:
    """Heat map: share of benign texts removed, per condition and named group."""
    plt = _pyplot()
    last = _last(summary)
    data = last[(last.metric == "false_positive_rate") & last.group.isin(SUBGROUPS)]
    table = data.pivot(index="condition", columns="group", values="mean")
    table = table.loc[list(dict.fromkeys(data["condition"])), [g for g in SUBGROUPS if g in table]]
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(table) + 1.8))
    image = ax.imshow(table.to_numpy(), cmap="Reds", vmin=0, aspect="auto")
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(table)), table.index, fontsize=8)
    fig.colorbar(image, ax=ax, label="false-positive rate (benign texts removed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_participation(runs: pd.DataFrame, summary: pd.DataFrame, path: Path) -> Path:
    """Participation of the history's target groups over the others', per step: one
    panel per card, one line per mitigation arm (mean and 95 % band over seeds)."""
    plt = _pyplot()
    data = summary[(summary.metric == "participation_ratio") & (summary.group == "")]
    labels = runs.drop_duplicates("condition").set_index("condition")[["card", "mitigation"]]
    cards = list(dict.fromkeys(labels["card"]))
    fig, axes = plt.subplots(1, len(cards), figsize=(4.2 * len(cards), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    arms = list(dict.fromkeys(labels["mitigation"]))
    for ax, card in zip(axes, cards):
        for condition, frame in data.groupby("condition", sort=False):
            if labels.loc[condition, "card"] != card:
                continue
            colour = f"C{arms.index(labels.loc[condition, 'mitigation'])}"
            frame = frame.sort_values("step")
            ax.plot(frame["step"], frame["mean"], color=colour,
                    label=labels.loc[condition, "mitigation"])  # fmt: skip
            ax.fill_between(frame["step"], frame["ci_low"], frame["ci_high"], color=colour,
                            alpha=0.12)  # fmt: skip
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_title(card, fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("participation: target groups / others")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def moderation_section(
    runs: pd.DataFrame, summary: pd.DataFrame, decisions: pd.DataFrame, folder: Path
) -> tuple[pd.DataFrame, list[Path], str]:
    """The moderation world's headline table, figures and explanation."""
    head = headline(runs, summary)
    head.to_csv(folder / "moderation_summary.csv", index=False)
    figures = [plot_fped(head, folder / "fped.png")]
    figures.append(plot_fpr_by_group(summary, folder / "fpr_by_group.png"))
    mode = runs["param.mode"].iloc[0]
    if mode == "world":
        figures.append(plot_participation(runs, summary, folder / "participation.png"))
    text = (
        f"World `moderation` ({mode}). FPED/FNED: Σ over identity terms and dialect of "
        "|overall rate − the term's rate| at the card's threshold (Dixon et al. 2018), "
        "mean over seeds with a 95 % t-interval; `fped_null_q975`: 97.5 % of the same "
        "statistic with group labels shuffled among each template frame's texts. AUCs "
        "and the final score (power mean p = −5) follow Borkan et al. (2019). "
        "`fpr_*`: share of benign texts removed, by the group they name (`identity`: "
        "any identity term; `targets`: the history's over-represented groups). "
        + (
            "`participation_ratio`: expected posts per user of the target groups over "
            "the other groups' at the last step. "
            if mode == "world"
            else ""
        )
        + "Every column, with intervals, AUCs, FNRs and appeal load: "
        "`moderation_summary.csv`."
    )
    return head[[c for c in COMPACT if c in head]], figures, text
