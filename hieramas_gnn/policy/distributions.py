"""The two distributions the policy samples from, as pure tensor functions (no modules, no I/O).

Mixtures (all N roles of a batch at once; logits [N, M], [N, M], [N]): `sample_mixtures`,
`mixture_log_prob` (skip Bernoulli, ordered Plackett-Luce proposers by Gumbel-top-k, a
categorical synthesizer), `mixture_entropy` (deterministic surrogate).
DAGs (B graphs with n roles; order logits [B, n], edge logits [B, n, n]): `sample_dags`
(Plackett-Luce order by Gumbel sort, then Bernoulli edges on forward pairs only — acyclic by
construction), `dag_log_prob` (exact marginal over orders by DP over prefix sets),
`dag_entropy` (deterministic surrogate). `sample.py` wires them to the policy and to Designs;
docs/POLICY.md gives the maths. All randomness comes from the `torch.Generator` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_EXACT_ROLES = 14


def gumbel(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def bern_entropy(logit: Tensor) -> Tensor:
    p = torch.sigmoid(logit)
    return -(p * F.logsigmoid(logit) + (1 - p) * F.logsigmoid(-logit))


def cat_entropy(logits: Tensor) -> Tensor:
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * torch.where(torch.isinf(logp), 0.0, logp)).sum(-1)


# ---------------------------------------------------------------- mixtures ([N] roles at once)


@dataclass
class MixtureChoice:
    """skip [N] bool; proposers [N, K] long (−1 = padding); synth [N] long."""

    skip: Tensor
    proposers: Tensor
    synth: Tensor


def sample_mixtures(prop: Tensor, synth: Tensor, skip: Tensor, k: int, allow_skip: bool,
                     gen: torch.Generator | None, greedy: bool) -> MixtureChoice:
    n, m = prop.shape
    k = min(k, m)
    noise = (lambda s: torch.zeros(s)) if greedy else (lambda s: gumbel(s, gen))
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


def mixture_log_prob(prop: Tensor, synth: Tensor, skip: Tensor, choice: MixtureChoice,
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


def mixture_entropy(prop: Tensor, synth: Tensor, skip: Tensor, k: int, allow_skip: bool) -> Tensor:
    """Surrogate entropy per role (module docstring). Shapes: -> [N]."""
    n, m = prop.shape
    order = torch.argsort(prop.detach(), dim=-1, descending=True)  # [N, M]
    chosen = torch.zeros(n, m, dtype=torch.bool, device=prop.device)
    h = prop.new_zeros(n)
    for t in range(min(k, m)):
        h = h + cat_entropy(prop.masked_fill(chosen, float("-inf")))
        chosen = chosen | F.one_hot(order[:, t], m).bool()
    if min(k, m) > 1:
        h = h + cat_entropy(synth)
    if not allow_skip:
        return h
    return bern_entropy(skip) + torch.sigmoid(-skip) * h


# ---------------------------------------------------------------- DAGs (graphs grouped by n)


def subset_layers(n: int, device: torch.device) -> list[Tensor]:
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
    layers = subset_layers(n, order.device)
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
        h = h + cat_entropy(order.masked_fill(chosen, float("-inf")))
        chosen = chosen | F.one_hot(greedy[:, t], n).bool()
    off_diag = 1.0 - torch.eye(n, device=order.device)
    return h + 0.5 * (bern_entropy(edge) * off_diag).sum((-1, -2))


def sample_dags(order: Tensor, edge: Tensor, gen: torch.Generator | None,
                 greedy: bool) -> tuple[Tensor, Tensor]:
    """Shapes: order [B, n], edge [B, n, n] -> perm [B, n], adj [B, n, n] (acyclic)."""
    b, n = order.shape
    noise = torch.zeros(b, n) if greedy else gumbel((b, n), gen)
    perm = torch.argsort(order.detach() + noise.to(order.device), dim=-1, descending=True)  # [B, n]
    pos = torch.argsort(perm, dim=-1)  # [B, n]
    fwd = pos[:, :, None] < pos[:, None, :]  # [B, n, n]
    if greedy:
        on = edge.detach() > 0
    else:
        on = torch.rand(b, n, n, generator=gen).to(edge.device) < torch.sigmoid(edge.detach())
    return perm, (on & fwd).to(edge.dtype)
