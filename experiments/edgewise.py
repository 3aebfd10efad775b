"""Per-edge topology learners, kept as comparators for stage 2's graph classification.

All three learn a probability per ordered role pair (i, j) and are trained with REINFORCE on the
same runtime (a `Runner`), the same reward function, the same frozen mixtures and the same
rollout budget (design executions) as stage 2:

- `gdesigner`: edge logits from the GNN policy's edge head, conditioned on the query
  (G-Designer-style);
- `gptswarm`: free, query-independent per-edge logits (GPTSwarm-style);
- `agentprune`: free logits trained in rounds; after each round the lowest-probability surviving
  edges are pruned for good (AgentPrune-style).

Sampling follows GPTSwarm: visit the ordered pairs in a random order and draw each edge from its
Bernoulli unless it would close a cycle (then it is not drawn and adds nothing to the
log-prob). Decoding for evaluation is deterministic: pairs by descending probability, kept while
p > 0.5 and acyclic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import networkx as nx
import torch
from torch import nn

from hieramas_gnn.mas.design import Design
from hieramas_gnn.tasks.base import Question
from hieramas_gnn.train.credit import reinforce_loss
from hieramas_gnn.train.topology_classifier import DesignFn, Edges

EdgeLogitFn = Callable[[Question], torch.Tensor]  # query -> [R, R] logits (diagonal unused)
METHODS = ("gdesigner", "gptswarm", "agentprune")


@dataclass
class EdgewiseConfig:
    """Knobs shared by the comparators (every field is read below)."""

    budget: int = 256
    """Rollouts (design executions) each comparator may spend; set equal to stage 2's."""
    batch_size: int = 16
    """Queries (one sampled DAG each) per REINFORCE step."""
    lr: float = 0.1
    """Adam learning rate (edge logits or the edge head's parameters)."""
    baseline_decay: float = 0.9
    """Moving-average reward baseline decay."""
    prune_rounds: int = 3
    """AgentPrune: training rounds, each followed by a pruning step (the last one included)."""
    prune_fraction: float = 0.25
    """AgentPrune: fraction of surviving edges pruned after each round."""
    seed: int = 0
    """Seed of the pair orders, the Bernoulli draws and the query order."""


def _would_cycle(g: nx.DiGraph, i: int, j: int) -> bool:
    return g.has_node(j) and g.has_node(i) and nx.has_path(g, j, i)


def sample_dag(logits: torch.Tensor, gen: torch.Generator, mask: torch.Tensor | None = None
               ) -> tuple[Edges, torch.Tensor]:
    """One DAG from per-pair logits [R, R] and its log-prob (differentiable, scalar).

    `mask` [R, R] bool: pairs allowed at all (pruned pairs are never drawn).
    """
    r = logits.shape[0]
    pairs = [(i, j) for i in range(r) for j in range(r) if i != j and (mask is None or bool(mask[i, j]))]
    order = torch.randperm(len(pairs), generator=gen).tolist()
    g = nx.DiGraph()
    g.add_nodes_from(range(r))
    terms, edges = [], []
    for k in order:
        i, j = pairs[k]
        if _would_cycle(g, i, j):
            continue
        take = bool(torch.rand((), generator=gen) < torch.sigmoid(logits[i, j].detach()))
        terms.append(nn.functional.logsigmoid(logits[i, j] if take else -logits[i, j]))
        if take:
            g.add_edge(i, j)
            edges.append((i, j))
    log_prob = torch.stack(terms).sum() if terms else logits.sum() * 0.0
    return tuple(sorted(edges)), log_prob


def decode_dag(logits: torch.Tensor, mask: torch.Tensor | None = None) -> Edges:
    """Deterministic DAG: pairs by descending logit, kept while p > 0.5 and acyclic."""
    r = logits.shape[0]
    pairs = sorted(((float(logits[i, j]), i, j) for i in range(r) for j in range(r)
                    if i != j and (mask is None or bool(mask[i, j]))), reverse=True)
    g = nx.DiGraph()
    g.add_nodes_from(range(r))
    for logit, i, j in pairs:
        if logit <= 0.0:
            break
        if not _would_cycle(g, i, j):
            g.add_edge(i, j)
    return tuple(sorted(g.edges()))


