"""Stage 0 per query cluster (`stage1.warm_start: search_per_cluster`): the design search of
`train/warm_start.py`, run per cluster of the search questions, so that the warm-started policy
chooses different designs for different kinds of question.

Why: the global search finds one design and the clone makes the policy run it for every query.
Where the best design differs by question type — a pool of specialists over mixed questions,
such as the `sim` demo's four cheap domain specialists — one constant design leaves that on the
table: the demo's bundle never sent a logic question to the logic specialist. The GNN sees the
query (its embedding and domain one-hot), so one policy can hold a design per kind of question;
this gives it those designs to start from, and stage 1 (REINFORCE with the credit baseline)
trains on top as after the global search.

Steps (every rollout through the run's runner and its cache: free on sim and replay, and a
killed search re-run pays nothing twice):

1. The global search (`warm_start.resolve`, `design_search.json`): its design is every query's
   fallback and its decision model the run's (one decision model serves every query, so the
   cluster designs are searched with it fixed).
2. Partitions of the search questions (`warm_start_on`, as the global search): `all` (one
   cluster: the global design for every query); `domain` (by `meta["domain"]`, with
   `warm_start_by_domain`, when every search question has one and there are at least two); and
   `kmeans-k` for each k of `warm_start_clusters` with k · `warm_start_min_cluster` <= questions
   (k-means on the query embedding of the policy's own embedder, seeded by the `clusters` stream).
   No label is needed: the k-means partitions work on any task.
3. Each cluster's candidates: the family of `warm_start.candidates` built from the single models
   ranked on that cluster's questions (so a specialist ranks first where it is best), plus the
   global design, each run on the cluster's questions.
4. The partition is chosen by `warm_start_folds`-fold cross-validation over the search questions:
   in each fold every cluster takes the candidate with the best mean reward on its questions
   outside the fold (fewer than `warm_start_min_cluster` of them: the global design), scored on
   its questions inside the fold. A partition is eligible only if its held-out reward beats
   `all`'s by more than `warm_start_cluster_z` standard errors of the paired per-question
   difference (several partitions are tried on the same folds: without the margin the luckiest
   one would win); the eligible one with the best mean held-out reward wins, ties to fewer
   clusters. A partition thus wins only where choosing per cluster clearly pays on questions the
   choice did not see; where it does not, the result is `all`, i.e. exactly the global search's
   design.
5. The chosen partition's designs: per cluster the best mean reward on all its search questions
   (ties: cheaper, then the name); a cluster of fewer than `warm_start_min_cluster` questions keeps
   the global design, and so does a cluster whose best candidate does not beat the global design
   there by more than `warm_start_design_z` standard errors of the paired per-question difference
   (0: any gain; the same rule picks each cluster's design inside the folds of step 4). Why: the
   best of ~250 candidates on a cluster's few hundred questions is the luckiest as much as the
   best (measured on RouterDC: per domain, on 115-228 search questions, the winners beat the global
   design by 0.03-0.09 and two of them lost to it on the test files).

Every mean above is weighted as the global search weighs its questions (`warm_start_weighting`:
on a mixed task each component counts equally, as in `accuracy_task_mean`; the paired test of
step 4 compares the weighted per-question rewards, as `hieramas report` does), and the search
questions are the global search's.

Kept in `cluster_search.json` (every partition tried with its held-out reward; per cluster of the
chosen one: size, design, reward, accuracy, cost and the global design's reward there; the
k-means centroids), so a resumed run reads it instead of searching again, and the lookup without
the GNN (`cluster-lookup`: each query gets its cluster's design; a domain no search question had
gets the global design) can be evaluated from it next to the learned policy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hieramas_gnn import stats
from hieramas_gnn.mas.design import Design
from hieramas_gnn.paths import atomic_write_text
from hieramas_gnn.policy.choose import query_text
from hieramas_gnn.train import warm_start as W

_log = logging.getLogger(__name__)
FILE = "cluster_search.json"
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Partition:
    """How questions fall into clusters: `all` (one), `domain` (`meta["domain"]`, one cluster per
    label) or `kmeans-<k>` (the nearest of k centroids of the query embedding)."""

    name: str
    labels: list[str]
    centroids: np.ndarray | None = None
    """[k, D] k-means centres (only for `kmeans-<k>`)."""

    @property
    def k(self) -> int:
        return len(self.labels)

    def assign(self, questions: Sequence[Any], embed: Embed | None = None) -> np.ndarray:
        """The cluster index of each question; -1: none (a domain label the partition lacks).
        Shapes: -> [Q]."""
        if self.name == "all":
            return np.zeros(len(questions), dtype=int)
        if self.name == "domain":
            where = {d: i for i, d in enumerate(self.labels)}
            return np.array([where.get(_domain(q), -1) for q in questions], dtype=int)
        if embed is None:
            raise ValueError(f"partition {self.name} assigns by the query embedding: pass `embed`")
        x = embed([_text(q) for q in questions])  # [Q, D]
        d2 = ((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(-1)  # [Q, k]
        return d2.argmin(1).astype(int)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "labels": list(self.labels)}
        if self.centroids is not None:
            out["centroids"] = [[float(v) for v in row] for row in self.centroids]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Partition:
        c = data.get("centroids")
        return cls(data["name"], list(data["labels"]), None if c is None else np.asarray(c, dtype=np.float32))


@dataclass
class ClusterDesigns:
    """The chosen partition, one design per cluster, the global design for queries of no cluster,
    and the search's tables (also `cluster_search.json`)."""

    partition: Partition
    designs: list[Design]
    fallback: Design
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Per cluster: label, questions, design, its reward / accuracy / cost there, the global design's reward there."""
    tried: list[dict[str, Any]] = field(default_factory=list)
    """Per partition tried: name, clusters, held-out (cross-validated) mean reward and accuracy,
    the paired gap over one cluster with its standard error, and whether it clears the margin."""
    queries: str = ""
    _memo: dict[str, Design] = field(default_factory=dict, repr=False)

    def designs_for(self, questions: Sequence[Any], embed: Embed | None = None) -> list[Design]:
        """Each question's cluster design (the lookup: no GNN); remembered by question id."""
        todo = [q for q in questions if _qid(q) not in self._memo]
        if todo:
            for q, c in zip(todo, self.partition.assign(todo, embed)):
                self._memo[_qid(q)] = self.designs[c] if c >= 0 else self.fallback
        return [self._memo[_qid(q)] for q in questions]

    @property
    def per_query(self) -> bool:
        """Whether the designs differ between clusters (else every query gets one design)."""
        return len(set(self.designs)) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition.to_dict(), "designs": [d.to_dict() for d in self.designs],
                "summaries": [d.summary() for d in self.designs], "fallback": self.fallback.to_dict(),
                "rule": "per cluster of the partition with the best cross-validated reward, the best mean "
                        "reward of the cluster's family on its search questions",
                "queries": self.queries, "rows": self.rows, "tried": self.tried}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterDesigns:
        return cls(Partition.from_dict(data["partition"]), [Design.from_dict(d) for d in data["designs"]],
                   Design.from_dict(data["fallback"]), data.get("rows", []), data.get("tried", []),
                   data.get("queries", ""))

    @classmethod
    def load(cls, path: str | Path) -> ClusterDesigns:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _qid(q: Any) -> str:
    return str(getattr(q, "id", None) or _text(q))


