"""The reference test of a moderator, as a Mesa model: the template test set after
Dixon et al. (2018), every frame rendered for every group (or a researcher's own
labelled evaluation file), scored once by one moderator; the Dixon metrics (FPR/FNR
per identity, FPED, FNED) and the Borkan et al. (2019) AUCs and final score, to hold
a checkpoint against those papers."""

from __future__ import annotations

import numpy as np

from uim_sim.worlds.moderation.agents import Moderator
from uim_sim.worlds.moderation.params import ReferenceParams
from uim_sim.worlds.moderation.world import ModerationWorld


class ModerationReference(ModerationWorld):
    """One moderator scores every text of the template test set (or of the
    ``eval_file``), once. ``ModerationReference(rng=1)`` builds one (see
    `ReferenceParams`); it runs one step."""

    Params = ReferenceParams

    def setup(self) -> None:
        self._catalogue(self.params.evaluation_set())
        self.moderators = [Moderator(self, s) for s in self._screeners(1)]

    def act(self) -> None:
        """Score the whole test set in one engine call; decide it as one pool."""
        rows = np.arange(len(self.catalogue))
        scores = self.score(rows, np.zeros(len(rows), dtype=int))
        removed = self.moderators[0].decide(scores, self.catalogue["subgroup"].to_numpy())
        for row in rows:
            self._record(None, row, 0, scores[row], removed[row], removed[row])

    def done(self) -> bool:
        return True  # one step

    def measures(self):
        return self.bias_measures()

    def measure(self):
        return self.bias() if self.decisions else {}
