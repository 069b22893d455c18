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


def reference_card(card):
    """The reference of the likelihood-ratio attack on ``card``: the same card (same
    recipe, defence and privacy) with ``people.stand_ins``, so that its corpus differs
    only in whose records it holds; named ``NAME_reference``. A one-line `SpecError`
    where the name lists cannot make the stand-ins too."""
    data = card.model_dump(mode="json")
    data["name"] = f"{card.name}_reference"
    data["people"]["stand_ins"] = True
    try:
        return type(card).model_validate(data)
    except ValueError as exc:
        raise SpecError(f"--reference: {card.name}: {str(exc).splitlines()[-1].strip()}") from None


def check_cards(cards: list, seeds: list[int], reference: bool = False) -> None:
    """Before any forge: every card at every seed must name each condition in some
    member's record (a model never shown a condition cannot be asked for it), and with
    ``reference`` its reference card must be possible (`reference_card`); a one-line
    `SpecError` otherwise."""
    if reference:
        for card in cards:
            reference_card(card)
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


def dp_auc_bound(epsilon, copies) -> np.ndarray:
    """The highest membership AUC an (ε, δ)-DP training allows against a person whose
    record it saw ``copies`` times, δ aside: DP bounds every test's true-positive rate
    by e^ε times its false-positive rate (and the converse), whose best ROC curve has
    area e^ε / (1 + e^ε); k copies of one record are a group of k records, private at
    kε (group privacy; δ grows too). NaN for held-out people (0 copies); 1 without DP
    (ε infinite): DP-SGD's ε is per sentence, so a record written 16 times at ε = 1
    is promised almost nothing (AUC ≤ 1 − 1e-7)."""
    with np.errstate(over="ignore", invalid="ignore"):  # 0 copies × ∞: NaN, as returned
        bound = 1 / (1 + np.exp(-np.asarray(copies, float) * np.asarray(epsilon, float)))
    return np.where(np.asarray(copies) > 0, bound, np.nan)


def forge_folder(out, card) -> Path:
    """Where the study keeps ``card``'s forge at its seed: ``out/forges/NAME-seedS``."""
    return Path(out) / "forges" / f"{card.name}-seed{card.seed}"


def study(cards: list, seeds: list[int], out, progress=None, on_forge=None,
          reference: bool = False) -> dict:  # fmt: skip
    """Forge every card at every forging seed into ``out/forges/NAME-seedS`` (reused
    where already there), read every planted person back (`read_people`), and write
    ``out/people.csv`` (one row per person and forge), ``out/leakage.csv``
    (`leakage_table`), ``out/leakage_by_group.csv`` (the same per race of the person,
    members against held-out people of their race), ``out/utility.csv`` (per forge:
    held-out LM accuracy, ε and δ where DP-trained, sentences removed by a defence) and
    ``out/leakage.png``.
    ``on_forge(card)``: a progress callback for a forge about to be trained (None:
    none). ``reference``: every card's `reference_card` is forged at every seed too,
    and its people also read by the likelihood ratio against it (``attack``
    ``reference``; otherwise ``population``). Returns the three frames and the
    figure's path."""
    from uim_sim.lfm.engine import get_engine

    out = Path(out)
    check_cards(cards, seeds, reference)
    people, utility = [], []

    def forged(card, seed):
        seeded = card.model_copy(update={"seed": seed})
        folder = forge_folder(out, seeded)
        forge(seeded, folder, on_forge(seeded) if on_forge else None)
        return seeded, folder, get_engine(str(folder))

    for card in cards:
        for seed in seeds:
            seeded, folder, engine = forged(card, seed)
            manifest = json.loads((folder / "manifest.json").read_text())
            causal = engine.checkpoint.kind == "causal_lm"
            read = read_people(engine, seeded, causal)
            if read.empty:
                raise SpecError(
                    f"{card.name} (seed {seed}): the ten conditions are not all single tokens "
                    f"of {folder}'s vocabulary (its corpus names too few people to hold every "
                    "condition, or the tokenizer splits them); nothing to read back"
                )
            people.append(read.assign(card=card.name, attack="population", forge=seed))
            if reference:
                against = forged(reference_card(card), seed)[2]
                lr = read_people(engine, seeded, causal, reference=against)
                people.append(lr.assign(card=card.name, attack="reference", forge=seed))
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
    utility_frame = pd.DataFrame(utility)
    epsilon = utility_frame.groupby("card")["epsilon"].max()
    table = leakage_table(people_frame)
    table["epsilon"] = table["card"].map(epsilon)
    table["auc_bound"] = dp_auc_bound(table["epsilon"], table["count"])
    out.mkdir(parents=True, exist_ok=True)
    people_frame.to_csv(out / "people.csv", index=False)
    table.to_csv(out / "leakage.csv", index=False)
    leakage_table(people_frame, by=("group",)).to_csv(out / "leakage_by_group.csv", index=False)
    utility_frame.to_csv(out / "utility.csv", index=False)
    figure = draw_leakage(table, out / "leakage.png")
    return {"people": people_frame, "table": table, "utility": utility_frame, "figure": figure}


def draw_leakage(table: pd.DataFrame, path):
    """Membership AUC, exposure and attribute recovery against duplication count, one
    line per card with its 95 % intervals, chance marked; a row of panels per attack
    (the population calibration, and the reference model where the study forged one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = list(dict.fromkeys(table["attack"]))
    fig, axes = plt.subplots(len(attacks), 3, figsize=(13, 3.8 * len(attacks)), squeeze=False)
    ranks = np.arange(1, len(CONDITIONS) + 1)  # exposure of a rank drawn uniformly
    uniform = float(np.log2(len(CONDITIONS)) - np.log2(ranks).mean())
    panels = (("auc", "membership AUC", 0.5), ("exposure", "exposure (bits)", uniform),
              ("recovered", "condition recovered", 1 / len(CONDITIONS)))  # fmt: skip
    for row, attack in zip(axes, attacks):
        frame = table[(table["attack"] == attack) & (table["count"] > 0)]
        cards = list(dict.fromkeys(frame["card"]))
        for ax, (what, ylabel, chance) in zip(row, panels):
            for i, card in enumerate(cards):
                rows = frame[frame["card"] == card]
                dodge = 2 ** (0.06 * (i - (len(cards) - 1) / 2))  # side by side, log axis
                err = [rows[what] - rows[f"{what}_low"], rows[f"{what}_high"] - rows[what]]
                ax.errorbar(rows["count"] * dodge, rows[what], yerr=err, marker="o", capsize=3,
                            label=card)  # fmt: skip
            ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("copies of the record in the corpus (k)")
            ax.set_ylabel(ylabel)
        row[0].set_title("calibrated against the population" if attack == "population"
                         else "likelihood ratio against a reference model", loc="left")  # fmt: skip
        row[0].legend(fontsize=8)
    fig.suptitle("What an attacker reads back, by duplication (95 % intervals over people)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