def _text(q: Any) -> str:
    return query_text(q)


def _domain(q: Any) -> str | None:
    meta = getattr(q, "meta", None) or {}
    d = meta.get("domain")
    return str(d) if d else None


def embedder_fn(embedder: Any) -> Embed:
    """`texts -> [T, D]` float64 numpy rows of an `Embedder` (the policy's, cached)."""
    return lambda texts: embedder.embed(list(texts)).detach().cpu().numpy().astype(np.float64)


# ------------------------------------------------------------------------------ partitions

def domain_partition(questions: Sequence[Any]) -> Partition | None:
    """By `meta["domain"]`, when every question has one and there are at least two."""
    doms = [_domain(q) for q in questions]
    if any(d is None for d in doms) or len(set(doms)) < 2:
        return None
    return Partition("domain", sorted(set(doms)))


def kmeans_partition(x: np.ndarray, k: int, seed: int) -> Partition:
    """k-means (scikit-learn, 10 restarts) on the rows of `x` [Q, D]. The centres are rounded to
    1e-10: k-means' threaded sums differ by ~1e-17 between runs, and the search (which assigns by
    these centres too) and `cluster_search.json` must not."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
    return Partition(f"kmeans-{k}", [f"c{i}" for i in range(k)], np.round(km.cluster_centers_.astype(np.float64), 10))


def partitions(cfg: Any, questions: Sequence[Any], embed: Embed) -> list[Partition]:
    """`all`, then `domain` (if enabled and labelled), then each `kmeans-k` that fits."""
    s1 = cfg.stage1
    out = [Partition("all", ["all"])]
    if s1.warm_start_by_domain and (by_domain := domain_partition(questions)) is not None:
        out.append(by_domain)
    ks = sorted({k for k in s1.warm_start_clusters if k * s1.warm_start_min_cluster <= len(questions)})
    if ks:
        x = embed([_text(q) for q in questions])
        out += [kmeans_partition(x, k, cfg.run.seed_for("clusters")) for k in ks]
    return out


# ------------------------------------------------------------------------------ the search

@dataclass(frozen=True)
class Outcome:
    """What the search reads of a trace (correctness, failure, cost): all a `MemoRunner` keeps."""

    correct: bool
    failed: bool
    cost_usd: float
    failure_reason: str | None = None


class MemoRunner:
    """A runner that runs each (design, question id, sample index) once and keeps only its
    `Outcome`: the global search and the per-cluster search share their rollouts (the rollout
    cache alone still pays the executor for every repeat). `memo`: a dict to read and fill, shared
    by runs whose runners answer a pair the same way (the seeds of one experiment: one client,
    task and roleset; `eval/experiment.run_experiment`); None: a fresh one. Other attributes are
    the runner's."""

    def __init__(self, runner: Any, memo: dict | None = None) -> None:
        self.inner = runner
        self.memo: dict[tuple[Design, str, int], Outcome] = {} if memo is None else memo

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, pairs: Sequence[tuple[Design, Any]]) -> list[Outcome]:
        s = int(getattr(self.inner, "sample_index", 0))
        todo = list(dict.fromkeys((d, _qid(q), s) for d, q in pairs if (d, _qid(q), s) not in self.memo))
        if todo:
            first = {}
            for d, q in pairs:
                first.setdefault((d, _qid(q)), q)
            traces = self.inner.run([(d, first[(d, qid)]) for d, qid, _ in todo])
            for key, t in zip(todo, traces):
                self.memo[key] = Outcome(bool(t.correct), bool(t.failed), float(t.cost_usd),
                                         getattr(t, "failure_reason", None))
            del traces
        return [self.memo[(d, _qid(q), s)] for d, q in pairs]