class FreeEdgeLogits(nn.Module):
    """Query-independent edge logits (GPTSwarm / AgentPrune).

    Shapes: forward(question) -> [R, R].
    """

    def __init__(self, n_roles: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_roles, n_roles))  # [R, R], p = 0.5 at start

    def forward(self, question: Question | None = None) -> torch.Tensor:
        return self.logits


@dataclass
class EdgewiseResult:
    """A trained comparator: how it decodes designs and what it spent."""

    method: str
    edge_fn: EdgeLogitFn
    mask: torch.Tensor | None
    rollouts: int
    history: list[dict] = field(default_factory=list)

    @torch.no_grad()
    def choose(self, questions: Sequence[Question], select: DesignFn) -> list[Design]:
        """The decoded DAG per query with the frozen selector's mixtures."""
        return select(questions, [decode_dag(self.edge_fn(q), self.mask) for q in questions])


def reinforce_edges(edge_fn: EdgeLogitFn, params: Sequence[nn.Parameter], questions: Sequence[Question],
                    select: DesignFn, runner, reward_fn: Callable[[object], float], budget: int,
                    cfg: EdgewiseConfig, gen: torch.Generator, mask: torch.Tensor | None = None
                    ) -> tuple[int, list[dict]]:
    """Per-edge REINFORCE (moving-average baseline) until `budget` rollouts are spent.

    Returns (rollouts used, per-step history). Failed rollouts are masked out of the loss.
    """
    opt = torch.optim.Adam(params, lr=cfg.lr)
    used, baseline, history = 0, None, []
    while used < budget:
        take = min(cfg.batch_size, budget - used)
        idx = torch.randint(len(questions), (take,), generator=gen).tolist()
        batch = [questions[i] for i in idx]
        samples = [sample_dag(edge_fn(q), gen, mask) for q in batch]
        jobs = list(zip(select(batch, [e for e, _ in samples]), batch))
        traces = runner.run(jobs)
        used += len(jobs)
        keep = [(lp, float(reward_fn(t))) for (_, lp), t in zip(samples, traces) if not getattr(t, "failed", False)]
        if not keep:
            continue
        rewards = torch.tensor([r for _, r in keep])  # [B]
        b = float(rewards.mean()) if baseline is None else baseline
        log_prob = torch.stack([lp for lp, _ in keep])[:, None]  # [B, 1]: one topology "role"
        out = reinforce_loss(log_prob, (rewards - b)[:, None], torch.ones_like(log_prob),
                             torch.zeros(len(keep)), beta=0.0)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        baseline = cfg.baseline_decay * b + (1 - cfg.baseline_decay) * float(rewards.mean())
        history.append({"edgewise/reward": float(rewards.mean()), "edgewise/rollouts": used})
    return used, history


