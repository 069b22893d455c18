"""Label noise in pre-training and what it does downstream (Chen et al., ICLR 2024:
"Understanding and Mitigating the Label Noise in Pre-training on Downstream Tasks").

The design: forge a corpus card with a supervised part (toxicity labels on the
moderation sentences, ``corpora/label_noise.yaml``) at several label-noise levels,
each with several forging seeds, then read every checkpoint's frozen features with
few-shot linear probes (`uim_sim.understand.fewshot`: each carries a label to wording
it was not trained on):

- in domain (ID): toxic vs benign comments about identities, in wording the corpus
  never holds;
- out of domain, task (OOD): which of the four occupations a resume's skills belong
  to, a task no pre-training label touched (its skills co-occur only in resumes and
  job ads of the masked-language-modelling part);
- out of domain, style: the ID probes scored on the same held-out texts rendered in a
  dialect the corpus never holds (the same task under a shift);
- the feature spectrum of Chen et al.: SVE (singular value entropy) and LSVR (largest
  singular value ratio) of the ID features (and of the OOD features).

`DESIGNS` are the ways the study is run (how the noise is planted: per copy or per
distinct text; the lexicon; the model's size; the weight of the labels), each testing
one explanation of why the first design did not show the paper's pattern.

Forging seeds are the unit: the same seed at two noise levels gives the same
sentences, initialisation and masking, with only the flipped labels differing, so
changes against the clean forge are paired by seed (mean and Student-t interval over
seeds, `uim_sim.metrics.stats.mean_interval`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from uim_sim import builtin
from uim_sim.lfm.engine import get_engine
from uim_sim.metrics.stats import mean_interval
from uim_sim.schema import SpecError
from uim_sim.understand.cards import CorpusCard, load_corpus_card, with_changes
from uim_sim.understand.corpus import generate
from uim_sim.understand.fewshot import (
    few_shot_accuracies,
    few_shot_accuracy,
    in_domain_task,
    out_of_domain_task,
)
from uim_sim.understand.forge import cached, forge
from uim_sim.understand.probe import spectrum
from uim_sim.vocab.identity import to_dialect

DEFAULT_CARD = Path("corpora/label_noise.yaml")  # here, else the package's (uim_sim.builtin)
Progress = Callable[[str], None]

SUMMARY_METRICS = ("id_accuracy", "ood_accuracy", "sve", "lsvr")
# shown where the table has it (tables written before it existed do not)
STYLE = "style_accuracy"
HEADS = {"id_accuracy": "ID accuracy", "ood_accuracy": "OOD accuracy (task)",
         STYLE: "OOD accuracy (style)", "sve": "SVE", "lsvr": "LSVR"}  # fmt: skip


def _metrics(table: pd.DataFrame) -> tuple[str, ...]:
    """The summary's metrics: `SUMMARY_METRICS`, and the style probe where measured."""
    if STYLE not in table:
        return SUMMARY_METRICS
    return (*SUMMARY_METRICS[:2], STYLE, *SUMMARY_METRICS[2:])


def _override(card: CorpusCard, changes: dict[str, Any], source: str) -> CorpusCard:
    """``card`` with dotted keys changed (e.g. {"knobs.label_noise": 0.1}), validated."""
    return with_changes(card.model_dump(mode="json"), changes, source)


def _base_card(card: Path | CorpusCard, overrides: dict[str, Any] | None) -> CorpusCard:
    if isinstance(card, CorpusCard):
        base = _override(card, overrides or {}, f"card {card.name}")
    elif not builtin.resolve("corpora", card).is_file():
        raise SpecError(f"card: {card}: no such file (nor a built-in corpus card of that name)")
    else:
        base = load_corpus_card(Path(card), overrides)
    if not base.supervised:
        raise SpecError(f"card {base.name}: supervised is false; the study needs labels to flip")
    return base


