"""Debiased checkpoints: new members of the zoo, derived from a parent checkpoint.

``debias(parent, method, out)`` writes a checkpoint folder any agent card can carry
like any other (safetensors, hashes verified at load), whose ``manifest.json``
records the parent's hash, the method and its parameters. Four methods:

- ``cda``: counterfactual data augmentation during continued masked-LM training
  (Webster et al. 2020; Zmigrod et al. 2019): the parent's own corpus card (or
  ``corpus``), every sentence beside its twin with group terms swapped
  (`uim_sim.vocab.counterfactual`);
- ``clean``: continued pre-training on the same corpus card with every weakness knob
  at 0 (the forge's clean corpus);
- ``inlp``: a projection baked into the encoder's output (Ravfogel et al. 2020):
  iterative null-space projection of the group, fitted on sentences that name the
  attribute's groups (`DEFINING_TEMPLATES`);
- ``sentence_debias``: the same, with the bias subspace of Liang et al. (2020):
  principal directions of counterfactual sentence sets, each centred on its mean.

The two projection methods change what the encoder's sentence embeddings carry
(zero-shot, contrast and logistic heads read them); a label-word head reads the
masked-LM head's predictions, which a projection of the pooled output does not touch:
for those, ``cda`` and ``clean`` retrain the weights themselves.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from uim_sim.lfm.checkpoint import MANIFEST, PROJECTION, resolve, write_manifest
from uim_sim.schema import SpecError
from uim_sim.understand.cards import CorpusCard, CorpusKnobs
from uim_sim.vocab.identity import IDENTITY_GROUPS, REFERENTS
from uim_sim.vocab.names import FIRST_NAMES, RACES
from uim_sim.vocab.news import CLAIMS, COMMUNITIES

METHODS: tuple[str, ...] = ("cda", "clean", "inlp", "sentence_debias")
ATTRIBUTES: tuple[str, ...] = ("names", "identity", "community")

# neutral sentences that name a group and say nothing else: fitting (first four) and
# held-out evaluation (last two) of the projections
DEFINING_TEMPLATES = (
    "{} is here.",
    "this is about {}.",
    "i met {} today.",
    "{} said hello.",
    "we talked with {}.",
    "a note from {}.",
)
FIT_TEMPLATES, HELD_OUT_TEMPLATES = DEFINING_TEMPLATES[:4], DEFINING_TEMPLATES[4:]


def defining_sentences(
    attribute: str, templates: tuple[str, ...] = FIT_TEMPLATES
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(sentences, group of each, defining set of each) for one attribute.

    A defining set holds sentences that differ only in the group they name: a
    template with the i-th first name of each race (same gender), with each identity
    group's phrase, or with each community's news of one claim.
    """
    texts, groups, sets = [], [], []
    if attribute == "names":
        for gender in ("female", "male"):
            lists = [FIRST_NAMES[(race, gender)] for race in RACES]
            for i, names in enumerate(zip(*lists)):
                for t, template in enumerate(templates):
                    for race, name in zip(RACES, names):
                        texts.append(template.format(name))
                        groups.append(race)
                        sets.append(f"{gender}:{i}:{t}")
    elif attribute == "identity":
        for slot in range(3):
            for t, template in enumerate(templates):
                for group in IDENTITY_GROUPS:
                    texts.append(template.format(REFERENTS[group][slot][1]))
                    groups.append(group)
                    sets.append(f"{slot}:{t}")
    else:
        for c, claim in enumerate(CLAIMS):
            for t, template in enumerate(templates):
                for community in COMMUNITIES:
                    texts.append(template.format(f"{community} news that {claim}"))
                    groups.append(community)
                    sets.append(f"{c}:{t}")
    return texts, np.array(groups), np.array(sets)