class Outcomes:
    """Reward, correctness and cost of (design, question) pairs, each run once (through the
    runner and its cache). Shapes: matrices [designs, questions], NaN where not run."""

    def __init__(self, runner: Any, questions: Sequence[Any], reward: Callable[[Any], float],
                 weights: np.ndarray | None = None) -> None:
        self.runner, self.questions, self.reward = runner, list(questions), reward
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        """[Q] question weights of every mean (`warm_start.question_weights`); None: plain means."""
        self.index: dict[Design, int] = {}
        n = len(self.questions)
        self.r = np.zeros((0, n))
        self.acc = np.zeros((0, n))
        self.cost = np.zeros((0, n))

    def add(self, designs: Sequence[Design]) -> list[int]:
        new = [d for d in dict.fromkeys(designs) if d not in self.index]
        if new:
            blank = np.full((len(new), len(self.questions)), np.nan)
            for d in new:
                self.index[d] = len(self.index)
            self.r, self.acc, self.cost = (np.vstack([m, blank]) for m in (self.r, self.acc, self.cost))
        return [self.index[d] for d in designs]

    def run(self, designs: Sequence[Design], where: np.ndarray) -> list[int]:
        """Rows of `designs`, each run on the questions at `where` (indices) it has not run on."""
        rows = self.add(designs)
        jobs = [(i, j) for i in dict.fromkeys(rows) for j in where if np.isnan(self.r[i, j])]
        if jobs:
            designs_by_row = {i: d for d, i in self.index.items()}
            traces = self.runner.run([(designs_by_row[i], self.questions[j]) for i, j in jobs])
            for (i, j), t in zip(jobs, traces):
                self.r[i, j] = float(self.reward(t))
                self.acc[i, j] = float(bool(t.correct) and not t.failed)
                self.cost[i, j] = float(t.cost_usd)
        return rows

    def mean(self, m: np.ndarray, i: int, where: np.ndarray) -> float:
        """Row `i` of matrix `m` averaged over the questions at `where` (weighted: `weights`)."""
        if self.weights is None:
            return float(m[i, where].mean())
        return float(np.average(m[i, where], weights=self.weights[where]))

    def single_rows(self, rows: Sequence[int], where: np.ndarray) -> list[dict[str, float]]:
        """`warm_start.evaluate`-shaped rows of `rows` on the questions at `where`."""
        return [{"reward": self.mean(self.r, i, where), "accuracy": self.mean(self.acc, i, where),
                 "cost_usd": self.mean(self.cost, i, where)} for i in rows]

    def gap(self, i: int, j: int, where: np.ndarray) -> stats.PairedGap:
        """Row `i`'s reward minus row `j`'s on the questions at `where`: the paired gap of their
        weighted per-question rewards (weights of mean 1 there), so its mean is the weighted mean."""
        a, b = self.r[i, where], self.r[j, where]
        if self.weights is not None:
            w = self.weights[where] / self.weights[where].mean()
            a, b = a * w, b * w
        return stats.paired_gap(a, b)

    def pick(self, rows: Sequence[int], where: np.ndarray, names: dict[int, str], fallback: int, z: float) -> int:
        """`best` of `rows` on `where`, kept only if its reward beats `fallback`'s there by more
        than `z` standard errors of the paired difference (z = 0: any gain); else `fallback`."""
        i = self.best(rows, where, names)
        if z <= 0 or i == fallback:
            return i
        g = self.gap(i, fallback, where)
        return i if g.gap > z * g.se else fallback

    def best(self, rows: Sequence[int], where: np.ndarray, names: dict[int, str]) -> int:
        """The row with the best mean reward on `where` (ties: cheaper, then the name)."""
        return min(dict.fromkeys(rows), key=lambda i: (-self.mean(self.r, i, where),
                                                       self.mean(self.cost, i, where), names[i]))


