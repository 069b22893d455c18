"""Causal LMs with random weights, built from a config: stand-ins for "any local
Hugging Face folder" in tests, benchmarks and GPU checks, where what is measured is
the machinery (padding, batching, caching, loading, throughput), not what a model
learnt. The tokenizer is a byte-level BPE (GPT-2's kind) trained in a second on the
texts given, so the words of those texts are few tokens each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

END = "<|endoftext|>"


def train_tokenizer(texts: Sequence[str], vocab_size: int = 512, lowercase: bool = False,
                    max_length: int | None = None):  # fmt: skip
    """A GPT-2-style byte-level BPE tokenizer trained on ``texts`` (a
    `PreTrainedTokenizerFast`; end of text is also its pad and unknown token);
    ``lowercase``: it lower-cases what it reads (as the forge's corpora are)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    if lowercase:
        bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=END, eos_token=END, unk_token=END, pad_token=END,
        **({"model_max_length": max_length} if max_length else {}),
    )  # fmt: skip


def random_causal_lm(
    folder: Path,
    texts: Sequence[str],
    *,
    family: str = "gpt2",
    layers: int = 2,
    hidden: int = 64,
    heads: int = 2,
    kv_heads: int | None = None,
    intermediate: int | None = None,
    vocab_size: int = 512,
    positions: int = 128,
    seed: int = 0,
    device: str = "cpu",
    dtype=None,
) -> Path:
    """Write a random-weight causal LM (``family`` gpt2: GPT2LMHeadModel; llama:
    LlamaForCausalLM) and its tokenizer, trained on ``texts``, into ``folder``
    (safetensors). ``vocab_size`` is the tokenizer's target; the model's vocabulary is
    at least the tokenizer's size. Returns ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = train_tokenizer(texts, vocab_size)
    vocab = max(vocab_size, len(tokenizer))
    end = tokenizer.convert_tokens_to_ids(END)
    common = {"vocab_size": vocab, "bos_token_id": end, "eos_token_id": end, "pad_token_id": end}
    if family == "gpt2":
        config = GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, n_positions=positions,
                            n_inner=intermediate, **common)  # fmt: skip
        model_class = GPT2LMHeadModel
    elif family == "llama":
        config = LlamaConfig(
            num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
            num_key_value_heads=kv_heads or heads, intermediate_size=intermediate or 4 * hidden,
            max_position_embeddings=positions, tie_word_embeddings=False, **common,
        )  # fmt: skip
        model_class = LlamaForCausalLM
    else:
        raise ValueError(f"family: {family!r} is not gpt2 or llama")
    torch.manual_seed(seed)
    with torch.device(device):
        model = model_class(config)
    if dtype is not None:
        model = model.to(dtype)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