def _check(noise: Sequence[float], seeds: Sequence[int], shots: int, draws: int) -> None:
    if not len(noise):
        raise ValueError("noise: give at least one label-noise level")
    if any(not 0.0 <= float(x) <= 1.0 for x in noise):
        raise ValueError(f"noise: each level must lie in [0, 1]; got {list(noise)}")
    if len(set(map(float, noise))) < len(noise):
        raise ValueError(f"noise: levels repeat: {list(noise)}")
    if not len(seeds):
        raise ValueError("seeds: give at least one forging seed")
    if any(int(s) != s or s < 0 for s in seeds) or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds: distinct non-negative integers needed; got {list(seeds)}")
    if shots < 1 or draws < 1:
        raise ValueError(f"shots and draws must be at least 1; got shots={shots}, draws={draws}")


def _forge_in_worker(card: dict[str, Any], folder: str) -> float:
    """Forge one card with one torch thread; returns the seconds it took."""
    # transformers' masking collator draws from its seed only in a process named
    # MainProcess (it guards DataLoader workers, which would repeat one stream); a
    # worker here forges one whole card from the card's seed, as the main process would
    multiprocessing.current_process().name = "MainProcess"
    start = time.perf_counter()
    forge(CorpusCard.model_validate(card), Path(folder), threads=1)
    return time.perf_counter() - start


def forge_all(
    jobs: Sequence[tuple[CorpusCard, Path, str]],
    workers: int | None = None,
    progress: Progress | None = None,
) -> None:
    """Forge every (card, folder, label) not yet cached, one torch thread per forge and
    ``workers`` forges at a time in worker processes (default: one per core); cached
    ones are reused (their verification refreshed if stale). One thread per forge:
    on a shared machine two threads can be ten times slower (`forge`)."""
    say = progress or (lambda line: None)
    pending = []
    for i, (card, folder, label) in enumerate(jobs, 1):
        if cached(card, folder):
            forge(card, folder)
            say(f"[{i}/{len(jobs)}] {label}: reused {folder}")
        else:
            pending.append((f"[{i}/{len(jobs)}] {label}", card.model_dump(mode="json"), folder))
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending)))
    if workers == 1:
        for name, card, folder in pending:
            say(f"{name}: forging {folder}")
            say(f"{name}: forged in {_forge_in_worker(card, str(folder)):.0f} s")
        return
    say(f"forging {len(pending)} checkpoints, {workers} at a time")
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            pool.submit(_forge_in_worker, card, str(folder)): (name, folder)
            for name, card, folder in pending
        }
        for future in as_completed(futures):
            name, folder = futures[future]
            say(f"{name}: forged {folder} in {future.result():.0f} s")


