"""Agent cards: what a population of deciders carries (a checkpoint, a head, a
decision rule), as pydantic models of the YAML files in ``agents/``.

    >>> card = load_card(Path("agents/minilm_zero_shot.yaml"))
    >>> card.checkpoint, card.head.kind, card.decision.rule
    ('builtin:minilm', 'zero_shot', 'top_share')
    >>> AgentCard(name="mine", head=HeadSpec(kind="zero_shot"), colour="red")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AgentCard
    ...
"""

from __future__ import annotations

import difflib
import typing
import warnings
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import Field, SerializeAsAny, field_validator, model_validator
from pydantic_core import PydanticCustomError

from uim_sim import builtin
from uim_sim.schema import Name, Share, SpecError, Strict, digest, parse, read_yaml

FORGE_PREFIX = "forge:"  # a checkpoint forged from a corpus card: forge:PATH.yaml


ENTRY_POINTS = "uim_sim.heads"  # head kinds other packages declare
BUILT_IN_HEADS = "uim_sim.lfm.heads"  # the module whose classes are the built-in kinds
HEADS: dict[str, type[HeadSpec]] = {}  # every registered kind's class, in order

# the fields kinds share beside their own, in the order a head is checked: a kind
# refuses one it does not use set, and runs its own checks at the first it uses
SHARED = {
    "positive": ("positive", "negative"),
    "prompt": ("prompt",),
    "candidate": ("candidate",),
    "label": ("label",),
    "train_on": ("train_on", "file"),
}


class HeadSpec(Strict):
    """How a decider turns what its checkpoint computes into a score: the fields head
    kinds share, and the base of every kind's class.

    A kind is one class: a subclass with ``kind: Literal["NAME"]`` registered with
    `register_head` (the built-in ones are in `uim_sim.lfm.heads`, each documented
    there; another package declares its own under the entry point group
    ``uim_sim.heads``). It says which shared fields it uses (``uses``, keys of
    `SHARED`; another one set is refused), adds its own fields and checks (``check``),
    names the kind of checkpoint it reads (``needs``) and what else it needs of it
    (``check_engine``), and builds the head a screener runs (``build``).
    ``HeadSpec(kind=...)``, ``HeadSpec.model_validate`` and a card's ``head:`` are
    validated by the class of their kind.

    Trained kinds (``uses`` ``train_on``) adapt on ``history`` (data the world
    generates, biased by ``history_bias``, a strength each world interprets: in hiring
    the log-odds penalty the historical decision makers put on the disadvantaged
    group, in moderation the log-odds by which identity terms co-occur with toxic
    labels) or on a researcher's own labelled ``file`` (CSV/Parquet).
    """

    kind: str
    prompt: str | None = None
    candidate: str | None = None  # kind: choose_one, one candidate's line of the prompt
    label: Annotated[str, Field(min_length=1)] | None = None  # kind: classifier
    train_on: Literal["history", "file"] | None = None
    file: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    # who each text names and their group (train_on: file): names outside the study's
    # lists are then redacted and placed; without group_column, names must be known
    name_column: str | None = None
    group_column: str | None = None
    C: Annotated[float, Field(gt=0.0, le=1e6)] = 1.0  # inverse regularisation strength
    history_bias: Annotated[float, Field(ge=0.0, le=20.0)] = 0.0  # a log-odds penalty
    positive: list[Annotated[str, Field(min_length=1)]] = []
    negative: list[Annotated[str, Field(min_length=1)]] = []

    uses: ClassVar[frozenset[str]] = frozenset()  # the shared fields the kind reads
    reads_pool: ClassVar[bool] = False  # reads a decision's whole pool in one prompt
    needs: ClassVar[str | None] = None  # the kind of checkpoint it reads (None: any)

    def __new__(cls, **data: Any) -> HeadSpec:
        own = head_class(data.get("kind")) if cls is HeadSpec else None
        return super().__new__(own or cls)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> HeadSpec:
        """``obj`` validated by the class of its kind (by this class, called on a kind's)."""
        own = head_class(obj.get("kind")) if cls is HeadSpec and isinstance(obj, dict) else None
        return own.model_validate(obj, **kwargs) if own else super().model_validate(obj, **kwargs)

    @property
    def trained(self) -> bool:
        """Is the head fitted on adaptation data (so data- and model-stage
        mitigations of that data can act on it)?"""
        return "train_on" in self.uses

    def check(self) -> None:
        """The kind's own checks of its fields: a one-line ValueError."""

    def check_engine(self, engine: Any) -> None:
        """What the head needs of its checkpoint beyond its kind (``engine``: its loaded
        `Engine`), checked before anything runs: a one-line `HeadError`."""

    def build(self) -> Any:
        """The head a screener runs (`uim_sim.lfm.heads`)."""
        raise NotImplementedError(f"head kind {self.kind!r} builds no head")

    @field_validator("kind", mode="before")
    @classmethod
    def _known(cls, kind: Any) -> Any:
        if cls is HeadSpec:  # a registered kind is validated by its own class
            expected = [repr(k) for k in head_kinds()]
            if len(expected) > 1:
                expected = [", ".join(expected[:-1]), expected[-1]]
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": " or ".join(expected)}
            )
        return kind

    @model_validator(mode="after")
    def _checked(self) -> HeadSpec:
        own = False
        for shared, fields in SHARED.items():
            if shared in self.uses:
                if not own:
                    self.check()
                    own = True
            elif any(getattr(self, f) not in (None, []) for f in fields):
                raise ValueError(self._unused(shared))
        if not own:
            self.check()
        if (self.name_column or self.group_column) and self.train_on != "file":
            raise ValueError("name_column/group_column apply only with train_on: file")
        if self.group_column and not self.name_column:
            raise ValueError("group_column needs name_column (whose group it gives)")
        if self.history_bias and self.train_on != "history":
            raise ValueError("history_bias applies only with train_on: history")
        return self

    def _unused(self, shared: str) -> str:
        if shared == "train_on":
            return f"a {self.kind} head is not trained: drop train_on/file"
        users = ", ".join(k for k, c in HEADS.items() if shared in c.uses)
        if shared == "positive":
            return f"positive/negative apply only to {users}"
        return f"{shared} applies only to kind: {users}"


