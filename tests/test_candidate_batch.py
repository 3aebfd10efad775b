"""The `classifier` route scores K candidate DAGs of a query from one batch and one encoder pass
shared by the selector and the graph-score head: the same designs and scores as building the K
graphs one at a time (`Batch.from_data_list`), selecting on one batch and scoring on another."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
from hieramas_gnn.policy.cost import CostRange
from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder
from hieramas_gnn.policy.graph import GraphBuilder, dag_edge_index
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.policy.testing import (
    TOY_DOMAINS,
    toy_builder,
    toy_models,
    toy_policy,
    toy_queries,
    toy_roles,
)

DAGS = [[(0, 1)], [], [(2, 1), (0, 3)], [(3, 0)], [], [(0, 1), (1, 2), (2, 3)]]


def assert_same_batch(ref, new) -> None:
    assert ref.node_types == new.node_types and ref.edge_types == new.edge_types
    for key in [*ref.node_types, *ref.edge_types]:
        assert sorted(ref[key].keys()) == sorted(new[key].keys()), key
        for name in ref[key]:
            assert torch.equal(ref[key][name], new[key][name]), (key, name)
    assert ref.role_names == new.role_names and ref.llm_names == new.llm_names


def cost_builder() -> GraphBuilder:
    features = FeatureBuilder(CachedEmbedder(HashingEmbedder(16)), domain_vocab=TOY_DOMAINS, pos_dim=4,
                              cost_range=CostRange(0.0, 100.0), cost_default=5.0)
    return GraphBuilder(features, toy_roles(4), toy_models(5))


@pytest.mark.parametrize("make", [lambda: toy_builder(4, 5), cost_builder])
def test_the_batch_holds_the_tensors_of_the_graphs_collated_by_pyg(make):
    builder = make()
    lams = [1.0, None, 50.0, 0.0, 7.0, None] if builder.cost_conditioned else None
    assert_same_batch(Batch.from_data_list(builder.graphs(toy_queries(6), DAGS, lams)),
                      builder.batch(toy_queries(6), DAGS, lams))
    assert_same_batch(Batch.from_data_list(builder.graphs(toy_queries(3))), builder.batch(toy_queries(3)))
    q = toy_queries(2)[1]
    lam = 3.0 if builder.cost_conditioned else None
    assert_same_batch(builder.batch([q] * 6, DAGS, [lam] * 6 if lam else None), builder.repeated(q, DAGS, lam))


def test_bad_dag_edges_are_still_named():
    builder = toy_builder(4, 5)
    with pytest.raises(ValueError, match=r"DAG edges \[\(1, 1\)\] are not valid pairs"):
        builder.batch(toy_queries(2), [[(0, 1)], [(1, 1)]])
    with pytest.raises(ValueError, match=r"DAG edges \[\(0, 4\)\] are not valid pairs of distinct roles in 0..3"):
        dag_edge_index(builder.batch(toy_queries(2)), [[], [(0, 4)]])


def one_at_a_time(chooser: DesignChooser, q, dags):
    """The route as it was: the K graphs built one by one and collated, the selector's encoding,
    then a second batch and encoding for the graph-score head."""
    policy, builder = chooser.policy, chooser.builder
    batch = Batch.from_data_list(builder.graphs([q] * len(dags), dags))
    designs = sample(policy, batch, decision=chooser.settings.decision, mode="mixture", dags=list(dags),
                     greedy=True).designs
    again = Batch.from_data_list(builder.graphs([q] * len(designs), [d.edges for d in designs]))
    return designs, policy.graph_logits(again, dag_edge_index(again, [d.edges for d in designs]))


@pytest.mark.parametrize("k", [2, 17, 60])
@torch.no_grad()
def test_one_shared_pass_chooses_the_designs_and_scores_of_the_one_at_a_time_path(k):
    builder = toy_builder(5, 6)
    chooser = DesignChooser(toy_policy(builder, seed=k).eval(), builder,
                            ChoiceSettings(route="classifier", decision="model0", n_candidates=k))
    for q in toy_queries(4):
        dags = chooser.candidates(q)[0]
        ref_designs, ref_scores = one_at_a_time(chooser, q, dags)
        designs, scores = chooser.scored(q)
        assert designs == ref_designs and len(designs) == len(dags)
        assert int(scores.argmax()) == int(ref_scores.argmax())
        assert torch.allclose(scores, ref_scores, rtol=0, atol=1e-5)
        assert chooser.design(q) == ref_designs[int(ref_scores.argmax())]
        assert torch.allclose(chooser.score(q, designs), ref_scores, rtol=0, atol=1e-5)
