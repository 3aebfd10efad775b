"""Stage 2: the DAG between supernodes, learned as graph classification.

With the stage-1 mixture selector frozen, each training query is run on a set of candidate DAGs
(random node order + spanning tree + extra forward edges up to a sampled density, as in HieraMAS;
or DAGs proposed by the policy's edge head). Each rollout is labelled good or bad by its system
reward, and the policy's graph-score head learns P(good | DAG, query). At inference it scores K
candidates per query and the best one is run.

Labelling (documented choice): a rollout is *good* when its reward is strictly above the median
reward of the rollouts of the same query (`label_rule="median"`), so labels compare topologies
for one query and never just "easy vs hard query"; queries whose candidates' rewards span less
than `min_spread` (all tie, or differ only by negligible cost) carry no topology signal and are
dropped. `label_rule="correct_cheap"`: good = correct and cost at or
below the median cost of that query's correct candidates. `label_rule="accuracy"`: the median
rule on the candidates' mean correctness alone (cost ignored): the topologies of one query
differ in cost by a few prompt tokens, and under the cost-aware reward those differences decide
the median split among equally correct candidates, so a classifier trained on `median` labels
learns "fewer edges = cheaper" (high validation AUC) and not which DAGs answer better.

Everything that touches LLMs goes through a `Runner` (see `eval/evaluate.py`), so the same code
runs on the executor + cache and on a fake in tests. The classifier is anything that follows
`GraphScorer`; `PolicyGraphScorer` adapts the GNN policy.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from hieramas_gnn.config import ClassifierConfig, TopologyConfig
from hieramas_gnn.errors import ConfigError
from hieramas_gnn.mas import topologies
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.settings import CandidateDAGs
from hieramas_gnn.policy.gnn import Encoded
from hieramas_gnn.policy.graph import role_ptr
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.tasks.base import Question

Edges = tuple[tuple[int, int], ...]
LABEL_RULES = ("median", "accuracy", "correct_cheap")
DesignFn = Callable[[Sequence[Question], Sequence[Edges]], list[Design]]
"""The frozen selector: (queries, DAGs) pairwise -> Designs with its mixtures on those DAGs."""
ProposeFn = Callable[[Question], list[Edges]]  # query -> candidate DAGs


@dataclass
class ClassifierTraining(ClassifierConfig, CandidateDAGs):
    """The topology classifier's training: the `topology.classifier` section, the candidate DAGs'
    settings (`mas.settings.CandidateDAGs`, from the `topology` section) and the seed of its stream."""

    seed: int = 0
    """Seed of the candidate generator, the split and the minibatch order."""

    def __post_init__(self) -> None:
        problems = [f"topology.classifier.{name} {message}" for name, message in ClassifierConfig.check(self)]
        problems += [f"topology.{name} {message}" for name, message in CandidateDAGs.check(self)]
        if self.n_candidates == 1:
            problems.append("topology.n_candidates must be >= 2 (the classifier compares candidates), got 1")
        for name, allowed in (("resample", ("all", "informative")), ("proposal", ("random", "edge_head")),
                              ("label_rule", LABEL_RULES)):
            if getattr(self, name) not in allowed:
                problems.append(f"topology.classifier.{name} must be {'|'.join(allowed)}, got {getattr(self, name)!r}")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_topology(cls, topo: TopologyConfig, seed: int) -> ClassifierTraining:
        """From the run config's `topology` section and the `stage2` seed stream."""
        dags = {f.name: getattr(topo, f.name) for f in fields(CandidateDAGs)}
        return cls(**asdict(topo.classifier), **dags, seed=seed)


# ---------------------------------------------------------------- candidate DAGs (HieraMAS)


def random_dag(n: int, rng: np.random.Generator, density: float) -> Edges:
    """A random connected DAG on `n` roles (HieraMAS recipe, `mas.topologies.random_dag`):
    random order, spanning tree respecting it, extra forward edges up to `density`."""
    return tuple(sorted(topologies.random_dag(n, density, rng)))


def candidate_dags(n: int, k: int, rng: np.random.Generator, cfg: ClassifierTraining) -> list[Edges]:
    """`k` distinct random DAGs (fewer only when `n` admits fewer distinct connected DAGs)."""
    return topologies.candidate_dags(n, k, rng, cfg.density_min, cfg.density_max)