SpecClass = TypeVar("SpecClass", bound=type[HeadSpec])


def register_head(cls: SpecClass) -> SpecClass:
    """Register a head kind (a class decorator): a `HeadSpec` subclass whose ``kind``
    is ``Literal["NAME"]``. A name another class holds is a ValueError."""
    import_module(BUILT_IN_HEADS)  # the built-in kinds first, in their order
    spec = isinstance(cls, type) and issubclass(cls, HeadSpec)
    annotation = cls.model_fields["kind"].annotation if spec else None
    names = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
    if not (len(names) == 1 and isinstance(names[0], str)):
        raise TypeError(f"{cls.__qualname__}: a head kind's class has kind: Literal['NAME']")
    held = HEADS.setdefault(names[0], cls)
    if held is not cls:
        raise ValueError(
            f"head kind {names[0]!r} is taken by {held.__module__}.{held.__qualname__}"
        )
    return cls


def head_class(kind: Any) -> type[HeadSpec] | None:
    """The class of a head kind, or None: a kind another package declares is imported
    on first use; one that cannot be is a one-line `SpecError`."""
    if not isinstance(kind, str):
        return None
    import_module(BUILT_IN_HEADS)
    point = None if kind in HEADS else _declared().get(kind)
    if point is not None:
        try:
            found = point.load()
        except Exception as exc:  # an uninstalled module, an error in it
            raise SpecError(f"head kind {kind!r} of {point.value} cannot be loaded "
                            f"({type(exc).__name__}: {exc})") from None  # fmt: skip
        if isinstance(found, type) and issubclass(found, HeadSpec):
            register_head(found)
        if kind not in HEADS:
            raise SpecError(f"head kind {kind!r} of {point.value}: no class registers it")
    return HEADS.get(kind)


def head_kinds() -> list[str]:
    """Every kind a card's head may name: the registered ones, then those other
    packages declare (not imported yet)."""
    import_module(BUILT_IN_HEADS)
    return [*HEADS, *(k for k in _declared() if k not in HEADS)]


def _declared() -> dict[str, EntryPoint]:
    """Head kinds other installed packages declare (``uim_sim.heads`` entry points:
    ``NAME = "module:Class"``, or a module whose import registers it)."""
    found: dict[str, EntryPoint] = {}
    for point in sorted(entry_points(group=ENTRY_POINTS), key=lambda p: p.name):
        held = HEADS.get(point.name)
        if (held is not None and held.__module__ == BUILT_IN_HEADS) or point.name in found:
            warnings.warn(f"head kind {point.name!r} of {point.value} is ignored: the name is "
                          "taken", stacklevel=2)  # fmt: skip
            continue
        found[point.name] = point
    return found


class DecisionSpec(Strict):
    """The selection rule applied to scores within one decision pool.

    ``top_share`` selects the best-scoring share of each pool (a rank cut: it turns
    small score gaps into large selection gaps); ``threshold`` selects every score
    at or above a fixed value; ``draw`` selects each with probability equal to its
    score (clipped to [0, 1]: for heads whose score is a probability, e.g. a logistic
    head's P(callback), so selection rates keep the absolute level the head learnt).
    """

    rule: Literal["top_share", "threshold", "draw"] = "top_share"
    share: Share = 0.5
    # every head's score lies in [-2, 2] (cosines, their differences, probabilities)
    threshold: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None

    @model_validator(mode="after")
    def _threshold_given(self) -> DecisionSpec:
        if self.rule == "threshold" and self.threshold is None:
            raise ValueError("rule: threshold needs threshold: VALUE")
        return self


