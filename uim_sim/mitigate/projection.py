"""Model stage: iterative null-space projection (INLP) of the protected attribute."""

from __future__ import annotations

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
    C: Annotated[float, Field(gt=0.0)] = 1.0


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
    Params = InlpParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.debias
        p = self.params

        def debias(embeddings, protected):
            first = inner(embeddings, protected)
            projection = inlp_projection(
                first(embeddings), protected, p.iterations, p.min_gain, p.C
            )

            def transform(vectors: np.ndarray) -> np.ndarray:
                return (first(vectors) @ projection).astype(np.float32)

            return transform

        return replace(stages, debias=debias)
