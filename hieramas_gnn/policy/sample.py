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
- if not skipped: k = min(cfg.k_proposers, M) proposers *without replacement* by Gumbel-top-k,
  i.e. a Plackett-Luce draw. The log-prob is that of the **ordered** sequence
  Σ_t [l_{a_t} − logsumexp(l over models not yet chosen)]; a Design keeps the order in
  `Mixture.proposers`, and re-scoring uses that order. Then a synthesizer ~ Categorical(synth/T)
  (any model, may repeat a proposer); with k = 1 there is no synthesis step, the synthesizer is
  set to the proposer and contributes no log-prob.
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
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.policy.gnn import Encoded, HieraPolicy
from hieramas_gnn.policy.graph import dag_edge_index, names_per_graph, num_graphs, role_ptr

MAX_EXACT_ROLES = 14
MODES = ("joint", "mixture", "dag")
Edges = tuple[tuple[int, int], ...]


@dataclass
class SampleOut:
    """designs [G]; log_prob, edge_log_prob, entropy [G]; role_log_prob, role_mask [G, N];
    orders: the sampled node order per graph (None when the DAG was given / re-scored)."""

    designs: list[Design]
    log_prob: Tensor
    role_log_prob: Tensor
    edge_log_prob: Tensor
    entropy: Tensor
    role_mask: Tensor
    orders: list[tuple[int, ...]] | None = None


def _gumbel(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def _bern_entropy(logit: Tensor) -> Tensor:
    p = torch.sigmoid(logit)
    return -(p * F.logsigmoid(logit) + (1 - p) * F.logsigmoid(-logit))


def _cat_entropy(logits: Tensor) -> Tensor:
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * torch.where(torch.isinf(logp), 0.0, logp)).sum(-1)


# ---------------------------------------------------------------- mixtures ([N] roles at once)


@dataclass
class MixtureChoice:
    """skip [N] bool; proposers [N, K] long (−1 = padding); synth [N] long."""

    skip: Tensor
    proposers: Tensor
    synth: Tensor


def _sample_mixtures(prop: Tensor, synth: Tensor, skip: Tensor, k: int, allow_skip: bool,
                     gen: torch.Generator | None, greedy: bool) -> MixtureChoice:
    n, m = prop.shape
    k = min(k, m)
    noise = (lambda s: torch.zeros(s)) if greedy else (lambda s: _gumbel(s, gen))
    top = torch.topk(prop.detach() + noise((n, m)).to(prop.device), k, dim=-1).indices  # [N, k]
    syn = torch.argmax(synth.detach() + noise((n, m)).to(prop.device), dim=-1)  # [N]
    syn = syn if k > 1 else top[:, 0]
    if not allow_skip:
        skipped = torch.zeros(n, dtype=torch.bool, device=prop.device)
    elif greedy:
        skipped = skip.detach() > 0
    else:
        skipped = torch.rand(n, generator=gen).to(skip.device) < torch.sigmoid(skip.detach())
    return MixtureChoice(skipped, top, syn)


def _mixture_log_prob(prop: Tensor, synth: Tensor, skip: Tensor, choice: MixtureChoice,
                      allow_skip: bool) -> Tensor:
    """Log-prob of each role's choice. Shapes: logits [N, M], [N, M], [N] -> [N]."""
    n, m = prop.shape
    lp_prop = prop.new_zeros(n)
    chosen = torch.zeros(n, m, dtype=torch.bool, device=prop.device)
    for t in range(choice.proposers.size(1)):
        a = choice.proposers[:, t]  # [N]
        valid = a >= 0
        logp = torch.log_softmax(prop.masked_fill(chosen, float("-inf")), dim=-1)  # [N, M]
        step = logp.gather(1, a.clamp(min=0)[:, None]).squeeze(1)
        lp_prop = lp_prop + torch.where(valid, step, 0.0)
        chosen = chosen | (F.one_hot(a.clamp(min=0), m).bool() & valid[:, None])
    k_i = (choice.proposers >= 0).sum(-1)  # [N]
    lp_syn = torch.log_softmax(synth, dim=-1).gather(1, choice.synth[:, None]).squeeze(1)
    lp_mix = lp_prop + torch.where(k_i > 1, lp_syn, 0.0)
    if not allow_skip:
        return torch.where(choice.skip, float("-inf"), lp_mix)
    return torch.where(choice.skip, F.logsigmoid(skip), F.logsigmoid(-skip) + lp_mix)


