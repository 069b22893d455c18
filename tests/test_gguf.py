"""`uim-sim register FILE.gguf`: a causal LM shipped as GGUF (llama.cpp's format),
dequantised into a safetensors folder and registered (uim_sim/lfm/from_gguf.py). The
GGUF files are written here from a random Llama, as llama.cpp's converter writes one."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from test_causal_lm import refused

from uim_sim.cli import main
from uim_sim.lfm import engine
from uim_sim.lfm.checkpoint import CheckpointError, file_sha256
from uim_sim.lfm.engine import get_engine
from uim_sim.lfm.heads import NextTokenHead
from uim_sim.lfm.random_model import END, random_causal_lm

PROMPT = "{text} Should {subject} be hired? Answer:"
TEXTS = [
    "Emily Walsh. Sales representative with 5 years of experience.",
    "Jamal Jones. Office clerk with 1 years of experience. High school diploma.",
    "Greg Baker. Cook.",
    "Lakisha Washington. Customer service, 8 years. Zendesk.",
]
SUBJECTS = ["Emily Walsh", "Jamal Jones", "Greg Baker", "Lakisha Washington"]
TRAINING = [PROMPT.format(text=t, subject=s) + a for t, s in zip(TEXTS, SUBJECTS)
            for a in (" yes", " no")] * 4  # fmt: skip


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A random 2-layer Llama (4 query heads, 2 key-value heads), untied output."""
    folder = tmp_path_factory.mktemp("gguf") / "llama"
    return random_causal_lm(folder, TRAINING, family="llama", heads=4, kv_heads=2, vocab_size=400)


@pytest.fixture(scope="module")
def tied_llama(llama, tmp_path_factory):
    """The Llama with its output tied to its embedding, as SmolLM2's is (no
    lm_head.weight; the GGUF then has no output tensor)."""
    from safetensors.numpy import load_file, save_file

    folder = shutil.copytree(llama, tmp_path_factory.mktemp("gguf") / "tied")
    weights = load_file(folder / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": True}))
    return folder


def write_gguf(folder, path, quantisation: str = "F32"):
    """The Llama of ``folder`` as a GGUF file, written as llama.cpp's convert_hf_to_gguf.py
    writes one: its names, its query and key rows permuted (rotary halves interleaved),
    the byte-level BPE as token list and merges; matrices stored as ``quantisation``
    (F32, F16, Q8_0), norms as F32."""
    pytest.importorskip("accelerate")  # the gguf extra: the converter needs both
    gguf = pytest.importorskip("gguf")
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    bpe = json.loads((folder / "tokenizer.json").read_text())["model"]
    heads, kv_heads, layers = (config[k] for k in ("num_attention_heads", "num_key_value_heads",
                                                   "num_hidden_layers"))  # fmt: skip
    stored = gguf.GGMLQuantizationType[quantisation]
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("random llama")
    writer.add_file_type(gguf.LlamaFileType[("ALL_" if quantisation == "F32" else "MOSTLY_")
                                            + quantisation])  # fmt: skip
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(layers)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(config["hidden_size"] // heads)
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    tokens = sorted(bpe["vocab"], key=bpe["vocab"].get)
    tokens += [f"[PAD{i}]" for i in range(config["vocab_size"] - len(tokens))]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t == END else gguf.TokenType.NORMAL
                            for t in tokens])  # fmt: skip
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]])
    for set_id in (writer.add_bos_token_id, writer.add_eos_token_id, writer.add_pad_token_id,
                   writer.add_unk_token_id):  # fmt: skip
        set_id(bpe["vocab"][END])
    writer.add_add_bos_token(False)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    for name, weight in load_file(folder / "model.safetensors").items():
        module, kind = name.rsplit(".", 1)
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            n = heads if "q_proj" in name else kv_heads
            weight = weight.reshape(n, 2, -1, weight.shape[1]).swapaxes(1, 2).reshape(weight.shape)
        if weight.ndim == 1 or quantisation == "F32":
            data, shape = weight.astype(np.float32), None
        elif quantisation == "F16":
            data, shape = weight.astype(np.float16), None
        else:
            data = gguf.quants.quantize(weight.astype(np.float32), stored)
            shape = data.shape
        writer.add_tensor(f"{names.get_name(module)}.{kind}", data, raw_shape=shape,
                          raw_dtype=stored if shape else None)  # fmt: skip
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def round_tripped(folder, target, quantisation: str):
    """``folder`` with every matrix quantised to ``quantisation`` and back by the gguf
    package (the norms, as llama.cpp stores them, left as they are): the weights a
    dequantised GGUF should hold, in the original's own folder."""
    import gguf
    from safetensors.numpy import load_file, save_file

    shutil.copytree(folder, target)
    stored = gguf.GGMLQuantizationType[quantisation]
    weights = {name: w if w.ndim == 1 else gguf.quants.dequantize(gguf.quants.quantize(w, stored),
                                                                   stored).astype(np.float32)
               for name, w in load_file(folder / "model.safetensors").items()}  # fmt: skip
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


