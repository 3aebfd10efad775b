"""`dag_structure` (structural encodings of batched DAGs) and the graph-score head's use of them."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.policy.gnn import GRAPH_STRUCT, NODE_STRUCT, Encoded, dag_structure
from hieramas_gnn.policy.testing import toy_builder, toy_policy


def batched(graphs: list[tuple[int, list[tuple[int, int]]]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(n, local edges) per graph -> dag_edge_index [2, E] with offsets, batch [N], G."""
    edges, batch, offset = [], [], 0
    for g, (n, local) in enumerate(graphs):
        edges += [(offset + i, offset + j) for i, j in local]
        batch += [g] * n
        offset += n
    ei = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    return ei, torch.tensor(batch, dtype=torch.long), len(graphs)


def test_chain_and_star_have_the_documented_rows():
    ei, batch, g = batched([(4, [(0, 1), (1, 2), (2, 3)]), (3, [(0, 1), (0, 2)])])
    node, graph = dag_structure(ei, batch, g)
    t = 1 / 3
    expected_node = [
        # in, out, source, sink, level, height  (chain: / 3)
        [0, t, 1, 0, 0, 1],
        [t, t, 0, 0, t, 2 * t],
        [t, t, 0, 0, 2 * t, t],
        [t, 0, 0, 1, 1, 0],
        # star 0->1, 0->2: / 2
        [0, 1, 1, 0, 0, 0.5],
        [0.5, 0, 0, 1, 0.5, 0],
        [0.5, 0, 0, 1, 0.5, 0],
    ]
    expected_graph = [[3 / 6, 1 / 4, 1 / 4, 1.0], [2 / 3, 2 / 3, 1 / 3, 0.5]]
    assert node.shape == (7, NODE_STRUCT) and graph.shape == (2, GRAPH_STRUCT)
    assert torch.allclose(node, torch.tensor(expected_node), atol=1e-6)
    assert torch.allclose(graph, torch.tensor(expected_graph), atol=1e-6)


def test_level_is_the_longest_not_the_shortest_path():
    # 0->1->2 and the shortcut 0->2: node 2 is at level 2, node 0 at height 2
    ei, batch, g = batched([(3, [(0, 2), (0, 1), (1, 2)])])
    node, graph = dag_structure(ei, batch, g)
    assert node[:, 4].tolist() == [0.0, 0.5, 1.0]
    assert node[:, 5].tolist() == [1.0, 0.5, 0.0]
    assert torch.allclose(graph, torch.tensor([[1.0, 1 / 3, 1 / 3, 1.0]]))


def test_edge_order_does_not_change_the_encoding():
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4)]
    a = dag_structure(*batched([(5, edges)]))
    b = dag_structure(*batched([(5, edges[::-1])]))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_graph_without_edges_is_all_sources_and_sinks_at_level_zero():
    ei, batch, g = batched([(3, []), (2, [(0, 1)])])
    node, graph = dag_structure(ei, batch, g)
    assert node[:3].tolist() == [[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]] * 3
    assert graph[0].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert graph[1].tolist() == [1.0, 0.5, 0.5, 1.0]


def test_single_node_graph_is_finite():
    ei, batch, g = batched([(1, []), (2, [(1, 0)])])
    node, graph = dag_structure(ei, batch, g)
    assert bool(torch.isfinite(node).all()) and bool(torch.isfinite(graph).all())
    assert node[0].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert graph[0].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_no_roles_gives_empty_node_rows_and_zero_graph_rows():
    node, graph = dag_structure(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 2)
    assert node.shape == (0, NODE_STRUCT)
    assert graph.tolist() == [[0.0] * GRAPH_STRUCT] * 2


@st.composite
def random_dags(draw):
    """A few DAGs of 2..7 nodes: forward pairs of a random permutation, each kept or not."""
    graphs = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(2, 7))
        perm = draw(st.permutations(range(n)))
        pairs = [(perm[i], perm[j]) for i in range(n) for j in range(i + 1, n)]
        keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
        edges = [p for p, k in zip(pairs, keep) if k]
        graphs.append((n, draw(st.permutations(edges)) if edges else []))
    return graphs