def train_free(method: str, n_roles: int, questions: Sequence[Question], select: DesignFn, runner,
               reward_fn: Callable[[object], float], cfg: EdgewiseConfig) -> EdgewiseResult:
    """GPTSwarm-style (one round, no pruning) or AgentPrune-style (rounds + pruning)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    model = FreeEdgeLogits(n_roles)
    mask = ~torch.eye(n_roles, dtype=torch.bool)  # [R, R]
    rounds = cfg.prune_rounds if method == "agentprune" else 1
    used, history = 0, []
    for rnd in range(rounds):
        share = (cfg.budget - used) // (rounds - rnd)
        spent, hist = reinforce_edges(model, list(model.parameters()), questions, select, runner,
                                      reward_fn, share, cfg, gen, mask)
        used += spent
        history += hist
        if method == "agentprune":
            mask = prune(model.logits.detach(), mask, cfg.prune_fraction)
    return EdgewiseResult(method, model, mask if method == "agentprune" else None, used, history)


def prune(logits: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """Drop the `fraction` lowest-logit surviving pairs (at least one while any survive)."""
    alive = mask.nonzero().tolist()
    n_drop = max(1, int(round(fraction * len(alive)))) if alive else 0
    ranked = sorted(alive, key=lambda ij: float(logits[ij[0], ij[1]]))
    out = mask.clone()
    for i, j in ranked[:n_drop]:
        out[i, j] = False
    return out


def train_gdesigner(edge_fn: EdgeLogitFn, params: Sequence[nn.Parameter], questions: Sequence[Question],
                    select: DesignFn, runner, reward_fn: Callable[[object], float],
                    cfg: EdgewiseConfig) -> EdgewiseResult:
    """G-Designer-style: REINFORCE through a query-conditioned (GNN) edge head."""
    gen = torch.Generator().manual_seed(cfg.seed)
    used, history = reinforce_edges(edge_fn, params, questions, select, runner, reward_fn,
                                    cfg.budget, cfg, gen)
    return EdgewiseResult("gdesigner", edge_fn, None, used, history)


def policy_edge_fn(policy, builder) -> EdgeLogitFn:
    """The GNN edge head as a query -> [R, R] logit matrix (G-Designer-style comparator)."""
    from hieramas_gnn.policy.graph import candidate_pairs

    def edge_fn(question: Question) -> torch.Tensor:
        batch = builder.batch([question])
        enc = policy.encode(batch)
        pairs = candidate_pairs(len(builder.role_names))  # [2, E]
        _, logits = policy.edge_head(enc, pairs)  # [E]
        mat = torch.zeros(len(builder.role_names), len(builder.role_names))  # [R, R]
        return mat.index_put((pairs[0], pairs[1]), logits)

    return edge_fn


def compare_topologies(policy, builder, select: DesignFn, train_qs: Sequence[Question],
                       val_qs: Sequence[Question], test_qs: Sequence[Question], runner,
                       reward_fn: Callable[[object], float], s2cfg, ewcfg: EdgewiseConfig,
                       decision: str = "", eval_runs: int = 1, choice_seed: int | None = None
                       ) -> tuple[list[dict], dict]:
    """Stage 2 vs the three per-edge comparators on equal rollout budgets, plus a random DAG.

    Stage 2 trains the policy's score head (in place); G-Designer trains the edge head of a
    copy of the policy. Every method uses `select`'s mixtures on its DAGs. Each method's designs
    are run `eval_runs` times per held-out query (the runner's `sample_index` 0..R-1; rows over all
    runs, `n` = queries). Returns rows (the `hieramas baselines` columns plus `rollouts`, the
    training budget spent, and `runs`) and info (stage-2 figures, and `per_query`: per method the
    mean correctness of each held-out query [Q], for paired comparisons).
    """
    import copy
    from dataclasses import replace

    from hieramas_gnn.mas.runner import per_query_mean, run_repeated, summarize
    from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
    from hieramas_gnn.train import topology_classifier

    n_roles = len(builder.role_names)
    per_query: dict[str, list[float]] = {}

    def evaluate(method: str, designs, rollouts: int) -> dict:
        traces = run_repeated(runner, designs, test_qs, eval_runs)
        per_query[method] = per_query_mean([float(bool(t.correct)) for t in traces], eval_runs)
        return {**summarize(method, traces, rollouts=rollouts), "n": len(test_qs), "runs": eval_runs}

    scorer = topology_classifier.PolicyGraphScorer(policy, builder)
    result, budget = topology_classifier.fit_classifier(scorer, select, train_qs, val_qs, runner, reward_fn, n_roles, s2cfg,
                                       decision=decision)
    # stage 2 and its control choose through the one design-choice function (policy/choose.py)
    chooser = DesignChooser(policy, builder, ChoiceSettings(
        route="classifier", decision=decision, n_candidates=s2cfg.n_candidates, density_min=s2cfg.density_min,
        density_max=s2cfg.density_max, seed=choice_seed if choice_seed is not None else s2cfg.seed))
    rows = [evaluate("stage2-graph-classifier", chooser.designs(test_qs), budget),
            evaluate("random-dag-same-pool", chooser.with_route("random").designs(test_qs), 0)]
    ew = replace(ewcfg, budget=budget)
    for method in ("gptswarm", "agentprune"):
        res = train_free(method, n_roles, train_qs, select, runner, reward_fn, ew)
        rows.append(evaluate(method, res.choose(test_qs, select), res.rollouts))
    twin = copy.deepcopy(policy)
    res = train_gdesigner(policy_edge_fn(twin, builder), list(twin.edge_head.parameters()), train_qs, select,
                          runner, reward_fn, ew)
    rows.append(evaluate("gdesigner", res.choose(test_qs, select), res.rollouts))
    info = {"stage2_val_auc": result.best_val_auc, "stage2_best_epoch": result.best_epoch,
            "budget_rollouts": budget, "stage2_train_queries": result.n_train_queries, "per_query": per_query}
    return rows, info
