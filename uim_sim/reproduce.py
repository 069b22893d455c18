"""`uim-sim reproduce`: each world's reference mode held against the published study
it follows, the published number beside the sandbox's own with its 95 % interval
over seeds, and a verdict.

Every study is a scenario in ``scenarios/reproduce/`` run through the ordinary runner
(resumable: a second call reuses finished runs) into ``OUT/<study>``, or, for the
label-noise study, a function of `uim_sim.understand.label_noise`. A study's
findings are read off the result tables by the functions here; nothing is typed in
but the published numbers, each with its source.

Verdicts: ``in interval`` / ``outside interval`` where the sandbox can land on the
published value itself (the published number falls in the sandbox's 95 % interval or
not); ``direction agrees`` / ``direction differs`` where the templates, sizes or
models differ from the study's so only the sign can be held against it; a direction
whose interval spans zero is marked ``(not significant)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim import builtin
from uim_sim.metrics.stats import mean_interval
from uim_sim.report.load import load_runs

SCENARIOS = builtin.FOLDERS["scenarios"] / "reproduce"  # shipped in the package


@dataclass(frozen=True)
class Finding:
    """One published number (or direction) beside the sandbox's."""

    study: str
    quantity: str
    published: str  # as the study reports it
    mean: float
    low: float
    high: float
    verdict: str
    note: str = ""


@dataclass(frozen=True)
class Study:
    """A published study the sandbox reproduces: a scenario run and its read-out."""

    key: str
    citation: str
    read: Callable[[Path], list[Finding]]
    scenario: str | None = None  # file in scenarios/reproduce (None: ``compute``)
    compute: Callable[[Path, Callable[[str], None] | None], None] | None = None
    what: str = ""


# ------------------------------------------------------------------ reading results


@dataclass
class Results:
    """A result folder's last-step metrics, one value per run."""

    runs: pd.DataFrame
    last: pd.DataFrame = field(repr=False)

    @classmethod
    def load(cls, out: Path) -> Results:
        runs, metrics, _ = load_runs(out)
        last = metrics[metrics["step"] == metrics.groupby("run_id")["step"].transform("max")]
        return cls(runs, last.merge(runs, on="run_id"))

    def per_seed(self, metric: str, group: str = "", **where) -> pd.Series:
        """``metric[group]`` per replicate, for the runs matching ``where`` (run columns,
        e.g. arm="none", card=..., or grid keys as ``grid__KEY``)."""
        rows = self.last[(self.last["metric"] == metric) & (self.last["group"] == group)]
        for key, value in where.items():
            column = f"grid.{key.removeprefix('grid__')}" if key.startswith("grid__") else key
            rows = rows[rows[column] == value]
        return rows.groupby("replicate")["value"].mean()

    def interval(self, metric: str, group: str = "", **where) -> tuple[float, float, float]:
        return mean_interval(self.per_seed(metric, group, **where).to_numpy())

    def paired(self, metric: str, group: str, arm: dict, base: dict) -> tuple[float, float, float]:
        """Mean and interval of arm − base, seed by seed (common random numbers)."""
        a, b = self.per_seed(metric, group, **arm), self.per_seed(metric, group, **base)
        both = a.index.intersection(b.index)
        return mean_interval((a[both] - b[both]).to_numpy())