def with_edges(template: Design, edges: Edges) -> Design:
    """The template's roles, mixtures and decision (and what it reads) with a new DAG."""
    return Design(roles=template.roles, mixtures=template.mixtures, edges=tuple(edges),
                  decision=template.decision, decision_inputs=template.decision_inputs)


def fixed_mixtures(roles: Sequence[str], mixture: Mixture, decision: str) -> DesignFn:
    """A selector that puts the same mixture in every role, whatever the query and DAG."""
    template = Design(roles=tuple(roles), mixtures=tuple(mixture for _ in roles), edges=(), decision=decision)
    return lambda questions, dags: [with_edges(template, e) for e in dags]


SELECT_CHUNK = 512
"""Graphs per forward pass of `policy_selector` (the stage-2 data of the demo is 8 candidates x
544 queries: one batch of all of them held ~0.7 GB at once; each graph's greedy mixture is its own)."""


def policy_selector(policy, builder, decision: str) -> DesignFn:
    """The stage-1 policy's greedy mixtures, conditioned on each query and DAG (mode `mixture`),
    in batches of `SELECT_CHUNK` graphs."""
    @torch.no_grad()
    def select(questions: Sequence[Question], dags: Sequence[Edges]) -> list[Design]:
        out: list[Design] = []
        for at in range(0, len(questions), SELECT_CHUNK):
            part = [tuple(e) for e in dags[at:at + SELECT_CHUNK]]
            batch = builder.batch(list(questions[at:at + SELECT_CHUNK]), part)
            out += sample(policy, batch, decision=decision, mode="mixture", dags=part, greedy=True,
                          scores=False).designs
        return out

    return select


# ---------------------------------------------------------------- the classifier interface


class GraphScorer(Protocol):
    """P(good | DAG, query) as logits; `parameters()` are the ones stage 2 trains."""

    def score_logits(self, questions: Sequence[Question], designs: Sequence[Design]) -> torch.Tensor:
        """Shapes: len(questions) == len(designs) == G → logits [G]."""
        ...

    def parameters(self) -> Iterable[nn.Parameter]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> object: ...


# ---------------------------------------------------------------- data generation


@dataclass
class QueryRollouts:
    """All candidates run for one query: designs, traces' rewards and the good/bad labels."""

    question: Question
    designs: list[Design]
    rewards: list[float]
    correct: list[bool]
    costs: list[float]
    labels: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    """Mean correctness of each candidate over its runs (`correct` is its majority)."""

    @property
    def informative(self) -> bool:
        return 0 < sum(self.labels) < len(self.labels)


def label_rollouts(rewards: Sequence[float], correct: Sequence[bool], costs: Sequence[float],
                   rule: str, accuracy: Sequence[float] | None = None) -> list[int]:
    """Good (1) / bad (0) per candidate of one query, by `rule` (see the module docstring).
    `accuracy` (mean correctness per candidate) defaults to `correct` as 0/1."""
    if rule in ("median", "accuracy"):
        values = rewards if rule == "median" else (accuracy if accuracy is not None else [float(c) for c in correct])
        med = statistics.median(values)
        if max(values) > med:
            return [int(v > med) for v in values]
        return [int(v == med) for v in values]  # the best value is shared by half or more
    if rule == "correct_cheap":
        ok_costs = [cost for c, cost in zip(correct, costs) if c]
        if not ok_costs:
            return [0] * len(costs)
        med_cost = statistics.median(ok_costs)
        return [int(bool(c) and cost <= med_cost) for c, cost in zip(correct, costs)]
    raise ValueError(f"unknown label rule {rule!r}")