def scores(folder) -> tuple[np.ndarray, list[list[int]]]:
    """The next-token scores of TEXTS (" yes" against " no") and the prompts' tokens."""
    engine = get_engine(str(folder))
    head = NextTokenHead(PROMPT, [" yes"], [" no"])
    ids = [engine.tokenizer(p)["input_ids"] for p in head.prompts(TEXTS, SUBJECTS)]
    return head.score_texts(engine, TEXTS, SUBJECTS), ids


@pytest.mark.parametrize(
    ("model", "quantisation", "tolerance"),  # measured: 0, 2.2e-5, 5.1e-4, 6.7e-4
    [("llama", "F32", 1e-6), ("llama", "F16", 1e-4), ("llama", "Q8_0", 2e-3),
     ("tied_llama", "Q8_0", 2e-3)],
)  # fmt: skip
def test_a_gguf_llama_registers_and_scores_as_its_original(request, tmp_path, capsys, model,
                                                           quantisation, tolerance):  # fmt: skip
    llama = request.getfixturevalue(model)
    file = write_gguf(llama, tmp_path / f"llama-{quantisation}.gguf", quantisation)
    assert main(["register", str(file)]) == 0
    out = tmp_path / f"llama-{quantisation}"
    line = capsys.readouterr().out
    assert f"→ {out}: a causal_lm" in line and f"dequantised from {quantisation}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([file.name, out.name])

    manifest = json.loads((out / "manifest.json").read_text())
    origin = manifest["dequantised_from"]
    assert origin["file"] == file.name and origin["sha256"] == file_sha256(file)
    assert origin["quantisation"] == quantisation and origin["architecture"] == "llama"
    # 7 matrices a layer, the embedding and the output (untied) as asked; 5 norms in F32
    matrices = 16 if model == "llama" else 15
    stored = {"F32": 5 + matrices} if quantisation == "F32" else {"F32": 5, quantisation: matrices}
    assert origin["tensor_types"] == stored and origin["dequantised_to"] == "float32"
    assert manifest["registered"] and manifest["architectures"] == ["LlamaForCausalLM"]
    assert main(["register", str(out)]) == 0  # the folder verifies against its manifest
    assert "already has a manifest.json" in capsys.readouterr().out

    original, original_ids = scores(llama)
    converted, converted_ids = scores(out)
    assert converted_ids == original_ids  # the tokenizer came through the GGUF whole
    assert 0 < original.std()  # the prompts score apart: a tokenizer mix-up would show
    np.testing.assert_allclose(converted, original, rtol=0, atol=tolerance)
    if quantisation != "F32":  # the whole difference is the quantisation's
        reference, _ = scores(round_tripped(llama, tmp_path / "reference", quantisation))
        np.testing.assert_allclose(converted, reference, rtol=0, atol=1e-6)
        assert np.abs(converted - original).max() > 1e-6  # and there is one


def test_a_gguf_is_refused_in_one_line_with_nothing_written(llama, tmp_path, capsys,
                                                            monkeypatch):  # fmt: skip
    gguf = pytest.importorskip("gguf")
    file = write_gguf(llama, tmp_path / "llama.gguf")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    refused(capsys, ["register", str(file), "--out", str(taken)], "exists; refusing to replace")
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    nowhere = tmp_path / "no" / "llama"
    refused(capsys, ["register", str(file), "--out", str(nowhere)], f"{nowhere.parent} is not a")

    bert = gguf.GGUFWriter(tmp_path / "bert.gguf", "bert")  # transformers reads no BERT GGUF
    bert.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    for write in (bert.write_header_to_file, bert.write_kv_data_to_file,
                  bert.write_tensors_to_file, bert.close):  # fmt: skip
        write()
    refused(capsys, ["register", str(tmp_path / "bert.gguf")],
            "cannot read a GGUF of architecture 'bert'")  # fmt: skip
    (tmp_path / "fake.gguf").write_text("not a model")
    refused(capsys, ["register", str(tmp_path / "fake.gguf")], "not a GGUF file")
    refused(capsys, ["register", str(llama), "--out", str(tmp_path / "x")], "only for a GGUF file")

    def broken(ref, device="cpu"):
        raise CheckpointError(f"{ref}: does not load (as if the converted folder were broken)")

    monkeypatch.setattr(engine, "check_loads", broken)  # converted, then refused: removed
    assert main(["register", str(file)]) == 2  # after transformers' progress bar, one line
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"error: {tmp_path / 'llama'}: does")
    monkeypatch.setitem(sys.modules, "gguf", None)  # the extra not installed
    refused(capsys, ["register", str(file)], "needs the gguf extra: pip install 'uim-sim[gguf]'")
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["bert.gguf", "fake.gguf", "llama.gguf", "taken"]
