"""`policy/distributions.py` against brute-force references written from the module docstring.

Each reference enumerates the distribution the docstring defines, in plain Python floats (no code
shared with the module): the exact marginal log-prob of a DAG as a sum over every node order, the
log-prob of a mixture (Plackett-Luce proposers, or the learned-count slot sequence with its stop
steps; the synthesizer when more than one model proposes; the skip Bernoulli) and the surrogate
entropies. Random logits, several shapes; float64, so any change of a formula shows.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hieramas_gnn.policy.distributions import MixtureChoice, dag_log_prob, mixture_entropy, mixture_log_prob

NEG_INF = float("-inf")


def logsumexp(xs) -> float:
    xs = [x for x in xs if x != NEG_INF]
    if not xs:
        return NEG_INF
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def entropy(logps) -> float:
    return -sum(math.exp(lp) * lp for lp in logps if lp != NEG_INF)


def softmax_log(logits, allowed) -> dict[int, float]:
    z = logsumexp([logits[j] for j in allowed])
    return {j: logits[j] - z for j in allowed}


# ------------------------------------------------------------------------------- DAGs


def dag_reference(order: list[float], edge: list[list[float]], adj: list[list[int]]) -> float:
    n = len(order)
    terms = []
    for perm in itertools.permutations(range(n)):
        pos = {v: i for i, v in enumerate(perm)}
        if any(adj[u][v] and pos[v] < pos[u] for u in range(n) for v in range(n) if u != v):
            continue  # an edge of the graph points backward in this order
        lp = sum(order[perm[i]] - logsumexp([order[v] for v in perm[i:]]) for i in range(n))
        for i in range(n):
            for j in range(i + 1, n):
                u, v = perm[i], perm[j]
                lp += log_sigmoid(edge[u][v]) if adj[u][v] else log_sigmoid(-edge[u][v])
        terms.append(lp)
    return logsumexp(terms)


def random_dag(rng: np.random.Generator, n: int) -> np.ndarray:
    perm = rng.permutation(n)
    adj = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(i + 1, n):
            adj[perm[i], perm[j]] = int(rng.random() < 0.5)
    return adj


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_dag_log_prob_is_the_sum_over_every_node_order(n):
    rng = np.random.default_rng(n)
    graphs = [random_dag(rng, n) for _ in range(4)]
    order = rng.normal(0, 1.5, (4, n))
    edge = rng.normal(0, 1.5, (4, n, n))
    got = dag_log_prob(torch.tensor(order), torch.tensor(edge), torch.tensor(np.stack(graphs), dtype=torch.float64))
    want = [dag_reference(order[b].tolist(), edge[b].tolist(), graphs[b].tolist()) for b in range(4)]
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert math.exp(logsumexp(want)) <= 4.0  # each is a probability


def test_dag_log_prob_sums_to_one_over_every_dag_and_a_cycle_has_none():
    n = 3
    rng = np.random.default_rng(7)
    order, edge = torch.tensor(rng.normal(0, 1, (1, n))), torch.tensor(rng.normal(0, 1, (1, n, n)))
    pairs = [(u, v) for u in range(n) for v in range(n) if u != v]
    total = []
    for bits in itertools.product([0, 1], repeat=len(pairs)):
        adj = torch.zeros(1, n, n, dtype=torch.float64)
        for (u, v), b in zip(pairs, bits):
            adj[0, u, v] = b
        total.append(float(dag_log_prob(order, edge, adj)[0]))
    assert math.exp(logsumexp(total)) == pytest.approx(1.0, abs=1e-9)  # cyclic graphs: -inf
    cycle = torch.tensor([[[0, 1, 0], [0, 0, 1], [1, 0, 0]]], dtype=torch.float64)
    assert float(dag_log_prob(order, edge, cycle)[0]) == NEG_INF


# --------------------------------------------------------------------------- mixtures


def mixture_reference(prop, synth, skip, proposers, syn, skipped, allow_skip, k=None, stop=None, slots=0) -> float:
    m = len(prop)
    chosen: list[int] = []
    lp = 0.0
    if slots > 0 and stop is not None:
        s = min(slots, m)
        if len(proposers) > s:
            return NEG_INF
        for t in range(s):
            stop_t = stop[min(t, len(stop) - 1)] if isinstance(stop, list) else stop
            models = softmax_log(prop, [j for j in range(m) if j not in chosen])
            if t < len(proposers):
                lp += models[proposers[t]] + (log_sigmoid(-stop_t) if t > 0 else 0.0)
                chosen.append(proposers[t])
            else:
                lp += log_sigmoid(stop_t)  # the stop after the last proposer
                break
    else:
        if k is not None and len(proposers) != min(k, m):
            lp = NEG_INF
        for a in proposers:
            lp += softmax_log(prop, [j for j in range(m) if j not in chosen])[a]
            chosen.append(a)
    if len(proposers) > 1:
        lp += softmax_log(synth, range(len(synth)))[syn]
    if not allow_skip:
        return NEG_INF if skipped else lp
    return log_sigmoid(skip) if skipped else log_sigmoid(-skip) + lp


def _choices(rng, m, lengths):
    out = []
    for length in lengths:
        out.append(([int(a) for a in rng.permutation(m)[:length]], int(rng.integers(m + 1)), bool(rng.random() < 0.3)))
    return out


def _log_prob(prop, synth, skip, choices, allow_skip, **kw):
    width = max(1, max(len(p) for p, _, _ in choices))
    proposers = torch.tensor([p + [-1] * (width - len(p)) for p, _, _ in choices])
    choice = MixtureChoice(torch.tensor([s for _, _, s in choices]), proposers, torch.tensor([c for _, c, _ in choices]))
    return mixture_log_prob(torch.tensor(prop), torch.tensor(synth), torch.tensor(skip), choice, allow_skip, **kw).tolist()


@pytest.mark.parametrize("allow_skip", [True, False])
@pytest.mark.parametrize("k", [None, 1, 2, 3])
def test_mixture_log_prob_of_k_proposers_matches_the_plackett_luce_reference(k, allow_skip):
    rng = np.random.default_rng(10 + (k or 0))
    m, lengths = 5, [1, 2, 3, 2, 3, 1]
    n = len(lengths)
    prop, synth, skip = rng.normal(0, 1.5, (n, m)), rng.normal(0, 1.5, (n, m + 1)), rng.normal(0, 1.5, n)
    choices = _choices(rng, m, lengths)
    stop = torch.tensor(rng.normal(0, 1, n))  # slots = 0: the stop logit is not read
    got = _log_prob(prop, synth, skip, choices, allow_skip, k=k, stop=stop)
    want = [mixture_reference(prop[i].tolist(), synth[i].tolist(), float(skip[i]), *choices[i], allow_skip, k=k)
            for i in range(n)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("per_slot", [False, True])
@pytest.mark.parametrize("slots", [2, 3, 7])
def test_mixture_log_prob_of_learned_slots_matches_the_stop_sequence_reference(slots, per_slot):
    rng = np.random.default_rng(slots + 100 * per_slot)
    m, lengths = 5, [1, 2, 3, 3, 1, 2, 5]
    lengths = [min(length, min(slots, m)) for length in lengths]
    n = len(lengths)
    prop, synth, skip = rng.normal(0, 1.5, (n, m)), rng.normal(0, 1.5, (n, m)), rng.normal(0, 1.5, n)
    stop = rng.normal(0, 1.5, (n, 3)) if per_slot else rng.normal(0, 1.5, n)
    choices = [(p, min(c, m - 1), s) for p, c, s in _choices(rng, m, lengths)]
    got = _log_prob(prop, synth, skip, choices, True, stop=torch.tensor(stop), slots=slots)
    want = [mixture_reference(prop[i].tolist(), synth[i].tolist(), float(skip[i]), *choices[i], True,
                              stop=stop[i].tolist() if per_slot else float(stop[i]), slots=slots)
            for i in range(n)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_learned_slot_probabilities_sum_to_one_over_every_sequence():
    m, slots = 4, 3
    rng = np.random.default_rng(3)
    prop, synth, skip, stop = rng.normal(0, 1, (1, m)), rng.normal(0, 1, (1, m)), rng.normal(0, 1, 1), rng.normal(0, 1, 1)
    sequences = [list(p) for length in range(1, slots + 1) for p in itertools.permutations(range(m), length)]
    total = []
    for seq in sequences:
        for syn in (range(m) if len(seq) > 1 else [0]):
            total += _log_prob(prop, synth, skip, [(seq, syn, False)], False, stop=torch.tensor(stop), slots=slots)
    assert math.exp(logsumexp(total)) == pytest.approx(1.0, abs=1e-9)


def entropy_reference(prop, synth, skip, k, allow_skip, stop=None, slots=0) -> float:
    m = len(prop)
    greedy = sorted(range(m), key=lambda j: -prop[j])
    h = 0.0
    if slots > 0 and stop is not None:
        live = True
        for t in range(min(slots, m)):
            stop_t = stop[min(t, len(stop) - 1)] if isinstance(stop, list) else stop
            models = softmax_log(prop, [j for j in range(m) if j not in greedy[:t]])
            step = ([models[j] for j in models] if t == 0 else
                    [models[j] + log_sigmoid(-stop_t) for j in models] + [log_sigmoid(stop_t)])
            if live:
                h += entropy(step)
            if t > 0 and log_sigmoid(stop_t) > max(step[:-1]):
                live = False  # the greedy sequence stops here
        h += entropy(softmax_log(synth, range(len(synth))).values())
    else:
        for t in range(min(k, m)):
            h += entropy(softmax_log(prop, [j for j in range(m) if j not in greedy[:t]]).values())
        if min(k, m) > 1:
            h += entropy(softmax_log(synth, range(len(synth))).values())
    if not allow_skip:
        return h
    p = 1.0 / (1.0 + math.exp(-skip))
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) + (1 - p) * h


@pytest.mark.parametrize("allow_skip", [True, False])
@pytest.mark.parametrize("k", [1, 2, 3, 9])
def test_mixture_entropy_of_k_proposers_matches_the_reference(k, allow_skip):
    rng = np.random.default_rng(20 + k)
    n, m = 6, 5
    prop, synth, skip = rng.normal(0, 1.5, (n, m)), rng.normal(0, 1.5, (n, m + 1)), rng.normal(0, 1.5, n)
    got = mixture_entropy(torch.tensor(prop), torch.tensor(synth), torch.tensor(skip), k, allow_skip,
                          stop=torch.tensor(rng.normal(0, 1, n))).tolist()  # slots = 0: stop not read
    want = [entropy_reference(prop[i].tolist(), synth[i].tolist(), float(skip[i]), k, allow_skip) for i in range(n)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("per_slot", [False, True])
@pytest.mark.parametrize("slots", [1, 3, 7])
def test_mixture_entropy_of_learned_slots_matches_the_reference(slots, per_slot):
    rng = np.random.default_rng(30 + slots + 100 * per_slot)
    n, m = 8, 5
    prop, synth, skip = rng.normal(0, 1.5, (n, m)), rng.normal(0, 1.5, (n, m)), rng.normal(0, 1.5, n)
    stop = rng.normal(0, 2.0, (n, 3)) if per_slot else rng.normal(0, 2.0, n)
    got = mixture_entropy(torch.tensor(prop), torch.tensor(synth), torch.tensor(skip), 2, True,
                          stop=torch.tensor(stop), slots=slots).tolist()
    want = [entropy_reference(prop[i].tolist(), synth[i].tolist(), float(skip[i]), 2, True,
                              stop=stop[i].tolist() if per_slot else float(stop[i]), slots=slots) for i in range(n)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
