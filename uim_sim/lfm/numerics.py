"""Numerics: what a machine's math libraries make of a model's numbers, and what
uim-sim promises about them.

**On one machine** (the same CPU features and library builds) a score is a function
of (checkpoint, text) alone: the same bits whatever company the text is batched in,
whatever torch's thread count, executor, run order or resume. The engine's length
buckets give every text one width; the rest is asked of MKL, the matrix library of
torch's x86 builds. MKL picks kernels and splits its sums by the shape of a product
and by thread count, so without being asked, a row's last bits depend on its batch
and the threads: measured on an Intel Xeon with AVX-512 and AMX (torch 2.13.0+cpu,
MKL 2024.2), 55 of 304 MiniLM embeddings changed bits across batch companies and one
or two threads, and even batches of one fixed shape lost 4 of 304. MKL's conditional
numerical reproducibility in strict mode (``MKL_CBWR=<branch>,STRICT``: a fixed code
path whose sums do not depend on threads or alignment) brings that to 0 of 304 at no
measurable cost in speed (219 and 224 MiniLM texts/s on that machine: 1.02×). uim-sim
asks for it (`request_reproducible`, at ``import uim_sim``: MKL reads the setting
on its first call) and checks it (`ensure_reproducible`, when an engine or a forge
starts): with the branch the user set, or ``AUTO`` (the best this CPU has).

**Across machines** nothing is bit for bit: another CPU takes other kernels in MKL
(its CNR branch), in ATen (torch's own kernels: layer norm, softmax, GELU, by CPU
capability) and in numpy's OpenBLAS. Each run records the `fingerprint` of the
libraries and kernel paths that computed it (execution.parquet, the report); a
result folder resumed under another fingerprint says so. Scores agree within
`SCORE_TOLERANCE` (measured: see its comment), and decisions agree except where a
score lies closer than that to its decision boundary.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import os
import platform
import re
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Scores of one (checkpoint, text) computed on two machines (or kernel paths) differ
# by less than this. Measured (benchmarks/numerics.py) on the pinned specs between
# the default path of an Intel Xeon with AVX-512 and AMX and every other path it can
# reach (ATen AVX2 or no SIMD, MKL's AVX2 and COMPATIBLE branches, oneDNN AVX2, one
# thread), and against pins made on another CPU: at most 1.3e-5 (logistic heads;
# zero-shot cosines 3e-7); the tolerance leaves a factor of about 8.
SCORE_TOLERANCE = 1e-4

# MKL_CBWR branches (mkl_service.h); STRICT is a flag on top of a branch
_BRANCHES = {
    1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1",
    8: "SSE4_2", 9: "AVX", 10: "AVX2", 11: "AVX512_MIC", 12: "AVX512",
    13: "AVX512_MIC_E1", 14: "AVX512_E1",
}  # fmt: skip
_STRICT = 0x10000
_ALL = -1  # MKL_CBWR_ALL: the branch and its flags
_AUTO = 2

# what may differ between machines without the numbers differing: recorded, not hashed
INFORMATIVE = ("cpu", "threads")


def request_reproducible() -> None:
    """Ask MKL for strict conditional numerical reproducibility: ``MKL_CBWR`` gets
    ``STRICT`` (and the ``AUTO`` branch where none is set). MKL reads it on its first
    call, so this runs at ``import uim_sim``; spawned workers inherit it."""
    parts = [p.strip() for p in os.environ.get("MKL_CBWR", "").split(",") if p.strip()]
    if not any(p.upper() != "STRICT" for p in parts):
        parts.insert(0, "AUTO")
    if not any(p.upper() == "STRICT" for p in parts):
        parts.append("STRICT")
    os.environ["MKL_CBWR"] = ",".join(parts)


@functools.cache
def _mkl() -> ctypes.CDLL | None:
    """torch's MKL service functions (statically linked into libtorch_cpu), or None
    for a torch build without MKL (aarch64, macOS)."""
    import torch

    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        path = Path(torch.__file__).parent / "lib" / name
        if path.is_file():
            try:
                lib = ctypes.CDLL(str(path))
                get = lib.mkl_serv_cbwr_get
            except (OSError, AttributeError):
                return None
            get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
            lib.mkl_serv_cbwr_set.argtypes = [ctypes.c_int]
            lib.mkl_serv_cbwr_set.restype = ctypes.c_int
            lib.mkl_serv_cbwr_get_auto_branch.restype = ctypes.c_int
            return lib
    return None


def mkl_mode() -> str:
    """MKL's CNR mode as it computes now: its branch (``AUTO`` resolved to the branch
    this CPU runs) and ``strict``; ``none`` without MKL."""
    lib = _mkl()
    if lib is None:
        return "none"
    mode = lib.mkl_serv_cbwr_get(_ALL)
    branch = mode & ~_STRICT
    if branch == _AUTO:
        branch = lib.mkl_serv_cbwr_get_auto_branch()
    name = _BRANCHES.get(branch, str(branch))
    return f"{name} strict" if mode & _STRICT else f"{name} (not strict)"


_WARNED = False


def ensure_reproducible() -> bool:
    """Is MKL in strict CNR mode (True without MKL: nothing to ask)? Where it is not
    yet, it is set now, which works until MKL's first call; after that (torch computed
    before ``import uim_sim``) a warning says that results may depend on batch
    company and threads, and the fingerprint says so."""
    global _WARNED
    lib = _mkl()
    if lib is None:
        return True
    mode = lib.mkl_serv_cbwr_get(_ALL)
    if mode & _STRICT:
        return True
    branch = mode & ~_STRICT
    if lib.mkl_serv_cbwr_set((_AUTO if branch == 1 else branch) | _STRICT) == 0:
        return True
    if not _WARNED:
        _WARNED = True
        warnings.warn(
            "MKL computed before uim-sim could ask it for reproducible numbers: scores may "
            "change in their last bits with batch company and thread count; import uim_sim "
            "before any torch computation, or set MKL_CBWR=AUTO,STRICT",
            RuntimeWarning,
            stacklevel=2,
        )
    return False


@functools.cache
def _libraries() -> dict[str, str]:
    """Versions and kernel paths that do not change within a process."""
    import numpy
    import scipy
    import sklearn
    import tokenizers
    import torch
    import transformers
    from threadpoolctl import threadpool_info

    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN (v[\d.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    blas = sorted(
        {
            f"{i['internal_api']} {i.get('version') or ''} {i.get('architecture') or ''}".strip()
            for i in threadpool_info()
            if i["user_api"] == "blas"
        }  # fmt: skip
    )
    simd = getattr(numpy, "__config__", None)
    found = (getattr(simd, "CONFIG", {}) or {}).get("SIMD Extensions", {}).get("found", [])
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "machine": platform.machine(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_version": mkl.group(1) if mkl else "none",
        "onednn": (onednn.group(1) if onednn else "none")
        + (
            f" max ISA {os.environ['ONEDNN_MAX_CPU_ISA']}"
            if "ONEDNN_MAX_CPU_ISA" in os.environ
            else ""
        ),  # fmt: skip
        "blas": "; ".join(blas) or "none",
        "numpy_simd": " ".join(found) or "baseline",
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@functools.cache
def _gpu(device: str) -> str:
    import torch

    if device != "cuda":
        return ""
    name = torch.cuda.get_device_name()
    return f"{name}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}"


def fingerprint(devices: tuple[str, ...] = ("cpu",),
                dtypes: tuple[str, ...] | None = None) -> dict[str, Any]:  # fmt: skip
    """What computed a run's numbers: library versions, the kernel paths taken (torch's
    CPU capability, MKL's CNR branch, oneDNN's ISA limit, numpy's BLAS and SIMD), the
    devices and dtypes; ``numerics``: a short hash of all of it but `INFORMATIVE`
    (the CPU's name and the thread count: on one machine they do not change a bit).
    ``dtypes``: the run's compute dtypes (``float32``, ``bfloat16``); default, each
    device's at the default precision."""
    import torch

    from uim_sim.lfm.device import bf16_support, compute_dtype, dtype_name

    found = dict(_libraries())
    devices = tuple(sorted(set(devices)))
    found["mkl"] = mkl_mode()
    found["device"] = ",".join(devices)
    if dtypes is None:
        dtypes = tuple(dtype_name(compute_dtype(d)) for d in devices)
    found["dtype"] = ",".join(sorted(set(dtypes)))
    if "cpu" in devices and "bfloat16" in dtypes:  # bf16 on the CPU: AMX or AVX512-BF16
        found["cpu_bf16"] = bf16_support() or "none"  # kernels (absent from fp32 runs)
    found["gpu"] = "; ".join(filter(None, map(_gpu, devices))) or "none"
    found["threads"] = torch.get_num_threads()
    hashed = {k: v for k, v in found.items() if k not in INFORMATIVE}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]
    return {"numerics": digest, **found}


def numerics_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint as execution.parquet's columns: ``numerics`` (the hash) and
    ``numerics.FIELD`` for each field."""
    return {k if k == "numerics" else f"numerics.{k}": v for k, v in fields.items()}


def from_columns(row: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint read back from execution columns (`numerics_columns`); a field
    another run's fingerprint has and this one's has not (missing in a gathered table)
    is left out."""
    return {
        k.removeprefix("numerics."): v
        for k, v in row.items()
        if k.startswith("numerics") and not (v is None or (isinstance(v, float) and v != v))
    }


def describe(fields: dict[str, Any]) -> str:
    """One line of a fingerprint's fields: what a person reads in a notice."""
    keys = ("cpu", "torch_cpu_capability", "mkl", "torch", "device", "dtype", "cpu_bf16")
    return ", ".join(f"{k} {fields[k]}" for k in keys if k in fields)


def differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The hashed fields two fingerprints disagree on, as 'field: old → new'."""
    keys = [k for k in new if k not in INFORMATIVE and k != "numerics" and old.get(k) != new[k]]
    return "; ".join(f"{k}: {old.get(k, '?')} → {new[k]}" for k in keys)
