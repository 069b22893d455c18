"""A second machine in the suite: the pinned tests and the byte-level tests run again
in a process whose kernels are those of another machine (ATen's AVX2 kernels instead
of AVX-512, MKL's AVX2 branch, oneDNN limited to AVX2, one torch thread), so that a
developer on any CPU sees what a different machine would see before CI does. The
settings take effect only before torch starts, hence a subprocess; on a CPU without
AVX-512 some of them change nothing (the run says which kernels it took)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

ANOTHER_MACHINE = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2,STRICT",
    "OMP_NUM_THREADS": "1",
}
TESTS = [
    "tests/test_pinned.py",
    "tests/test_engine.py::test_a_texts_bits_do_not_depend_on_its_company_row_or_threads",
    "tests/test_determinism.py::test_an_embedding_is_a_function_of_the_text_alone",
    "tests/test_causal_lm.py::test_next_token_scores_keep_their_bits_in_any_company_row_or_thread_count",
    "tests/test_causal_lm.py::test_class_probabilities_keep_their_bits_in_any_company",
]


def test_pinned_and_byte_level_tests_pass_on_another_machines_kernels():
    env = {**os.environ, **ANOTHER_MACHINE}
    kernels = subprocess.run(
        [sys.executable, "-c", "import uim_sim, torch; from uim_sim.lfm import numerics as n; "
         "torch.ones(2, 2) @ torch.ones(2, 2); print(n.describe(n.fingerprint()))"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert "torch_cpu_capability AVX2" in kernels, kernels
    # MKL takes the AVX2 branch asked for on an Intel CPU; on an AMD one it reports AUTO
    # whatever is asked (measured on an AMD EPYC with AVX-512), strict all the same
    assert re.search(r"mkl (AVX2|AUTO) strict|mkl none", kernels), kernels
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"on {kernels}:\n{done.stdout[-4000:]}"