class AgentCard(Strict):
    """What a population of deciders carries: a checkpoint, a head, a decision rule."""

    name: Name
    description: str = ""
    checkpoint: str = "builtin:minilm"  # or a folder, or forge:CORPUS_CARD.yaml
    head: SerializeAsAny[HeadSpec]  # dumped with its kind's own fields
    decision: DecisionSpec = DecisionSpec()
    # where the checkpoint computes: cpu (fp32: what the tests check), cuda (bf16 or
    # fp16), auto (cuda when torch sees a GPU)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    # the CPU's compute dtype: fp32 (what pins and tables were made in), bf16 (where the
    # CPU has it natively; refused elsewhere), auto (bf16 where native, else fp32)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"

    @field_validator("checkpoint")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip() or value.strip() == FORGE_PREFIX:
            raise ValueError(
                f"{value!r} names no checkpoint (builtin:minilm, a checkpoint folder or "
                "forge:CORPUS_CARD.yaml)"
            )
        return value

    @field_validator("head", mode="wrap")
    @classmethod
    def _of_its_kind(cls, value: Any, handler: Any) -> HeadSpec:
        return value if isinstance(value, HeadSpec) else HeadSpec.model_validate(value)

    def fingerprint(self) -> str:
        # the default device, and a head without a candidate line (every kind but
        # choose_one), leave the hash as it was before cards had them: run ids of
        # earlier result folders stay valid (their runs resume)
        exclude: dict = {"device": True} if self.device == "cpu" else {}
        if self.precision == "fp32":  # likewise the default precision
            exclude["precision"] = True
        if self.head.candidate is None:
            exclude["head"] = {"candidate"}
        return digest(self.model_dump(mode="json", exclude=exclude or None))

    @property
    def forged(self) -> bool:
        return self.checkpoint.startswith(FORGE_PREFIX)


def load_card(path: Path) -> AgentCard:
    """Load an agent card. A relative ``head.file`` or ``forge:`` corpus-card path is
    resolved against the card's folder."""
    path = Path(path)
    card = parse(AgentCard, read_yaml(path), str(path))
    if card.forged:
        corpus = Path(card.checkpoint.removeprefix(FORGE_PREFIX))
        if not corpus.is_absolute():
            corpus = (path.parent / corpus).resolve()
        card = card.model_copy(update={"checkpoint": f"{FORGE_PREFIX}{corpus}"})
    head_file = card.head.file
    if head_file is not None and not head_file.is_absolute():
        head = card.head.model_copy(update={"file": (path.parent / head_file).resolve()})
        card = card.model_copy(update={"head": head})
    return card


def card_folders(spec_path: Path | None = None, agents_dir: Path | None = None) -> list[Path]:
    """Where card names are looked up, in order: ``--agents-dir``, ``agents/`` beside
    the spec's folder, inside it, in the working directory, and last the cards the
    package ships (`uim_sim.builtin`)."""
    folders = [Path(agents_dir)] if agents_dir else []
    if spec_path is not None:
        spec_dir = Path(spec_path).resolve().parent
        folders += [spec_dir.parent / "agents", spec_dir / "agents"]
    folders += [Path("agents"), builtin.FOLDERS["cards"]]
    return list(dict.fromkeys(folders))


def find_card(name: str, spec_path: Path, agents_dir: Path | None = None,
              where: str | None = None) -> Path:  # fmt: skip
    """Resolve a card reference: a path to a YAML file, or a name in an agents folder.
    An unknown name is an error naming every folder searched and the closest name
    (after ``where``: default, the spec file's ``PATH: ``)."""
    where = f"{builtin.shown(spec_path)}: " if where is None else where
    spec_dir = Path(spec_path).resolve().parent
    if name.startswith(builtin.PREFIX):  # only the package's own cards
        found = builtin.find("cards", name)
        if found is None:
            known = [n for n, _ in builtin.names("cards")]
            close = difflib.get_close_matches(name.removeprefix(builtin.PREFIX), known, n=1)
            hint = f"; did you mean {builtin.PREFIX}{close[0]}?" if close else ""
            raise SpecError(f"{where}cards: no built-in card {name!r}{hint}")
        return found
    if name.endswith((".yaml", ".yml")):
        for candidate in (spec_dir / name, Path(name)):
            if candidate.is_file():
                return candidate
        if (found := builtin.find("cards", name)) is not None:
            return found
        raise SpecError(f"{where}cards: no card file {name!r} (beside the spec or here)")
    folders = card_folders(spec_path, agents_dir)
    for folder in folders:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    looked = ", ".join(builtin.shown(f.resolve()) if f.is_absolute() else str(f) for f in folders)
    raise SpecError(f"{where}cards: no card named {name!r} (looked in {looked}){hint}")


def __getattr__(name: str) -> Any:  # POOLED, as read before kinds were classes
    if name == "POOLED":
        import_module(BUILT_IN_HEADS)
        return tuple(k for k, c in HEADS.items() if c.reads_pool)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