def label_noise_study(
    noise: Sequence[float] = (0.0, 0.1, 0.3),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    cache_dir: Path = Path("results/label_noise/checkpoints"),
    progress: Progress | None = None,
    *,
    card: Path | CorpusCard = DEFAULT_CARD,
    overrides: dict[str, Any] | None = None,
    shots: int = 8,
    draws: int = 50,
    untrained: bool = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """Forge ``card`` at every label-noise level × forging seed (cached under
    ``cache_dir`` by the card's content hash; ``workers`` forges at a time, default one
    per core) and probe each checkpoint.

    One row per noise level × seed: ``id_accuracy`` and ``ood_accuracy`` (few-shot
    probes on held-out wording, module docstring), ``sve``/``lsvr`` of the ID features
    and ``sve_ood``/``lsvr_ood`` of the OOD ones, ``flipped_share`` (the share of the
    corpus's toxicity labels that differ from the clean corpus of the same seed), the
    forge's ``final_loss`` and ``forge_seconds``, and the ``checkpoint`` folder. With
    ``untrained``, ``id_accuracy_untrained``/``ood_accuracy_untrained``: the same probes
    on the seed's encoder after one training step (its tokenizer and initialisation),
    the floor that tells what pre-training added. ``overrides``: dotted card keys
    (e.g. {"training.steps": 50}); ``progress`` receives one line per stage.
    """
    _check(noise, seeds, shots, draws)
    base = _base_card(card, overrides)
    cache_dir = Path(cache_dir)
    tasks = in_domain_task(base.comments), out_of_domain_task()

    def folder(the_card: CorpusCard) -> Path:
        return cache_dir / f"{the_card.name}-{the_card.fingerprint()[:12]}"

    cards: dict[tuple[int, float | None], CorpusCard] = {}
    for seed in seeds:
        seeded = _override(base, {"seed": int(seed)}, base.name)
        for level in noise:
            noisy = {"knobs.label_noise": float(level)}
            cards[int(seed), float(level)] = _override(seeded, noisy, base.name)
    if untrained:  # last: the quickest forges fill the end of the queue
        for seed in seeds:
            floor = {"seed": int(seed), "knobs.label_noise": 0.0, "training.steps": 1}
            cards[int(seed), None] = _override(base, floor, base.name)
    jobs = [
        (c, folder(c), f"seed {s}, " + ("untrained" if x is None else f"label noise {x:.0%}"))
        for (s, x), c in cards.items()
    ]
    forge_all(jobs, workers, progress)

    engines = {key: get_engine(str(folder(c))) for key, c in cards.items()}

    styled = [to_dialect(text) for text in tasks[0].texts]

    def probe(key: tuple[int, float | None]) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        id_x, ood_x = (engines[key].embed(list(task.texts)) for task in tasks)
        accuracy = {
            "id_accuracy": few_shot_accuracy(id_x, tasks[0], shots, draws),
            "ood_accuracy": few_shot_accuracy(ood_x, tasks[1], shots, draws),
            # the same probes, scored on the test texts in a style the corpus lacks
            "style_accuracy": few_shot_accuracies(
                id_x, tasks[0], {"": None}, shots, draws, scored=engines[key].embed(styled)
            )[""],
        }
        return id_x, ood_x, accuracy

    rows = []
    # one thread for torch and BLAS while probing (threadpoolctl limits the libraries
    # loaded by now): measured on 2 cores under a load of ~6, embedding the two tasks
    # took 10.8 s with two threads and 0.3 s with one; the accuracies are the same
    with threadpool_limits(limits=1):
        for seed in seeds:
            clean = _override(base, {"seed": int(seed), "knobs.label_noise": 0.0}, base.name)
            clean_labels = np.array([y for _, y in generate(clean).labelled])
            floor: dict[str, float] = {}
            if untrained:
                _, _, accuracy = probe((int(seed), None))
                floor = {f"{k}_untrained": v for k, v in accuracy.items()}
            for level in noise:
                the_card = cards[int(seed), float(level)]
                if progress:
                    progress(f"probing seed {seed}, label noise {float(level):.0%}")
                labels = np.array([y for _, y in generate(the_card).labelled])
                id_x, ood_x, accuracy = probe((int(seed), float(level)))
                manifest = json.loads((folder(the_card) / "manifest.json").read_text())
                id_spectrum, ood_spectrum = spectrum(id_x), spectrum(ood_x)
                rows.append(
                    {
                        "label_noise": float(level),
                        "seed": int(seed),
                        **accuracy,
                        "sve": id_spectrum["sve"],
                        "lsvr": id_spectrum["lsvr"],
                        "sve_ood": ood_spectrum["sve"],
                        "lsvr_ood": ood_spectrum["lsvr"],
                        **floor,
                        "flipped_share": float(np.mean(labels != clean_labels)),
                        "final_loss": manifest["training"]["final_loss"],
                        "forge_seconds": manifest["forge_seconds"],
                        "checkpoint": str(folder(the_card)),
                    }
                )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Design:
    """One way to run the study: changes to the card (dotted keys), and the
    explanation of the first design's null result that it tests."""

    key: str
    changes: dict[str, Any]
    tests: str


LARGER = {"model.hidden": 128, "model.layers": 4, "model.heads": 4, "model.intermediate": 512}
DESIGNS = (
    Design("per_copy", {}, "the first design: every copy of a labelled text flipped on its "
           "own draw (96 distinct texts, median 18 copies)"),
    Design("per_text", {"label_noise_per": "text"}, "H1, label smoothing: independent flips "
           "leave most texts with both labels; fixed wrong labels per text are the paper's noise"),
    Design("per_text_wide", {"label_noise_per": "text", "comments": "wide"}, "H2, too few "
           "texts: the wide comment lexicon gives ~900 distinct labelled texts, not 96"),
    Design("per_text_larger", {"label_noise_per": "text", **LARGER}, "H3, too small a "
           "model: 128 wide, 4 layers, intermediate 512 (12× the encoder layers' parameters)"),
    Design("per_text_supervised", {"label_noise_per": "text", "training.supervised_weight": 5.0},
           "H4, the labels shape too little of the features: the supervised loss weighted "
           "5× against masked language modelling"),
)  # fmt: skip


def label_noise_designs(
    designs: Sequence[Design] = DESIGNS,
    noise: Sequence[float] = (0.0, 0.1, 0.3),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    cache_dir: Path = Path("results/label_noise/checkpoints"),
    progress: Progress | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """`label_noise_study` once per design (its ``changes`` over ``overrides``), one
    table with a ``design`` column; checkpoints the designs share are forged once."""
    if not designs or len({d.key for d in designs}) < len(designs):
        raise ValueError(f"designs: give at least one, with distinct keys; got {designs}")
    overrides = kwargs.pop("overrides", None) or {}
    tables = []
    for design in designs:
        if progress:
            progress(f"design {design.key}: {design.tests}")
        table = label_noise_study(noise, seeds, cache_dir, progress,
                                  overrides={**overrides, **design.changes}, **kwargs)  # fmt: skip
        tables.append(table.assign(design=design.key))
    return pd.concat(tables, ignore_index=True)


def _paired_change(table: pd.DataFrame, metric: str, level: float) -> np.ndarray:
    """Per seed: ``metric`` at ``level`` minus at noise 0 (seeds with both only)."""
    wide = table.pivot_table(index="seed", columns="label_noise", values=metric)
    if 0.0 not in wide or level not in wide:
        return np.array([])
    return (wide[level] - wide[0.0]).dropna().to_numpy()


def summarize(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per noise level: mean and t-interval over forging seeds of ID and OOD accuracy,
    SVE and LSVR, and of each one's change against the clean forge of the same seed."""
    missing = {"label_noise", "seed", *SUMMARY_METRICS} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}: not a label_noise_study table")
    rows = []
    for noise, group in table.groupby("label_noise", sort=True):
        row: dict[str, float] = {"label_noise": float(noise), "seeds": group["seed"].nunique()}
        for metric in _metrics(table):
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = mean_interval(
                group[metric], level
            )
            change = _paired_change(table, metric, float(noise)) if noise else np.array([])
            mean, lo, hi = mean_interval(change, level)
            row[f"{metric}_change"], row[f"{metric}_change_lo"] = mean, lo
            row[f"{metric}_change_hi"] = hi
        for metric in (f"{m}_untrained" for m in ("id_accuracy", "ood_accuracy", STYLE)):
            if metric in group:
                row[metric] = float(group[metric].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _direction(lo: float, hi: float) -> str:
    if not np.isfinite(lo) or not np.isfinite(hi):
        return "no interval (one seed)"
    if lo > 0:
        return "rises"
    if hi < 0:
        return "falls"
    return "holds (no change told from 0)"


@dataclass(frozen=True)
class Verdict:
    """The paper's pattern at the slightest noise level: ID holds (its paired change's
    interval reaches 0 or lies above it) while OOD falls (interval below 0)."""

    slight_noise: float
    id_holds: bool | None
    ood_falls: bool | None
    sve_rises: bool | None
    reproduced: bool | None
    lines: tuple[str, ...]
    style_falls: bool | None = None  # the ID probe on texts in a style the corpus lacks


def verdict(table: pd.DataFrame, level: float = 0.95) -> Verdict:
    """Spearman correlation with noise across all checkpoints, paired changes against
    the clean forge per level, and the paper's pattern checked at the slightest noise."""
    summary = summarize(table, level)
    if 0.0 not in set(summary["label_noise"]) or len(summary) < 2:
        raise ValueError("verdict: needs noise level 0 and at least one other level")
    lines = []
    for metric in _metrics(table):
        if table[metric].nunique() < 2:
            lines.append(f"{metric} vs label noise: constant over {len(table)} checkpoints")
            continue
        rho, p = stats.spearmanr(table["label_noise"], table[metric])
        lines.append(
            f"{metric} vs label noise: Spearman {rho:+.2f} (p = {p:.2g}) over "
            f"{len(table)} checkpoints"
        )
    for _, row in summary[summary["label_noise"] > 0].iterrows():
        parts = []
        for m in _metrics(table):
            mean, lo, hi = (row[f"{m}_change{end}"] for end in ("", "_lo", "_hi"))
            parts.append(f"{m} {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] {_direction(lo, hi)}")
        lines.append(
            f"{row['label_noise']:.0%} noise vs clean, paired over {int(row['seeds'])} seeds: "
            + "; ".join(parts)
        )
    slight = summary[summary["label_noise"] > 0].iloc[0]

    def known(lo: float, hi: float) -> bool:
        return bool(np.isfinite(lo) and np.isfinite(hi))

    def check(metric: str, test: Callable[[float, float], bool]) -> bool | None:
        lo, hi = slight[f"{metric}_change_lo"], slight[f"{metric}_change_hi"]
        return bool(test(lo, hi)) if known(lo, hi) else None

    id_holds = check("id_accuracy", lambda lo, hi: hi >= 0)
    ood_falls = check("ood_accuracy", lambda lo, hi: hi < 0)
    style_falls = check(STYLE, lambda lo, hi: hi < 0) if STYLE in table else None
    sve_rises = check("sve", lambda lo, hi: lo > 0)
    hurt = ood_falls if style_falls is None else bool(ood_falls or style_falls)
    reproduced = None if id_holds is None or ood_falls is None else id_holds and hurt

    def word(flag: bool | None) -> str:
        return "n/a (one seed)" if flag is None else ("yes" if flag else "no")

    style = f"; OOD (style) falls: {word(style_falls)}" if STYLE in table else ""
    lines.append(
        f"At {slight['label_noise']:.0%} noise: ID holds (interval reaches 0 or above): "
        f"{word(id_holds)}; OOD (task) falls (interval below 0): {word(ood_falls)}{style}; "
        f"SVE rises: {word(sve_rises)}. The paper's pattern (ID kept, OOD hurt): "
        f"{'reproduced' if reproduced else 'not reproduced' if reproduced is False else 'n/a'}"
    )
    if int(slight["seeds"]) < 5:
        lines.append(
            f"With {int(slight['seeds'])} seeds the t-intervals are wide: 'holds' means no "
            "change could be told from 0, not that there is none"
        )
    return Verdict(float(slight["label_noise"]), id_holds, ood_falls, sve_rises, reproduced,
                   tuple(lines), style_falls)  # fmt: skip


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table: mean [95 % interval] over seeds per noise level."""

    def cell(row: pd.Series, metric: str, digits: int = 3) -> str:
        mean, lo, hi = row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"]
        if not np.isfinite(lo):
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    metrics = _metrics(summary)
    head = "| label noise | seeds | " + " | ".join(HEADS[m] for m in metrics) + " |"
    lines = [head, "|---|---|" + "---|" * len(metrics)]
    for _, row in summary.iterrows():
        cells = [cell(row, m) for m in metrics]
        lines.append(
            f"| {row['label_noise']:.0%} | {int(row['seeds'])} | " + " | ".join(cells) + " |"
        )
    if "id_accuracy_untrained" in summary:
        row = summary.iloc[0]
        floors = [f"{row[f'{m}_untrained']:.3f}" if f"{m}_untrained" in row else ""
                  for m in metrics]  # fmt: skip
        lines.append(f"| untrained (1 step) | {int(row['seeds'])} | " + " | ".join(floors) + " |")
    return "\n".join(lines)
