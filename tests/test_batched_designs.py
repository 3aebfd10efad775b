"""`DesignChooser.designs` embeds the texts of many queries in one embedder call (only those not
cached) and still gives every query the design it gets alone, whatever the batch or its order:
each query's row is the same bits as the query's alone (MiniLM's side of it:
tests/test_policy_features.py)."""

from __future__ import annotations

import pytest
import torch

from hieramas_gnn.mas.limits import RequestLimits
from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
from hieramas_gnn.policy.cost import CostGrid, CostRange
from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder
from hieramas_gnn.policy.graph import GraphBuilder
from hieramas_gnn.policy.testing import (
    TOY_DOMAINS,
    toy_builder,
    toy_models,
    toy_policy,
    toy_queries,
    toy_roles,
)

ROUTES = ("random", "edges", "classifier")


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting its calls."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return super().embed(texts)


def chooser(route: str, cost: bool = False, seed: int = 3, n_candidates: int = 6) -> DesignChooser:
    if cost:
        features = FeatureBuilder(CachedEmbedder(HashingEmbedder(16)), domain_vocab=TOY_DOMAINS, pos_dim=4,
                                  cost_range=CostRange(0.0, 100.0), cost_default=5.0)
        builder = GraphBuilder(features, toy_roles(4), toy_models(5))
        grid = CostGrid(0.0, 100.0, 5.0, [{"cost_lambda": lam, "decision": f"model{k}"}
                                          for k, lam in enumerate((0.0, 10.0, 100.0))])
    else:
        builder, grid = toy_builder(4, 5, dim=16), None
    return DesignChooser(toy_policy(builder, seed=seed).eval(), builder,
                         ChoiceSettings(route=route, decision="model0", n_candidates=n_candidates), grid)


def queries(n: int = 24) -> list[tuple[str, dict]]:
    return toy_queries(n)


@pytest.mark.parametrize("cost", [False, True])
@pytest.mark.parametrize("route", ROUTES)
def test_a_batch_chooses_what_each_query_chooses_alone(route, cost):
    ch, qs = chooser(route, cost), queries()
    lams = [None, 0.0, 3.0, 60.0] * 6 if cost else None
    alone = [ch.design(q, None if lams is None else lams[i]) for i, q in enumerate(qs)]
    assert len(set(map(str, alone))) > 3  # the toy policy's choices differ between queries
    assert ch.designs(qs, lams) == alone
    order = list(reversed(range(len(qs))))
    assert ch.designs([qs[i] for i in order], None if lams is None else [lams[i] for i in order]) == \
        [alone[i] for i in order]


@pytest.mark.parametrize("route", ROUTES)
def test_a_batch_within_limits_chooses_what_each_query_chooses_alone(route):
    ch, qs = chooser(route), queries(12)
    limits = RequestLimits(3, 2, frozenset())
    assert ch.designs(qs, None, limits) == [ch.design(q, None, limits) for q in qs]


@pytest.mark.parametrize("cost", [False, True])
def test_the_query_rows_of_a_batch_are_the_bits_of_each_query_alone(cost):
    builder, qs = chooser("random", cost).builder, queries(9)
    lams = [None, 0.0, 40.0] * 3 if cost else None
    rows = builder.query_rows(qs, lams)  # one embedder call for all texts
    for g, q in enumerate(qs):
        assert torch.equal(rows[g:g + 1], builder.query_rows([q], None if lams is None else [lams[g]]))


def test_a_batch_embeds_its_texts_in_one_call_and_only_the_new_ones():
    inner = CountingEmbedder(16)
    embedder = CachedEmbedder(inner)
    builder = GraphBuilder(FeatureBuilder(embedder, domain_vocab=TOY_DOMAINS, pos_dim=4), toy_roles(4), toy_models(5))
    ch = DesignChooser(toy_policy(builder).eval(), builder, ChoiceSettings(route="random", decision="model0"))
    qs = queries(10)
    calls, misses, hits = inner.calls, embedder.misses, embedder.hits
    ch.designs(qs[:4])
    ch.designs(qs)
    assert (inner.calls - calls, embedder.misses - misses, embedder.hits - hits) == (2, 10, 4)


def test_a_cost_weight_is_refused_before_any_work_for_a_policy_without_a_grid():
    from hieramas_gnn.errors import UserError

    with pytest.raises(UserError, match="not cost-conditioned"):
        chooser("random").designs(queries(3), [None, 5.0, None])
    assert chooser("random").designs([]) == []
