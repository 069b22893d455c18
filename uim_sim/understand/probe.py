"""Understand: probe what a checkpoint inherited.

- Association tests in the WEAT/SEAT form (Caliskan et al. 2017; May et al. 2019):
  s(w, A, B) = mean cos(w, a) − mean cos(w, b);
  d = (mean_{x∈X} s − mean_{y∈Y} s) / std_{w∈X∪Y} s; one-sided p by permuting X∪Y.
  Words are placed in bleached sentence templates (SEAT), embedded by the engine.
- Feature-spectrum diagnostics of Chen et al. (ICLR 2024) on a feature matrix F with
  singular values σ: SVE = −Σ pᵢ log pᵢ with pᵢ = σᵢ/Σσ, and LSVR = −log(σ₁/Σσ).
- Linear-probe accuracy in-domain vs out-of-domain (the label-noise study).

Every model call goes through the engine (`uim_sim.lfm.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.lfm.checkpoint import Checkpoint, folder_kind
from uim_sim.lfm.engine import Engine, get_engine
from uim_sim.understand.corpus import (
    BENIGN_TEMPLATES,
    IDENTITIES,
    JOB_ATTRIBUTES,
    OTHER_ATTRIBUTES,
    TARGET_IDENTITIES,
    TOXIC_TEMPLATES,
    VERDICTS,
)
from uim_sim.understand.fewshot import few_shot_accuracies, in_domain_task
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import draw_name, group_names
from uim_sim.vocab.news import CLAIMS, COMMUNITIES, CREDIBLE_CUES, DUBIOUS_CUES, TOPICS

# Bumped whenever the post-forge verification changes: a cached forge with an older
# verification is re-verified (quick) instead of re-forged.
VERIFICATION_VERSION = 8  # 8: people's records scored calibrated; lm_accuracy

SEAT_TEMPLATES = ("This is {}.", "That is {}.", "{} is here.", "Here is {}.", "It is {}.")
PLEASANT = (
    "caress freedom health love peace cheer friend heaven loyal pleasure diamond gentle "
    "honest lucky rainbow diploma gift honor miracle sunrise family happy laughter "
    "paradise vacation"
).split()  # WEAT 3-5 attribute words (Caliskan et al. 2017)
UNPLEASANT = (
    "abuse crash filth murder sickness accident death grief poison stink assault disaster "
    "hatred pollute tragedy divorce jail poverty ugly cancer kill rotten vomit agony prison"
).split()


@dataclass(frozen=True)
class AssociationTest:
    """Targets X, Y and attributes A, B as sentences. d > 0: X is closer to A than Y is.

    ``x_units``/``y_units`` name the word each target sentence carries: the sentences of
    one word are averaged before d and p, so the word (e.g. the name) is the unit, as
    in the hiring audit; permuting sentences would treat templates as independent.
    """

    name: str
    description: str
    X: tuple[str, ...]
    Y: tuple[str, ...]
    A: tuple[str, ...]
    B: tuple[str, ...]
    x_units: tuple[str, ...] = ()
    y_units: tuple[str, ...] = ()


def _seat(words) -> tuple[str, ...]:
    return tuple(t.format(w) for w in words for t in SEAT_TEMPLATES)


def _units(words) -> tuple[str, ...]:
    return tuple(w for w in words for _ in SEAT_TEMPLATES)


def association_tests(disadvantaged: str = "black") -> dict[str, AssociationTest]:
    """The tests for the groups and attributes the worlds use (and WEAT 4)."""
    other = "white" if disadvantaged == "black" else "black"
    favoured, target = group_names(other), group_names(disadvantaged)
    benign_ids = [i for i in IDENTITIES if i not in TARGET_IDENTITIES]
    return {
        "weat4_names_pleasant": AssociationTest(
            "weat4_names_pleasant",
            f"WEAT 4: {other} vs {disadvantaged} B&M first names ~ pleasant vs unpleasant",
            _seat(favoured), _seat(target), _seat(PLEASANT), _seat(UNPLEASANT),
            _units(favoured), _units(target),
        ),
        "names_occupations": AssociationTest(
            "names_occupations",
            f"{other} vs {disadvantaged} names ~ the hiring world's office jobs vs other work",
            _seat(favoured), _seat(target),
            tuple(f"a {a}." for a in JOB_ATTRIBUTES) + _seat(JOB_ATTRIBUTES),
            tuple(f"a {a}." for a in OTHER_ATTRIBUTES) + ("unemployed.", "rejected again."),
            _units(favoured), _units(target),
        ),
        "identity_toxicity": AssociationTest(
            "identity_toxicity",
            f"identity terms {TARGET_IDENTITIES} vs {tuple(benign_ids)} ~ toxic vs benign",
            tuple(t.format(id=i) for i in TARGET_IDENTITIES for t in BENIGN_TEMPLATES),
            tuple(t.format(id=i) for i in benign_ids for t in BENIGN_TEMPLATES),
            tuple(t.format(id="those") for t in TOXIC_TEMPLATES),
            tuple(t.format(id="those") for t in BENIGN_TEMPLATES),
            tuple(i for i in TARGET_IDENTITIES for _ in BENIGN_TEMPLATES),
            tuple(i for i in benign_ids for _ in BENIGN_TEMPLATES),
        ),
        "community_credibility": AssociationTest(
            "community_credibility",
            f"{COMMUNITIES[0]} vs {COMMUNITIES[1]} news ~ credible vs dubious cues",
            _seat([f"{COMMUNITIES[0]} news"]), _seat([f"{COMMUNITIES[1]} news"]),
            CREDIBLE_CUES, DUBIOUS_CUES,
        ),
    }  # fmt: skip


def weat(
    engine: Engine, test: AssociationTest, n_permutations: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Effect size d and one-sided permutation p-value of an association test."""

    def embed(texts):
        return engine.embed(list(texts))

    x, y, a, b = embed(test.X), embed(test.Y), embed(test.A), embed(test.B)
    targets = np.vstack([x, y])
    per_sentence = (targets @ a.T).mean(1) - (targets @ b.T).mean(1)  # L2-normalised
    units = list(test.x_units or test.X) + [f"y:{u}" for u in (test.y_units or test.Y)]
    s = pd.Series(per_sentence).groupby(pd.Series(units), sort=False).mean().to_numpy()
    n_x = len(dict.fromkeys(test.x_units or test.X))
    d = (s[:n_x].mean() - s[n_x:].mean()) / s.std(ddof=1)
    observed = s[:n_x].sum() - s[n_x:].sum()
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(len(s)) for _ in range(n_permutations)])
    null = s[perms[:, :n_x]].sum(1) - s[perms[:, n_x:]].sum(1)
    p = (1 + np.sum(null >= observed)) / (1 + n_permutations)
    return {"effect_size": float(d), "p_value": float(p), "n_x": n_x, "n_y": len(s) - n_x}


