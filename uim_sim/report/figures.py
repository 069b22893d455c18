"""Drawing the figures a world's section declares (`uim_sim.worlds.section`): every
figure has a title, labelled axes and a legend; its caption goes beside it in the
report."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from uim_sim.worlds.section import Context, Figure, Forest, GroupBars, Heatmap, OverTime


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(ctx: Context, figure: Figure, folder: Path) -> Path | None:
    """Draw ``figure`` into ``folder/NAME.png``; None when there is nothing to draw."""
    path = Path(folder) / f"{figure.name}.png"
    drawer = {Forest: _forest, GroupBars: _bars, OverTime: _over_time, Heatmap: _heatmap}
    return drawer[type(figure)](ctx, figure, path)


def _finish(fig, path: Path) -> Path:
    with warnings.catch_warnings():  # long condition labels: saved with bbox_inches
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    return path


def _forest(ctx: Context, spec: Forest, path: Path) -> Path | None:
    conditions = ctx.conditions
    values = np.array([ctx.value(c, spec.metric, spec.group) for c in conditions])
    if np.isnan(values[:, 0]).all():
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(conditions) + 2.0))
    y = np.arange(len(conditions))[::-1]
    if spec.null_high:
        high = np.array([ctx.value(c, spec.null_high, spec.group)[0] for c in conditions])
        if spec.null_low:
            low = np.array([ctx.value(c, spec.null_low, spec.group)[0] for c in conditions])
            for i, (lo, hi) in enumerate(zip(low, high)):
                if np.isfinite(lo):
                    ax.plot([lo, hi], [y[i], y[i]], color="0.78", lw=8, solid_capstyle="butt",
                            label="null reference (95 %)" if i == 0 else None)  # fmt: skip
        else:
            ax.scatter(high, y, marker="|", s=250, color="0.5", label="null reference (97.5 %)")
    mean, lo, hi = values.T
    err = np.nan_to_num(np.vstack([mean - lo, hi - mean]))
    ax.errorbar(mean, y, xerr=err, fmt="o", color="C3", capsize=3,
                label="observed: mean and 95 % CI over seeds")  # fmt: skip
    if spec.line is not None:
        ax.axvline(spec.line, color="C0", ls="--", lw=1, label=spec.line_label or None)
    ax.set_yticks(y, conditions, fontsize=8)
    ax.set_xlabel(spec.xlabel)
    ax.set_title(spec.title, fontsize=11)
    ax.legend(loc="upper left", fontsize=8, bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _finish(fig, path)


def _last_table(ctx: Context, metric: str, groups) -> tuple:
    last = ctx.last()
    data = last[(last["metric"] == metric) & last["group"].isin(list(groups))]
    if data.empty:
        return None, None, None
    order = [c for c in ctx.conditions if c in set(data["condition"])]
    cols = [g for g in groups if g in set(data["group"])]
    pivot = {k: data.pivot(index="condition", columns="group", values=k).loc[order, cols]
             for k in ("mean", "ci_low", "ci_high")}  # fmt: skip
    return pivot["mean"], pivot["ci_low"], pivot["ci_high"]


def _bars(ctx: Context, spec: GroupBars, path: Path) -> Path | None:
    table, lo, hi = _last_table(ctx, spec.metric, spec.groups)
    if table is None:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(table) + 3), 4.5))
    width = 0.8 / max(1, len(table.columns))
    x = np.arange(len(table))
    for i, group in enumerate(table.columns):
        err = np.nan_to_num(np.vstack([table[group] - lo[group], hi[group] - table[group]]))
        ax.bar(x + i * width, table[group], width, yerr=err, capsize=2, label=group)
    ax.set_xticks(x + width * (len(table.columns) - 1) / 2, table.index, rotation=20,
                  ha="right", fontsize=8)  # fmt: skip
    ax.set_ylabel(spec.ylabel)
    ax.set_xlabel("condition (card · arm)")
    ax.set_title(spec.title, fontsize=11)
    ax.legend(fontsize=8, ncol=2, title="group", title_fontsize=8)
    return _finish(fig, path)


def _heatmap(ctx: Context, spec: Heatmap, path: Path) -> Path | None:
    table, _, _ = _last_table(ctx, spec.metric, spec.groups)
    if table is None:
        return None
    from matplotlib.colors import Normalize, TwoSlopeNorm

    plt = pyplot()
    values = table.to_numpy(float)
    if "impact" in spec.metric:  # ratios: red below the four-fifths line, blue above
        cmap, norm = plt.get_cmap("RdBu"), TwoSlopeNorm(vmin=0.0, vcenter=0.8, vmax=1.0)
    else:
        cmap, norm = plt.get_cmap("Reds"), Normalize(vmin=0.0, vmax=max(np.nanmax(values), 1e-9))
    fig, ax = plt.subplots(figsize=(max(8, 0.75 * len(table.columns) + 4), 0.4 * len(table) + 2))
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        shade = norm(value) if np.isfinite(value) else 0.5
        dark = shade > 0.8 or (shade < 0.2 and "impact" in spec.metric)
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(table)), table.index, fontsize=8)
    ax.set_xlabel("group")
    ax.set_title(spec.title, fontsize=11)
    fig.colorbar(image, ax=ax, label=spec.label)
    return _finish(fig, path)


def _over_time(ctx: Context, spec: OverTime, path: Path) -> Path | None:
    data = ctx.summary[
        (ctx.summary["metric"] == spec.metric) & ctx.summary["group"].isin(list(spec.groups))
    ]
    if data.empty or data["step"].nunique() < 2:
        return None
    plt = pyplot()
    labels = ctx.runs.drop_duplicates("condition").set_index("condition")[["card", "arm"]]
    conditions = [c for c in ctx.conditions if spec.arm is None
                  or labels.loc[c, "arm"] == spec.arm]  # fmt: skip
    if spec.panels == "card":
        panels = [[c for c in conditions if labels.loc[c, "card"] == card]
                  for card in dict.fromkeys(labels.loc[conditions, "card"])]  # fmt: skip
        titles = list(dict.fromkeys(labels.loc[conditions, "card"]))
    elif spec.panels == "condition":
        panels, titles = [[c] for c in conditions], conditions
    else:
        panels, titles = [conditions], [None]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.3 * columns + 2.5, 3.6 * rows),
                             sharey=True, squeeze=False)  # fmt: skip
    arms = list(dict.fromkeys(labels["arm"]))
    styles = ("-", "--", ":", "-.")
    for ax, members, title in zip(axes.flat, panels, titles):
        # a card's panel holding grid points (several conditions of one arm): a line
        # each, named by its arm and grid point, as a colour of its own
        gridded = len(members) > len({labels.loc[c, "arm"] for c in members})
        for i, condition in enumerate(members):
            for k, (group, style) in enumerate(zip(spec.groups, styles * len(spec.groups))):
                g = data[(data["condition"] == condition) & (data["group"] == group)]
                g = g.sort_values("step")
                if spec.panels == "condition":
                    colour, name = f"C{k}", group
                elif spec.panels == "card" and gridded:
                    colour = f"C{i % 10}"
                    name = condition.removeprefix(f"{labels.loc[condition, 'card']} · ")
                elif spec.panels == "card":
                    colour = f"C{arms.index(labels.loc[condition, 'arm'])}"
                    name = labels.loc[condition, "arm"]
                else:
                    colour, name = f"C{i}", condition
                if spec.panels != "condition" and len(spec.groups) > 1:
                    name = f"{name}: {group}"
                else:
                    style = "-" if spec.panels == "condition" else style
                ax.plot(g["step"], g["mean"], style, color=colour, label=name)
                ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colour, alpha=0.12)
        if spec.line is not None:
            ax.axhline(spec.line, color="k", lw=0.6)
        ax.set_xlabel(spec.xlabel)
        if title is not None:
            ax.set_title(title, fontsize=8)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(spec.ylabel)
    if spec.panels == "card" and any(
        len(m) > len({labels.loc[c, "arm"] for c in m}) for m in panels
    ):  # each panel names its own lines
        for ax, _ in zip(axes.flat, panels):
            ax.legend(fontsize=6, loc="upper left", frameon=False)
    else:
        axes.flat[min(len(panels), columns) - 1].legend(
            fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
        )
    fig.suptitle(spec.title, fontsize=11)
    return _finish(fig, path)