def _mixture_entropy(prop: Tensor, synth: Tensor, skip: Tensor, k: int, allow_skip: bool) -> Tensor:
    """Surrogate entropy per role (module docstring). Shapes: -> [N]."""
    n, m = prop.shape
    order = torch.argsort(prop.detach(), dim=-1, descending=True)  # [N, M]
    chosen = torch.zeros(n, m, dtype=torch.bool, device=prop.device)
    h = prop.new_zeros(n)
    for t in range(min(k, m)):
        h = h + _cat_entropy(prop.masked_fill(chosen, float("-inf")))
        chosen = chosen | F.one_hot(order[:, t], m).bool()
    if min(k, m) > 1:
        h = h + _cat_entropy(synth)
    if not allow_skip:
        return h
    return _bern_entropy(skip) + torch.sigmoid(-skip) * h


def _choice_from_mixtures(mixtures: Sequence[Mixture | None], llm_index: dict[str, int]) -> MixtureChoice:
    k = max([len(mx.proposers) for mx in mixtures if mx is not None], default=1)
    prop = torch.full((len(mixtures), k), -1, dtype=torch.long)
    synth = torch.zeros(len(mixtures), dtype=torch.long)
    skip = torch.tensor([mx is None for mx in mixtures], dtype=torch.bool)
    for i, mx in enumerate(mixtures):
        if mx is None:
            continue
        names = list(mx.proposers) + [mx.synthesizer]
        unknown = [x for x in names if x not in llm_index]
        if unknown:
            raise ValueError(f"design uses models {unknown} that are not in the policy's pool {sorted(llm_index)}")
        if not mx.proposers or len(set(mx.proposers)) != len(mx.proposers):
            raise ValueError(f"mixture proposers must be non-empty and distinct, got {mx.proposers}")
        prop[i, : len(mx.proposers)] = torch.tensor([llm_index[x] for x in mx.proposers])
        synth[i] = llm_index[mx.synthesizer]
    return MixtureChoice(skip, prop, synth)


# ---------------------------------------------------------------- DAGs (graphs grouped by n)


def _subset_layers(n: int, device: torch.device) -> list[Tensor]:
    """Bit masks of the subsets of n nodes, grouped by size. Shapes: layer k -> [C(n, k)]."""
    masks = torch.arange(1 << n, device=device)
    bits = (masks[:, None] >> torch.arange(n, device=device)) & 1  # [2^n, n]
    size = bits.sum(-1)
    return [masks[size == k] for k in range(n + 1)]


def dag_log_prob(order: Tensor, edge: Tensor, adj: Tensor) -> Tensor:
    """Exact marginal log P(adj) = logsumexp over all node orders π of
    [log PL(π; order) + Σ_{i before j in π} log Bernoulli(adj_ij; σ(edge_ij))], orders with an
    adj edge pointing backward excluded.

    Computed by dynamic programming over prefix sets instead of the n! orders: F(T) sums over
    the orders of a prefix set T; the node v placed last in T pays s_v − logsumexp(s over the
    nodes not in T∖{v}), the edge terms of the pairs (u, v), u ∈ T∖{v}, and is excluded when it
    has an edge v→u back into the prefix. O(2^n · n²) per graph; n ≤ MAX_EXACT_ROLES.

    Shapes: order [B, n], edge [B, n, n] logits, adj [B, n, n] 0/1 -> [B]."""
    b, n = order.shape
    if n > MAX_EXACT_ROLES:
        raise ValueError(f"exact DAG log-prob supports at most {MAX_EXACT_ROLES} roles, got {n}")
    if n == 0:
        return order.new_zeros(b)
    off_diag = 1.0 - torch.eye(n, device=order.device, dtype=edge.dtype)
    term = (adj * F.logsigmoid(edge) + (1 - adj) * F.logsigmoid(-edge)) * off_diag  # [B, n, n]
    adj = adj * off_diag
    layers = _subset_layers(n, order.device)
    position = torch.zeros(1 << n, dtype=torch.long, device=order.device)
    for masks in layers:
        position[masks] = torch.arange(masks.numel(), device=order.device)
    node_bit = 1 << torch.arange(n, device=order.device)  # [n]
    prev = order.new_zeros(b, 1)  # F(empty set) = log 1
    for masks in layers[1:]:
        in_t = ((masks[:, None] & node_bit) > 0).to(edge.dtype)  # [K, n] membership of T
        # a finite fill keeps gradients finite when T is the full set (no node outside it)
        out_norm = torch.logsumexp(order[:, None, :].masked_fill(in_t.bool()[None], -1e9), -1)  # [B, K]
        step = order[:, None, :] - torch.logaddexp(out_norm[:, :, None], order[:, None, :])  # [B, K, n]
        edges_in = torch.einsum("ku,buv->bkv", in_t, term)  # [B, K, n] pairs (u, v), u in T
        back = torch.einsum("bvu,ku->bkv", adj, in_t) > 0  # [B, K, n] v has an edge into T
        source = position[torch.where(in_t.bool(), masks[:, None] - node_bit, 0)]  # [K, n] T∖{v}
        f_prev = prev[:, source]  # [B, K, n]
        contrib = (f_prev + step + edges_in).masked_fill(back | ~in_t.bool()[None], float("-inf"))
        prev = torch.logsumexp(contrib, dim=-1)  # [B, K]
    return prev[:, 0]


