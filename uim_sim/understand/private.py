"""Differentially private pre-training: a corpus card's ``privacy`` (the Mitigate side
of privacy inheritance).

DP-SGD (Abadi et al. 2016) as Opacus implements it: every step samples each sentence
of the corpus with probability q = batch_size / N (Poisson sampling, which the
accountant's amplification assumes), computes each sentence's own gradient, clips it to
``max_grad_norm``, sums, adds Gaussian noise of standard deviation ``noise_multiplier``
× ``max_grad_norm`` and divides by the expected batch size. The privacy spent over the
steps is ε at the card's δ by the Rényi-DP accountant (Mironov 2017). What is protected
is one sentence: a person whose record the corpus holds k times is protected as a group
of k, with about k·ε (group privacy), which is why deduplication and DP are reported
side by side.

A card is refused (one line, before any training) where ε cannot be computed or means
nothing: a sampling rate of 1 or more (batch_size not below the corpus's N sentences),
a δ not below 1/N (such a mechanism may publish a sentence outright), an ε that is
infinite at that noise, or a target ε no noise reaches.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from uim_sim.schema import SpecError
from uim_sim.understand.cards import CorpusCard, Privacy

ACCOUNTANT = "rdp"
MAX_EPSILON = 1000.0  # beyond it a "guarantee" says nothing: refused as not computed


def budget(privacy: Privacy, n: int, batch_size: int, steps: int) -> dict[str, float]:
    """The noise and the privacy of ``steps`` DP-SGD steps over ``n`` sentences at an
    expected ``batch_size``: {noise_multiplier, epsilon, delta, sample_rate, steps,
    max_grad_norm, accountant}; a one-line `SpecError` where ε cannot be computed."""
    rate = batch_size / n
    if rate >= 1:
        raise SpecError(
            f"privacy: training.batch_size ({batch_size}) is not below the corpus's {n} "
            "sentences: sampling at rate 1 or more amplifies nothing and ε is not computed"
        )
    if privacy.delta >= 1 / n:
        raise SpecError(
            f"privacy.delta: {privacy.delta:g} is not below 1/N = {1 / n:.3g} (N = {n} "
            "sentences): a mechanism that may publish a sentence outright"
        )
    with warnings.catch_warnings():  # Opacus: the best RDP order at the edge of its range
        warnings.simplefilter("ignore", UserWarning)
        sigma, epsilon = _account(privacy, rate, steps)
    if not math.isfinite(epsilon) or epsilon > MAX_EPSILON:
        raise SpecError(
            f"privacy.noise_multiplier: at {sigma:g}, ε is {epsilon:.3g} at δ = "
            f"{privacy.delta:g} over {steps} steps at rate {rate:.3g}: no guarantee "
            f"(above {MAX_EPSILON:g}); add noise"
        )
    return {
        "noise_multiplier": round(float(sigma), 6),
        "epsilon": round(float(epsilon), 4),
        "delta": privacy.delta,
        "sample_rate": round(rate, 6),
        "steps": steps,
        "max_grad_norm": privacy.max_grad_norm,
        "accountant": ACCOUNTANT,
        "unit": "sentence",
    }


def _account(privacy: Privacy, rate: float, steps: int) -> tuple[float, float]:
    """(noise multiplier, ε at the card's δ): the card's noise, or the noise found for
    its target ε; ε infinite where the accountant cannot bound it."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier

    sigma = privacy.noise_multiplier
    if sigma is None:
        try:
            sigma = get_noise_multiplier(target_epsilon=privacy.epsilon,
                                         target_delta=privacy.delta, sample_rate=rate,
                                         steps=steps, accountant=ACCOUNTANT)  # fmt: skip
        except (ValueError, OverflowError) as exc:
            raise SpecError(f"privacy.epsilon: {privacy.epsilon:g} is not reached: {exc}") from None
    accountant = RDPAccountant()
    accountant.history = [(sigma, rate, steps)]
    try:
        return sigma, accountant.get_epsilon(privacy.delta)
    except (ValueError, OverflowError, ZeroDivisionError):
        return sigma, math.inf


def train_private(card: CorpusCard, corpus, tokenizer, model, progress=None):
    """Train ``model`` on ``corpus`` by DP-SGD (masked LM for bert, next token for
    gpt2, the card's recipe otherwise); returns (losses, the `budget` spent)."""
    from opacus.optimizers import DPOptimizer

    from uim_sim.understand.training import MAX_LENGTH, lm_targets, optimiser, padded

    recipe, privacy = card.training, card.privacy
    n = len(corpus.sentences)
    spent = budget(privacy, n, recipe.batch_size, recipe.steps)
    causal = card.family == "gpt2"
    rng = np.random.default_rng([card.seed, 202])
    ids = tokenizer(corpus.sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    pad = tokenizer.pad_token_id
    targets = lm_targets(card, tokenizer)
    sampled, release = per_sentence_gradients(model)
    inner, schedule = optimiser(recipe, list(sampled.parameters()))
    optimizer = DPOptimizer(
        inner,
        noise_multiplier=spent["noise_multiplier"],
        max_grad_norm=privacy.max_grad_norm,
        expected_batch_size=recipe.batch_size,
        loss_reduction="sum",
    )
    sampled.train()
    losses: list[float] = []
    try:
        for step in range(recipe.steps):
            rows = np.flatnonzero(rng.random(n) < spent["sample_rate"])
            if len(rows) == 0:  # nothing sampled: no update (the accountant counts it)
                schedule.step()
                losses.append(losses[-1] if losses else float("nan"))
                continue
            batch, attention = padded([ids[i] for i in rows], pad)
            inputs, labels = targets(batch, attention)
            per_sentence = sentence_losses(sampled, inputs, attention, labels, causal)
            optimizer.zero_grad()
            with warnings.catch_warnings():  # Opacus's hooks, on token ids (no gradient)
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                per_sentence.sum().backward()
            optimizer.step()
            schedule.step()
            losses.append(per_sentence.detach().mean().item())
            if progress:
                progress(step + 1, recipe.steps, losses[-1])
    finally:
        release()
    model.eval()
    return losses, spent


def per_sentence_gradients(model):
    """``model`` wrapped by Opacus to keep each sentence's own gradient (summed loss),
    and the call that unwraps it. A BERT's masked-LM head registers its bias twice
    (its own and its decoder's, one tensor); it is left to the decoder while wrapped,
    as Opacus has per-sample rules for linear layers, not for the head itself."""
    from opacus import GradSampleModule

    predictions = getattr(getattr(model, "cls", None), "predictions", None)
    shared = predictions is not None and "bias" in predictions._parameters
    if shared:
        del predictions._parameters["bias"]
    sampled = GradSampleModule(model, loss_reduction="sum")

    def release() -> None:
        sampled._close()
        if shared:
            predictions._parameters["bias"] = predictions.decoder.bias

    return sampled, release


def sentence_losses(model, inputs, attention, labels, causal: bool):
    """Each sentence's mean loss over its predicted tokens (masked ones for a masked LM,
    every next token for a causal LM); positions given per row, as Opacus needs."""
    import torch

    positions = torch.arange(inputs.shape[1]).expand(inputs.shape)
    logits = model(input_ids=inputs, attention_mask=attention, position_ids=positions).logits
    if causal:  # each position predicts the next token
        logits, labels = logits[:, :-1], labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
        ignore_index=-100, reduction="none",
    ).view(labels.shape)  # fmt: skip
    return per_token.sum(1) / (labels != -100).sum(1).clamp(min=1)