def debias(
    parent: str,
    method: str,
    out: Path,
    *,
    attribute: str = "names",
    k: int = 1,
    steps: int = 600,
    corpus: CorpusCard | None = None,
    progress=None,
) -> Path:
    """Write the ``method``-debiased child of checkpoint ``parent`` to ``out``."""
    if method not in METHODS:
        raise SpecError(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    if attribute not in ATTRIBUTES:
        raise SpecError(f"--attribute: {attribute!r} is not one of {', '.join(ATTRIBUTES)}")
    checkpoint = resolve(parent)
    record = {
        "method": method,
        "parent": checkpoint.ref,
        "parent_name": checkpoint.name,
        "parent_sha256": checkpoint.sha256,
    }
    if method in ("cda", "clean"):
        card = _continued_card(checkpoint, method, steps, corpus)
        from uim_sim.understand.forge import forge

        record["params"] = {"steps": steps, "corpus": card.name}
        return forge(card, Path(out), progress, extra={"debias": record})
    record["params"] = {"attribute": attribute, **({"k": k} if method != "inlp" else {})}
    return _bake_projection(checkpoint, method, attribute, k, Path(out), record)


def _continued_card(checkpoint, method: str, steps: int, corpus: CorpusCard | None) -> CorpusCard:
    if corpus is None:
        recorded = checkpoint.manifest.get("card")
        if not recorded:
            raise SpecError(
                f"--corpus: {checkpoint.name} records no corpus card (not forged here); "
                "name the corpus card to continue training on"
            )
        corpus = CorpusCard.model_validate(recorded)
    update = {
        "name": f"{corpus.name}-{method}",
        "base": checkpoint.ref,
        "training": corpus.training.model_copy(update={"steps": steps}),
    }
    if method == "cda":
        update["counterfactual"] = True
    else:
        update["knobs"] = CorpusKnobs()
    return corpus.model_copy(update=update)


def _bake_projection(checkpoint, method: str, attribute: str, k: int, out: Path, record) -> Path:
    from safetensors.numpy import save_file

    from uim_sim.lfm.engine import Engine
    from uim_sim.mitigate.projection import inlp_projection, sentence_debias_projection

    engine = Engine(checkpoint)
    texts, groups, sets = defining_sentences(attribute)
    vectors = engine.embed(texts)
    if method == "inlp":  # shuffled: inlp_projection holds out every fourth row
        order = np.random.default_rng(0).permutation(len(groups))
        projection = inlp_projection(
            vectors[order], groups[order], iterations=20, min_gain=0.02, C=1.0
        )
    else:
        projection = sentence_debias_projection(vectors, sets, k)
    inherited = checkpoint.projection()  # a debiased parent: compose the two maps
    if inherited is not None:
        projection = inherited.astype(np.float64) @ projection
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    shutil.copytree(checkpoint.path, tmp, ignore=shutil.ignore_patterns(MANIFEST, PROJECTION, ".*"))
    save_file({"projection": projection.astype(np.float32)}, str(tmp / PROJECTION))
    parent_manifest = checkpoint.manifest
    write_manifest(
        tmp,
        name=out.name,
        family=parent_manifest.get("family", checkpoint.ref),
        debias=record,
        **{k_: parent_manifest[k_] for k_ in ("card", "knobs", "seed") if k_ in parent_manifest},
    )
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)
    resolve.cache_clear()
    return out


PROBE_TEST = {
    "names": "names_occupations",
    "identity": "identity_toxicity",
    "community": "community_credibility",
}


def probe_effect(refs: list[str], attribute: str = "names", disadvantaged: str = "black"):
    """What a debiasing did, one column per checkpoint: the accuracy of a linear probe
    for the attribute's groups on held-out sentences (chance: one over the number of
    groups), the association test of the attribute (SEAT effect size), and the
    masked-LM gap where the checkpoint has a masked-LM head (names: the hiring
    association, community: the news association; NaN otherwise)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from uim_sim.lfm.checkpoint import CheckpointError
    from uim_sim.lfm.engine import get_engine
    from uim_sim.lfm.heads import one_blas_thread
    from uim_sim.understand.probe import (
        association_tests,
        mlm_association,
        news_association,
        weat,
    )

    fit_texts, fit_groups, _ = defining_sentences(attribute, FIT_TEMPLATES)
    test_texts, test_groups, _ = defining_sentences(attribute, HELD_OUT_TEMPLATES)
    test = association_tests(disadvantaged)[PROBE_TEST[attribute]]
    columns = {}
    for ref in refs:
        engine = get_engine(ref)
        fit_x, test_x = engine.embed(fit_texts), engine.embed(test_texts)
        with one_blas_thread():
            clf = LogisticRegression(max_iter=5000).fit(fit_x, fit_groups)
            accuracy = float(clf.score(test_x, test_groups))
        seat = weat(engine, test, 1000)
        gap = float("nan")
        if attribute != "identity":
            try:
                gap = (
                    mlm_association(engine, disadvantaged)["gap_nats"]
                    if attribute == "names"
                    else news_association(engine)
                )
            except CheckpointError:
                pass  # no masked-LM head (e.g. MiniLM)
        columns[_label(ref, refs)] = {
            f"linear probe accuracy ({attribute}, chance {1 / len(set(fit_groups)):.2f})": accuracy,
            f"SEAT {test.name} d": seat["effect_size"],
            f"SEAT {test.name} p": seat["p_value"],
            "MLM gap (nats)": gap,
        }
    return pd.DataFrame(columns)


def seed_spread(before, after):
    """Parents (e.g. one card forged with several seeds) against their debiased
    children, per measure: the mean and standard deviation over parents, the same over
    children, and the mean change in units of the parents' standard deviation, the
    reference a debiasing's effect is read against (the variation forging alone
    gives), not a permutation p within one checkpoint. One parent: no spread (NaN)."""
    import pandas as pd

    table = pd.DataFrame(
        {
            "before": before.mean(axis=1),
            "before sd": before.std(axis=1, ddof=1),
            "after": after.mean(axis=1),
            "after sd": after.std(axis=1, ddof=1),
        }
    )
    table["change"] = table["after"] - table["before"]
    table["change / seed sd"] = table["change"] / table["before sd"]
    return table.drop(index=[m for m in table.index if m.endswith(" p")])


def _label(ref: str, refs: list[str]) -> str:
    """A column name for a checkpoint: its manifest name, or its folder where several
    share a name (e.g. one card forged with several seeds)."""
    name = resolve(ref).name
    if sum(resolve(r).name == name for r in refs) > 1:
        return Path(ref).name
    return name
