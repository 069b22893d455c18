"""Model stage: iterative null-space projection (INLP) of the protected attribute."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import numpy as np
from pydantic import Field
from scipy.linalg import orth
from sklearn.svm import LinearSVC

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Strict
from uim_sim.worlds.stages import Stages


class InlpParams(Strict):
    iterations: Annotated[int, Field(ge=1, le=200)] = 20
    # stop once a linear classifier beats the majority class by less than this
    min_gain: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    C: Annotated[float, Field(gt=0.0, le=1e6)] = 1.0


def inlp_projection(
    embeddings: np.ndarray, protected: np.ndarray, iterations: int, min_gain: float, C: float
) -> np.ndarray:
    """The projection onto the intersection of the null spaces of linear classifiers
    trained, one after another, to predict ``protected`` (Ravfogel et al. 2020).

    Each round fits a linear SVM on the embeddings projected so far and adds its weight
    rows to the removed subspace; it stops after ``iterations`` rounds or once the
    classifier's accuracy on held-out rows (every fourth row, as Ravfogel et al. stop on
    a development set) is within ``min_gain`` of always guessing the majority class.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(protected)
    classes, counts = np.unique(y, return_counts=True)
    dim = x.shape[1]
    projection = np.eye(dim)
    if len(classes) < 2:
        return projection
    majority = counts.max() / counts.sum()
    held_out = np.arange(len(y)) % 4 == 0
    removed: list[np.ndarray] = []
    for _ in range(iterations):
        projected = x @ projection
        clf = LinearSVC(C=C, dual="auto", max_iter=5000, random_state=0)
        clf.fit(projected[~held_out], y[~held_out])
        if clf.score(projected[held_out], y[held_out]) < majority + min_gain:
            break
        removed.append(np.atleast_2d(clf.coef_))
        basis = orth(np.vstack(removed).T)  # orthonormal basis of every removed direction
        projection = np.eye(dim) - basis @ basis.T
    return projection


class Inlp(Mitigation):
    """Ravfogel et al. (2020), "Null It Out: Guarding Protected Attributes by Iterative
    Nullspace Projection": repeatedly train a linear classifier for the protected
    attribute (here the identity group a training text names) and project the
    embeddings onto its null space, so no linear head can read the identity any more.
    The projection is fitted on the adaptation data and applied to every embedding
    before the head; heads that are not trained (zero-shot) are left as they are.
    """

    name = "inlp"
    stage = "model"
    hook = "debias"
    trains = True
    summary = "projects the protected attribute out of embeddings before a trained head (INLP)"
    ill_conditioned = (
        "is ill-conditioned where the adaptation data has fewer rows than dimensions: on the "
        "moderation platform's history (300 training rows, 384 dimensions, 11 identity "
        "groups, 20 rounds removing 220 directions) embeddings that differed by 2e-7 (another "
        "CPU's kernels) gave projections 9e-5 apart and head scores up to 0.18 apart, with "
        "a linear SVM solved to any tolerance; on one machine it is exact, across machines "
        "its results agree in distribution, not run by run"
    )
    Params = InlpParams

    def apply(self, stages: Stages) -> Stages:
        p = self.params
        return project_out(
            stages, lambda x, y: inlp_projection(x, y, p.iterations, p.min_gain, p.C)
        )


def sentence_debias_projection(embeddings: np.ndarray, sets: np.ndarray, k: int = 1) -> np.ndarray:
    """The projection that removes the bias subspace of Liang et al. (2020),
    "Towards Debiasing Sentence Representations" (SentenceDebias).

    ``sets`` names, for each row of ``embeddings``, its defining set: rows of one set
    say the same thing of different groups (a sentence and its counterfactual twins).
    Each set is centred on its own mean; the first ``k`` principal directions of all
    centred rows span the bias subspace, and ``I - V Vᵀ`` projects it out.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    sets = np.asarray(sets)
    centred = x.copy()
    for s in np.unique(sets):
        rows = sets == s
        centred[rows] -= x[rows].mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:k].T
    return np.eye(x.shape[1]) - basis @ basis.T


class SentenceDebiasParams(Strict):
    k: Annotated[int, Field(ge=1, le=64)] = 1


class SentenceDebias(Mitigation):
    """Liang et al. (2020), SentenceDebias, on the adaptation data: the bias subspace
    is spanned by the first ``k`` principal directions of the protected groups' mean
    embeddings (each centred on their overall mean), the adaptation-data form of
    Liang's defining sets; it is projected out of every embedding before the head.
    Where INLP removes every direction a linear classifier can use (and with it the
    directions that carry the label too, when label and group are correlated),
    SentenceDebias removes only the directions along which the groups' means differ.
    ``uim-sim debias --method sentence_debias`` bakes the original form, fitted on
    counterfactual sentence pairs, into a checkpoint.
    """

    name = "sentence_debias"
    stage = "model"
    hook = "debias"
    trains = True
    summary = "projects the groups' mean-difference subspace out of embeddings (SentenceDebias)"
    Params = SentenceDebiasParams

    def apply(self, stages: Stages) -> Stages:
        return project_out(stages, lambda x, y: group_mean_projection(x, y, self.params.k))


def group_mean_projection(embeddings: np.ndarray, protected: np.ndarray, k: int) -> np.ndarray:
    """SentenceDebias with the protected groups' mean embeddings as one defining set."""
    x = np.asarray(embeddings, dtype=np.float64)
    groups = np.asarray(protected)
    means = np.stack([x[groups == g].mean(0) for g in np.unique(groups)])
    if len(means) < 2:
        return np.eye(x.shape[1])
    return sentence_debias_projection(means, np.zeros(len(means)), min(k, len(means) - 1))


def project_out(stages: Stages, fit: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Stages:
    """Wrap the debias hook: ``fit(embeddings, protected)`` gives a projection matrix,
    fitted on the adaptation embeddings (after any inner debiasing) and applied to every
    embedding before the head."""
    inner = stages.debias

    def debias(embeddings, protected):
        first = inner(embeddings, protected)
        projection = fit(first(embeddings), protected)

        def transform(vectors: np.ndarray) -> np.ndarray:
            return (first(vectors) @ projection).astype(np.float32)

        return transform

    return replace(stages, debias=debias)