def in_interval(published: float, mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "not measured"
    if not np.isfinite(low):
        return "no interval"
    return "in interval" if low <= published <= high else "outside interval"


def direction(sign: int, mean: float, low: float, high: float) -> str:
    """Does ``mean`` have the published sign (+1 above zero, -1 below)?"""
    if not np.isfinite(mean):
        return "not measured"
    verdict = "direction agrees" if np.sign(mean) == sign else "direction differs"
    spans = np.isfinite(low) and low <= 0 <= high
    return f"{verdict} (not significant)" if spans else verdict


def _finding(study, quantity, published, values, verdict, note="") -> Finding:
    mean, low, high = values
    return Finding(study, quantity, published, mean, low, high, verdict, note)


# ------------------------------------------------------------------ the studies

BM = "Bertrand & Mullainathan 2004"


def read_bertrand_mullainathan(out: Path) -> list[Finding]:
    """Callback rates, their ratio and the quality gradients of a screener that learnt
    from callbacks drawn at the study's rates."""
    r = Results.load(out)
    findings = []
    for metric, group, quantity, published in (  # where the sandbox can land on the study
        ("callback_rate", "white", "callback rate, white names", "0.0965"),
        ("callback_rate", "black", "callback rate, black names", "0.0645"),
        ("impact_ratio", "black", "impact ratio black / white", "0.668"),
        ("quality_gradient", "white", "quality gradient (high / low), white", "1.27"),
        ("quality_gradient", "black", "quality gradient (high / low), black", "1.08"),
    ):
        values = r.interval(metric, group)
        verdict = in_interval(float(published), *values)
        findings.append(_finding(BM, quantity, published, values, verdict))
    white = r.per_seed("quality_gap", "white")
    black = r.per_seed("quality_gap", "black")
    values = mean_interval((white - black).dropna().to_numpy())
    findings.append(
        _finding(BM, "return to quality, white − black (callback points)", "+0.0178",
                 values, direction(+1, *values),
                 "flatter gradient for Black names: 2.29 vs 0.51 points")
    )  # fmt: skip
    return findings


WC = "Wilson & Caliskan 2024"


def read_wilson_caliskan(out: Path) -> list[Finding]:
    """Shares of paired comparisons won, embedding-retrieval screening (MiniLM)."""
    r = Results.load(out)
    white = r.interval("pairwise_win_share", "white")
    female = r.interval("pairwise_win_share", "female")
    return [
        _finding(WC, "share of pairs won by White names", "0.851 (of tests)", white,
                 direction(+1, white[0] - 0.5, white[1] - 0.5, white[2] - 0.5),
                 "above 0.5 favours White names"),
        _finding(WC, "share of pairs won by female names", "0.111 (of tests)", female,
                 direction(-1, female[0] - 0.5, female[1] - 0.5, female[2] - 0.5),
                 "below 0.5 favours male names"),
    ]  # fmt: skip


DIXON = "Dixon et al. 2018"
BORKAN = "Borkan et al. 2019"
TARGETS = ("gay", "lesbian", "muslim", "jewish", "black", "dialect")
OTHERS = ("christian", "white", "female", "male")


def read_dixon(out: Path) -> list[Finding]:
    """Dixon augmentation against none, paired by seed: FPED, FNED, overall AUC."""
    r = Results.load(out)
    base, arm = {"arm": "none"}, {"arm": "dixon_augmentation"}
    fped = r.paired("fped", "", arm, base)
    fned = r.paired("fned", "", arm, base)
    auc = r.paired("overall_auc", "", arm, base)
    auc_verdict = (
        "unchanged (within ±0.01)"
        if np.isfinite(auc[0]) and abs(auc[0]) < 0.01
        else f"changed by {auc[0]:+.3f}"
    )
    return [
        _finding(DIXON, "FPED: augmented − biased", "−21.2 (74.1 → 52.9, in %)", fped,
                 direction(-1, *fped), "the sandbox's FPED sums rates (0..1), not %"),
        _finding(DIXON, "FNED: augmented − biased", "−6.0 (36.7 → 30.7, in %)", fned,
                 direction(-1, *fned)),
        _finding(DIXON, "overall AUC: augmented − biased", "−0.001 (0.960 → 0.959)", auc,
                 auc_verdict),
    ]  # fmt: skip


def read_borkan(out: Path) -> list[Finding]:
    """Borkan's AUCs of the biased head (no mitigation): the identities its history
    over-represents among toxic comments against the others."""
    r = Results.load(out)
    base = {"arm": "none"}
    findings = []
    for metric, sign, label in (
        ("bpsn_auc", -1, "BPSN AUC"),
        ("bnsp_auc", +1, "BNSP AUC"),
        ("subgroup_auc", 0, "Subgroup AUC"),
    ):
        targets = pd.concat([r.per_seed(metric, g, **base) for g in TARGETS], axis=1).mean(axis=1)
        others = pd.concat([r.per_seed(metric, g, **base) for g in OTHERS], axis=1).mean(axis=1)
        values = mean_interval((targets - others).to_numpy())
        verdict = direction(sign, *values) if sign else "reported"
        published = {
            -1: "lower for over-flagged identities",
            +1: "higher for over-flagged identities",
            0: "—",
        }[sign]
        findings.append(
            _finding(BORKAN, f"{label}: targeted − other identities", published, values, verdict)
        )
    final = r.interval("final_bias_score", "", **base)
    findings.append(
        _finding(BORKAN, "final bias score (p = −5, weights 0.25)", "—", final, "reported")
    )
    return findings


VOSOUGHI = "Vosoughi et al. 2018"


def read_vosoughi(out: Path) -> list[Finding]:
    """Reach and speed of false against true items, ranked by a credibility checkpoint
    forged on a skewed corpus, and the skew's own share (against a clean forge)."""
    r = Results.load(out)
    skewed, clean = (
        {"grid__corpus.knobs.association_skew": 0.9},
        {"grid__corpus.knobs.association_skew": 0.0},
    )
    ratio = r.interval("false_true_reach_ratio", "", **skewed)
    false_t = r.per_seed("time_to_k", "false", **skewed)
    true_t = r.per_seed("time_to_k", "true", **skewed)
    speed = mean_interval((false_t - true_t).dropna().to_numpy())
    added = r.paired("false_true_reach_ratio", "", skewed, clean)
    return [
        _finding(VOSOUGHI, "false / true mean reach (skewed ranker)", "> 1 (false farther)",
                 ratio, direction(+1, ratio[0] - 1, ratio[1] - 1, ratio[2] - 1)),
        _finding(VOSOUGHI, "steps to reach k users: false − true", "< 0 (truth ~6× slower)",
                 speed, direction(-1, *speed)),
        _finding(VOSOUGHI, "reach ratio: skewed − clean ranker", "— (the inherited part)",
                 added, direction(+1, *added),
                 "false items are more novel by the world's base rates, so the ratio is "
                 "above 1 with a clean ranker too"),
    ]  # fmt: skip


BOMMASANI = "Bommasani et al. 2022"


def read_bommasani(out: Path) -> list[Finding]:
    """Homogenisation of a monoculture and what model diversity does to it."""
    r = Results.load(out)
    mono = r.interval("homogenization_ratio", "", arm="none")
    diverse = r.paired("homogenization_ratio", "", {"arm": "model_diversity"}, {"arm": "none"})
    return [
        _finding(BOMMASANI, "homogenisation ratio, one shared model", "> 1", mono,
                 direction(+1, mono[0] - 1, mono[1] - 1, mono[2] - 1),
                 "observed / expected share rejected everywhere"),
        _finding(BOMMASANI, "homogenisation: diversity − monoculture", "< 0", diverse,
                 direction(-1, *diverse)),
    ]  # fmt: skip


CHEN = "Chen et al. 2024 (ICLR)"


def compute_label_noise(out: Path, progress: Callable[[str], None] | None = None) -> None:
    from uim_sim.understand.label_noise import label_noise_designs

    table = label_noise_designs(cache_dir=out / "checkpoints", progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "label_noise.csv", index=False)


def read_label_noise(out: Path) -> list[Finding]:
    """Per design of the study (`uim_sim.understand.label_noise.DESIGNS`; a table
    without a ``design`` column is the first one, ``per_copy``): in- and
    out-of-domain probing at each noise level and SVE at the slightest, noisy − clean
    paired by forging seed."""
    table = pd.read_csv(out / "label_noise.csv")
    if "design" not in table:
        table["design"] = "per_copy"
    findings = []
    for design, rows in table.groupby("design", sort=False):
        clean = rows[rows["label_noise"] == 0].set_index("seed")
        levels = sorted(n for n in rows["label_noise"].unique() if n > 0)
        for noise in levels:
            noisy = rows[rows["label_noise"] == noise].set_index("seed")
            both = noisy.index.intersection(clean.index)
            measures = [
                ("id_accuracy", "in-domain accuracy", "≥ 0 at 5–10 % (may help)"),
                ("ood_accuracy", "out-of-domain accuracy (task)", "< 0 (any noise hurts)"),
            ]
            if "style_accuracy" in rows:  # tables written before it existed lack it
                measures.append(("style_accuracy", "out-of-domain accuracy (style)",
                                 "< 0 (any noise hurts)"))  # fmt: skip
            if noise == levels[0]:
                measures.append(("sve", "SVE", "rises with noise"))
            for column, label, published in measures:
                change = noisy.loc[both, column] - clean.loc[both, column]
                values = mean_interval(change.to_numpy())
                if column == "id_accuracy":
                    holds = np.isfinite(values[1]) and values[2] >= 0
                    verdict = "holds or gains" if holds else "falls"
                else:
                    verdict = direction(+1 if column == "sve" else -1, *values)
                quantity = f"{label}, {noise:.0%} noise − clean [{design}]"
                findings.append(_finding(CHEN, quantity, published, values, verdict))
    return findings  # fmt: skip


STUDIES = (
    Study("bertrand_mullainathan", BM, read_bertrand_mullainathan, "bertrand_mullainathan.yaml",
          what="hiring audit, head adapted on callbacks drawn at the study's rates"),
    Study("wilson_caliskan", WC, read_wilson_caliskan, "wilson_caliskan.yaml",
          what="hiring audit, MiniLM retrieval screening (job description · resume cosine)"),
    Study("dixon", DIXON, read_dixon, "dixon_borkan.yaml",
          what="moderation reference mode, biased history, Dixon augmentation"),
    Study("borkan", BORKAN, read_borkan, "dixon_borkan.yaml",
          what="moderation reference mode, biased history"),
    Study("vosoughi", VOSOUGHI, read_vosoughi, "vosoughi.yaml",
          what="spread world, credibility ranker forged on a skewed or clean corpus"),
    Study("bommasani", BOMMASANI, read_bommasani, "bommasani.yaml",
          what="hiring market, one shared model against model diversity"),
    Study("chen_label_noise", CHEN, read_label_noise, compute=compute_label_noise,
          what="forged checkpoints at 0 / 10 / 30 % pre-training label noise, 5 seeds, "
               "in four designs (label_noise.DESIGNS)"),
)  # fmt: skip


def studies(only: Iterable[str] | None = None) -> list[Study]:
    """The studies to reproduce (all, or those named); a `SpecError` for unknown names."""
    from uim_sim.schema import SpecError

    chosen = list(only or [])
    unknown = [k for k in chosen if k not in {s.key for s in STUDIES}]
    if unknown:
        raise SpecError(f"--only: unknown study {unknown[0]!r} (known: {[s.key for s in STUDIES]})")
    return [s for s in STUDIES if not chosen or s.key in chosen]


def folder(out: Path, study: Study) -> Path:
    """Where a study's runs go: one folder per scenario (two studies may share one)."""
    return out / (Path(study.scenario).stem if study.scenario else study.key)


def findings_table(findings: list[Finding]) -> pd.DataFrame:
    return pd.DataFrame([asdict(f) for f in findings])


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The findings for people: the sandbox's mean with its interval."""

    def cell(m: float, lo: float, hi: float) -> str:
        digits = 3 if abs(m) < 10 else 1
        if not np.isfinite(m):
            return "–"
        if not np.isfinite(lo):
            return f"{m:.{digits}f}"
        return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    return pd.DataFrame({
        "study": table["study"],
        "quantity": table["quantity"],
        "published": table["published"],
        "sandbox [95 % CI]": [cell(*v) for v in table[["mean", "low", "high"]].to_numpy()],
        "verdict": table["verdict"],
    })  # fmt: skip


def write(table: pd.DataFrame, out: Path, minutes: float | None = None) -> Path:
    """``reproduce.csv`` (numbers) and ``reproduce.md`` (the table for people)."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "reproduce.csv", index=False)
    took = (
        f"; this call took {minutes:.1f} minutes (a call reuses the finished runs and "
        "forged checkpoints of an earlier one)"
        if minutes is not None
        else ""
    )
    notes = [f"- {r.study}, {r.quantity}: {r.note}" for r in table.itertuples() if r.note]
    text = (
        f"# Published results, reproduced\n\nPrinted by `uim-sim reproduce`{took}. "
        "Intervals are 95 % Student-t intervals over seeds (forging seeds for the "
        "label-noise study); differences are paired by seed.\n\n"
        + display(table).to_markdown(index=False, disable_numparse=True)
        + ("\n\nNotes:\n\n" + "\n".join(notes) if notes else "")
        + "\n"
    )
    path = out / "reproduce.md"
    path.write_text(text)
    return path