def search(cfg: Any, setup: Any, reward: Callable[[Any], float], base: W.SearchResult,
           embed: Embed | None = None) -> ClusterDesigns:
    """Steps 2-5 of the module docstring, after the global search `base`."""
    s1 = cfg.stage1
    queries, where_named = W.search_queries(cfg, setup)
    embed = embed or embedder_fn(setup.builder.features.embedder)
    n, decision = len(queries), base.decision
    weights = W.question_weights(cfg, queries)  # [n] or None (every question the same)
    w = np.ones(n) if weights is None else weights
    out = Outcomes(setup.runner, queries, reward, weights)
    lone = W.single_designs(cfg, setup, decision)
    everywhere = np.arange(n)
    single_rows = out.run(lone, everywhere)
    fallback = out.run([base.design], everywhere)[0]
    names = {i: d.summary() for d, i in out.index.items()}
    expressible: dict[Design, bool] = {}
    tried, chosen = [], None
    folds = np.empty(n, dtype=int)
    folds[np.random.default_rng(cfg.run.seed_for("clusters")).permutation(n)] = np.arange(n) % s1.warm_start_folds
    best_score = -np.inf
    for part in partitions(cfg, queries, embed):
        labels = part.assign(queries, embed)
        members = [np.flatnonzero(labels == c) for c in range(part.k)]
        cands: list[list[int]] = []
        for idx in members:
            if len(idx) < s1.warm_start_min_cluster:
                cands.append([fallback])
                continue
            family = W.candidates(cfg, setup, out.single_rows(single_rows, idx), decision, queries[int(idx[0])],
                                  known=expressible)
            rows = out.run([base.design, *family], idx)
            names.update({i: d.summary() for d, i in zip([base.design, *family], rows)})
            cands.append(rows)
        held, held_acc = np.zeros(n), np.zeros(n)
        for f in range(s1.warm_start_folds):
            for c, idx in enumerate(members):
                fit, score = idx[folds[idx] != f], idx[folds[idx] == f]
                pick = fallback if len(fit) < s1.warm_start_min_cluster else \
                    out.pick(cands[c], fit, names, fallback, s1.warm_start_design_z)
                held[score], held_acc[score] = out.r[pick, score], out.acc[pick, score]
        mean = float(held.mean()) if weights is None else float(np.average(held, weights=weights))
        if part.name == "all":
            one = held.copy()
        gap = stats.paired_gap(held * w, one * w)  # weighted: judges the mean the metric takes
        clears = part.name == "all" or gap.gap > s1.warm_start_cluster_z * gap.se
        tried.append({"partition": part.name, "clusters": part.k, "heldout_reward": mean,
                      "heldout_accuracy": float(held_acc.mean()) if weights is None
                      else float(np.average(held_acc, weights=weights)), "gap_over_all": gap.gap,
                      "se": gap.se if np.isfinite(gap.se) else None, "clears": bool(clears)})
        if clears and mean > best_score + 1e-12:  # strictly better: ties stay with the fewer clusters tried first
            best_score, chosen = mean, (part, members, cands)
    part, members, cands = chosen
    picks, rows_out = [], []
    designs_by_row = {i: d for d, i in out.index.items()}
    for c, idx in enumerate(members):
        top = fallback if len(idx) < s1.warm_start_min_cluster else out.best(cands[c], idx, names)
        pick = fallback if len(idx) < s1.warm_start_min_cluster else \
            out.pick(cands[c], idx, names, fallback, s1.warm_start_design_z)
        over = out.gap(top, fallback, idx) if len(idx) > 1 else None
        picks.append(designs_by_row[pick])
        rows_out.append({"cluster": part.labels[c], "questions": int(len(idx)), "design": designs_by_row[pick].summary(),
                         "reward": _mean(out, out.r, pick, idx), "accuracy": _mean(out, out.acc, pick, idx),
                         "cost_usd": _mean(out, out.cost, pick, idx), "global_reward": _mean(out, out.r, fallback, idx),
                         "candidates": len(cands[c]), "best_candidate": designs_by_row[top].summary(),
                         "best_gap_over_global": None if over is None else over.gap,
                         "best_gap_se": None if over is None or not np.isfinite(over.se) else over.se,
                         "kept_global": bool(pick == fallback and top != fallback)})
    _log.info("design search per cluster: %s chosen (held-out reward %.4f; %s)", part.name, best_score,
              ", ".join(f"{t['partition']} {t['heldout_reward']:.4f}" for t in tried))
    return ClusterDesigns(part, picks, base.design, rows_out, tried, where_named)


