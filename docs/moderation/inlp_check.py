"""INLP on the moderation world's biased history: how many directions it removes, and
whether a linear probe still reads the identity group and the toxicity label
(docs/moderation.md). Run: python docs/moderation/inlp_check.py"""

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from uim_sim.cards import load_card
from uim_sim.lfm.engine import get_engine
from uim_sim.mitigate.projection import group_mean_projection, inlp_projection
from uim_sim.worlds.moderation import ModerationPlatform

card = load_card(Path("agents/minilm_moderation_biased_history.yaml"))
world = ModerationPlatform(
    n_users=200,
    n_history=2000,
    history_toxic_share=0.3,
    history_targets=["gay", "lesbian", "muslim", "jewish", "black", "dialect"],
    rng=2026,
)
data = world.training_data(card)
x = get_engine("builtin:minilm").embed(data.texts)
y, g = data.labels, data.protected
print("classes:", len(np.unique(g)), "rows", len(y))


def acc(f, t):
    return cross_val_score(LogisticRegression(max_iter=3000), f, t, cv=5).mean()


for name, p in (
    ("none", np.eye(x.shape[1])),
    ("inlp", inlp_projection(x, g, 20, 0.02, 1.0)),
    ("sentence_debias k=1", group_mean_projection(x, g, 1)),
):
    xp = x @ p
    print(
        f"{name}: rank {np.linalg.matrix_rank(p)}, group probe {acc(xp, g):.3f}, "
        f"toxicity probe {acc(xp, y):.3f}"
    )
