"""Sampling and re-scoring: acyclic DAGs, exact log-probs, determinism, modes, edge cases."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.policy.sample import dag_log_prob, sample
from hieramas_gnn.policy.testing import toy_builder, toy_policy, toy_queries


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def setup():
    builder = toy_builder(n_roles=4, n_models=4)
    return builder, toy_policy(builder).eval(), builder.batch(toy_queries(5))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_roles=st.integers(1, 6), n_models=st.integers(1, 4),
       temperature=st.sampled_from([0.3, 1.0, 5.0]))
def test_sampled_dags_are_acyclic(seed, n_roles, n_models, temperature):
    builder = toy_builder(n_roles=n_roles, n_models=n_models, dim=8)
    policy = toy_policy(builder, seed=seed, hidden=8, layers=1)
    out = sample(policy, builder.batch(toy_queries(3)), decision="model0", generator=gen(seed),
                 temperature=temperature)
    for d in out.designs:
        g = nx.DiGraph(list(d.edges))
        g.add_nodes_from(range(n_roles))
        assert nx.is_directed_acyclic_graph(g)
        assert all(mx is None or len(set(mx.proposers)) == mx.k == min(2, n_models) for mx in d.mixtures)


@pytest.mark.parametrize("mode", ["joint", "mixture", "dag"])
def test_rescoring_equals_sampling_log_prob(setup, mode):
    builder, policy, batch = setup
    kw = {"dags": [[(0, 1)], [], [(1, 3), (0, 3)], [(2, 1)], []]} if mode == "mixture" else {}
    out = sample(policy, batch, decision="model0", mode=mode, generator=gen(3), temperature=0.7, **kw)
    again = sample(policy, batch, decision="model0", mode=mode, designs=out.designs, temperature=0.7)
    assert torch.allclose(out.log_prob, again.log_prob, atol=1e-6)
    assert torch.allclose(out.role_log_prob, again.role_log_prob, atol=1e-6)
    assert torch.allclose(out.edge_log_prob, again.edge_log_prob, atol=1e-6)
    assert torch.allclose(out.entropy, again.entropy, atol=1e-6)
    assert again.designs == out.designs


def test_same_seed_gives_same_designs(setup):
    _, policy, batch = setup
    a = sample(policy, batch, decision="model0", generator=gen(7))
    b = sample(policy, batch, decision="model0", generator=gen(7))
    assert a.designs == b.designs and torch.equal(a.log_prob, b.log_prob)


def test_different_seeds_give_different_designs(setup):
    _, policy, batch = setup
    designs = {tuple(sample(policy, batch, decision="model0", generator=gen(s)).designs) for s in range(5)}
    assert len(designs) > 1


def test_sampling_leaves_the_global_rng_alone(setup):
    _, policy, batch = setup
    state = torch.get_rng_state()
    sample(policy, batch, decision="model0", generator=gen(1))
    assert torch.equal(state, torch.get_rng_state())


def _all_dags(n: int):
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    for bits in itertools.product([0, 1], repeat=len(pairs)):
        edges = [p for p, b in zip(pairs, bits) if b]
        if nx.is_directed_acyclic_graph(nx.DiGraph(edges)):
            yield edges


def test_dag_marginal_probabilities_sum_to_one():
    torch.manual_seed(0)
    order, edge = torch.randn(1, 3), torch.randn(1, 3, 3)
    dags = list(_all_dags(3))
    assert len(dags) == 25
    total = 0.0
    for edges in dags:
        adj = torch.zeros(1, 3, 3)
        for s, d in edges:
            adj[0, s, d] = 1.0
        total += float(dag_log_prob(order, edge, adj).exp())
    assert total == pytest.approx(1.0, abs=1e-5)


def test_cyclic_graph_has_zero_probability():
    adj = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    assert float(dag_log_prob(torch.zeros(1, 2), torch.zeros(1, 2, 2), adj)) == float("-inf")


def test_mixture_probabilities_sum_to_one_over_all_choices():
    builder = toy_builder(n_roles=1, n_models=3)
    policy, batch = toy_policy(builder).eval(), builder.batch(toy_queries(1))
    names = builder.llm_names
    choices = [None] + [Mixture(p, s) for p in itertools.permutations(names, 2) for s in names]
    total = 0.0
    for mx in choices:
        d = Design(tuple(builder.role_names), (mx,), (), "model0")
        with torch.no_grad():
            total += float(sample(policy, batch, decision="model0", mode="mixture", designs=[d]).log_prob.exp())
    assert total == pytest.approx(1.0, abs=1e-5)


def test_sample_frequencies_match_log_probs():
    builder = toy_builder(n_roles=2, n_models=2)
    policy = toy_policy(builder, k_proposers=1).eval()
    batch = builder.batch([toy_queries(1)[0]] * 1500)
    out = sample(policy, batch, decision="model0", generator=gen(11))
    keys = [(d.mixtures, d.edges) for d in out.designs]
    for key in set(keys):
        i = keys.index(key)
        assert keys.count(key) / len(keys) == pytest.approx(float(out.log_prob[i].detach().exp()), abs=0.04)


def test_mixture_mode_keeps_the_given_dag_and_has_no_edge_log_prob(setup):
    _, policy, batch = setup
    dags = [[(0, 1)], [], [(1, 3), (0, 3)], [(2, 1)], []]
    out = sample(policy, batch, decision="model0", mode="mixture", dags=dags, generator=gen(0))
    assert [list(d.edges) for d in out.designs] == [sorted(x) for x in dags]
    assert torch.equal(out.edge_log_prob, torch.zeros(5))


def test_mixture_mode_reads_dags_stored_in_the_batch():
    builder = toy_builder(n_roles=3, n_models=3)
    batch = builder.batch(toy_queries(2), dags=[[(0, 2)], [(1, 0), (2, 0)]])
    out = sample(toy_policy(builder), batch, decision="model0", mode="mixture", generator=gen(0))
    assert [d.edges for d in out.designs] == [((0, 2),), ((1, 0), (2, 0))]


def test_dag_mode_keeps_given_mixtures_and_has_no_role_log_prob(setup):
    builder, policy, batch = setup
    mx = (Mixture(("model1", "model2"), "model3"), None, Mixture(("model0",), "model0"), None)
    out = sample(policy, batch, decision="model0", mode="dag", mixtures=[mx] * 5, generator=gen(0))
    assert all(d.mixtures == mx for d in out.designs)
    assert torch.equal(out.role_log_prob, torch.zeros(5, 4))
    assert torch.allclose(out.log_prob, out.edge_log_prob)


def test_log_prob_is_sum_of_role_and_edge_parts(setup):
    _, policy, batch = setup
    out = sample(policy, batch, decision="model0", generator=gen(2))
    assert torch.allclose(out.log_prob, out.role_log_prob.sum(-1) + out.edge_log_prob)
    assert bool((out.log_prob <= 0).all()) and bool((out.entropy >= 0).all())


def test_higher_temperature_gives_higher_entropy(setup):
    _, policy, batch = setup
    cold = sample(policy, batch, decision="model0", generator=gen(0), temperature=0.5)
    hot = sample(policy, batch, decision="model0", generator=gen(0), temperature=5.0)
    assert bool((hot.entropy > cold.entropy).all())


def test_disallowing_skip_never_skips():
    builder = toy_builder(n_roles=4, n_models=3)
    policy = toy_policy(builder, allow_skip=False)
    out = sample(policy, builder.batch(toy_queries(20)), decision="model0", generator=gen(0))
    assert all(mx is not None for d in out.designs for mx in d.mixtures)


def test_greedy_sampling_ignores_the_generator(setup):
    _, policy, batch = setup
    a = sample(policy, batch, decision="model0", greedy=True, generator=gen(1))
    b = sample(policy, batch, decision="model0", greedy=True, generator=gen(2))
    assert a.designs == b.designs


def test_single_role_has_no_edges_and_a_valid_log_prob():
    builder = toy_builder(n_roles=1, n_models=2)
    out = sample(toy_policy(builder), builder.batch(toy_queries(4)), decision="model1", generator=gen(0))
    assert all(d.edges == () and len(d.mixtures) == 1 for d in out.designs)
    assert torch.equal(out.edge_log_prob, torch.zeros(4)) and bool(torch.isfinite(out.log_prob).all())


def test_empty_role_set_samples_empty_designs():
    builder = toy_builder(n_roles=0, n_models=2)
    out = sample(toy_policy(builder), builder.batch(toy_queries(2)), decision="model0", generator=gen(0))
    assert [d.roles for d in out.designs] == [(), ()]
    assert out.role_log_prob.shape == (2, 0) and torch.equal(out.log_prob, torch.zeros(2))


def test_per_graph_decision_models(setup):
    _, policy, batch = setup
    decisions = [f"model{i % 4}" for i in range(5)]
    out = sample(policy, batch, decision=decisions, generator=gen(0))
    assert [d.decision for d in out.designs] == decisions


def test_rescoring_a_design_with_an_unknown_model_names_it(setup):
    builder, policy, batch = setup
    d = Design(tuple(builder.role_names), (Mixture(("gpt-x",), "gpt-x"), None, None, None), (), "model0")
    with pytest.raises(ValueError, match="gpt-x"):
        sample(policy, builder.batch(toy_queries(1)), decision="model0", designs=[d])


def test_rescoring_a_design_with_other_roles_is_rejected(setup):
    builder, policy, _ = setup
    d = Design(("a", "b", "c", "d"), (None,) * 4, (), "model0")
    with pytest.raises(ValueError, match="roles"):
        sample(policy, builder.batch(toy_queries(1)), decision="model0", designs=[d])


def test_unknown_mode_is_rejected(setup):
    _, policy, batch = setup
    with pytest.raises(ValueError, match="mode"):
        sample(policy, batch, decision="model0", mode="both")


def _brute_force_dag_log_prob(order, edge, adj):
    """log Σ over all n! orders (the definition), for one graph."""
    import math

    n, terms = order.numel(), []
    for perm in itertools.permutations(range(n)):
        pos = {v: i for i, v in enumerate(perm)}
        if any(adj[i, j] and pos[i] > pos[j] for i in range(n) for j in range(n)):
            continue
        lp = sum(float(order[v] - torch.logsumexp(order[list(perm[t:])], 0)) for t, v in enumerate(perm))
        for i in range(n):
            for j in range(n):
                if i != j and pos[i] < pos[j]:
                    p = float(torch.sigmoid(edge[i, j]))
                    lp += math.log(p if adj[i, j] else 1 - p)
        terms.append(lp)
    return float(torch.logsumexp(torch.tensor(terms, dtype=torch.float64), 0))


@pytest.mark.parametrize("n", [1, 2, 4, 5])
def test_dag_log_prob_equals_the_sum_over_all_orders(n):
    g = torch.Generator().manual_seed(n)
    order, edge = torch.randn(1, n, generator=g), torch.randn(1, n, n, generator=g)
    perm = torch.randperm(n, generator=g)
    pos = torch.argsort(perm)
    adj = ((torch.rand(n, n, generator=g) < 0.5) & (pos[:, None] < pos[None, :])).float()[None]
    expected = _brute_force_dag_log_prob(order[0], edge[0], adj[0])
    assert float(dag_log_prob(order, edge, adj)) == pytest.approx(expected, abs=1e-4)


def test_dag_log_prob_handles_many_roles_with_finite_gradients():
    n = 10
    order = torch.randn(2, n, requires_grad=True)
    edge = torch.randn(2, n, n, requires_grad=True)
    adj = torch.triu(torch.ones(n, n), 1)[None].repeat(2, 1, 1) * (torch.rand(2, n, n) < 0.3)
    lp = dag_log_prob(order, edge, adj)
    lp.sum().backward()
    assert bool(torch.isfinite(lp).all()) and bool((lp < 0).all())
    assert bool(torch.isfinite(order.grad).all()) and bool(torch.isfinite(edge.grad).all())


def test_dag_reinforce_gradient_reaches_the_edge_and_order_heads(setup):
    builder, _, batch = setup
    policy = toy_policy(builder)
    out = sample(policy, batch, decision="model0", mode="dag", generator=gen(4))
    (-(torch.arange(5.0) * out.edge_log_prob).sum()).backward()
    for name, p in policy.named_parameters():
        if name.startswith(("edge_head.", "encoder.")):
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
        if name.startswith("mixture_head."):
            assert p.grad is None or not bool(p.grad.abs().sum() > 0), name


def test_single_proposer_mixture_uses_the_proposer_as_synthesizer():
    builder = toy_builder(n_roles=3, n_models=4)
    policy = toy_policy(builder, k_proposers=1, allow_skip=False)
    out = sample(policy, builder.batch(toy_queries(6)), decision="model0", generator=gen(0))
    assert all(mx.k == 1 and mx.synthesizer == mx.proposers[0] for d in out.designs for mx in d.mixtures)
