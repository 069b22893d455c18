"""`uim-sim leakage`: the privacy study over forging seeds. Every card is forged at
every seed (reused where already there), every planted person read back
(`uim_sim.understand.leakage`), and the tables and figure written beside each forge's
utility and privacy budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.schema import SpecError
from uim_sim.understand.corpus import planted_people
from uim_sim.understand.forge import forge
from uim_sim.understand.leakage import leakage_table, read_people
from uim_sim.vocab.people import CONDITIONS


def check_conditions(cards: list, seeds: list[int]) -> None:
    """Before any forge: every card at every seed must name each condition in some
    member's record (a model never shown a condition cannot be asked for it); a
    one-line `SpecError` otherwise."""
    for card in cards:
        for seed in seeds:
            members, _ = planted_people(card.model_copy(update={"seed": seed}))
            missing = set(CONDITIONS) - {c for group in members.values() for _, c in group}
            if missing:
                raise SpecError(
                    f"{card.name} (seed {seed}): no member's record names {sorted(missing)}: "
                    "a model never shown a condition cannot be asked for it; plant more "
                    "people (people.per_count) or pick other seeds"
                )


def study(cards: list, seeds: list[int], out, progress=None, on_forge=None) -> dict:
    """Forge every card at every forging seed into ``out/forges/NAME-seedS`` (reused
    where already there), read every planted person back (`read_people`), and write
    ``out/people.csv`` (one row per person and forge), ``out/leakage.csv``
    (`leakage_table`), ``out/utility.csv`` (per forge: held-out LM accuracy, ε and δ
    where DP-trained, sentences removed by a defence) and ``out/leakage.png``.
    ``on_forge(card)``: a progress callback for a forge about to be trained (None:
    none). Returns the three frames and the figure's path."""
    from uim_sim.lfm.engine import get_engine

    out = Path(out)
    check_conditions(cards, seeds)
    people, utility = [], []
    for card in cards:
        for seed in seeds:
            seeded = card.model_copy(update={"seed": seed})
            folder = out / "forges" / f"{card.name}-seed{seed}"
            forge(seeded, folder, on_forge(seeded) if on_forge else None)
            manifest = json.loads((folder / "manifest.json").read_text())
            engine = get_engine(str(folder))
            read = read_people(engine, seeded, causal=engine.checkpoint.kind == "causal_lm")
            if read.empty:
                raise SpecError(
                    f"{card.name} (seed {seed}): the ten conditions are not all single tokens "
                    f"of {folder}'s vocabulary (its corpus names too few people to hold every "
                    "condition, or the tokenizer splits them); nothing to read back"
                )
            people.append(read.assign(card=card.name, forge=seed))
            check, dp = manifest["verification"], manifest.get("privacy", {})
            removed = manifest.get("defence", {}).get("removed_sentences", 0)
            utility.append({"card": card.name, "forge": seed,
                            "lm_accuracy": check.get("lm_accuracy", np.nan),
                            "epsilon": dp.get("epsilon", np.inf), "delta": dp.get("delta"),
                            "sentences": manifest["corpus"]["sentences"],
                            "removed_sentences": removed})  # fmt: skip
            if progress:
                progress()
    people_frame = pd.concat(people, ignore_index=True)
    table = leakage_table(people_frame)
    utility_frame = pd.DataFrame(utility)
    out.mkdir(parents=True, exist_ok=True)
    people_frame.to_csv(out / "people.csv", index=False)
    table.to_csv(out / "leakage.csv", index=False)
    utility_frame.to_csv(out / "utility.csv", index=False)
    figure = draw_leakage(table, out / "leakage.png")
    return {"people": people_frame, "table": table, "utility": utility_frame, "figure": figure}


def draw_leakage(table: pd.DataFrame, path):
    """Membership AUC and exposure against duplication count, one line per card, with
    the 95 % intervals; chance marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (("auc", "membership AUC", 0.5), ("exposure", "exposure (bits)", None),
              ("recovered", "condition recovered", 0.1))  # fmt: skip
    cards = list(dict.fromkeys(table["card"]))
    for ax, (what, label, chance) in zip(axes, panels):
        for i, (card, rows) in enumerate(table.groupby("card", sort=False)):
            rows = rows[rows["count"] > 0]
            dodge = 2 ** (0.06 * (i - (len(cards) - 1) / 2))  # side by side on a log axis
            err = [rows[what] - rows[f"{what}_low"], rows[f"{what}_high"] - rows[what]]
            ax.errorbar(rows["count"] * dodge, rows[what], yerr=err, marker="o", capsize=3,
                        label=card)  # fmt: skip
        if chance is None:  # exposure of a rank drawn uniformly among the ten conditions
            ranks = np.arange(1, len(CONDITIONS) + 1)
            chance = float(np.log2(len(CONDITIONS)) - np.log2(ranks).mean())
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("copies of the record in the corpus (k)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("What an attacker reads back, by duplication (95 % intervals over people)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
