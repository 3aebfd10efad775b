"""Vectorized sampling and re-scoring of Designs under `HieraPolicy` (one function does both).

`sample(policy, batch, decision=..., mode=..., designs=None, generator=..., temperature=1.0)`
returns `SampleOut(designs, log_prob [G], role_log_prob [G, N], edge_log_prob [G], entropy [G],
role_mask [G, N], orders)`. With `designs=None` it samples; with `designs=[...]` it re-scores
those designs (cleanrl's `get_action_and_value(x, action=None)` shape) and the log-prob equals
the one returned when they were sampled (same policy, same temperature). N here is the largest
role count in the batch; `role_mask` marks real roles (padding has log-prob 0).

Modes:
- `joint`:   sample the DAG (from the encoding without DAG edges), then the mixtures (from the
             encoding *with* the sampled DAG). log_prob = Σ role_log_prob + edge_log_prob.
- `mixture`: the DAG is fixed (`dags=` per graph, or taken from `designs`); only mixtures are
             sampled/scored; edge_log_prob = 0 (stage 1 over a pool of random DAGs).
- `dag`:     only the DAG is sampled/scored; mixtures come from `mixtures=` (per graph), from
             `designs`, or else the policy's greedy mixture; role_log_prob = 0 (edge comparators).

Distribution of one role's mixture (all roles of all graphs at once; temperature T divides
every logit):
- skip ~ Bernoulli(σ(skip/T)) (never, if `cfg.allow_skip` is False);
- if not skipped and `cfg.proposer_slots` > 0: up to that many proposers, the number learned
  (slot 1 a model, each later slot an unchosen model or stop; exact log-prob, see
  `distributions.py`), then the synthesizer as below;
- if not skipped otherwise: k = min(cfg.k_proposers, M) proposers *without replacement* by Gumbel-top-k,
  i.e. a Plackett-Luce draw. The log-prob is that of the **ordered** sequence
  Σ_t [l_{a_t} − logsumexp(l over models not yet chosen)]; a Design keeps the order in
  `Mixture.proposers`, and re-scoring uses that order. Then a synthesizer ~ Categorical(synth/T)
  (any model, may repeat a proposer; with `cfg.plurality` also the plurality synthesizer, a
  column M + 1 of its own: no call, the most common proposal answer wins); with k = 1 there is no
  synthesis step, the synthesizer is set to the proposer and contributes no log-prob.
  Counterfactual credit: given the DAG and the query, roles' mixtures are independent, so
  "re-sample role r with everything else fixed" = take role r's mixture from fresh `mixture`-mode
  samples (same DAG) and keep the other roles of the original design.

Distribution of the DAG (per graph with n roles): a node order π ~ Plackett-Luce(order/T) (Gumbel
sort), then each pair (i, j) with i before j in π gets an edge with probability σ(edge_ij/T);
backward pairs never get one, so every DAG is acyclic by construction. The reported
edge_log_prob is the **exact marginal** log P(DAG) = logsumexp_π [log PL(π) + Σ_{forward pairs}
log Bernoulli(A_ij)] over all n! orders (π with a DAG edge pointing backward contribute 0), so
a DAG can be re-scored from its edges alone. It is computed by dynamic programming over
prefix sets (O(2^n·n²), not n!); n ≤ MAX_EXACT_ROLES (14).

Entropy (for the bonus; a deterministic, differentiable surrogate, identical when sampling and
re-scoring): per role H(skip) + (1 − p_skip)·(Σ_t H(step t of the greedy top-k) + H(synth));
per DAG Σ_t H(PL step t along the greedy order) + ½ Σ_{i≠j} H(Bernoulli(σ(edge_ij/T))).
All randomness comes from the `torch.Generator` passed in (CPU). `greedy=True` takes modes
(top-k, argmax, p > ½) instead of sampling, e.g. for evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from hieramas_gnn.mas.design import PLURALITY, Design, Mixture
from hieramas_gnn.policy.distributions import (
    MAX_EXACT_ROLES, MixtureChoice, dag_entropy, dag_log_prob, mixture_entropy, mixture_log_prob, sample_dags,
    sample_mixtures,
)

__all__ = ["MAX_EXACT_ROLES", "MODES", "SampleOut", "dag_log_prob", "sample"]
from hieramas_gnn.policy.gnn import Encoded, HieraPolicy
from hieramas_gnn.policy.graph import dag_edge_index, names_per_graph, num_graphs, role_ptr

MODES = ("joint", "mixture", "dag")
Edges = tuple[tuple[int, int], ...]


@dataclass
class SampleOut:
    """designs [G]; log_prob, edge_log_prob, entropy [G]; role_log_prob, role_mask [G, N];
    orders: the sampled node order per graph (None when the DAG was given / re-scored);
    encoded: the encoding the mixtures were read from (with the designs' DAG edges: what the
    graph-score head scores them on, `policy.score_head(encoded, dag_edge_index(batch, dags))`)."""

    designs: list[Design]
    log_prob: Tensor
    role_log_prob: Tensor
    edge_log_prob: Tensor
    entropy: Tensor
    role_mask: Tensor
    orders: list[tuple[int, ...]] | None = None
    encoded: Encoded | None = None


def _choice_from_mixtures(mixtures: Sequence[Mixture | None], llm_index: dict[str, int],
                          plurality: bool = False) -> MixtureChoice:
    k = max([len(mx.proposers) for mx in mixtures if mx is not None], default=1)
    prop = torch.full((len(mixtures), k), -1, dtype=torch.long)
    synth = torch.zeros(len(mixtures), dtype=torch.long)
    skip = torch.tensor([mx is None for mx in mixtures], dtype=torch.bool)
    for i, mx in enumerate(mixtures):
        if mx is None:
            continue
        voted = mx.synthesizer == PLURALITY  # (with k = 1 the synthesizer is never used)
        names = list(mx.proposers) + ([] if voted else [mx.synthesizer])
        if mx.plurality and not plurality:
            raise ValueError(f"design uses the {PLURALITY!r} synthesizer; this policy was built without it "
                             "(policy.arch.plurality: false)")
        unknown = [x for x in names if x not in llm_index]
        if unknown:
            raise ValueError(f"design uses models {unknown} that are not in the policy's pool {sorted(llm_index)}")
        if not mx.proposers or len(set(mx.proposers)) != len(mx.proposers):
            raise ValueError(f"mixture proposers must be non-empty and distinct, got {mx.proposers}")
        prop[i, : len(mx.proposers)] = torch.tensor([llm_index[x] for x in mx.proposers])
        synth[i] = (len(llm_index) if plurality else 0) if voted else llm_index[mx.synthesizer]
    return MixtureChoice(skip, prop, synth)


def _dense_dag_logits(order: Tensor, edge: Tensor, batch: HeteroData, ptr: Tensor) -> tuple[Tensor, Tensor]:
    """Per-graph dense logits. Shapes: order [N], edge [E] -> [G, n_max], [G, n_max, n_max]."""
    g, sizes = ptr.numel() - 1, ptr.diff()
    n_max = int(sizes.max()) if g else 0
    rb = torch.repeat_interleave(torch.arange(g, device=order.device), sizes.to(order.device))  # [N]
    local = torch.arange(order.numel(), device=order.device) - ptr.to(order.device)[rb]  # [N]
    order_d = order.new_zeros(g, n_max).index_put((rb, local), order)
    cand = batch["role", "cand", "role"].edge_index.to(order.device)  # [2, E]
    ge = rb[cand[0]]  # [E]
    base = ptr.to(order.device)[ge]
    edge_d = edge.new_zeros(g, n_max, n_max).index_put((ge, cand[0] - base, cand[1] - base), edge)
    return order_d, edge_d


def _dag_part(policy: HieraPolicy, batch: HeteroData, ptr: Tensor, dags: list[Edges] | None,
              temperature: float, gen: torch.Generator | None, greedy: bool):
    """Sample (dags=None) or score DAGs. Returns dags, edge_log_prob [G], entropy [G], orders."""
    g, sizes = ptr.numel() - 1, ptr.diff()
    enc = policy.encode(batch, torch.zeros(2, 0, dtype=torch.long))
    order, edge = policy.edge_head(enc, batch["role", "cand", "role"].edge_index)  # [N], [E]
    order_d, edge_d = _dense_dag_logits(order / temperature, edge / temperature, batch, ptr)
    lp, ent = order.new_zeros(g), order.new_zeros(g)
    out_dags: list[Edges] = [()] * g
    orders: list[tuple[int, ...]] | None = None if dags is not None else [()] * g
    for n in sorted(set(sizes.tolist())):
        idx = torch.nonzero(sizes == n).flatten()  # graphs with n roles
        if n == 0:
            continue
        o, e = order_d[idx, :n], edge_d[idx, :n, :n]  # [B, n], [B, n, n]
        idx_list = idx.tolist()
        if dags is None:
            perm, adj = sample_dags(o, e, gen, greedy)
            for gi, row in zip(idx_list, perm.tolist()):
                orders[gi] = tuple(row)
        else:
            adj = torch.zeros_like(e)
            for b, gi in enumerate(idx_list):
                for s, d in dags[gi]:
                    adj[b, s, d] = 1.0
        nz = torch.nonzero(adj).tolist()  # [(b, src, dst)] in row-major (= sorted) order
        for b, src, dst in nz:
            out_dags[idx_list[b]] += ((src, dst),)
        lp = lp.index_copy(0, idx.to(lp.device), dag_log_prob(o, e, adj))
        ent = ent.index_copy(0, idx.to(ent.device), dag_entropy(o, e))
    return out_dags, lp, ent, orders


def _to_dense(values: Tensor, ptr: Tensor) -> tuple[Tensor, Tensor]:
    """Per-role values to [G, n_max] (0 at padding) plus the mask. Shapes: [N] -> [G, n_max] x2."""
    g, sizes = ptr.numel() - 1, ptr.diff()
    n_max = int(sizes.max()) if g else 0
    rb = torch.repeat_interleave(torch.arange(g), sizes).to(values.device)  # [N]
    local = torch.arange(values.numel(), device=values.device) - ptr.to(values.device)[rb]
    dense = values.new_zeros(g, n_max).index_put((rb, local), values)
    mask = torch.zeros(g, n_max, dtype=torch.bool, device=values.device).index_put(
        (rb, local), torch.ones_like(local, dtype=torch.bool))
    return dense, mask


def _designs(role_names, llm_names, ptr, choice: MixtureChoice, dags, decisions, inputs) -> list[Design]:
    out, bounds = [], ptr.tolist()
    skip, proposers, synth = choice.skip.tolist(), choice.proposers.tolist(), choice.synth.tolist()
    for g, roles in enumerate(role_names):
        mixtures = []
        for i in range(bounds[g], bounds[g + 1]):
            if skip[i]:
                mixtures.append(None)
                continue
            props = tuple(llm_names[g][a] for a in proposers[i] if a >= 0)
            names = llm_names[g]
            mixtures.append(Mixture(props, PLURALITY if synth[i] == len(names) else names[synth[i]]))
        out.append(Design(tuple(roles), tuple(mixtures), tuple(dags[g]), decisions[g], inputs[g]))
    return out


def _stored_dags(batch: HeteroData, ptr: Tensor) -> list[Edges] | None:
    if ("role", "dag", "role") not in batch.edge_types:
        return None
    ei = batch["role", "dag", "role"].edge_index
    g = ptr.numel() - 1
    gid = torch.bucketize(ei[0], ptr[1:], right=True)  # [E_dag] graph of each edge
    return [tuple(sorted((int(s - ptr[k]), int(d - ptr[k])) for s, d in ei[:, gid == k].t().tolist()))
            for k in range(g)]


def _check_designs(designs: Sequence[Design], role_names: list[list[str]], g: int) -> None:
    if len(designs) != g:
        raise ValueError(f"got {len(designs)} designs for a batch of {g} graphs")
    for k, d in enumerate(designs):
        if tuple(d.roles) != tuple(role_names[k]) or len(d.mixtures) != len(d.roles):
            raise ValueError(f"design {k} has roles {d.roles}, the graph has roles {role_names[k]}")


def sample(policy: HieraPolicy, batch: HeteroData, *, decision: str | Sequence[str], mode: str = "joint",
           designs: Sequence[Design] | None = None, dags: Sequence[Edges] | None = None,
           mixtures: Sequence[Sequence[Mixture | None]] | None = None,
           generator: torch.Generator | None = None, temperature: float = 1.0,
           greedy: bool = False, scores: bool = True) -> SampleOut:
    """Sample G designs (designs=None) or re-score the given ones. See the module docstring.
    `scores=False`: the mixtures' log-probabilities and entropies are not computed (zeros in the
    `SampleOut`; the designs and the encoding are the same): for callers that read only those.

    Shapes: batch with G graphs -> SampleOut(log_prob [G], role_log_prob [G, N], edge_log_prob [G],
    entropy [G], role_mask [G, N]).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    g, ptr = num_graphs(batch), role_ptr(batch)
    role_names, llm_names = names_per_graph(batch, "role_names"), names_per_graph(batch, "llm_names")
    decisions = [decision] * g if isinstance(decision, str) else list(decision)
    inputs = [getattr(policy.cfg, "decision_inputs", "sinks")] * g
    if designs is not None:
        _check_designs(designs, role_names, g)
        inputs = [d.decision_inputs for d in designs]
        dags = [tuple(d.edges) for d in designs]
        mixtures = [tuple(d.mixtures) for d in designs]
    if dags is None and mode == "mixture":
        dags = _stored_dags(batch, ptr)
    if dags is not None:
        if len(dags) != g:
            raise ValueError(f"got {len(dags)} DAGs for a batch of {g} graphs")
        dags = [tuple(sorted((int(s), int(d)) for s, d in edges)) for edges in dags]
    if mode == "mixture":
        if dags is None:
            raise ValueError("mode='mixture' needs dags=, designs= or a batch built with DAG edges")
        edge_lp = dag_ent = batch["query"].x.new_zeros(g)
        orders = None
    else:
        dags, edge_lp, dag_ent, orders = _dag_part(policy, batch, ptr, dags, temperature, generator, greedy)
    enc: Encoded = policy.encode(batch, dag_edge_index(batch, dags))
    prop, syn, skip = (t / temperature for t in policy.mixture_head(enc))  # [N, M], [N, M (+1)], [N]
    cfg = policy.cfg
    slots = getattr(cfg, "proposer_slots", 0)
    stop = policy.mixture_head.stop_logit(enc) if slots > 0 else None
    stop = stop / temperature if stop is not None else None  # [N]
    if mixtures is not None:
        index = {name: j for j, name in enumerate(llm_names[0])} if g else {}
        choice = _choice_from_mixtures([mx for per in mixtures for mx in per], index,
                                       plurality=syn.size(-1) > prop.size(-1))
        choice = MixtureChoice(*(t.to(prop.device) for t in (choice.skip, choice.proposers, choice.synth)))
    else:
        choice = sample_mixtures(prop, syn, skip, cfg.k_proposers, cfg.allow_skip, generator,
                                  greedy or mode == "dag", stop=stop, slots=slots)
    if mode == "dag" or not scores:
        role_lp = role_ent = prop.new_zeros(prop.size(0))
    else:
        role_lp = mixture_log_prob(prop, syn, skip, choice, cfg.allow_skip, stop=stop, slots=slots,
                                   k=cfg.k_proposers)  # [N]
        role_ent = mixture_entropy(prop, syn, skip, cfg.k_proposers, cfg.allow_skip, stop=stop, slots=slots)  # [N]
    role_lp_d, mask = _to_dense(role_lp, ptr)  # [G, n_max]
    role_ent_d, _ = _to_dense(role_ent, ptr)
    return SampleOut(
        designs=_designs(role_names, llm_names, ptr, choice, dags, decisions, inputs),
        log_prob=role_lp_d.sum(-1) + edge_lp, role_log_prob=role_lp_d, edge_log_prob=edge_lp,
        entropy=role_ent_d.sum(-1) + dag_ent, role_mask=mask, orders=orders, encoded=enc,
    )
