"""The inheritance matrix: every weakness of pre-training data × every world × the harms
that world reports (Understand → Interpret, over the seed paper's list of weaknesses).

A matrix file names the worlds (each a scenario whose card is forged from a corpus
card: ``checkpoint: forge:CORPUS.yaml``), the weaknesses (a corpus knob, or a world
parameter such as moderation's ``ood_share``, each at its doses) and the forging seeds.
Each world × weakness is one *cell*: its scenario with a grid over the weakness's doses
(and 0, the clean forge) × the forging seeds, run into ``OUT/WORLD/WEAKNESS``. Every
cell shares ``OUT/checkpoints``, so a forge serves every world that reads it (the
clean forges serve every weakness).

For each cell and harm the unit is the forged checkpoint (its runs averaged); the
effect is the least-squares slope of the harm on the dose with its 95 % interval over
checkpoints, and the p-values of all cells are corrected together (Benjamini–Hochberg,
`scipy.stats.false_discovery_control`). Beside it, the rank correlation over checkpoints
between the harm and what a probe read off each checkpoint before any world ran.
A cell that cannot apply (a knob that changes no text the world reads; a parameter the
world does not have) stays in the table with the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator
from scipy import stats

from uim_sim.metrics.stats import mean_interval
from uim_sim.schema import Name, SpecError, Strict, parse, read_yaml
from uim_sim.spec import MitigationSpec, load_spec, mitigation_entries
from uim_sim.understand.cards import CorpusKnobs
from uim_sim.understand.corpus import NOT_REACHED
from uim_sim.worlds import world_info

Dose = Annotated[float, Field(gt=0.0, le=1.0)]
KNOBS = tuple(CorpusKnobs.model_fields)
SEED_KEY = "corpus.seed"
NULL_BAND = (".null_low", ".null_high")  # a harm's null band, beside it in a cell's units
RESERVED = (".", "..", "checkpoints", "remedies")  # names that would not be a cell's own folder


class Weakness(Strict):
    """A weakness of pre-training data: a corpus ``knob`` (forged into the checkpoint)
    or a world ``param`` (the world's texts move away from the corpus: a clean
    checkpoint reads them), at ``doses`` (above 0, ascending; 0, the clean forge, is
    added)."""

    knob: Literal[KNOBS] | None = None  # type: ignore[valid-type]
    param: str | None = None
    doses: Annotated[list[Dose], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_kind(self) -> Weakness:
        if (self.knob is None) == (self.param is None):
            raise ValueError("name either knob: (a corpus knob) or param: (a world parameter)")
        if list(self.doses) != sorted(set(self.doses)):
            raise ValueError(f"doses: {self.doses} must rise without repeats")
        for i, dose in enumerate(self.doses if self.knob else ()):  # the knob's own range
            try:
                CorpusKnobs.model_validate({self.knob: dose})
            except ValueError:
                raise ValueError(f"doses.{i}: {dose} is out of {self.knob}'s range") from None
        return self

    @property
    def key(self) -> str:
        """The grid key the cell varies."""
        return f"corpus.knobs.{self.knob}" if self.knob else str(self.param)


class Measure(Strict):
    """A harm a world reports: ``metric`` at the last step, averaged over ``groups``
    ("" the population), and which direction is ``worse``."""

    label: str
    metric: str
    groups: Annotated[list[str], Field(min_length=1)] = [""]
    worse: Literal["lower", "higher"]


class Remedy(Strict):
    """A mitigation tried on a cell whose harm the weakness significantly changed, at
    the cell's top dose on the same forging seeds: mitigations applied to the world's
    card (``apply``, as in a scenario's arm), another card in its place (``card``:
    e.g. a head adapted on the same forged checkpoint, or a card forged from a
    counterfactually augmented corpus), or both. ``params``: world parameters changed
    for the remedy's runs (e.g. more history for a head to adapt on); they must leave
    what the cell's own decider meets as it was, or the pairing compares two worlds."""

    apply: list[MitigationSpec] = Field(default_factory=list)
    card: Name | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("apply", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return mitigation_entries(value)

    @model_validator(mode="after")
    def _something(self) -> Remedy:
        if not self.apply and self.card is None:
            raise ValueError("a remedy needs apply: (mitigations) or card: (another card)")
        return self

    @property
    def label(self) -> str:
        parts = [m.name for m in self.apply] + ([f"card {self.card}"] if self.card else [])
        return " + ".join(parts)


class MatrixWorld(Strict):
    """A world's column: its scenario (no grid of its own), its harms, the probe (a key
    of the forged checkpoint's verification, e.g. ``mlm_gap_nats``) each harm is
    correlated with, and the remedies to try per weakness where that weakness's cell
    shows a significant effect (``remedies: {WEAKNESS: {NAME: remedy}}``)."""

    scenario: Path
    harms: Annotated[dict[Name, Measure], Field(min_length=1)]
    probe: str = "mlm_gap_nats"
    probes: dict[Name, str] = Field(default_factory=dict)  # per weakness, another probe
    weaknesses: list[Name] | None = None  # only these (default: every weakness)
    remedies: dict[Name, dict[Name, Remedy]] = Field(default_factory=dict)

    def probe_for(self, weakness: str) -> str:
        """The probe each harm of ``weakness``'s cell is correlated with."""
        return self.probes.get(weakness, self.probe)


class MatrixSpec(Strict):
    name: Name
    description: str = ""
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    worlds: Annotated[dict[Name, MatrixWorld], Field(min_length=1)]
    weaknesses: Annotated[dict[Name, Weakness], Field(min_length=1)]
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05
    # when the worlds' remedies run: where the cell's effect is significant, or always
    remedies_where: Literal["significant", "always"] = "significant"

    @model_validator(mode="after")
    def _seeds_unique(self) -> MatrixSpec:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: {self.seeds} repeat a seed")
        for kind, names in (("worlds", self.worlds), ("weaknesses", self.weaknesses)):
            taken = [n for n in names if n in RESERVED]
            if taken:  # each names a folder of OUT
                raise ValueError(f"{kind}: {taken[0]!r} cannot name a cell's folder")
        for name, world in self.worlds.items():
            for field_name, asked in (("weaknesses", world.weaknesses or ()),
                                      ("probes", world.probes),
                                      ("remedies", world.remedies)):  # fmt: skip
                unknown = [w for w in asked if w not in self.weaknesses]
                if unknown:
                    raise ValueError(
                        f"worlds.{name}.{field_name}: {unknown[0]!r} is not a weakness of "
                        f"the matrix ({', '.join(self.weaknesses)})"
                    )
        return self


@dataclass
class Cell:
    """One world × weakness: the scenario it runs (``spec``, None where the weakness
    cannot act in the world, then ``reason`` says why)."""

    world: str
    weakness: str
    key: str
    doses: tuple[float, ...]
    spec: dict[str, Any] | None = None
    folder: Path = field(default_factory=Path)  # the scenario's folder (cards are found there)
    reason: str = ""
    remedies: dict[str, dict[str, Any]] = field(default_factory=dict)  # name: its scenario

    @property
    def name(self) -> str:
        return f"{self.world}/{self.weakness}"

    def result_folder(self, out: Path, remedy: str | None = None) -> Path:
        """Where the cell's runs (or those of one of its remedies) go inside the
        matrix's result folder ``out``."""
        if remedy is not None:
            return Path(out) / "remedies" / self.world / self.weakness / remedy
        return Path(out) / self.world / self.weakness


def _scenario_file(world: MatrixWorld, folder: Path) -> Path:
    """A world's scenario file (a relative path is read from the matrix file's folder)."""
    return world.scenario if world.scenario.is_absolute() else Path(folder) / world.scenario


def is_matrix(path: Path) -> bool:
    """Is the YAML file at ``path`` an inheritance matrix (a top-level ``weaknesses``)?"""
    return "weaknesses" in read_yaml(Path(path))


def load_matrix(path: Path) -> tuple[MatrixSpec, list[Cell]]:
    """The matrix at ``path`` and its cells, every scenario checked (`SpecError`, one
    line naming the field, on any problem)."""
    path = Path(path)
    matrix = parse(MatrixSpec, read_yaml(path), str(path))
    cells: list[Cell] = []
    params: set[str] = set()  # every parameter of the matrix's worlds
    for world_name, world in matrix.worlds.items():
        where = f"{path}: worlds.{world_name}.scenario"
        file = _scenario_file(world, path.parent)
        if not file.is_file():
            raise SpecError(f"{where}: {world.scenario}: no such file")
        data = read_yaml(file)
        spec = load_spec(file)
        if spec.grid:
            raise SpecError(
                f"{where}: {world.scenario} has a grid ({', '.join(spec.grid)}); the matrix "
                f"sets the grid of its cells: leave it out"
            )
        if len(spec.cards) != 1 or len(spec.arms) != 1 or spec.arms[0].apply or spec.attribution:
            raise SpecError(
                f"{where}: {world.scenario}: the matrix reads one forged card with no "
                f"mitigation arm or attribution: one entry in cards:, no arms: or attribution:"
            )
        known = world_info(spec.world).parameter_names()
        params.update(known)
        for weakness_name, weakness in matrix.weaknesses.items():
            doses = (0.0, *weakness.doses)
            cell = Cell(world_name, weakness_name, weakness.key, doses, folder=file.parent)
            if world.weaknesses is not None and weakness_name not in world.weaknesses:
                cell.reason = f"not asked of this column (worlds.{world_name}.weaknesses)"
            elif weakness.knob and (weakness.knob, spec.world) in NOT_REACHED:
                cell.reason = NOT_REACHED[weakness.knob, spec.world]
            elif weakness.param and weakness.param not in known:
                cell.reason = f"the {spec.world} world has no parameter {weakness.param}"
            else:
                grid = {weakness.key: list(doses), SEED_KEY: list(matrix.seeds)}
                cell.spec = {**data, "name": f"{spec.name}-{weakness_name}", "grid": grid}
                top = {weakness.key: [doses[-1]], SEED_KEY: list(matrix.seeds)}
                for remedy_name, remedy in world.remedies.get(weakness_name, {}).items():
                    arm = [m.model_dump() for m in remedy.apply]
                    cell.remedies[remedy_name] = {
                        **data, "name": f"{spec.name}-{weakness_name}-{remedy_name}",
                        "grid": top, "cards": [remedy.card or spec.cards[0]], "arms": [arm],
                        "params": {**data.get("params", {}), **remedy.params},
                    }  # fmt: skip
            if world.remedies.get(weakness_name) and cell.reason:
                raise SpecError(
                    f"{path}: worlds.{world_name}.remedies.{weakness_name}: the cell does "
                    f"not apply ({cell.reason})"
                )
            cells.append(cell)
    for name, weakness in matrix.weaknesses.items():
        if weakness.param and weakness.param not in params:
            raise SpecError(
                f"{path}: weaknesses.{name}.param: no world of the matrix has a parameter "
                f"{weakness.param!r}"
            )
    return matrix, cells


def describe_worlds(matrix: MatrixSpec, folder: Path) -> dict[str, dict[str, float]]:
    """What characterises each world column before anything is decided (the world's
    ``describe``: e.g. a spread network's clustering), from its scenario's parameters
    and seed; worlds without it are left out."""
    described = {}
    for name, world in matrix.worlds.items():
        spec = load_spec(_scenario_file(world, folder))
        describe = world_info(spec.world).describe
        numbers = describe(spec.world_params(), spec.seed) if describe else {}
        if numbers:
            described[name] = numbers
    return described


def link_checkpoints(out: Path, cell: Cell, remedy: str | None = None) -> Path:
    """The cell's result folder (or one remedy's), its ``checkpoints`` a link to the
    matrix's shared ones."""
    folder = cell.result_folder(out, remedy)
    folder.mkdir(parents=True, exist_ok=True)
    shared = Path(out) / "checkpoints"
    shared.mkdir(exist_ok=True)
    link = folder / "checkpoints"
    if not link.is_symlink() and not link.exists():
        os.symlink(os.path.relpath(shared, folder), link, target_is_directory=True)
    return folder


# ----------------------------------------------------------------------------- analysis


@dataclass
class MatrixResult:
    table: pd.DataFrame  # one row per weakness × world × harm
    markdown: str
    figure: Path
    curves: Path


def _units(out: Path, cell: Cell, harms: dict[str, Measure], probe: str,
           remedy: str | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per forged checkpoint × dose of a cell (or of one of its remedies):
    dose, seed, probe, each harm."""
    from uim_sim.report.load import load_runs

    folder = cell.result_folder(out, remedy)
    runs, metrics, _ = load_runs(folder)
    keys = ["run_id", "metric", "group"]  # each metric at its own last step
    last = metrics[metrics["step"] == metrics.groupby(keys)["step"].transform("max")]
    value = last.pivot_table(index="run_id", columns=["metric", "group"], values="value",
                             dropna=False)  # fmt: skip
    frame = pd.DataFrame({
        "dose": runs[f"grid.{cell.key}"].astype(float).to_numpy(),
        "seed": runs[f"grid.{SEED_KEY}"].astype(int).to_numpy(),
        "checkpoint": runs["checkpoint"].to_numpy(),
    })  # fmt: skip
    for name, harm in harms.items():
        columns = [(harm.metric, g) for g in harm.groups]
        missing = [c for c in columns if c not in value.columns]
        if missing:
            raise SpecError(
                f"worlds.{cell.world}.harms.{name}: the cell {cell.name} reports no "
                f"{missing[0][0]} for group {missing[0][1]!r}"
            )
        # a group missing from a run leaves the harm undefined there, not its mean
        frame[name] = value[columns].mean(axis=1, skipna=False).reindex(runs["run_id"]).to_numpy()
        band = [(f"{harm.metric}_null_{q}", "") for q in ("q025", "q975")]
        if harm.groups == [""] and all(c in value.columns for c in band):
            for side, column in zip(NULL_BAND, band):  # the world's own null of this harm
                frame[f"{name}{side}"] = value[column].reindex(runs["run_id"]).to_numpy()
    manifests: dict[str, float] = {}  # a world parameter leaves the checkpoint as it is
    for checkpoint in frame["checkpoint"].unique() if cell.key.startswith("corpus.") else ():
        verification = json.loads((folder / checkpoint / "manifest.json").read_text())[
            "verification"
        ]
        if probe not in verification:
            raise SpecError(
                f"worlds.{cell.world}.probe: the checkpoint {checkpoint} records no {probe!r} "
                f"(it records: {', '.join(sorted(verification))})"
            )
        manifests[checkpoint] = verification[probe]
    frame["probe"] = frame["checkpoint"].map(manifests).astype(float)
    units = frame.groupby(["dose", "seed"], as_index=False).agg(
        {**{c: "mean" for c in frame.columns if c not in ("dose", "seed", "checkpoint")},
         "checkpoint": "first"}
    )  # fmt: skip
    units.attrs["paired"] = not cell.key.startswith("corpus.")  # one checkpoint a seed
    return units


def _effect(units: pd.DataFrame, harm: str, worse: str = "higher") -> dict[str, float]:
    """The least-squares slope of ``harm`` on the dose, its 95 % interval and p; the
    means and spreads (SD over checkpoints) at 0 and the top dose, and whether the
    spread differs between doses (Brown–Forsythe, ``spread_p``: a weakness may show as
    variance, not as a mean shift); the rank correlation with the probe. Each forged
    checkpoint is a point; where a world parameter is the dose, one checkpoint a seed
    is read at every dose, and the slope is fitted within seeds (the seed a block: its
    mean removed, one degree of freedom each). Where the world reports the harm's null
    band (its 2.5 and 97.5 % under a permutation null), how many checkpoints at 0 and at
    the top dose lie beyond it on the ``worse`` side."""
    from uim_sim.report.dose import rank_correlation

    units = units[np.isfinite(units[harm].to_numpy(float))]
    x, y = units["dose"].to_numpy(float), units[harm].to_numpy(float)
    clean, top = units[units["dose"] == 0][harm], units[units["dose"] == x.max()][harm]
    row = {"points": len(units), "checkpoints": units["checkpoint"].nunique(),
           "clean": clean.mean(), "top": top.mean(),
           "sd_clean": clean.std(ddof=1), "sd_top": top.std(ddof=1),
           "slope": np.nan, "ci_low": np.nan, "ci_high": np.nan, "stderr": np.nan,
           "p": np.nan, "probe_rho": np.nan, "probe_p": np.nan, "spread_p": np.nan}  # fmt: skip
    if len(units) == 0 or len(np.unique(x)) < 2:
        return row
    blocks = units["seed"] if units.attrs.get("paired") else pd.Series(0, index=units.index)
    xc = x - units.groupby(blocks)["dose"].transform("mean").to_numpy()
    yc = y - units.groupby(blocks)[harm].transform("mean").to_numpy()
    slope = float((xc * yc).sum() / (xc**2).sum())
    df = len(units) - blocks.nunique() - 1
    row["slope"] = slope
    if df >= 1:
        residual = ((yc - slope * xc) ** 2).sum() / df
        stderr = float(np.sqrt(residual / (xc**2).sum()))
        half = stats.t.ppf(0.975, df) * stderr
        # an exact fit: p 0 for a slope, 1 for a constant harm (a test all the same)
        p = 2 * stats.t.sf(abs(slope) / stderr, df) if stderr > 0 else float(slope == 0)
        row.update(ci_low=slope - half, ci_high=slope + half, stderr=stderr, p=float(p))
    groups = [y[x == d] for d in np.unique(x)]
    if all(len(g) >= 2 for g in groups) and np.ptp(y) > 0:  # does the spread change?
        row["spread_p"] = float(stats.levene(*groups, center="median").pvalue)
    if units["probe"].notna().all() and units["probe"].nunique() > 2:
        row["probe_rho"], row["probe_p"] = rank_correlation(units["probe"].to_numpy(), y)
    low, high = (f"{harm}{side}" for side in NULL_BAND)
    if low in units:  # how many checkpoints lie beyond the null band on the worse side
        beyond = units[high] < units[harm] if worse == "higher" else units[harm] < units[low]
        for at, rows in (("clean", x == 0), ("top", x == x.max())):
            row[f"beyond_null_{at}"] = int(beyond[rows].sum())
            row[f"null_points_{at}"] = int(rows.sum())
    return row


def analyse(out: Path, matrix: MatrixSpec, cells: list[Cell],
            described: dict[str, dict[str, float]] | None = None) -> MatrixResult:  # fmt: skip
    """The matrix's table (``matrix.csv``), its summary (``matrix.md``, with what
    `describe_worlds` found, if given) and figures (``matrix.png``,
    ``matrix_curves.png``) in ``out``."""
    rows, curves = [], {}
    for cell in cells:
        world = matrix.worlds[cell.world]
        probe = world.probe_for(cell.weakness)
        units = None if cell.reason else _units(out, cell, world.harms, probe)
        for name, harm in world.harms.items():
            row: dict[str, Any] = {
                "weakness": cell.weakness, "world": cell.world, "harm": name,
                "label": harm.label, "metric": harm.metric, "groups": " ".join(harm.groups),
                "worse": harm.worse, "key": cell.key,
                "doses": " ".join(f"{d:g}" for d in cell.doses), "applies": not cell.reason,
                "reason": cell.reason, "probe": probe,
            }  # fmt: skip
            if units is not None:
                row.update(_effect(units, name, harm.worse))
                # the dose, the harm ("") and its null band where the world reports one
                kept = {"dose": "dose", name: "", **{f"{name}{side}": side for side in NULL_BAND}}
                curve = units[[c for c in kept if c in units]].rename(columns=kept)
                curves[cell.weakness, cell.world, name] = curve
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("slope", "ci_low", "ci_high", "stderr", "p", "probe_rho", "probe_p", "spread_p"):
        if column not in table:
            table[column] = np.nan
    tested = table["p"].notna()
    table["p_adjusted"] = np.nan
    if tested.any():
        table.loc[tested, "p_adjusted"] = stats.false_discovery_control(
            table.loc[tested, "p"].to_numpy(), method="bh"
        )
    table["significant"] = table["p_adjusted"] < matrix.alpha
    table["verdict"] = [_verdict(r, matrix.alpha) for r in table.to_dict("records")]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "matrix.csv", index=False)
    text = markdown(table, matrix, described or {})
    (out / "matrix.md").write_text(text)
    figure = _heatmap(table, matrix, out / "matrix.png")
    curve_figure = _curves(table, curves, out / "matrix_curves.png")
    return MatrixResult(table, text, figure, curve_figure)


def remedies_due(table: pd.DataFrame, cells: list[Cell], when: str = "significant") -> list[Cell]:
    """The cells with remedies whose effect on any harm was significant (``when``
    ``always``: every cell with remedies)."""
    hit = set(zip(table.loc[table["significant"], "weakness"],
                  table.loc[table["significant"], "world"]))  # fmt: skip
    return [c for c in cells if c.remedies and (when == "always" or (c.weakness, c.world) in hit)]


def analyse_remedies(out: Path, matrix: MatrixSpec, cells: list[Cell],
                     table: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Each remedy of a cell against the cell at its top dose, forging seed by seed:
    per harm, the means clean, at the top dose and with the remedy, and the paired
    change with its 95 % t-interval over seeds (``remedies.csv`` in ``out``). A cell
    whose weakness changed no harm significantly is listed as not tried, one made
    worse significantly with no remedy listed as none tried."""
    due = {c.name for c in remedies_due(table, cells, matrix.remedies_where)}
    rows = []
    for cell in (c for c in cells if c.remedies):
        world = matrix.worlds[cell.world]
        probe = world.probe_for(cell.weakness)
        units = _units(out, cell, world.harms, probe) if cell.name in due else None
        for remedy_name in cell.remedies:
            remedy = world.remedies[cell.weakness][remedy_name]
            base = {"weakness": cell.weakness, "world": cell.world, "remedy": remedy_name,
                    "what": remedy.label, "dose": cell.doses[-1]}  # fmt: skip
            if units is None:
                rows.append({**base, "verdict": "not tried (no significant effect)"})
                continue
            fixed = _units(out, cell, world.harms, probe, remedy_name).set_index("seed")
            top = units[units["dose"] == cell.doses[-1]].set_index("seed")
            for name, harm in world.harms.items():
                change = (fixed[name] - top[name]).dropna()
                mean, low, high = mean_interval(change.to_numpy(float))
                better = (low > 0, high < 0) if harm.worse == "lower" else (high < 0, low > 0)
                verdict = "helps" if better[0] else "hurts" if better[1] else "no change detected"
                rows.append({
                    **base, "harm": name, "label": harm.label, "worse": harm.worse,
                    "clean": units.loc[units["dose"] == 0, name].mean(),
                    "top": top[name].mean(), "remedied": fixed[name].mean(),
                    "change": mean, "ci_low": low, "ci_high": high, "seeds": len(change),
                    "verdict": verdict if np.isfinite(low) else "too few seeds",
                })  # fmt: skip
    worse = table[table["verdict"] == "worse with the dose"]
    unremedied = set(worse["world"] + "/" + worse["weakness"])
    for cell in (c for c in cells if not c.remedies and c.name in unremedied):
        verdict = f"none tried (worlds.{cell.world}.remedies names none)"
        rows.append({"weakness": cell.weakness, "world": cell.world, "remedy": "none listed",
                     "what": "", "dose": cell.doses[-1], "verdict": verdict})  # fmt: skip
    remedies = pd.DataFrame(rows)
    if rows:
        remedies.to_csv(Path(out) / "remedies.csv", index=False)
    return remedies


def remedies_markdown(remedies: pd.DataFrame) -> str:
    """The remedies as a Markdown table (empty where the matrix names none)."""
    if remedies.empty:
        return ""
    lines = ["| weakness · world | remedy | harm | clean | top dose | with remedy | "
             "change [95 %] | verdict |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in remedies.to_dict("records"):
        cell = f"{row['weakness']} · {row['world']}"
        what = f"{row['remedy']} ({row['what']})" if row["what"] else row["remedy"]
        if not isinstance(row.get("harm"), str):  # not tried: no harm rows
            lines.append(f"| {cell} | {what} | | | | | | {row['verdict']} |")
            continue
        change = f"{row['change']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        lines.append(
            f"| {cell} | {what} | {row['label']} | {row['clean']:.3f} | {row['top']:.3f} | "
            f"{row['remedied']:.3f} | {change} | {row['verdict']} |"
        )
    return "\n".join([
        "", "Remedies, where a weakness changed a harm significantly: each at the cell's top "
        "dose, on the same forging seeds, against the cell without it (paired by seed; "
        "mean and 95 % t-interval). *helps*: the interval lies on the better side.", "",
        *lines,
    ]) + "\n"  # fmt: skip


def _verdict(row: dict[str, Any], alpha: float) -> str:
    if not row["applies"]:
        return "n/a"
    if not np.isfinite(row["p"]):
        return "harm undefined" if not np.isfinite(row.get("clean", 0.0)) else "too few checkpoints"
    if row["p_adjusted"] >= alpha:
        return "no effect detected"
    worse = row["slope"] < 0 if row["worse"] == "lower" else row["slope"] > 0
    return "worse with the dose" if worse else "better with the dose"


def _worse_t(table: pd.DataFrame) -> np.ndarray:
    """Each cell's slope over its standard error, signed so that positive is worse."""
    sign = np.where(table["worse"] == "lower", -1.0, 1.0)
    return sign * table["slope"].to_numpy(float) / table["stderr"].to_numpy(float)


def markdown(table: pd.DataFrame, matrix: MatrixSpec,
             described: dict[str, dict[str, float]] | None = None) -> str:  # fmt: skip
    """The matrix as a Markdown table: rows weaknesses, columns world · harm; each cell
    the slope per unit dose [95 % interval], the verdict (✱: significant after the
    correction), and the probe's rank correlation with the harm."""
    columns = list(dict.fromkeys(zip(table["world"], table["harm"])))
    labels = {(w, h): lab for w, h, lab in zip(table["world"], table["harm"], table["label"])}
    reasons: dict[str, int] = {}
    lines = [
        "| weakness | " + " | ".join(f"{w} · {labels[w, h]}" for w, h in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    marks = {"worse with the dose": "worse ✱", "better with the dose": "better ✱"}
    for weakness in matrix.weaknesses:
        cells = []
        for world, harm in columns:
            row = table[(table["weakness"] == weakness) & (table["world"] == world)
                        & (table["harm"] == harm)].iloc[0]  # fmt: skip
            if not row["applies"]:
                n = reasons.setdefault(row["reason"], len(reasons) + 1)
                cells.append(f"n/a ({n})")
            elif not np.isfinite(row["p"]):
                slope = f"{row['slope']:+.3g} " if np.isfinite(row["slope"]) else ""
                cells.append(f"{slope}({row['verdict']})")
            else:
                rho = f"; ρ {row['probe_rho']:+.2f}" if np.isfinite(row["probe_rho"]) else ""
                if row["spread_p"] < matrix.alpha:  # the spread changed (uncorrected)
                    sd, p = f"{row['sd_clean']:.2g}→{row['sd_top']:.2g}", f"{row['spread_p']:.2g}"
                    rho += f"; SD {sd} (p {p})"
                if np.isfinite(row.get("null_points_clean", np.nan)):
                    rho += (f"; beyond null: clean {row['beyond_null_clean']:.0f}/"
                            f"{row['null_points_clean']:.0f}, top {row['beyond_null_top']:.0f}/"
                            f"{row['null_points_top']:.0f}")  # fmt: skip
                cells.append(f"{row['slope']:+.3g} [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}] "
                             f"{marks.get(row['verdict'], '·')}{rho}")  # fmt: skip
        lines.append(f"| {weakness} | " + " | ".join(cells) + " |")
    notes = [f"({n}) {reason}." for reason, n in reasons.items()]
    notes.append("Probes (ρ): " + "; ".join(
        f"{name} `{world.probe}`" + "".join(f", {w}: `{p}`" for w, p in world.probes.items())
        for name, world in matrix.worlds.items()) + ".")  # fmt: skip
    notes += [
        f"World `{world}` (as its scenario builds it, one draw): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in numbers.items()) + "."
        for world, numbers in (described or {}).items()
    ]  # fmt: skip
    tested = int(table["p"].notna().sum())
    return "\n".join([
        *lines, "",
        f"Slope of the harm per unit dose [95 % interval over forged checkpoints]; "
        f"✱ significant at q < {matrix.alpha:g} after Benjamini–Hochberg over the "
        f"{tested} tests (cell × harm; the interval is not adjusted); · no effect "
        f"detected; ρ: Spearman correlation over checkpoints of the harm with the "
        f"checkpoint's probe, not oriented (a knob's probe reads its planted direction); "
        f"SD clean→top dose where the spread over checkpoints differs between doses "
        f"(Brown–Forsythe p < {matrix.alpha:g}, uncorrected)"
        + ("; beyond null: the checkpoints, clean and at the top dose, whose harm lies "
           "beyond the world's own 95 % permutation band on the worse side"
           if "null_points_clean" in table and table["null_points_clean"].notna().any()
           else "") + ". "
        f"Forging seeds {', '.join(map(str, matrix.seeds))}.",
        *notes,
    ]) + "\n"  # fmt: skip


def _heatmap(table: pd.DataFrame, matrix: MatrixSpec, path: Path) -> Path:
    from uim_sim.report.figures import pyplot

    plt = pyplot()
    columns = list(dict.fromkeys(zip(table["world"], table["harm"])))
    weaknesses = list(matrix.weaknesses)
    worse = _worse_t(table)
    grid = np.full((len(weaknesses), len(columns)), np.nan)
    fig, ax = plt.subplots(figsize=(1.05 * len(columns) + 2.5, 0.8 * len(weaknesses) + 2.4))
    for i, row in enumerate(table.to_dict("records")):
        r, c = weaknesses.index(row["weakness"]), columns.index((row["world"], row["harm"]))
        grid[r, c] = np.clip(worse[i], -6, 6)  # an exact fit (t = ±inf) at the end
        if not row["applies"]:
            text = "n/a"
        elif not np.isfinite(row["p"]):
            text = f"{_short(row['slope'])}\n(too few)" if np.isfinite(row["slope"]) else "–"
        else:
            star = " ✱" if row["significant"] else ""
            text = (
                f"{_short(row['slope'])}{star}\n[{_short(row['ci_low'])}, {_short(row['ci_high'])}]"
            )
        dark = np.isfinite(grid[r, c]) and abs(grid[r, c]) > 3.5
        ax.text(c, r, text, ha="center", va="center", fontsize=6,
                color="white" if dark else "black")  # fmt: skip
    ax.imshow(np.full_like(grid, 2.0), cmap="Greys", vmin=0, vmax=8, aspect="auto")  # n/a
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", vmin=-6, vmax=6, aspect="auto")
    ax.set_xticks(range(len(columns)))
    labels = dict(zip(zip(table["world"], table["harm"]), table["label"]))
    ax.set_xticklabels([f"{w}\n{labels[w, h]}" for w, h in columns], fontsize=7, rotation=30,
                       ha="right")  # fmt: skip
    ax.set_yticks(range(len(weaknesses)))
    ax.set_yticklabels(weaknesses, fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8, label="slope / SE (red: worse with the dose)")
    ax.set_title(
        f"Inheritance matrix: harm per unit dose [95 % CI]; ✱ q < {matrix.alpha:g} (BH)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _short(value: float) -> str:
    """A slope for a figure cell: two significant digits, whole numbers from 100 up."""
    return f"{value:+.0f}" if abs(value) >= 100 else f"{value:+.2g}"


def _curves(table: pd.DataFrame, curves: dict, path: Path) -> Path:
    """Small multiples: each tested cell's harm against the dose, one point per forged
    checkpoint, with the fitted line (and the checkpoint's null band, grey, where the
    world reports one)."""
    from uim_sim.report.figures import pyplot

    plt = pyplot()
    rows = list(dict.fromkeys(table["weakness"]))
    columns = list(dict.fromkeys(zip(table["world"], table["harm"])))
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=(2.1 * len(columns), 1.7 * len(rows)))  # fmt: skip
    for r, weakness in enumerate(rows):
        for c, (world, harm) in enumerate(columns):
            ax = axes[r][c]
            ax.tick_params(labelsize=6)
            row = table[(table["weakness"] == weakness) & (table["world"] == world)
                        & (table["harm"] == harm)].iloc[0]  # fmt: skip
            if r == 0:
                ax.set_title(f"{world}\n{row['label']}", fontsize=7)
            if c == 0:
                ax.set_ylabel(weakness, fontsize=7)
            units = curves.get((weakness, world, harm))
            if units is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            colour = "C3" if row["verdict"] == "worse with the dose" else (
                "C0" if row["verdict"] == "better with the dose" else "0.4")  # fmt: skip
            if NULL_BAND[1] in units:  # each checkpoint's null band, behind its point
                ax.vlines(units["dose"], units[NULL_BAND[0]], units[NULL_BAND[1]],
                          color="0.75", lw=3, alpha=0.6)  # fmt: skip
            ax.plot(units["dose"], units[""], ".", color=colour, alpha=0.7)
            if np.isfinite(row["slope"]):
                xs = np.array([0.0, units["dose"].max()])
                intercept = units[""].mean() - row["slope"] * units["dose"].mean()
                ax.plot(xs, intercept + row["slope"] * xs, "-", color=colour, lw=1)
    fig.suptitle("Inheritance matrix: harm against dose, one point per forged checkpoint "
                 "(red worse, blue better, grey no effect detected)", fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