def generate_data(questions: Sequence[Question], select: DesignFn, propose: ProposeFn, runner,
                  reward_fn: Callable[[object], float], cfg: ClassifierTraining) -> list[QueryRollouts]:
    """Run every proposed candidate DAG of every query with the frozen selector's mixtures.

    `runner.run(pairs)` runs (Design, Question) pairs and returns traces with `correct`,
    `cost_usd`, `failed`. With `cfg.samples` > 1 the runner's `sample_index` is set to 0..S-1 in
    turn (independent runs, each cached under its own index) and a candidate's reward, correctness
    and cost are its means over the runs that did not fail; a candidate whose every run failed is
    dropped (never turned into reward 0).
    """
    pairs = [(qi, q, edges) for qi, q in enumerate(questions) for edges in propose(q)]
    designs = select([q for _, q, _ in pairs], [e for _, _, e in pairs])
    jobs = [(d, q) for d, (_, q, _) in zip(designs, pairs)]
    runs = [[] for _ in jobs]  # per job: (reward, correct, cost) of each run that did not fail
    if cfg.samples > 1 and not hasattr(runner, "sample_index"):
        raise ValueError("topology.classifier.samples > 1 needs a runner with a `sample_index` attribute")
    first = getattr(runner, "sample_index", 0)
    todo = list(range(len(jobs)))
    try:
        for s in range(cfg.samples):
            if cfg.samples > 1:
                runner.sample_index = first + s
            if s == 1 and cfg.resample == "informative":
                first_runs: dict[int, list] = {}  # query -> its candidates' first-run results
                for j in todo:
                    if runs[j]:
                        first_runs.setdefault(pairs[j][0], []).append(runs[j][0])
                keep = {qi for qi, res in first_runs.items() if _spread_ok(res, cfg)}
                todo = [j for j in todo if pairs[j][0] in keep]
            for j, tr in zip(todo, runner.run([jobs[j] for j in todo])):
                if not getattr(tr, "failed", False):
                    runs[j].append((float(reward_fn(tr)), float(bool(tr.correct)), float(tr.cost_usd)))
    finally:
        if cfg.samples > 1:
            runner.sample_index = first
    per_q = [QueryRollouts(q, [], [], [], []) for q in questions]
    for (design, _), (qi, _, _), got in zip(jobs, pairs, runs):
        if not got:
            continue
        qr = per_q[qi]
        qr.designs.append(design)
        qr.rewards.append(float(np.mean([r for r, _, _ in got])))
        qr.correct.append(bool(np.mean([c for _, c, _ in got]) >= 0.5))
        qr.costs.append(float(np.mean([c for _, _, c in got])))
        qr.accuracy.append(float(np.mean([c for _, c, _ in got])))
    for qr in per_q:
        spread_of = qr.accuracy if cfg.label_rule == "accuracy" else qr.rewards
        if qr.rewards and max(spread_of) - min(spread_of) >= cfg.min_spread:
            qr.labels = label_rollouts(qr.rewards, qr.correct, qr.costs, cfg.label_rule, qr.accuracy)
        elif qr.rewards:
            qr.labels = [0] * len(qr.rewards)  # uninformative: dropped from training and AUC
    return per_q


def _spread_ok(results: Sequence[tuple[float, float, float]], cfg: ClassifierTraining) -> bool:
    """Whether (reward, correct, cost) results of one query's candidates span >= min_spread on
    what `cfg.label_rule` labels by."""
    values = [c if cfg.label_rule == "accuracy" else r for r, c, _ in results]
    return len(values) > 1 and max(values) - min(values) >= cfg.min_spread


def random_proposer(n_roles: int, cfg: ClassifierTraining) -> ProposeFn:
    """Per query, K fresh HieraMAS random DAGs (seeded by cfg.seed, deterministic per call order)."""
    rng = np.random.default_rng(cfg.seed)
    return lambda q: candidate_dags(n_roles, cfg.n_candidates, rng, cfg)


def edge_head_proposer(policy, builder, cfg: ClassifierTraining, decision: str) -> ProposeFn:
    """Per query, up to K distinct DAGs sampled from the policy's edge head (node order + forward
    edges, `policy.sample` mode `dag`), drawn with a generator seeded by cfg.seed."""
    gen = torch.Generator().manual_seed(cfg.seed)

    @torch.no_grad()
    def propose(q: Question) -> list[Edges]:
        batch = builder.batch([q] * (2 * cfg.n_candidates))
        dags = [tuple(d.edges) for d in sample(policy, batch, decision=decision, mode="dag", generator=gen).designs]
        return list(dict.fromkeys(dags))[:cfg.n_candidates]

    return propose


