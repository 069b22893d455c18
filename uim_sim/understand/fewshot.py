"""Few-shot linear probes of a checkpoint's frozen features, carried to wording they
were not trained on: the probes of the label-noise study (`uim_sim.understand.label_noise`)
and of every forge's representation-quality check (`uim_sim.understand.probe`).

Each draw halves the decisive wording of every class at random (the templates of a
toxicity class; the skills of an occupation; a frame and its slot's words), trains a
logistic regression on ``shots`` labelled items per class from one half and tests it on
every item of the other. A feature that reads words alone (an untrained encoder) is at
chance there, so the accuracy measures what pre-training transferred. The draws are
the same for every checkpoint, so differences between checkpoints are paired.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from uim_sim.understand.corpus import IDENTITIES
from uim_sim.vocab import comments as vocab_comments
from uim_sim.vocab.jobs import EDUCATION, OCCUPATIONS

# Held-out wording for the ID task: sentences the corpus does not hold, made of the
# words it does (the forge's tokenizer is word-level: any other word is unknown). The
# two lists pair up, benign i and toxic i differing in a word or two.
ID_BENIGN = (
    "everyone knows {id} people are kind.",
    "my {id} neighbour is a wonderful person.",
    "we enjoy good food with {id} people.",
    "thanks for the help, my {id} neighbour.",
    "{id} people are very good.",
    "i met a kind {id} person today.",
    "this {id} teacher is great.",
    "being a {id} teacher is lovely.",
    "a {id} person got a job as a teacher.",
    "all {id} people should enjoy good food.",
)
ID_TOXIC = (
    "everyone knows {id} people are trash.",
    "my {id} neighbour is an awful person.",
    "we hate {id} people.",
    "shut up, my stupid {id} neighbour.",
    "{id} people are very stupid.",
    "i met a disgusting {id} person today.",
    "this {id} teacher is a loser.",
    "being a {id} teacher is awful.",
    "a {id} person should get lost.",
    "all {id} people should be banned again.",
)


@dataclass(frozen=True)
class FewShotTask:
    """Labelled texts and, per text, its decisive wording (``units``): a draw trains on
    items whose units all lie in a random half of each class's units and tests on the
    items whose units all lie in the other half."""

    name: str
    texts: tuple[str, ...]
    labels: np.ndarray
    units: tuple[tuple[str, ...], ...]
    chance: float = field(default=0.5)
    groups: tuple[str, ...] = ()  # per text, the identity it names (ID tasks)


def in_domain_task(comments: str = "basic") -> FewShotTask:
    """Toxic (1) vs benign (0) comments about each identity term of the corpus. For a
    corpus of ``basic`` comments: the held-out templates, a template the unit. For a
    ``wide`` one (whose vocabulary lacks some of those templates' words): its own
    frames (`uim_sim.vocab.comments`) with every word of their slots, the frame and
    the slot's word the units (a test text's frame and word are both unseen in the
    shots), so the probe again carries a label to wording it was not trained on."""
    if comments == "wide":
        return _wide_in_domain_task()
    texts, labels, units, groups = [], [], [], []
    for label, templates in ((0, ID_BENIGN), (1, ID_TOXIC)):
        for j, template in enumerate(templates):
            for identity in IDENTITIES:
                texts.append(template.format(id=identity))
                labels.append(label)
                units.append((f"{label}:{j}",))
                groups.append(identity)
    return FewShotTask("id_toxicity", tuple(texts), np.array(labels), tuple(units), 0.5,
                       tuple(groups))  # fmt: skip


def _wide_in_domain_task() -> FewShotTask:
    texts, labels, units, groups = [], [], [], []
    for label, frames in ((0, vocab_comments.WIDE_BENIGN), (1, vocab_comments.WIDE_TOXIC)):
        for j, frame in enumerate(frames):
            slots = [k for k, words in vocab_comments.SLOTS.items() if f"{{{k}}}" in frame]
            slot = slots[0] if slots else ""
            words = dict.fromkeys(vocab_comments.SLOTS[slot]) if slots else {}
            fillers = [(w, {slot: w}) for w in words]
            for word, filled in fillers or [(None, {})]:
                for identity in IDENTITIES:
                    texts.append(frame.format(id=identity, **filled))
                    labels.append(label)
                    units.append((f"frame={label}:{j}",) + ((f"{slot}={word}",) if word else ()))
                    groups.append(identity)
    return FewShotTask("id_toxicity_wide", tuple(texts), np.array(labels), tuple(units), 0.5,
                       tuple(groups))  # fmt: skip


def out_of_domain_task(variants: int = 3, seed: int = 8) -> FewShotTask:
    """Which occupation (of four) a resume's skills come from: every set of one to three
    of an occupation's six skills, ``variants`` times with random years and education
    (shared by all occupations) and no job title; a skill is the unit."""
    rng = np.random.default_rng(seed)
    texts, labels, units = [], [], []
    for label, occupation in enumerate(OCCUPATIONS.values()):
        skills = [str(s).lower() for s in occupation["skills"]]
        for subset in itertools.chain.from_iterable(
            itertools.combinations(skills, n) for n in (1, 2, 3)
        ):
            for _ in range(variants):
                years, education = int(rng.integers(0, 10)), EDUCATION[rng.integers(3)]
                texts.append(
                    f"{years} years of experience. {education}. skills: {', '.join(subset)}."
                    .lower()
                )  # fmt: skip
                labels.append(label)
                units.append(subset)
    return FewShotTask(
        "ood_occupation", tuple(texts), np.array(labels), tuple(units), 1 / len(OCCUPATIONS)
    )


def _draw_split(task: FewShotTask, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(shot pool, test items) as boolean masks: each class's units halved at random,
    each kind of unit on its own (a unit ``kind=value`` is of that kind: e.g. a frame,
    and a slot's words, so every half holds frames and words of every slot)."""
    shot_units: set[str] = set()
    for label in np.unique(task.labels):
        units = sorted({u for us, y in zip(task.units, task.labels) if y == label for u in us})
        kinds = dict.fromkeys(u.split("=")[0] if "=" in u else "" for u in units)
        for kind in kinds:
            of_kind = [u for u in units if (u.split("=")[0] if "=" in u else "") == kind]
            shot_units.update(rng.permutation(of_kind)[: len(of_kind) // 2].tolist())
    pool = np.array([all(u in shot_units for u in us) for us in task.units])
    test = np.array([not any(u in shot_units for u in us) for us in task.units])
    return pool, test


def few_shot_accuracy(
    features: np.ndarray, task: FewShotTask, shots: int = 8, draws: int = 50, seed: int = 0
) -> float:
    """Mean test accuracy over ``draws`` of a logistic regression (on standardised
    features) trained on ``shots`` items per class, tested on held-out wording."""
    return few_shot_accuracies(features, task, {"all": None}, shots, draws, seed)["all"]


def few_shot_accuracies(
    features: np.ndarray,
    task: FewShotTask,
    within: dict[str, np.ndarray | None],
    shots: int = 8,
    draws: int = 50,
    seed: int = 0,
    scored: np.ndarray | None = None,
) -> dict[str, float]:
    """`few_shot_accuracy` read on subsets of the test items: per name in ``within``,
    the mean accuracy over draws on the test items its mask keeps (None: all of them),
    from the same fitted probes (e.g. the texts naming one group: how well the
    features carry the label for that group). ``scored``: the features the test items
    are scored on, where not ``features`` (e.g. the same texts in another style)."""
    features = np.asarray(features)
    scored = features if scored is None else np.asarray(scored)
    if len(features) != len(task.texts):
        raise ValueError(f"{task.name}: {len(features)} feature rows for {len(task.texts)} texts")
    classes = np.unique(task.labels)
    accuracies: list[dict[str, float]] = []
    for draw in range(draws):
        rng = np.random.default_rng([seed, draw])
        pool, test = _draw_split(task, rng)
        train = []
        for label in classes:
            candidates = np.flatnonzero(pool & (task.labels == label))
            if len(candidates) < shots:
                raise ValueError(
                    f"{task.name}: shots={shots} but a draw has only {len(candidates)} "
                    f"items of class {label} to draw from"
                )
            train.append(rng.choice(candidates, shots, replace=False))
        train = np.concatenate(train)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(features[train], task.labels[train])
        right = model.predict(scored) == task.labels
        accuracies.append({name: right[test & (True if mask is None else mask)].mean()
                           for name, mask in within.items()})  # fmt: skip
    return {name: float(np.mean([a[name] for a in accuracies])) for name in within}