def reference(n: int, edges: list[tuple[int, int]]) -> tuple[list[list[float]], list[float]]:
    """networkx's reading of `dag_structure` for one DAG."""
    dg = nx.DiGraph()
    dg.add_nodes_from(range(n))
    dg.add_edges_from(edges)
    level, height = {}, {}
    for v in nx.topological_sort(dg):
        level[v] = max((level[u] + 1 for u in dg.predecessors(v)), default=0)
    for v in reversed(list(nx.topological_sort(dg))):
        height[v] = max((height[w] + 1 for w in dg.successors(v)), default=0)
    span = max(n - 1, 1)
    rows = [[dg.in_degree(v) / span, dg.out_degree(v) / span, float(dg.in_degree(v) == 0),
             float(dg.out_degree(v) == 0), level[v] / span, height[v] / span] for v in range(n)]
    sinks = sum(dg.out_degree(v) == 0 for v in range(n))
    sources = sum(dg.in_degree(v) == 0 for v in range(n))
    shape = [len(edges) / max(n * (n - 1) / 2, 1), sinks / n, sources / n,
             nx.dag_longest_path_length(dg) / span]
    return rows, shape


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_dag_structure_matches_networkx(graphs):
    node, graph = dag_structure(*batched(graphs))
    rows, shapes = [], []
    for n, edges in graphs:
        r, s = reference(n, edges)
        rows += r
        shapes.append(s)
    assert torch.allclose(node, torch.tensor(rows), atol=1e-6)
    assert torch.allclose(graph, torch.tensor(shapes), atol=1e-6)


# ---------------------------------------------------------------- the score head


def same_roles(n: int, hidden: int) -> Encoded:
    """One graph whose n roles all carry the same state (an attention conv cannot tell them apart)."""
    torch.manual_seed(0)
    h_role = torch.randn(1, hidden).expand(n, hidden).clone()  # [N, H]
    return Encoded(h_role, torch.zeros(0, hidden), torch.randn(1, hidden), torch.zeros(n, dtype=torch.long), 0)


@pytest.mark.parametrize("conv", ["gat", "gatv2"])
def test_score_head_tells_fan_in_from_fan_out(conv):
    head = toy_policy(toy_builder(), conv=conv).eval().score_head
    enc = same_roles(3, 32)
    fan_in = head(enc, torch.tensor([[0, 1], [2, 2]]))  # 2 sources, 1 sink
    fan_out = head(enc, torch.tensor([[0, 0], [1, 2]]))  # 1 source, 2 sinks
    assert not torch.allclose(fan_in, fan_out, atol=1e-4)


@pytest.mark.parametrize("conv", ["gat", "gatv2"])
def test_score_head_without_structure_cannot_tell_fan_in_from_fan_out(conv):
    # the control for the test above: zero the structural weights and the difference is gone,
    # so it came from `dag_structure` and not from message passing over equal states
    head = toy_policy(toy_builder(), conv=conv).eval().score_head
    with torch.no_grad():
        head.struct.weight.zero_()
        head.struct.bias.zero_()
        head.out[0].weight[:, -GRAPH_STRUCT:] = 0.0
    enc = same_roles(3, 32)
    fan_in = head(enc, torch.tensor([[0, 1], [2, 2]]))
    fan_out = head(enc, torch.tensor([[0, 0], [1, 2]]))
    assert torch.allclose(fan_in, fan_out, atol=1e-5)


def test_graph_logits_differ_for_dags_with_different_sink_counts():
    builder = toy_builder(n_roles=3)
    policy = toy_policy(builder).eval()
    q = [("question", {"domain": "algebra"})]
    one_sink = policy.graph_logits(builder.batch(q, [[(0, 2), (1, 2)]]))
    two_sinks = policy.graph_logits(builder.batch(q, [[(0, 1), (0, 2)]]))
    assert not torch.allclose(one_sink, two_sinks, atol=1e-4)
