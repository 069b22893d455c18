"""Causal LMs shipped as GGUF (llama.cpp's format), converted into a safetensors folder.

A GGUF file holds a model's weights as quantised blocks (Q4_K, Q8_0, …) or as F16/F32
values, and its tokenizer as metadata. transformers' GGUF loader builds the tokenizer
and dequantises the weights into a float32 model, which it saves as safetensors only
where it was asked to dequantise at load (transformers 5 otherwise keeps the model
marked as GGUF-quantised and refuses `save_pretrained`). The folder is then registered
like any other, its manifest recording where the weights came from (`dequantised_from`).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from uim_sim.lfm.checkpoint import Checkpoint, CheckpointError, file_sha256, first_line, register

INSTALL = "pip install 'uim-sim[gguf]'"
MAGIC = b"GGUF"


def is_gguf(path: Path) -> bool:
    """Is ``path`` a file named ``*.gguf`` or starting with GGUF's magic bytes?"""
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return path.suffix.lower() == ".gguf" or fh.read(4) == MAGIC


def register_gguf(path: Path, out: Path) -> tuple[Checkpoint, dict[str, Any]]:
    """Convert the GGUF file ``path`` into the folder ``out`` (`convert`), load it as a
    run will and register it, recording ``dequantised_from``. On any failure nothing is
    left behind. Returns the checkpoint and the record."""
    from uim_sim.lfm.engine import check_loads

    origin = convert(path, out)
    try:
        check_loads(str(out))
        checkpoint, _ = register(str(out), dequantised_from=origin)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return checkpoint, origin


def convert(path: Path, out: Path) -> dict[str, Any]:
    """Write ``out``: the GGUF's weights dequantised to float32 safetensors, its config
    and its tokenizer. Built in a hidden folder beside ``out`` and renamed into place
    once whole. Returns what `register_gguf` records: the file's name and sha256, its
    architecture, quantisation (llama.cpp's file type, where the file names one), the
    count of tensors of each stored type, and the type they were dequantised to."""
    try:
        import accelerate  # noqa: F401  transformers loads a GGUF through it
        import gguf
    except ImportError:
        raise CheckpointError(f"{path}: reading GGUF needs the gguf extra: {INSTALL}") from None
    if out.exists():
        raise CheckpointError(
            f"--out: {out} exists; refusing to replace it (to verify a folder converted "
            f"before: uim-sim register {out})"
        )
    if not out.parent.is_dir():
        raise CheckpointError(f"--out: {out.parent} is not a folder")
    origin = read_origin(path, gguf)
    build = out.parent / f".{out.name}.{os.getpid()}.partial"  # mkdir: the umask's mode
    build.mkdir()
    try:
        origin["dequantised_to"] = _dequantise(path, origin["architecture"], build)
        build.rename(out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return origin


def read_origin(path: Path, gguf: Any) -> dict[str, Any]:
    """What the GGUF file says it is, read off its header (no tensor is read)."""
    with open(path, "rb") as fh:
        if fh.read(4) != MAGIC:
            raise CheckpointError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
    try:
        reader = gguf.GGUFReader(path)
        architecture = _scalar(reader, "general.architecture", gguf)
        file_type = _scalar(reader, "general.file_type", gguf)
        tensor_types = Counter(t.tensor_type.name for t in reader.tensors)
    except Exception as exc:  # gguf raises ValueError, KeyError, … for a damaged file
        raise CheckpointError(f"{path}: not a readable GGUF file ({first_line(exc)})") from None
    if not isinstance(architecture, str):
        raise CheckpointError(f"{path}: the GGUF names no general.architecture")
    known = {t.value: t.name.removeprefix("MOSTLY_").removeprefix("ALL_")
             for t in gguf.LlamaFileType if t.name != "GUESSED"}  # fmt: skip
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "architecture": architecture,
        # llama.cpp's file type (MOSTLY_Q4_K_M: Q4_K_M); None where the file names none
        "quantisation": known.get(file_type),
        "tensor_types": dict(sorted(tensor_types.items())),
    }


def _scalar(reader: Any, key: str, gguf: Any) -> Any:
    """A scalar or string metadata value of the GGUF, or None where it has none."""
    field = reader.get_field(key)
    if field is None or not field.data:
        return None
    value = field.parts[field.data[0]]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(value).decode("utf-8")
    return value[0].item()


def _dequantise(path: Path, architecture: str, folder: Path) -> str:
    """transformers reads the GGUF (config, tokenizer, dequantised weights) and saves
    them into ``folder``; returns the weights' type (float32)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    where = {"pretrained_model_name_or_path": path.parent, "gguf_file": path.name,
             "local_files_only": True, "trust_remote_code": False}  # fmt: skip
    try:
        config = AutoConfig.from_pretrained(**where)
    except Exception as exc:  # "GGUF model with architecture … is not supported yet", …
        raise CheckpointError(
            f"{path}: transformers {transformers.__version__} cannot read a GGUF of "
            f"architecture {architecture!r} ({first_line(exc)}); bring the model's "
            "safetensors folder instead"
        ) from None
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING or config.is_encoder_decoder:
        raise CheckpointError(
            f"{path}: a GGUF of architecture {architecture!r} is not a causal LM "
            f"({type(config).__name__}); uim-sim converts causal LMs from GGUF"
        )
    # transformers 5 keeps a GGUF model quantised (unsaveable) unless asked to dequantise
    # it, and would load an F16 file in F16; transformers 4 always made float32 weights
    options = {}
    if hasattr(transformers, "GgufConfig"):
        options = {"quantization_config": transformers.GgufConfig(dequantize=True),
                   "dtype": torch.float32}  # fmt: skip
    try:
        tokenizer = AutoTokenizer.from_pretrained(**where)
        model = AutoModelForCausalLM.from_pretrained(**where, **options)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    except Exception as exc:  # a tokenizer or tensor type transformers cannot read, …
        raise CheckpointError(
            f"{path}: transformers could not convert it ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    return str(model.dtype).removeprefix("torch.")