def _mean(out: Outcomes, m: np.ndarray, i: int, idx: np.ndarray) -> float | None:
    return out.mean(m, i, idx) if len(idx) else None


def resolve_both(cfg: Any, setup: Any, reward: Callable[[Any], float],
                 fixed_decision: str | None, memo: dict | None = None) -> tuple[W.SearchResult, ClusterDesigns]:
    """The global search (`warm_start.resolve`) and then the per-cluster one (`resolve`), sharing
    their rollouts (`MemoRunner`; `memo`: its outcomes, shared with other runs of the same runner
    settings)."""
    from dataclasses import replace

    shared = replace(setup, runner=MemoRunner(setup.runner, memo))
    base = W.resolve(cfg, shared, reward, fixed_decision)
    return base, resolve(cfg, shared, reward, base)


def resolve(cfg: Any, setup: Any, reward: Callable[[Any], float], base: W.SearchResult) -> ClusterDesigns:
    """The run's per-cluster designs: `cluster_search.json` when the run folder has it, else
    searched (and written) now."""
    path = Path(cfg.run.dir) / FILE
    if path.exists():
        return ClusterDesigns.load(path)

    result = search(cfg, setup, reward, base)
    atomic_write_text(path, json.dumps(result.to_dict(), indent=2, default=float) + "\n")
    return result