def make_proposer(cfg: ClassifierTraining, n_roles: int, policy=None, builder=None, decision: str = "") -> ProposeFn:
    """The candidate generator `cfg.proposal` names (`random` or `edge_head`)."""
    if cfg.proposal == "edge_head":
        if policy is None or builder is None:
            raise ValueError("topology.classifier.proposal=edge_head needs the policy and its graph builder")
        return edge_head_proposer(policy, builder, cfg, decision)
    return random_proposer(n_roles, cfg)


# ---------------------------------------------------------------- training


def per_query_auc(data: Sequence[QueryRollouts], scores: Sequence[Sequence[float]]) -> float:
    """Mean ROC-AUC over the queries whose candidates have both labels (nan when none do)."""
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(qr.labels, s) for qr, s in zip(data, scores) if qr.informative]
    return float(np.mean(aucs)) if aucs else float("nan")


@torch.no_grad()
def score_all(scorer: GraphScorer, data: Sequence[QueryRollouts]) -> list[list[float]]:
    """The scorer's logits for every candidate of every query (one batch for all of them)."""
    qs = [qr.question for qr in data for _ in qr.designs]
    if not qs:
        return [[] for _ in data]
    flat = scorer.score_logits(qs, [d for qr in data for d in qr.designs]).tolist()  # [sum K]
    out, i = [], 0
    for qr in data:
        out.append(flat[i:i + len(qr.designs)])
        i += len(qr.designs)
    return out


def split_queries(data: Sequence[QueryRollouts], cfg: ClassifierTraining) -> tuple[list, list]:
    """Informative queries split into train / validation (at least one of each when possible)."""
    useful = [qr for qr in data if qr.informative]
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(2)[1])  # not the candidates' stream
    idx = rng.permutation(len(useful))
    n_val = max(1, int(round(cfg.val_fraction * len(useful)))) if len(useful) >= 2 else 0
    return [useful[i] for i in idx[n_val:]], [useful[i] for i in idx[:n_val]]


@dataclass
class ClassifierResult:
    """What training produced: the best validation AUC, its epoch, and the per-epoch history."""

    best_val_auc: float
    best_epoch: int
    history: list[dict]
    n_train_rollouts: int
    n_train_queries: int


def train_classifier(scorer: GraphScorer, train: Sequence[QueryRollouts], val: Sequence[QueryRollouts],
                     cfg: ClassifierTraining, log: Callable[[dict, int], None] | None = None) -> ClassifierResult:
    """BCE with positive weighting; early stop on validation per-query ROC-AUC; keeps the best."""
    flat = [(qr.question, d, y) for qr in train for d, y in zip(qr.designs, qr.labels)]
    if not flat:
        raise ValueError("stage 2 has no informative training query (all candidates tie)")
    n_pos = sum(y for *_, y in flat)
    pos_weight = torch.tensor((len(flat) - n_pos) / max(n_pos, 1), dtype=torch.float32)
    params = [p for p in scorer.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    best = (float("-inf"), -1, copy.deepcopy(scorer.state_dict()))
    history, stale = [], 0
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(flat), generator=gen).tolist()
        losses = []
        for start in range(0, len(flat), cfg.batch_size):
            batch = [flat[i] for i in perm[start:start + cfg.batch_size]]
            logits = scorer.score_logits([b[0] for b in batch], [b[1] for b in batch])  # [G]
            target = torch.tensor([float(b[2]) for b in batch])  # [G]
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        val_auc = per_query_auc(val, score_all(scorer, val)) if val else float("nan")
        row = {"stage2/loss": float(np.mean(losses)), "stage2/val_auc": val_auc, "stage2/epoch": epoch}
        history.append(row)
        if log:
            log(row, epoch)
        metric = val_auc if not np.isnan(val_auc) else -row["stage2/loss"]
        if metric > best[0]:
            best, stale = (metric, epoch, copy.deepcopy(scorer.state_dict())), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    scorer.load_state_dict(best[2])
    return ClassifierResult(best_val_auc=best[0], best_epoch=best[1], history=history,
                        n_train_rollouts=len(flat), n_train_queries=len(train))


