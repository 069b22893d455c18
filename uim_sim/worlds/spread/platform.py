"""The information-spread platform, as a Mesa model.

Users (array state: community, propensity to share, what they have seen) post news
items, true or false, in their community's style. The ranker, a Mesa agent carrying
a checkpoint, scores every new item (one engine call a step, once per distinct text)
and promotes or demotes it. Each user's feed shows up to ``feed_size`` of the items
their neighbours shared last, promoted first; users share what they see with a
probability that depends on the item's truth (base rates), their propensity, and
whether the item was demoted or labelled; whoever shares exposes their neighbours
next. Nothing forces false items to spread more: only the base rates, the ranker's
judgments and the stage hooks (fact-checks, friction, diverse feeds) do.

Measures per step: mean reach of items by truth × community of origin, the share of
users exposed to any true or false item; at the last step the reach, depth, speed
and size of cascades, Vosoughi et al.'s false-to-true reach ratio, the suppression
of each community's true items (the spread world's impact ratio) with a null band,
and the concentration of exposure (Gini).

With a neutral reference (``neutral_reference``; on where the communities are the
graph's own labels) every item also spreads a second time, on the same graph from the
same poster, under a ranker blind to it: it promotes as many of the step's items as
the world's ranker did, at random, and fills feeds promoted first, then in random
order (its own random stream: the world's draws are unchanged). What the items reach
there is their network position; the world's impact ratio over it, the ranker's
effect (`uim_sim.worlds.spread.metrics.ranker_effect`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from uim_sim.cards import AgentCard
from uim_sim.lfm.heads import read_labelled_file
from uim_sim.vocab.news import COMMUNITIES
from uim_sim.worlds.adapt import NONE, EditBandit
from uim_sim.worlds.screening import score_proposals
from uim_sim.worlds.spread.agents import FactChecker, Ranker
from uim_sim.worlds.spread.cascade import distinct, neighbours
from uim_sim.worlds.spread.items import catalogue, draw_items, edited
from uim_sim.worlds.spread.metrics import (
    gini,
    item_kinds,
    kind,
    ranker_effect,
    ranker_effect_null,
    reach_summary,
    suppression,
    suppression_null,
)
from uim_sim.worlds.spread.params import PlatformParams
from uim_sim.worlds.spread.world import CREDIBLE, SpreadWorld
from uim_sim.worlds.stages import TrainingSet
from uim_sim.worlds.watch import FOUR_FIFTHS, Plot


class SpreadPlatform(SpreadWorld):
    """A platform where news spreads through ranked feeds.
    ``SpreadPlatform(n_users=20_000, rng=1)`` builds one (see `PlatformParams`); it
    stops running after ``n_steps``."""

    Params = PlatformParams
    hooks: ClassVar[frozenset[str]] = frozenset(
        {"prepare_training", "prepare_text", "debias", "fit_decide", "decide", "assign",
         "label", "share", "feed_quota", "audit", "retrain"}
    )  # fmt: skip
    identity_spans: ClassVar[frozenset[str]] = frozenset({"history", "file"})  # communities
    watch = (
        Plot("reach", "Reach by truth and the community that wrote it",
             ("true_riverside", "true_hillcrest", "false_riverside", "false_hillcrest")),
        Plot("impact_ratio", "Impact ratio of true items promoted (vs the best community)",
             None, FOUR_FIFTHS, "four fifths"),
    )  # fmt: skip

    def exposure_states(self, users: np.ndarray) -> list[str]:
        true, false = self.seen["true"][users], self.seen["false"][users]
        labels = np.array(["not reached", "true news only", "false news only", "both"])
        return labels[true.astype(int) + 2 * false.astype(int)].tolist()

    agent_reporters = {Ranker: {"card": lambda r: r.screener.card.name}}

    def setup(self) -> None:
        p = self.params
        self._network()
        names = self.communities
        if names != COMMUNITIES:  # the page watches the graph's own communities
            self.watch = (
                Plot("reach", "Reach by truth and the community that wrote it",
                     item_kinds(names)),
                *self.watch[1:],
            )  # fmt: skip
        spread = p.propensity_spread
        self.propensity = self.population_rng.lognormal(
            -(spread**2) / 2, spread, size=self.n_users
        ).astype(np.float32)
        self.seen_count = np.zeros(self.n_users, dtype=np.int32)
        self._scratch = np.zeros(self.n_users, dtype=bool)
        self.seen = {"true": np.zeros(self.n_users, bool), "false": np.zeros(self.n_users, bool)}
        # exposure by the users' community: users, and items seen (by truth × community)
        self.community_users = np.bincount(self.community, minlength=len(names))
        self.item_views = {t: np.zeros(len(names), np.int64) for t in self.seen}
        self.rankers = [Ranker(self, s) for s in self._screeners(p.n_rankers)]
        self.fact_checker = FactChecker(self)
        # every text an item can have, scored once by each ranker (one engine call):
        # the cost grows with distinct texts, not with items, users or exposures
        texts = [self.stages.prepare_text(text, (span,)) for text, span in catalogue(names)]
        sources = [self.stages.prepare_text(span, (span,)) for _, span in catalogue(names)]
        for ranker in self.rankers:
            n = len(texts)
            score_proposals([ranker.screener] * n, texts, [CREDIBLE] * n, sources)
        self.items: list[dict] = []  # every item: its record and its spreading state
        self.live: list[int] = []
        # what is posted (posters, truths, claims, cues) has a stream of its own, so arms
        # of one seed post the same items whatever their rankings did (common random
        # numbers: e.g. the same items in their own style and restyled)
        self.items_rng = np.random.default_rng([self.seed, 6])
        self.bandit: EditBandit | None = None
        self._new: list[int] = []
        if p.adaptive_share:
            self._adapt()
        # the neutral reference: decided while the parameters know a given network
        self.neutral = p.neutral()
        self.neutral_rng = np.random.default_rng([self.seed, 11])

    def _adapt(self) -> None:
        """The coordinated accounts that adapt (``adaptive_accounts`` users drawn from
        the adaptation stream) and their contacts among themselves."""
        p, rng = self.params, self.adapt_rng
        n = min(p.adaptive_accounts, self.n_users)
        self.accounts = np.sort(rng.choice(self.n_users, size=n, replace=False))
        self.bandit = EditBandit.for_world(n, p, rng)
        self.watch = (
            *self.watch,
            Plot("adaptive_promoted", "False items promoted: accounts that adapt"),
            Plot("edit_found", "Share of adaptive accounts that prefer an edit that works"),
        )  # the page watches them learn

    # ------------------------------------------------------------ adaptation data

    def training_data(self, card: AgentCard, draw: int = 0) -> TrainingSet:
        """Historical fact-checks of items (``history``: labels agree with the truth
        92 % of the time, and items of the disadvantaged community are labelled false
        more often by ``history_bias`` in log-odds), or a researcher's labelled file.
        Its ``groups`` are communities of origin, as the ranker's decisions see items (a
        file's text: the disadvantaged community if it names it, else the other)."""
        p = self.params
        if card.head.train_on == "file":
            texts, labels = read_labelled_file(
                card.head.file, card.head.text_column, card.head.label_column
            )
            spans = [tuple(c for c in self.communities if c in t) for t in texts]
            protected = np.array([p.disadvantaged in s for s in spans])
            data = TrainingSet(
                texts, labels, spans, protected, groups=self._community(protected),
                identify=self._identify,
            )  # fmt: skip
        else:
            rng = np.random.default_rng([self.seed, 1, draw])
            k = len(self.communities) if self.network.names else len(p.community_shares)
            origin = rng.integers(k, size=p.n_history)
            items = draw_items(p.n_history, origin, p.false_share, p.cue_share, False, rng,
                               self.communities)  # fmt: skip
            truth = np.array([i["truth"] for i in items])
            mine = np.array([i["community"] == p.disadvantaged for i in items])
            logit = 2.5 * (2 * truth - 1) - card.head.history_bias * mine
            labels = (rng.random(p.n_history) < 1 / (1 + np.exp(-logit))).astype(int)
            data = TrainingSet(
                [i["text"] for i in items], labels, [(i["span"],) for i in items], mine,
                groups=np.array(self.communities)[origin], identify=self._identify,
            )  # fmt: skip
        return data

    def _community(self, protected: np.ndarray) -> np.ndarray:
        """The disadvantaged community where ``protected``, else the (first) other one."""
        d = self.params.disadvantaged
        other = next(c for c in self.communities if c != d)
        return np.where(protected, d, other)

    def _identify(self, spans: tuple[str, ...]) -> tuple[bool, str]:
        """(protected, group) of a text whose identity spans (community names) are
        ``spans``."""
        mine = self.params.disadvantaged in spans
        return mine, str(self._community(np.array(mine)))

    # ------------------------------------------------------------ one step

    def act(self) -> None:
        """Users post; the ranker scores the new items (one engine call) and promotes or
        demotes them; fact-checkers label; feeds show, users share; old items expire."""
        self._assess(self._post())
        if self.bandit is not None:
            self._learn()
        self._label()
        self._spread()
        self._expire(final=self.done())

    def done(self) -> bool:
        return self.round >= self.params.n_steps

    def audited(self):
        """Ranker shards: what they promoted, by community of origin."""
        return self.rankers, "decision", "group"

    def _post(self) -> list[int]:
        """``items_per_step`` users, drawn at random, each post an item."""
        p, rng = self.params, self.items_rng
        posters = rng.integers(self.n_users, size=p.items_per_step)
        drawn = draw_items(
            p.items_per_step, self.community[posters], p.false_share, p.cue_share, p.restyle,
            rng, self.communities,
        )  # fmt: skip
        if self.bandit is not None:
            posters, drawn = self._adaptive_posts(posters, drawn)
        ids = []
        for poster, item in zip(posters, drawn):
            exposed = np.zeros(self.n_users, dtype=bool)
            exposed[poster] = True
            item.update(
                id=len(self.items), born=self.round, poster=int(poster), reach=1, depth=0,
                time_to_k=np.nan, labelled=False, exposed=exposed,
                frontier=np.array([poster], dtype=np.int64),
            )  # fmt: skip
            if self.neutral:  # the same item, spread again under the neutral ranker
                item.update(neutral_promoted=False, neutral_reach=1,
                            neutral_exposed=exposed.copy(),
                            neutral_frontier=np.array([poster], dtype=np.int64))  # fmt: skip
            self.items.append(item)
            self.live.append(item["id"])
            ids.append(item["id"])
        self._new = ids
        return ids

    def _adaptive_posts(self, posters: np.ndarray, drawn: list[dict]):
        """``adaptive_share`` of the false items are posted instead by an adaptive account
        of the same community (drawn from the adaptation stream), edited as its bandit
        picks; each item records its account (``account``, -1: none) and ``edit``."""
        p, rng = self.params, self.adapt_rng
        posters = posters.copy()
        takes = rng.random(len(drawn)) < p.adaptive_share
        picks = rng.random(len(drawn))
        home = self.community[self.accounts]
        items, accounts = [], []
        for k, item in enumerate(drawn):
            mine = np.flatnonzero(home == self.communities.index(item["community"]))
            account = -1
            if not item["truth"] and takes[k] and len(mine):
                account = int(mine[int(picks[k] * len(mine))])
                posters[k] = self.accounts[account]
            accounts.append(account)
            items.append({**item, "account": account, "edit": NONE})
        adaptive = [k for k, a in enumerate(accounts) if a >= 0]
        for k, e in zip(adaptive, self.bandit.choose(np.array([accounts[k] for k in adaptive]))):
            edit = self.bandit.edits[e]
            items[k] = {**edited(items[k], edit, p.trigger, self.communities), "edit": edit}
        return posters, items

    def _learn(self) -> None:
        """Each adaptive account learns whether its item was promoted."""
        new = [self.items[i] for i in self._new if self.items[i]["account"] >= 0]
        self.bandit.learn(
            np.array([it["account"] for it in new], dtype=int),
            np.array([self.bandit.edits.index(it["edit"]) for it in new], dtype=int),
            np.array([it["promoted"] for it in new]),
            self.round,
        )

    def outcomes(self) -> TrainingSet:
        """The step's new items, their truth learned once a fact-checking partner
        reviews them (1: credible, as the historical fact-checks)."""
        items = [self.items[i] for i in self._new]
        mine = np.array([it["community"] == self.params.disadvantaged for it in items])
        return TrainingSet(
            [it["text"] for it in items],
            np.array([it["truth"] for it in items], dtype=int),
            [(it["span"],) for it in items],
            mine,
            groups=np.array([it["community"] for it in items]),
            identify=self._identify,
        )

    def _assess(self, ids: list[int]) -> None:
        """Score every new item (one engine call) and let each ranker shard decide its
        pool: promote or demote (the decision stage)."""
        items = [self.items[i] for i in ids]
        texts = [self.stages.prepare_text(it["text"], (it["span"],)) for it in items]
        rankers = [self.rankers[i % len(self.rankers)] for i in ids]
        scores = score_proposals([r.screener for r in rankers], texts, [CREDIBLE] * len(texts))
        promoted = np.zeros(len(ids), dtype=bool)
        for ranker in dict.fromkeys(rankers):
            pool = np.array([r is ranker for r in rankers])
            communities = np.array([it["community"] for it in items])[pool]
            promoted[pool] = ranker.decide(scores[pool], communities)
        for it, ranker, score, promote in zip(items, rankers, scores, promoted):
            it.update(score=float(score), promoted=bool(promote), row=len(self.decisions))
            self.decisions.append({
                "step": self.round,
                "decider": ranker.unique_id,
                "subject": it["id"],
                "group": it["community"],
                "style": it["style"],
                "topic": it["topic"],
                "cue": it["cue"],
                "text": it["text"],
                "checkpoint": ranker.screener.card.checkpoint,
                "card": ranker.screener.card.name,
                "score": float(score),
                "decision": int(promote),
                "truth": it["truth"],
                "labelled_step": -1,
                "reach": 1,
                "depth": 0,
                "time_to_k": np.nan,
            })  # fmt: skip
            if self.bandit is not None:  # a platform where accounts adapt
                self.decisions[-1].update(edit=it["edit"], adaptive=int(it["account"] >= 0))
        if self.neutral:  # the neutral ranker promotes as many, blind to the items
            chosen = self.neutral_rng.permutation(len(items))[: int(promoted.sum())]
            for j in chosen:
                items[j]["neutral_promoted"] = True
            for it in items:
                self.decisions[it["row"]].update(
                    neutral_promoted=int(it["neutral_promoted"]), neutral_reach=1
                )

    def _label(self) -> None:
        """Fact-checkers label items (the label stage); a labelled item is demoted."""
        live = [self.items[i] for i in self.live if not self.items[i]["labelled"]]
        if not live:
            return
        truth = np.array([it["truth"] for it in live])
        age = np.array([self.round - it["born"] for it in live])
        for it, labelled in zip(live, self.fact_checker.label(truth, age)):
            if labelled:
                it.update(labelled=True, promoted=False)
                if self.neutral:  # labels are the fact-checkers', whatever the ranker
                    it["neutral_promoted"] = False
                self.decisions[it["row"]]["labelled_step"] = self.round

    def _spread(self) -> None:
        """Followers of last step's sharers who have not seen an item are its
        candidates; feeds fill in order of priority (promoted first, then by score, ties
        at random), up to ``feed_size`` items per user and step (under a quota, first up
        to a quota per community of origin); the users who see an item may share it.
        Under a neutral reference, the same again for the items' neutral spread."""
        p, rng = self.params, self.decision_rng
        live = [self.items[i] for i in self.live]
        if not live:
            return
        fresh = [self._candidates(it["frontier"], it["exposed"]) for it in live]
        promoted = np.array([it["promoted"] for it in live], dtype=bool)
        score = np.array([it["score"] for it in live])
        origin = np.array([self.communities.index(it["community"]) for it in live])
        order = np.lexsort((rng.random(len(live)), -(promoted * 10.0 + score)))
        for it, users in zip(live, self._feeds(fresh, order, origin)):
            self.seen_count[users] += 1
            truth = "true" if it["truth"] else "false"
            self.seen[truth][users] = True
            self.item_views[truth] += np.bincount(
                self.community[users], minlength=len(self.communities)
            )
            it["exposed"][users] = True
            it["frontier"] = users[rng.random(len(users)) < self._share(it, it["promoted"], users)]
            it["reach"] += len(users)
            if len(users):
                it["depth"] += 1
            if np.isnan(it["time_to_k"]) and it["reach"] >= p.reach_k:
                it["time_to_k"] = self.round - it["born"]
        if self.neutral:
            self._spread_neutral(live, origin)

    def _spread_neutral(self, live: list[dict], origin: np.ndarray) -> None:
        """The live items' spread under the neutral ranker: feeds promoted first, then
        in random order (its own stream), the same sharing as the world's."""
        rng = self.neutral_rng
        fresh = [self._candidates(it["neutral_frontier"], it["neutral_exposed"]) for it in live]
        promoted = np.array([it["neutral_promoted"] for it in live], dtype=float)
        order = np.lexsort((rng.random(len(live)), -promoted))
        for it, users in zip(live, self._feeds(fresh, order, origin)):
            it["neutral_exposed"][users] = True
            share = self._share(it, it["neutral_promoted"], users)
            it["neutral_frontier"] = users[rng.random(len(users)) < share]
            it["neutral_reach"] += len(users)

    def _share(self, item: dict, promoted: bool, users: np.ndarray) -> np.ndarray:
        """The probability that each of ``users``, shown ``item``, shares it: its base
        rate by truth, their propensity, the demotion of an item not promoted, and the
        share stage."""
        p = self.params
        base = p.share_true if item["truth"] else p.share_false
        flagged = not promoted
        probability = base * self.propensity[users] * (p.demotion if flagged else 1.0)
        return self.stages.share(probability, np.full(len(users), flagged))

    def _feeds(self, fresh: list[np.ndarray], order: np.ndarray, origin: np.ndarray):
        """Who sees each item this step: its candidates (``fresh``), the items taken
        in ``order``, each user's feed filled up to ``feed_size`` (under a quota per
        community of origin first, where the feed-quota stage sets one)."""
        p = self.params
        seen: list[list[np.ndarray]] = [[] for _ in fresh]
        slots = np.zeros(self.n_users, dtype=np.int16)
        k = len(self.communities)
        quota = self.stages.feed_quota(k, p.feed_size)
        for cap in ([quota] if quota is not None else []) + [None]:
            per_origin = None if cap is None else np.zeros((k, self.n_users), np.int16)
            for j in order:
                candidates = fresh[j]
                ok = slots[candidates] < p.feed_size
                if per_origin is not None:
                    ok &= per_origin[origin[j], candidates] < cap
                got = candidates[ok]
                slots[got] += 1
                if per_origin is not None:
                    per_origin[origin[j], got] += 1
                seen[j].append(got)
                fresh[j] = candidates[~ok]
        return [np.concatenate(users) if len(users) > 1 else users[0] for users in seen]

    def _candidates(self, frontier: np.ndarray, exposed: np.ndarray) -> np.ndarray:
        """The distinct followers of an item's last sharers (``frontier``) who have not
        seen it (``exposed``)."""
        tried = neighbours(self.adjacency, frontier)
        tried = tried[~exposed[tried]]
        if len(tried) * 8 < self.n_users:  # few: sort them
            return distinct(tried)
        self._scratch[tried] = True  # many: mark them (linear in users, no sort)
        out = np.flatnonzero(self._scratch)
        self._scratch[out] = False
        return out

    def _expire(self, final: bool = False) -> None:
        """Items past their lifetime (all of them at the end) leave the feeds: their
        final reach, depth and speed go into the decision table."""
        keep = []
        for i in self.live:
            it = self.items[i]
            if final or self.round - it["born"] + 1 >= self.params.lifetime:
                row = self.decisions[it["row"]]
                row.update(reach=it["reach"], depth=it["depth"], time_to_k=it["time_to_k"])
                it["exposed"] = it["frontier"] = None  # free the per-user state
                if self.neutral:
                    row["neutral_reach"] = it["neutral_reach"]
                    it["neutral_exposed"] = it["neutral_frontier"] = None
            else:
                keep.append(i)
        self.live = keep

    # ------------------------------------------------------------ read-outs

    def item_table(self) -> pd.DataFrame:
        """Every item so far, with its current reach (final for expired items; under
        a neutral reference, its ``neutral_reach`` too)."""
        return pd.DataFrame(
            {
                "group": it["community"],
                "truth": it["truth"],
                "reach": it["reach"],
                "depth": it["depth"],
                "time_to_k": it["time_to_k"],
                "decision": int(it.get("promoted", False) and not it["labelled"]),
                "score": it.get("score", np.nan),
                **({"neutral_reach": it["neutral_reach"]} if self.neutral else {}),
            }
            for it in self.items
        )

    def measures(self):
        truths = ("true", "false")
        names, kinds = self.communities, item_kinds(self.communities)
        return {
            "mean_reach": kinds,
            "exposed_share": truths,
            "live_items": None,
            "reach": (*kinds, *truths),
            "depth": truths,
            "size_q50": truths,
            "size_q90": truths,
            "reached_k_share": truths,
            "time_to_k": truths,
            "promoted_share": kinds,
            "mean_score": kinds,
            "false_true_reach_ratio": None,
            "impact_ratio": names,
            "impact_ratio_null_q025": names,
            "impact_ratio_null_q975": names,
            "impact_ratio_null_p": names,
            "exposure_gini": None,
            "users": names,
            "users_reached": kinds,
            "users_reached_share": kinds,
            "item_views": kinds,
            "items_seen_per_user": kinds,
            **(self.adaptive_measures() if self.params.adaptive_share else {}),
            **(self.neutral_measures() if self.neutral else {}),
        }

    def neutral_measures(self) -> dict[str, tuple[str, ...]]:
        """What the neutral reference adds (declared where there is one): each kind of
        item's mean final reach under the neutral ranker, and per community its
        network position, the ranker's effect with a null band, and its lift."""
        names = self.communities
        return {
            "neutral_reach": item_kinds(names),
            "position_ratio": names,
            "ranker_effect": names,
            "ranker_effect_null_q025": names,
            "ranker_effect_null_q975": names,
            "ranker_lift": names,
        }

    def adaptive_measures(self) -> dict[str, None]:
        """What the accounts that adapt achieve (declared where some do)."""
        return dict.fromkeys((
            "adaptive_promoted", "static_promoted", "adaptive_reach", "static_reach",
            "edited_share", "edit_found", "discovery_step",
        ))  # fmt: skip

    def measure_adaptive(self) -> dict[str, float]:
        """The step's false items promoted, posted by adaptive accounts and by others;
        the mean reach so far of every false item of each; the share of the adaptive
        accounts' items edited this step; the share of the accounts that prefer an edit
        that works (``edit_found``) and the step by which half first did."""
        out = {"edit_found": self.bandit.edit_found(), "discovery_step": self.bandit.discovered}
        false = [it for it in self.items if not it["truth"]]
        new = [self.items[i] for i in self._new if not self.items[i]["truth"]]
        for name, adaptive in (("adaptive", True), ("static", False)):
            mine = [it for it in new if (it["account"] >= 0) == adaptive]
            if mine:
                out[f"{name}_promoted"] = float(np.mean([it["promoted"] for it in mine]))
            every = [it["reach"] for it in false if (it["account"] >= 0) == adaptive]
            if every:
                out[f"{name}_reach"] = float(np.mean(every))
        mine = [it for it in new if it["account"] >= 0]
        if mine:
            out["edited_share"] = float(np.mean([it["edit"] != NONE for it in mine]))
        return out

    def _exposure_by_community(self) -> dict[str, dict[str, float]]:
        """Per community of the users (``true_riverside``: riverside's users and true
        items, whoever posted them): users, users who saw at least one item
        (``users_reached``) and their share, items seen (``item_views``) and items seen
        per user. The spread world's decisions are items, so this is its only record of
        who was exposed."""
        users = self.community_users.astype(float)
        names = self.communities
        out: dict[str, dict[str, float]] = {
            "users": {c: float(n) for c, n in zip(names, users)},
            "users_reached": {}, "users_reached_share": {}, "item_views": {},
            "items_seen_per_user": {},
        }  # fmt: skip
        with np.errstate(invalid="ignore", divide="ignore"):
            for truth, seen in self.seen.items():
                reached = np.bincount(self.community[seen], minlength=len(names))
                views = self.item_views[truth]
                for i, c in enumerate(names):
                    kind = f"{truth}_{c}"
                    out["users_reached"][kind] = float(reached[i])
                    out["users_reached_share"][kind] = float(reached[i] / users[i])
                    out["item_views"][kind] = float(views[i])
                    out["items_seen_per_user"][kind] = float(views[i] / users[i])
        return out

    def measure(self):
        out: dict = {
            "exposed_share": {t: float(s.mean()) for t, s in self.seen.items()},
            "live_items": float(len(self.live)),
            **self._exposure_by_community(),
            **(self.measure_adaptive() if self.bandit is not None else {}),
        }
        if not self.items:
            return out
        items = self.item_table()
        out["mean_reach"] = (
            items.assign(kind=kind(items["truth"], items["group"]))
            .groupby("kind")["reach"].mean().astype(float).to_dict()
        )  # fmt: skip
        if not self.running or self.done():
            out.update(reach_summary(items))
            out["impact_ratio"] = suppression(items)
            null = suppression_null(items, self.permutations, self.statistics_rng)
            out.update({f"impact_ratio_null_{k}": v for k, v in null.items()})
            out["exposure_gini"] = gini(self.seen_count)
            if self.neutral:
                out["neutral_reach"] = (
                    items.assign(kind=kind(items["truth"], items["group"]))
                    .groupby("kind")["neutral_reach"].mean().astype(float).to_dict()
                )  # fmt: skip
                out.update(ranker_effect(items))
                null = ranker_effect_null(items, self.permutations, self.statistics_rng)
                out.update({f"ranker_effect_null_{k}": v for k, v in null.items()})
        return out
