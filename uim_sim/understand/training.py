"""What forging and DP forging share: padded batches, the card's language-modelling
targets (its masking for bert, every next token for gpt2) and the optimiser."""

from __future__ import annotations

MAX_LENGTH = 64  # tokens: the forged models' positions


def padded(rows: list[list[int]], pad: int):
    """Token rows as one tensor padded on the right to the longest, and its mask."""
    import torch

    width = max(len(r) for r in rows)
    batch = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = torch.tensor(r)
    return batch, (batch != pad).long()


def optimiser(recipe, params):
    """AdamW with a linear warm-up over 5 % of the steps and a linear decay to 5 %."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=0.01)
    warmup = max(1, recipe.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / recipe.steps)
    )
    return optimizer, schedule


def masker(card, tokenizer):
    """The card's masking of a batch of token rows for masked language modelling:
    (inputs, labels), labels -100 where nothing is to be predicted."""
    import torch
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=card.training.mask_prob, seed=card.seed
    )
    specials = torch.tensor(
        [tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id]
    )

    def mask(batch):
        special = torch.isin(batch, specials)
        masked = collator(
            [{"input_ids": r, "special_tokens_mask": m} for r, m in zip(batch, special)]
        )
        return masked["input_ids"], masked["labels"]

    return mask


def lm_targets(card, tokenizer):
    """(batch, attention) → (inputs, labels) of the card's language-modelling objective:
    the card's masking (`masker`) for bert, every real token for gpt2 (labels -100 at
    the pads; the model shifts them)."""
    if card.family != "gpt2":
        mask = masker(card, tokenizer)
        return lambda batch, attention: mask(batch)
    return lambda batch, attention: (batch, batch.masked_fill(attention == 0, -100))
