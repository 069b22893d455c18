"""A card's or spec's ``precision`` (fp32, bf16, auto): refused where bf16 would be
slower, out of the run id at its default, bf16 runs deterministic and measured against
fp32 on their own texts; and torch's threads fitted to the load (issue 29)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import small_audit_spec, write_yaml
from test_causal_lm import refused

from uim_sim.cards import AgentCard, HeadSpec
from uim_sim.cli import main
from uim_sim.lfm import device, fidelity
from uim_sim.lfm.checkpoint import resolve
from uim_sim.lfm.engine import Engine
from uim_sim.run import plan, threads
from uim_sim.run.executors import SerialExecutor
from uim_sim.schema import digest

NATIVE = device.bf16_support() is not None
needs_bf16 = pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16")
TABLES = ("runs.parquet", "metrics.parquet", "decisions.parquet")


def _spec(project, name: str = "tiny", **overrides):
    spec = small_audit_spec(cards=["tiny_zero_shot"], arms=[[]], replicates=1, **overrides)
    spec["params"] = {"mode": "audit", "n_jobs": 3, "n_history": 60}
    spec["statistics"] = {"null_permutations": 0, "name_permutations": 20}
    return write_yaml(project / "scenarios" / f"{name}.yaml", spec)


def test_bf16_is_refused_on_a_cpu_without_it_and_auto_says_what_it_chose(
    project, capsys, monkeypatch
):
    monkeypatch.setattr(device, "cpu_bf16", lambda: [])
    spec = _spec(project, precision="bf16")  # the spec's precision is every card's
    refused(capsys, ["validate", str(spec)], "agent tiny_zero_shot", "precision: bf16",
            "this CPU has no native bf16")  # fmt: skip
    refused(capsys, ["run", str(spec), "--out", str(project / "out")], "precision: bf16")
    assert not (project / "out").exists()
    card = yaml.safe_load((project / "agents" / "tiny_zero_shot.yaml").read_text())
    write_yaml(project / "agents" / "tiny_zero_shot.yaml", {**card, "precision": "bf16"})
    refused(capsys, ["validate", str(_spec(project))], "precision: bf16")  # on the card
    write_yaml(project / "agents" / "tiny_zero_shot.yaml", {**card, "precision": "bf17"})
    refused(capsys, ["validate", str(_spec(project))], "precision")
    write_yaml(project / "agents" / "tiny_zero_shot.yaml", card)
    auto = _spec(project, "auto", precision="auto")
    note = "precision: auto → fp32 (this CPU has no native bf16 (neither AMX-BF16 nor AVX512"
    assert main(["validate", str(auto)]) == 0
    assert note in capsys.readouterr().err
    assert main(["run", str(auto), "--out", str(project / "auto")]) == 0
    assert note in capsys.readouterr().err
    execution = pd.read_parquet(project / "auto" / "execution.parquet")
    assert set(execution["precision"]) == {"fp32"} and "fidelity.texts" not in execution
    assert set(execution["numerics.dtype"]) == {"float32"}


def test_onednn_capped_below_a_cpus_bf16_is_no_native_bf16(project, capsys, monkeypatch):
    """ONEDNN_MAX_CPU_ISA below the CPU's bf16 level makes oneDNN emulate bf16 (2-4×
    slower than fp32 on an AMD EPYC with AVX512-BF16): `auto` keeps fp32 and says why,
    bf16 is refused naming the variable. A real cap, on any CPU that has the feature."""
    monkeypatch.setattr(device, "cpu_bf16", lambda: ["amx_bf16", "avx512_bf16"])
    for cap, found in (("AVX2", None), ("avx512_core", None), ("AVX512_CORE_BF16", "avx512_bf16"),
                       ("AVX10_1_512", "avx512_bf16"), ("AVX512_CORE_AMX", "amx_bf16"),
                       ("ALL", "amx_bf16"), ("", "amx_bf16")):  # fmt: skip
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert device.bf16_support() == found, cap
    monkeypatch.setattr(device, "cpu_bf16", lambda: ["avx512_bf16"])
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")  # oneDNN's older name
    why = "DNNL_MAX_CPU_ISA=AVX2 keeps oneDNN from this CPU's avx512_bf16"
    refused(capsys, ["validate", str(_spec(project, precision="bf16"))], "precision: bf16",
            why)  # fmt: skip
    assert main(["validate", str(_spec(project, "auto", precision="auto"))]) == 0
    assert f"precision: auto → fp32 ({why})" in capsys.readouterr().err


def test_the_default_precision_leaves_run_ids_as_they_were(project, monkeypatch):
    card = AgentCard(name="c", head=HeadSpec(kind="zero_shot"))
    before = card.model_dump(mode="json")
    del before["device"], before["precision"], before["head"]["candidate"]
    assert card.fingerprint() == digest(before)
    assert card.model_copy(update={"precision": "bf16"}).fingerprint() != card.fingerprint()
    monkeypatch.setattr(device, "bf16_support", lambda: "avx512_bf16")  # any CPU plans it
    ids = {p: [t.run_id for t in plan(_spec(project, p, **({"precision": p} if p else {}))).tasks]
           for p in ("", "fp32", "bf16", "auto")}  # fmt: skip
    assert ids[""] == ids["fp32"]
    assert ids["bf16"] != ids["fp32"] and ids["auto"] not in (ids["fp32"], ids["bf16"])


@needs_bf16
def test_bf16_runs_are_byte_identical_and_measured_against_fp32(project, capsys):
    spec = _spec(project, precision="bf16")
    # here, and in a worker process on torch's threads there (another executor)
    for out, flags in (("one", ["--threads", "1"]), ("two", ["--executor", "process"])):
        assert main(["run", str(spec), "--out", str(project / out), *flags]) == 0
    for table in TABLES:
        assert (project / "one" / table).read_bytes() == (project / "two" / table).read_bytes()
    execution = pd.read_parquet(project / "one" / "execution.parquet").iloc[0]
    assert execution["precision"] == "bf16" and execution["numerics.dtype"] == "bfloat16"
    assert execution["numerics.cpu_bf16"] == device.bf16_support()
    assert (execution["threads"], execution["threads.rule"]) == (1, threads.GIVEN)
    assert 0 < execution["fidelity.texts"] <= fidelity.SAMPLE
    assert 0 <= execution["fidelity.max_abs_diff"] < 1
    assert -1 <= execution["fidelity.spearman"] <= 1
    assert 0 <= execution["fidelity.agreement"] <= 1
    assert execution["fidelity.agreement_of"] == "pairwise orderings"  # a top_share rule
    assert execution["fidelity.seconds"] > 0
    assert main(["report", str(project / "one")]) == 0
    summary = (project / "one" / "report" / "summary.md").read_text()
    assert "computed in bf16 (`precision`), compared with fp32" in summary
    # the fp32 runs of the same spec: other run ids, no fidelity
    assert main(["run", str(_spec(project, "plain")), "--out", str(project / "plain")]) == 0
    plain = pd.read_parquet(project / "plain" / "runs.parquet")["run_id"]
    assert set(plain).isdisjoint(pd.read_parquet(project / "one" / "runs.parquet")["run_id"])


@needs_bf16
def test_a_bf16_embedding_is_a_function_of_the_text_alone():
    from test_determinism import COMPANY, PROBES

    engine = Engine(resolve("builtin:minilm"), precision="bf16")
    fp32 = Engine(resolve("builtin:minilm"))
    alone = []
    with threads.fitted(1):
        for text in PROBES:
            engine.clear_cache()
            alone.append(engine.embed([text])[0].tobytes())
    batch = PROBES + COMPANY[::3]
    order = np.random.default_rng(0).permutation(len(batch))
    with threads.fitted(2):
        threads.apply(threads.Choice(2, threads.GIVEN))
        engine.clear_cache()
        vectors = engine.embed([batch[i] for i in order])
    where = {i: k for k, i in enumerate(order)}
    for j, expected in enumerate(alone):
        assert vectors[where[j]].tobytes() == expected, PROBES[j]
    cosines = (engine.embed(PROBES) * fp32.embed(PROBES)).sum(1)
    assert cosines.min() > 0.99  # bf16 keeps about 3 significant digits


@needs_bf16
def test_bf16_on_the_cpu_is_mixed_precision_closer_to_fp32_than_a_cast_model():
    """fp32 weights under autocast: matrix products in bf16, the residual stream and
    layer norms in fp32. Measured: a third of the error of the model cast to bf16."""
    import torch
    from test_determinism import COMPANY, PROBES

    texts = PROBES + COMPANY
    engine = Engine(resolve("builtin:minilm"), precision="bf16")
    assert {p.dtype for p in engine.network.parameters()} == {torch.float32}
    reference = Engine(resolve("builtin:minilm")).embed(texts)
    cast = Engine(resolve("builtin:minilm"))
    cast.network = cast.network.to(torch.bfloat16)
    cast.model = cast.network.base_model
    error = {name: float((1 - (e.embed(texts) * reference).sum(1)).mean())
             for name, e in (("mixed", engine), ("cast", cast))}  # fmt: skip
    assert error["mixed"] < 0.6 * error["cast"], error


def test_fidelity_agreement_follows_the_decision_rule():
    class Rule:
        def __init__(self, rule, threshold=None):
            self.rule, self.threshold = rule, threshold

    a, b = np.array([0.1, 0.4, 0.6, 0.9]), np.array([0.1, 0.55, 0.45, 0.9])
    assert fidelity.agreement(a, b, [Rule("threshold", 0.5)] * 4) == (0.5, "decisions (threshold)")
    share, of = fidelity.agreement(a, b, [Rule("draw")] * 4)
    assert of == "decisions (draw, expected)" and share == pytest.approx(1 - 0.3 / 4)
    share, of = fidelity.agreement(a, b, [Rule("top_share")] * 4)
    assert of == "pairwise orderings" and share == pytest.approx(5 / 6)
    assert fidelity.beyond({"fidelity.agreement": 0.98, "fidelity.spearman": 1.0})
    assert fidelity.beyond({"fidelity.agreement": 1.0, "fidelity.spearman": 0.98})
    # a large score difference alone is printed, not warned of: its scale is the head's
    assert not fidelity.beyond({"fidelity.max_abs_diff": 0.04, "fidelity.agreement": 0.997,
                                "fidelity.spearman": 0.9996})  # fmt: skip
    assert not fidelity.beyond({"fidelity.agreement": 1.0, "fidelity.spearman": math.nan})


# ------------------------------------------------------------ threads


def test_serial_threads_fit_the_load():
    assert [threads.fit(o, 2) for o in (0.0, 0.2, 0.3, 1.0, 1.3, 5.0)] == [2, 2, 1, 1, 1, 1]
    assert threads.fit(3.1, 16) == 13 and threads.fit(0, 1) == 1
    assert threads.shared(4, None) == threads.Choice(max(1, threads.cores() // 4), threads.SHARED)
    assert threads.shared(4, 3) == threads.Choice(3, threads.GIVEN)


def test_the_meter_counts_what_others_used(monkeypatch):
    readings = iter([(0.0, 10.0, 1.0), (2.0, 13.0, 2.0), (2.01, 13.0, 2.0), (2.31, 13.3, 2.0)])
    monkeypatch.setattr(threads, "_reading", lambda: next(readings))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    meter = threads.LoadMeter()
    assert meter.others() == pytest.approx(1.0)  # 3 CPU seconds in 2 s, 1 of them ours
    assert meter.others() == pytest.approx(1.0)  # too recent: a fresh window (0.3 in 0.3 s)


def test_the_serial_executor_records_its_choice_and_restores_torchs_threads(monkeypatch):
    before = device.torch_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    fitted = dict(SerialExecutor().map_unordered(lambda task: threads.current(), [1, 2]))
    assert {c.rule for c in fitted.values()} == {threads.FITTED}
    assert all(1 <= c.threads <= threads.cores() and c.others >= 0 for c in fitted.values())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a user's limit is the most it takes
    monkeypatch.setattr(threads, "fit", lambda others: 2)
    capped = dict(SerialExecutor().map_unordered(lambda task: threads.current(), [1]))
    assert capped[1].threads == 1
    given = dict(SerialExecutor(1).map_unordered(lambda task: threads.current(), [1]))
    assert given[1] == threads.Choice(1, threads.GIVEN)
    assert device.torch_threads() == before
    assert threads.current().rule != threads.GIVEN


def _forge_card(**training):
    from conftest import SMALL_CORPUS

    from uim_sim.understand.cards import CorpusCard

    recipe = {**SMALL_CORPUS["training"], "steps": 6, **training}
    return CorpusCard(**{**SMALL_CORPUS, "sentences": 600, "training": recipe})


def test_forging_precision_is_out_of_the_card_hash_at_fp32_and_refused_without_bf16(
    monkeypatch,
):
    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.understand.forge import check_base

    assert _forge_card().fingerprint() == _forge_card(precision="fp32").fingerprint()
    assert _forge_card(precision="bf16").fingerprint() != _forge_card().fingerprint()
    monkeypatch.setattr(device, "cpu_bf16", lambda: [])
    with pytest.raises(CheckpointError, match=r"^training\.precision: bf16: this CPU"):
        check_base(_forge_card(precision="bf16"))
    check_base(_forge_card(precision="auto"))  # auto: fp32 here, not refused
    monkeypatch.setattr(device, "bf16_support", lambda: "avx512_bf16")
    private = _forge_card(precision="bf16").model_copy(
        update={"privacy": {"epsilon": 8.0, "delta": 1e-5}}
    )
    with pytest.raises(CheckpointError, match="bf16 with privacy"):
        check_base(private)


@needs_bf16
def test_a_bf16_forge_trains_under_autocast_and_saves_fp32(tmp_path):
    import json

    from safetensors import safe_open

    from uim_sim.understand.forge import forge

    losses = {}
    for precision in ("fp32", "bf16"):
        seen = []
        folder = forge(_forge_card(precision=precision), tmp_path / precision,
                       lambda step, steps, loss, seen=seen: seen.append(loss))  # fmt: skip
        losses[precision] = seen
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["training"].get("precision") == (None if precision == "fp32" else "bf16")
        with safe_open(str(folder / "model.safetensors"), "pt") as weights:
            assert {str(weights.get_tensor(k).dtype) for k in weights.keys()} == {"torch.float32"}
    assert len(losses["bf16"]) == len(losses["fp32"]) == 6
    # the same data and initial weights: the first loss agrees to bf16's precision
    assert abs(losses["bf16"][0] - losses["fp32"][0]) < 0.05 * losses["fp32"][0]


@needs_bf16
def test_auto_computes_a_run_again_in_fp32_where_bf16_lies_beyond_the_bounds(project, monkeypatch):
    """`auto` is bf16 only where the run's own texts keep their decisions: beyond the
    bounds (here made unreachable) the run is computed again in fp32, and records why;
    a card that names bf16 keeps it, and the report warns."""
    monkeypatch.setattr(fidelity, "MIN_AGREEMENT", 1.01)  # every bf16 sample lies beyond
    for name, precision in (("auto", "auto"), ("bf16", "bf16"), ("fp32", None)):
        extra = {"precision": precision} if precision else {}
        assert main(["run", str(_spec(project, name, **extra)), "--out", str(project / name)]) == 0
    auto = pd.read_parquet(project / "auto" / "execution.parquet").iloc[0]
    assert auto["precision"] == "fp32" and auto["numerics.dtype"] == "float32"
    assert bool(auto["fidelity.fallback"]) and auto["fidelity.texts"] > 0
    assert auto["fidelity.agreement"] < 1.01 and auto["wall_seconds"] > auto["fidelity.seconds"]
    # its results are fp32's: the fp32 run's tables but for the run id
    for table in TABLES[1:]:
        a, b = (pd.read_parquet(project / n / table).drop(columns="run_id")
                for n in ("auto", "fp32"))  # fmt: skip
        pd.testing.assert_frame_equal(a, b)
    bf16 = pd.read_parquet(project / "bf16" / "execution.parquet").iloc[0]
    assert bf16["precision"] == "bf16" and "fidelity.fallback" not in bf16
    for name, said in (("auto", "computed again in fp32"), ("bf16", "lie beyond the fidelity")):
        assert main(["report", str(project / name)]) == 0
        assert said in (project / name / "report" / "summary.md").read_text(), name
    assert "lie beyond the fidelity" not in (project / "auto" / "report" / "summary.md").read_text()