def dag_entropy(order: Tensor, edge: Tensor) -> Tensor:
    """Surrogate DAG entropy (module docstring). Shapes: [B, n], [B, n, n] -> [B]."""
    b, n = order.shape
    greedy = torch.argsort(order.detach(), dim=-1, descending=True)  # [B, n]
    chosen = torch.zeros(b, n, dtype=torch.bool, device=order.device)
    h = order.new_zeros(b)
    for t in range(max(n - 1, 0)):  # the last step is deterministic
        h = h + _cat_entropy(order.masked_fill(chosen, float("-inf")))
        chosen = chosen | F.one_hot(greedy[:, t], n).bool()
    off_diag = 1.0 - torch.eye(n, device=order.device)
    return h + 0.5 * (_bern_entropy(edge) * off_diag).sum((-1, -2))


def _sample_dags(order: Tensor, edge: Tensor, gen: torch.Generator | None,
                 greedy: bool) -> tuple[Tensor, Tensor]:
    """Shapes: order [B, n], edge [B, n, n] -> perm [B, n], adj [B, n, n] (acyclic)."""
    b, n = order.shape
    noise = torch.zeros(b, n) if greedy else _gumbel((b, n), gen)
    perm = torch.argsort(order.detach() + noise.to(order.device), dim=-1, descending=True)  # [B, n]
    pos = torch.argsort(perm, dim=-1)  # [B, n]
    fwd = pos[:, :, None] < pos[:, None, :]  # [B, n, n]
    if greedy:
        on = edge.detach() > 0
    else:
        on = torch.rand(b, n, n, generator=gen).to(edge.device) < torch.sigmoid(edge.detach())
    return perm, (on & fwd).to(edge.dtype)


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
            perm, adj = _sample_dags(o, e, gen, greedy)
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


def _designs(role_names, llm_names, ptr, choice: MixtureChoice, dags, decisions) -> list[Design]:
    out, bounds = [], ptr.tolist()
    skip, proposers, synth = choice.skip.tolist(), choice.proposers.tolist(), choice.synth.tolist()
    for g, roles in enumerate(role_names):
        mixtures = []
        for i in range(bounds[g], bounds[g + 1]):
            if skip[i]:
                mixtures.append(None)
                continue
            props = tuple(llm_names[g][a] for a in proposers[i] if a >= 0)
            mixtures.append(Mixture(props, llm_names[g][synth[i]]))
        out.append(Design(tuple(roles), tuple(mixtures), tuple(dags[g]), decisions[g]))
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
           greedy: bool = False) -> SampleOut:
    """Sample G designs (designs=None) or re-score the given ones. See the module docstring.

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
    if designs is not None:
        _check_designs(designs, role_names, g)
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
    prop, syn, skip = (t / temperature for t in policy.mixture_head(enc))  # [N, M], [N, M], [N]
    cfg = policy.cfg
    if mixtures is not None:
        index = {name: j for j, name in enumerate(llm_names[0])} if g else {}
        choice = _choice_from_mixtures([mx for per in mixtures for mx in per], index)
        choice = MixtureChoice(*(t.to(prop.device) for t in (choice.skip, choice.proposers, choice.synth)))
    else:
        choice = _sample_mixtures(prop, syn, skip, cfg.k_proposers, cfg.allow_skip, generator,
                                  greedy or mode == "dag")
    if mode == "dag":
        role_lp = role_ent = prop.new_zeros(prop.size(0))
    else:
        role_lp = _mixture_log_prob(prop, syn, skip, choice, cfg.allow_skip)  # [N]
        role_ent = _mixture_entropy(prop, syn, skip, cfg.k_proposers, cfg.allow_skip)  # [N]
    role_lp_d, mask = _to_dense(role_lp, ptr)  # [G, n_max]
    role_ent_d, _ = _to_dense(role_ent, ptr)
    return SampleOut(
        designs=_designs(role_names, llm_names, ptr, choice, dags, decisions),
        log_prob=role_lp_d.sum(-1) + edge_lp, role_log_prob=role_lp_d, edge_log_prob=edge_lp,
        entropy=role_ent_d.sum(-1) + dag_ent, role_mask=mask, orders=orders,
    )