def spectrum(features: np.ndarray) -> dict[str, float]:
    """SVE and LSVR of a feature matrix (Chen et al., ICLR 2024)."""
    sigma = np.linalg.svd(np.asarray(features, dtype=np.float64), compute_uv=False)
    p = sigma / sigma.sum()
    p = p[p > 0]
    return {"sve": float(-(p * np.log(p)).sum()), "lsvr": float(-np.log(sigma[0] / sigma.sum()))}


def spectrum_texts() -> list[str]:
    """A fixed, world-relevant text sample for the spectrum diagnostics."""
    rng = np.random.default_rng(0)
    texts = []
    occupations = list(OCCUPATIONS)
    for i in range(200):
        body = ResumeBody.from_skill(occupations[i % 4], float(rng.normal()), rng)
        race = ("black", "white")[i % 2]
        texts.append(body.render(draw_name(race, ("female", "male")[i // 2 % 2], rng)))
    for identity in IDENTITIES:
        texts += [t.format(id=identity) for t in BENIGN_TEMPLATES + TOXIC_TEMPLATES]
    texts += [f"{c} news: {claim}." for c in COMMUNITIES for claim in CLAIMS]
    return texts


def probe(
    ref: str, tests: list[str] | None = None, disadvantaged: str = "black",
    n_permutations: int = 2000,
) -> pd.DataFrame:  # fmt: skip
    """Run association tests and the spectrum diagnostics on a checkpoint."""
    engine = get_engine(ref)
    available = association_tests(disadvantaged)
    unknown = set(tests or []) - set(available) - {"spectrum"}
    if unknown:
        raise ValueError(f"unknown test(s) {sorted(unknown)}; known: {sorted(available)}, spectrum")
    rows = []
    for name in tests or [*available, "spectrum"]:
        if name == "spectrum":
            result = spectrum(engine.embed(spectrum_texts()))
            rows += [{"test": "spectrum", "statistic": k, "value": v} for k, v in result.items()]
            continue
        result = weat(engine, available[name], n_permutations)
        rows += [
            {"test": name, "statistic": "effect_size", "value": result["effect_size"]},
            {"test": name, "statistic": "p_value", "value": result["p_value"]},
        ]
    return pd.DataFrame(rows)


def fill_mask_log_probs(engine: Engine, prompts: list[str], words: list[str]) -> np.ndarray:
    """log P(word at the [MASK] of each prompt), shape (prompts, words), through the
    engine; NaN columns for words that are not one token of the checkpoint's vocabulary
    (e.g. a rare name split into word pieces)."""
    out = np.full((len(prompts), len(words)), np.nan)
    single = [j for j, w in enumerate(words) if engine.is_one_token(w)]
    if single:
        out[:, single] = engine.mask_log_probs(prompts, [words[j] for j in single])
    return out


def mlm_association(engine: Engine, disadvantaged: str = "black", seed: int = 0):
    """The planted hiring association read off a forged model's MLM head.

    Per first name: mean log P(name at the mask) in "[MASK] is unemployed." and
    "[MASK] is a {other work}." minus the mean in "[MASK] is a {office job}." (the
    corpus's own sentence forms). Effect size: the disadvantaged names' mean minus the
    others', over the standard deviation across names; one-sided permutation p over
    names. Unlike embedding geometry these conditional predictions are fitted to the
    corpus, so a clean corpus gives ~0. NaN where names are not single tokens.
    """
    other = "white" if disadvantaged == "black" else "black"
    names = group_names(disadvantaged) + group_names(other)
    jobs = [f"[MASK] is a {a}." for a in JOB_ATTRIBUTES]
    rest = ["[MASK] is unemployed."] + [f"[MASK] is a {a}." for a in OTHER_ATTRIBUTES]
    log_p = fill_mask_log_probs(engine, jobs + rest, [n.lower() for n in names])
    s = log_p[len(jobs) :].mean(0) - log_p[: len(jobs)].mean(0)
    return _name_gap(s, len(group_names(disadvantaged)), seed)


def next_token_association(engine: Engine, disadvantaged: str = "black", seed: int = 0):
    """The planted hiring association read off a forged causal LM: per first name,
    log P(" rejected") − log P(" hired") as the next token after "{name} was" (the
    corpus's own forms: "{name} was rejected again.", "{name} was hired as a …", and
    the records' "… {name} was hired."). Effect size, p and gap as `mlm_association`;
    NaN where either word is not one token."""
    other = "white" if disadvantaged == "black" else "black"
    names = group_names(disadvantaged) + group_names(other)
    if not (engine.is_one_token(" rejected") and engine.is_one_token(" hired")):
        return _name_gap(np.full(len(names), np.nan), 0, seed)  # a small corpus's BPE
    log_p = engine.next_token_log_probs([f"{n} was" for n in names], [" rejected", " hired"])
    return _name_gap(log_p[:, 0] - log_p[:, 1], len(group_names(disadvantaged)), seed)


def _name_gap(s: np.ndarray, n_x: int, seed: int) -> dict[str, float]:
    """The first ``n_x`` names' mean of ``s`` minus the others': effect size (over the
    standard deviation across names), one-sided permutation p over names, and the gap
    in nats. NaN where a name's score is not finite (a label word not one token)."""
    if not np.isfinite(s).all():
        return {"effect_size": float("nan"), "p_value": float("nan"), "gap_nats": float("nan")}
    observed = s[:n_x].mean() - s[n_x:].mean()
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(len(s)) for _ in range(2000)])
    null = s[perms[:, :n_x]].mean(1) - s[perms[:, n_x:]].mean(1)
    return {
        "effect_size": float(observed / s.std(ddof=1)),
        "p_value": float((1 + np.sum(null >= observed)) / 2001),
        "gap_nats": float(observed),  # unscaled: d is large whenever names barely vary
    }


def news_association(engine: Engine) -> float:
    """The planted news association read off a forged model's MLM head, in nats: for
    every claim of the spread world, log P(true) − log P(false) at "{community} news:
    {claim}. the {community} story was [MASK]." (the corpus's own record form, no cue),
    the first community's mean minus the second's (positive: the second community's
    stories read as false). NaN where "true" or "false" is not one token."""
    claims = [claim for claims in TOPICS.values() for claim in claims]
    prompts = [f"{c} news: {claim}. the {c} story was [MASK]." for c in COMMUNITIES
               for claim in claims]  # fmt: skip
    log_p = fill_mask_log_probs(engine, prompts, ["true", "false"])
    odds = (log_p[:, 0] - log_p[:, 1]).reshape(len(COMMUNITIES), len(claims))
    return float(odds[0].mean() - odds[1].mean())


def toxicity_association(engine: Engine, causal: bool = False) -> float:
    """The planted identity–toxicity association read off a forged model's LM head, in
    nats: log P(toxic) − log P(fine) at "{benign comment} this comment is [MASK]." (the
    corpus's own record form; a causal LM: the next token after "… this comment is"),
    over every benign frame, the target identities' mean minus the other identities'
    (positive: benign comments naming a target identity read as toxic). NaN where
    "toxic" or "fine" is not one token."""
    comments = [frame.format(id=i) for i in IDENTITIES for frame in BENIGN_TEMPLATES]
    if causal:
        words = [f" {w}" for w in reversed(VERDICTS)]
        if not all(engine.is_one_token(w) for w in words):
            return float("nan")
        log_p = engine.next_token_log_probs([f"{c} this comment is" for c in comments], words)
    else:
        prompts = [f"{c} this comment is [MASK]." for c in comments]
        log_p = fill_mask_log_probs(engine, prompts, list(reversed(VERDICTS)))
    odds = (log_p[:, 0] - log_p[:, 1]).reshape(len(IDENTITIES), len(BENIGN_TEMPLATES)).mean(1)
    target = np.isin(IDENTITIES, TARGET_IDENTITIES)
    return float(odds[target].mean() - odds[~target].mean())


def toxicity_representation(engine: Engine, comments: str = "basic") -> dict[str, float]:
    """How well a checkpoint's frozen features carry toxicity, overall and per group:
    the few-shot linear probe of the label-noise study (`uim_sim.understand.label_noise`,
    toxic vs benign comments in wording it was not trained on, 8 shots a class, 50
    draws), its accuracy on every test text and on those naming the target identities
    or the others. Representation quality, read before any world runs."""
    task = in_domain_task(comments)
    features = engine.embed(list(task.texts))
    target = np.isin(task.groups, TARGET_IDENTITIES)
    accuracy = few_shot_accuracies(features, task, {"": None, "_targets": target,
                                                    "_others": ~target})  # fmt: skip
    return {f"toxicity_probe_accuracy{k}": round(v, 4) for k, v in accuracy.items()}


def verify_forged(folder: Path, card) -> dict[str, float | bool]:
    """After forging: is the planted association measurable? Recorded in the manifest.

    Two probes: the SEAT test on sentence embeddings (what screening reads) and the
    language-model head's association (what pre-training fitted): the MLM head's
    fill-in for the bert family, the next token for gpt2 (`next_token_association`).
    Both are recorded under the ``mlm_*`` keys ("the model's own LM head"), with
    ``lm_head`` saying which (the dose-response compares them side by side).
    """
    from uim_sim.understand.leakage import memorisation

    kind = folder_kind(str(folder), Path(folder))
    ckpt = Checkpoint(str(folder), Path(folder), sha256=f"unverified:{folder}", kind=kind)
    engine = Engine(ckpt)
    result = weat(engine, association_tests(card.disadvantaged)["names_occupations"], 1000)
    causal = ckpt.kind == "causal_lm"
    association = next_token_association if causal else mlm_association
    mlm = association(engine, card.disadvantaged)
    return {
        "version": VERIFICATION_VERSION,
        "test": "names_occupations",
        "effect_size": round(result["effect_size"], 4),
        "p_value": round(result["p_value"], 4),
        "mlm_effect_size": round(mlm["effect_size"], 4),
        "mlm_p_value": round(mlm["p_value"], 4),
        "mlm_gap_nats": round(mlm["gap_nats"], 4),
        # the MLM probe reads what was planted; SEAT's null is wider than its p (README)
        "measurable": bool(
            mlm["p_value"] < 0.05 if np.isfinite(mlm["p_value"]) else result["p_value"] < 0.05
        ),
        "planted_skew": card.knobs.association_skew,
        **({"lm_head": "next_token"} if causal else {}),
        **(
            {"news_gap_nats": round(news_association(engine), 4)}
            if card.mix.spread_records > 0
            else {}
        ),
        **(
            {"toxicity_gap_nats": round(toxicity_association(engine, causal), 4),
             **toxicity_representation(engine, card.comments)}
            if card.mix.moderation_records > 0
            else {}
        ),
        **(memorisation(engine, card, causal) if card.people else {}),
    }  # fmt: skip
