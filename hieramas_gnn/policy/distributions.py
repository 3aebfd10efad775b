"""The two distributions the policy samples from, as pure tensor functions (no modules, no I/O).

Mixtures (all N roles of a batch at once; logits [N, M], [N, M], [N]): `sample_mixtures`,
`mixture_log_prob` (skip Bernoulli, ordered Plackett-Luce proposers by Gumbel-top-k, a
categorical synthesizer), `mixture_entropy` (deterministic surrogate).
With `slots` > 0 and a stop logit [N] (or one per slot, [N, S]) the number of proposers is learned too (HieraMAS's worker
slots, each "a pool model or skip"): slot 1 picks a model; each later slot picks a model not yet
chosen *or stop*, and stop leaves the remaining slots empty (so a mixture of k proposers is one
sequence: k models then stop, or k = slots models). Step t > 0 of a role first draws stop
(Bernoulli, p = sigmoid(stop logit)) and, if it does not stop, one of its unchosen models
(categorical); step 0 always draws a model. Log-prob = Σ steps, exact.
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
    """skip [N] bool; proposers [N, K] long (−1 = padding); synth [N] long (M = the plurality
    synthesizer when the synthesizer logits have M + 1 columns)."""

    skip: Tensor
    proposers: Tensor
    synth: Tensor


def _slot_logits(prop: Tensor, stop: Tensor, chosen: Tensor, t: int) -> Tensor:
    """Step t of the slot distribution as normalised log-probs [unchosen models ‖ stop]: stop is a
    Bernoulli of its own (p = sigmoid(stop)), and only when it does not fire a categorical over the
    unchosen models. Shapes: [N, M], [N] -> [N, M + 1].

    (A single categorical over [M models ‖ stop] gave stop 1/(M+1) of the mass at the start, so
    with a large pool nearly every sampled mixture used every slot, and the stop logit competed
    with M model logits for its gradient: the learned proposer count converged slowly.)"""
    if stop.dim() == 2:  # a stop logit per slot [N, S]: step t reads its own
        stop = stop[:, min(t, stop.size(1) - 1)]
    models = torch.log_softmax(prop.masked_fill(chosen, float("-inf")), dim=-1)  # [N, M]
    if t == 0:
        return torch.cat([models, torch.full_like(stop[:, None], float("-inf"))], dim=-1)
    return torch.cat([models + F.logsigmoid(-stop)[:, None], F.logsigmoid(stop)[:, None]], dim=-1)


def _sample_slots(prop: Tensor, stop: Tensor, slots: int, noise) -> Tensor:
    """Proposers of the slot distribution. Shapes: [N, M], [N] -> [N, slots] (−1 = empty slot)."""
    n, m = prop.shape
    out = torch.full((n, slots), -1, dtype=torch.long, device=prop.device)
    chosen = torch.zeros(n, m, dtype=torch.bool, device=prop.device)
    live = torch.ones(n, dtype=torch.bool, device=prop.device)
    for t in range(slots):
        logits = _slot_logits(prop.detach(), stop.detach(), chosen, t)  # [N, M + 1]
        a = torch.argmax(logits + noise((n, m + 1)).to(prop.device), dim=-1)  # [N]
        live = live & (a < m)
        out[:, t] = torch.where(live, a, -1)
        chosen = chosen | (F.one_hot(a.clamp(max=m - 1), m).bool() & live[:, None])
    return out


def sample_mixtures(prop: Tensor, synth: Tensor, skip: Tensor, k: int, allow_skip: bool,
                     gen: torch.Generator | None, greedy: bool, stop: Tensor | None = None,
                     slots: int = 0) -> MixtureChoice:
    """Sample (or, greedy, take the mode of) each role's mixture; `slots` > 0 with `stop` [N]:
    the learned number of proposers (module docstring), else exactly k."""
    n, m = prop.shape
    noise = (lambda s: torch.zeros(s)) if greedy else (lambda s: gumbel(s, gen))
    if slots > 0 and stop is not None:
        top = _sample_slots(prop, stop, min(slots, m), noise)  # [N, slots]
        k_i = (top >= 0).sum(-1)  # [N]
    else:
        k = min(k, m)
        top = torch.topk(prop.detach() + noise((n, m)).to(prop.device), k, dim=-1).indices  # [N, k]
        k_i = torch.full((n,), k, device=prop.device)
    syn = torch.argmax(synth.detach() + noise(tuple(synth.shape)).to(prop.device), dim=-1)  # [N]
    syn = torch.where(k_i > 1, syn, top[:, 0])
    if not allow_skip:
        skipped = torch.zeros(n, dtype=torch.bool, device=prop.device)
    elif greedy:
        skipped = skip.detach() > 0
    else:
        skipped = torch.rand(n, generator=gen).to(skip.device) < torch.sigmoid(skip.detach())
    return MixtureChoice(skipped, top, syn)


def _slots_log_prob(prop: Tensor, stop: Tensor, proposers: Tensor, slots: int) -> Tensor:
    """Exact log-prob of proposer sequences under the slot distribution. Shapes: -> [N]."""
    n, m = prop.shape
    slots = min(slots, m)
    k_i = (proposers >= 0).sum(-1)  # [N]
    lp = prop.new_zeros(n)
    chosen = torch.zeros(n, m, dtype=torch.bool, device=prop.device)
    for t in range(min(proposers.size(1), slots)):
        a = proposers[:, t]  # [N]
        valid = a >= 0
        logp = torch.log_softmax(_slot_logits(prop, stop, chosen, t), dim=-1)  # [N, M + 1]
        pick = logp.gather(1, a.clamp(min=0)[:, None]).squeeze(1)
        ends = (t == k_i) & (t > 0)  # the stop after the last proposer
        lp = lp + torch.where(valid, pick, torch.where(ends, logp[:, m], 0.0))
        chosen = chosen | (F.one_hot(a.clamp(min=0), m).bool() & valid[:, None])
    if proposers.size(1) < slots:  # sequences shorter than every slot: stop after the last one
        last = torch.zeros_like(lp)
        for t in range(proposers.size(1), slots):
            logp = torch.log_softmax(_slot_logits(prop, stop, chosen, t), dim=-1)
            last = torch.where(k_i == t, logp[:, m], last)
        lp = lp + last
    return torch.where(k_i > slots, float("-inf"), lp)


def mixture_log_prob(prop: Tensor, synth: Tensor, skip: Tensor, choice: MixtureChoice,
                      allow_skip: bool, stop: Tensor | None = None, slots: int = 0,
                      k: int | None = None) -> Tensor:
    """Log-prob of each role's choice. Shapes: logits [N, M], [N, M or M + 1], [N] (stop [N]) -> [N].
    Without slots, a mixture of other than min(k, M) proposers has log-prob −inf when `k` is given
    (the sampler never draws one)."""
    n, m = prop.shape
    if slots > 0 and stop is not None:
        lp_prop = _slots_log_prob(prop, stop, choice.proposers, slots)
    else:
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
    if not (slots > 0 and stop is not None) and k is not None:
        lp_mix = torch.where(k_i == min(k, m), lp_mix, float("-inf"))
    if not allow_skip:
        return torch.where(choice.skip, float("-inf"), lp_mix)
    return torch.where(choice.skip, F.logsigmoid(skip), F.logsigmoid(-skip) + lp_mix)


def mixture_entropy(prop: Tensor, synth: Tensor, skip: Tensor, k: int, allow_skip: bool,
                    stop: Tensor | None = None, slots: int = 0) -> Tensor:
    """Surrogate entropy per role (module docstring); with slots, the steps' entropies along the
    greedy sequence up to its stop. Shapes: -> [N]."""
    n, m = prop.shape
    order = torch.argsort(prop.detach(), dim=-1, descending=True)  # [N, M]
    chosen = torch.zeros(n, m, dtype=torch.bool, device=prop.device)
    h = prop.new_zeros(n)
    if slots > 0 and stop is not None:
        live = torch.ones(n, dtype=torch.bool, device=prop.device)
        for t in range(min(slots, m)):
            logits = _slot_logits(prop, stop, chosen, t)  # [N, M + 1]
            h = h + torch.where(live, cat_entropy(logits), 0.0)
            live = live & (torch.argmax(logits.detach(), dim=-1) < m)
            chosen = chosen | F.one_hot(order[:, t], m).bool()
        return _with_skip(h + cat_entropy(synth), skip, allow_skip)
    for t in range(min(k, m)):
        h = h + cat_entropy(prop.masked_fill(chosen, float("-inf")))
        chosen = chosen | F.one_hot(order[:, t], m).bool()
    if min(k, m) > 1:
        h = h + cat_entropy(synth)
    return _with_skip(h, skip, allow_skip)


def _with_skip(h: Tensor, skip: Tensor, allow_skip: bool) -> Tensor:
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