def fit_classifier(scorer: GraphScorer, select: DesignFn, train_qs: Sequence[Question],
               val_qs: Sequence[Question], runner, reward_fn: Callable[[object], float], n_roles: int,
               cfg: ClassifierTraining, log: Callable[[dict, int], None] | None = None, decision: str = ""
               ) -> tuple[ClassifierResult, int]:
    """Generate labelled rollouts on the train and validation queries, then train the classifier.

    Returns the training result and the rollouts spent (the budget the comparators get).
    """
    before = runner.rollouts
    propose = make_proposer(cfg, n_roles, getattr(scorer, "policy", None), getattr(scorer, "builder", None),
                            decision)
    train = [qr for qr in generate_data(train_qs, select, propose, runner, reward_fn, cfg) if qr.informative]
    val = [qr for qr in generate_data(val_qs, select, propose, runner, reward_fn, cfg) if qr.informative]
    if not val:  # no informative validation query: fall back to a split of the training ones
        train, val = split_queries(train, cfg)
    if not train:  # every candidate of every query tied: nothing to learn, the head stays as it is
        return ClassifierResult(float("nan"), -1, [], 0, 0), runner.rollouts - before
    result = train_classifier(scorer, train, val, cfg, log)
    return result, runner.rollouts - before


# ---------------------------------------------------------------- inference


@torch.no_grad()
def choose_designs(scorer: GraphScorer, questions: Sequence[Question], select: DesignFn,
                   propose: ProposeFn) -> list[Design]:
    """Per query: the selector's mixtures on each of K proposed DAGs; the top-scored one wins.
    For scorers other than the policy (tests, comparators): the product chooses designs with
    `policy.choose.DesignChooser` only."""
    out = []
    for q in questions:
        dags = propose(q)
        cands = select([q] * len(dags), dags)
        logits = scorer.score_logits([q] * len(cands), cands)  # [K]
        out.append(cands[int(torch.argmax(logits))])
    return out


class PolicyGraphScorer:
    """`GraphScorer` over the GNN policy's graph-score head (what `HieraPolicy.graph_logits` runs).

    Only `policy.score_head` is trained; the encoder and the mixture head stay frozen (the
    stage-1 selector is unchanged). Because the encoder is frozen, its output per (query, DAG)
    is computed once and cached, and each step runs only the score head on the cached encodings
    (the same numbers as `graph_logits`, tested). `builder` is the policy's `GraphBuilder`.
    """

    def __init__(self, policy, builder) -> None:
        self.policy, self.builder = policy, builder
        self._enc: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _key(q: Question, d: Design) -> tuple:
        return (q.id, q.text, tuple(sorted(d.edges)))

    @torch.no_grad()
    def _encode_missing(self, questions: Sequence[Question], designs: Sequence[Design]) -> None:
        todo = {self._key(q, d): (q, d) for q, d in zip(questions, designs) if self._key(q, d) not in self._enc}
        if not todo:
            return
        batch = self.builder.batch([q for q, _ in todo.values()], [d.edges for _, d in todo.values()])
        enc = self.policy.encode(batch)
        ptr, m = role_ptr(batch).tolist(), enc.num_llms
        for g, key in enumerate(todo):  # per graph: h_role [n, H], h_llm [M, H], h_query [1, H]
            self._enc[key] = (enc.h_role[ptr[g]:ptr[g + 1]], enc.h_llm[g * m:(g + 1) * m], enc.h_query[g:g + 1])

    def score_logits(self, questions: Sequence[Question], designs: Sequence[Design]) -> torch.Tensor:
        self._encode_missing(questions, designs)
        parts = [self._enc[self._key(q, d)] for q, d in zip(questions, designs)]
        sizes = torch.tensor([p[0].size(0) for p in parts])  # [G]
        offsets = torch.cumsum(sizes, 0) - sizes  # [G]
        enc = Encoded(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                      torch.cat([p[2] for p in parts]), torch.repeat_interleave(torch.arange(len(parts)), sizes),
                      parts[0][1].size(0))
        dag = [torch.tensor(d.edges, dtype=torch.long).reshape(-1, 2).t() + offsets[g] for g, d in enumerate(designs)]
        return self.policy.score_head(enc, torch.cat(dag, dim=1))  # [G]

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.policy.score_head.parameters()

    def state_dict(self) -> dict:
        return self.policy.score_head.state_dict()

    def load_state_dict(self, state: dict) -> object:
        return self.policy.score_head.load_state_dict(state)
