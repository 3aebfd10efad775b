"""The policy's input graph: one PyG `HeteroData` per query; G of them batched into one
`HeteroData` holding what `Batch.from_data_list` gives (`GraphBuilder.batch`, built directly from
the shared role / LLM rows: graph building was most of a K = 200 candidate choice).

Representation (a documented choice): the graph is *stored* heterogeneously, so each node type
keeps its own feature width and PyG batching gives per-type `batch` / `ptr` vectors, but the
policy (`gnn.py`) runs *homogeneous* message passing over it: each type is projected to the
hidden width, a learned node-type embedding is added, and all relations are merged into one
edge index (GAT/GATv2 also get a learned edge-type embedding). This avoids `to_hetero` (fx
tracing) and works identically for GAT, GATv2 and GCN.

Node types (per query; N roles, M pool models):
- `role`  x [N, F_role]  — role-description embedding + position encoding;
- `llm`   x [M, F_llm]   — profile embedding + price features (+ optional ability hints);
- `query` x [1, F_query] — query embedding (+ optional domain one-hot).

Edge types (`edge_index` [2, E_rel], local indices, PyG offsets them when batching):
- `(role, to, llm)` / `(llm, to, role)`: all N·M pairs, both directions;
- `(query, to, role)` / `(role, to, query)`, `(query, to, llm)` / `(llm, to, query)`;
- `(role, cand, role)`: the N·(N−1) candidate role→role edges scored by the edge head;
- `(role, dag, role)`: the actual DAG edges of a design (may be empty), used by the
  graph-score head and (optionally) by the encoder.

Non-tensor attributes: `role_names: list[str]`, `llm_names: list[str]` (a batch holds lists
of these, one per graph).

Public API: `RoleNode`, `as_role_nodes`, `build_graph`, `GraphBuilder` (`.graph(query)`,
`.batch(queries, dags=None)`, `.repeated(query, dags)`: one query under K DAGs; `embeddings`: the `DescriptionEmbeddings` of its roles and models,
given or computed once), `dag_edge_index(batch, dags)` (global role indices of per-graph
DAGs), `candidate_pairs(n)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from hieramas_gnn.policy.features import FeatureBuilder, as_llm_nodes

Edges = Sequence[tuple[int, int]]


@dataclass(frozen=True)
class RoleNode:
    """A role supernode as the policy sees it: its name and a natural-language description."""

    name: str
    description: str


def as_role_nodes(roles: Sequence[Any]) -> list[RoleNode]:
    """Accepts `RoleNode`s, `(name, description)` tuples, plain names, or objects with `.name`
    and `.description` (E4's role specs)."""
    out = []
    for r in roles:
        if isinstance(r, RoleNode):
            out.append(r)
        elif isinstance(r, str):
            out.append(RoleNode(r, r))
        elif isinstance(r, tuple | list):
            out.append(RoleNode(str(r[0]), str(r[1])))
        else:
            out.append(RoleNode(r.name, getattr(r, "description", None) or r.name))
    return out


def candidate_pairs(n: int) -> Tensor:
    """All ordered pairs (i, j), i != j, row-major. Shapes: -> [2, n·(n−1)]."""
    idx = torch.arange(n)
    src, dst = torch.meshgrid(idx, idx, indexing="ij")  # [n, n]
    keep = src != dst
    return torch.stack([src[keep], dst[keep]])


def _all_pairs(n_src: int, n_dst: int) -> Tensor:
    src, dst = torch.meshgrid(torch.arange(n_src), torch.arange(n_dst), indexing="ij")
    return torch.stack([src.reshape(-1), dst.reshape(-1)])  # [2, n_src·n_dst]


def _edges_tensor(edges: Edges, n: int) -> Tensor:
    if not edges:
        return torch.zeros(2, 0, dtype=torch.long)
    t = torch.tensor(list(edges), dtype=torch.long).t()  # [2, E]
    if t.min() < 0 or t.max() >= n or bool((t[0] == t[1]).any()):
        raise ValueError(f"DAG edges {list(edges)} are not valid pairs of distinct roles in 0..{n - 1}")
    return t


def build_graph(role_x: Tensor, llm_x: Tensor, query_x: Tensor, role_names: Sequence[str],
                llm_names: Sequence[str], dag_edges: Edges = ()) -> HeteroData:
    """One query's graph. Shapes: role_x [N, F_r], llm_x [M, F_l], query_x [1, F_q]."""
    n, m = role_x.size(0), llm_x.size(0)
    if len(role_names) != n or len(llm_names) != m or query_x.size(0) != 1:
        raise ValueError("feature rows must match role_names / llm_names, and query_x must be [1, F]")
    data = HeteroData()
    data["role"].x = role_x
    data["llm"].x = llm_x
    data["query"].x = query_x
    role_llm = _all_pairs(n, m)  # [2, N·M]
    data["role", "to", "llm"].edge_index = role_llm
    data["llm", "to", "role"].edge_index = role_llm.flip(0)
    q_role = _all_pairs(1, n)  # [2, N]
    data["query", "to", "role"].edge_index = q_role
    data["role", "to", "query"].edge_index = q_role.flip(0)
    q_llm = _all_pairs(1, m)  # [2, M]
    data["query", "to", "llm"].edge_index = q_llm
    data["llm", "to", "query"].edge_index = q_llm.flip(0)
    data["role", "cand", "role"].edge_index = candidate_pairs(n)  # [2, N·(N−1)]
    data["role", "dag", "role"].edge_index = _edges_tensor(dag_edges, n)  # [2, E_dag]
    data.role_names = list(role_names)
    data.llm_names = list(llm_names)
    return data


@dataclass(frozen=True)
class DescriptionEmbeddings:
    """The embedder's vectors of a builder's fixed texts: role [N, D] (the role descriptions)
    and llm [M, D] (the models' profiles), in role / pool order. A policy bundle stores them
    (`bundle.py`), so that loading it never runs the text encoder on texts it already embedded."""

    role: Tensor
    llm: Tensor


def _query_parts(query: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(query, str):
        return query, {}
    if isinstance(query, tuple | list):
        return str(query[0]), dict(query[1] or {})
    return query.text, dict(getattr(query, "meta", {}) or {})  # tasks.base.Question


class GraphBuilder:
    """Builds query graphs for a fixed role list and pool; role/LLM features are computed once.

    queries may be `tasks.base.Question`s, `(text, meta)` tuples or plain strings.
    """

    def __init__(self, features: FeatureBuilder, roles: Sequence[Any], models: Sequence[Any],
                 embeddings: DescriptionEmbeddings | None = None) -> None:
        self.features = features
        self.roles = as_role_nodes(roles)
        self.models = as_llm_nodes(models)
        self.role_names = [r.name for r in self.roles]
        self.llm_names = [m.name for m in self.models]
        if embeddings is None:  # the embedder's vectors of the fixed texts (a bundle stores them)
            embeddings = DescriptionEmbeddings(features.embed_texts([r.description for r in self.roles]),
                                               features.embed_texts([m.profile for m in self.models]))
        self.embeddings = embeddings
        self.role_x = features.role_features([r.description for r in self.roles], embeddings.role)  # [N, F_r]
        self.llm_x = features.llm_features(self.models, embeddings.llm)  # [M, F_l]
        self._relations = _fixed_relations(len(self.roles), len(self.models))

    @property
    def dims(self):
        return self.features.dims

    def graph(self, query: Any, dag_edges: Edges = (), cost_lambda: float | None = None) -> HeteroData:
        return self.graphs([query], [dag_edges], None if cost_lambda is None else [cost_lambda])[0]

    def graphs(self, queries: Sequence[Any], dags: Sequence[Edges] | None = None,
               cost_lambdas: Sequence[float | None] | None = None) -> list[HeteroData]:
        """`cost_lambdas`: per query, the cost weight of a cost-conditioned policy (None: the default)."""
        parts = [_query_parts(q) for q in queries]
        qx = self.features.queries_features([t for t, _ in parts], [m for _, m in parts], cost_lambdas)  # [G, F_q]
        dags = dags if dags is not None else [()] * len(parts)
        return [
            build_graph(self.role_x, self.llm_x, qx[g : g + 1], self.role_names, self.llm_names, dags[g])
            for g in range(len(parts))
        ]

    def batch(self, queries: Sequence[Any], dags: Sequence[Edges] | None = None,
              cost_lambdas: Sequence[float | None] | None = None) -> HeteroData:
        """G query graphs as one batch (one embedder call for all query texts): the tensors of
        `Batch.from_data_list(self.graphs(...))` (tested equal), built without the G graphs."""
        parts = [_query_parts(q) for q in queries]
        qx = self.features.queries_features([t for t, _ in parts], [m for _, m in parts], cost_lambdas)  # [G, F_q]
        return self._collate(qx, dags if dags is not None else [()] * len(parts))

    def repeated(self, query: Any, dags: Sequence[Edges], cost_lambda: float | None = None) -> HeteroData:
        """One query's graph under each of `dags` as one batch, the query's features computed
        once (K candidate DAGs of one query). Equal to `batch([query] * K, dags, [cost_lambda] * K)`."""
        return self.from_rows(self.query_rows([query], [cost_lambda]).repeat(len(dags), 1), dags)

    def query_rows(self, queries: Sequence[Any], cost_lambdas: Sequence[float | None] | None = None) -> Tensor:
        """The query node rows of `queries` (one embedder call for all texts; each row the same
        as the query's alone); `cost_lambdas` is ignored for a policy that is not cost-conditioned
        (callers refuse a λ there first). Shapes: -> [G, F_q]."""
        parts = [_query_parts(q) for q in queries]
        lams = list(cost_lambdas) if self.cost_conditioned and cost_lambdas is not None else None
        return self.features.queries_features([t for t, _ in parts], [m for _, m in parts], lams)  # [G, F_q]

    def from_rows(self, qx: Tensor, dags: Sequence[Edges]) -> HeteroData:
        """The batch of G graphs whose query rows are `qx` [G, F_q] (from `query_rows`) and DAG
        edges `dags[g]`: `batch(queries, dags)` without embedding the texts again."""
        return self._collate(qx, dags)

    def _collate(self, qx: Tensor, dags: Sequence[Edges]) -> HeteroData:
        """The batch of G = len(qx) graphs (query rows `qx` [G, F_q], DAG edges `dags[g]`), with
        the node stores' `batch` / `ptr` and the names per graph that `Batch.from_data_list` gives."""
        g, n, m = qx.size(0), len(self.role_names), len(self.llm_names)
        if len(dags) != g:
            raise ValueError(f"got {len(dags)} DAGs for {g} queries")
        data = HeteroData()
        counts = {"role": n, "llm": m, "query": 1}
        graph_ids = torch.arange(g)
        for kind, x in (("role", self.role_x.repeat(g, 1)), ("llm", self.llm_x.repeat(g, 1)), ("query", qx.contiguous())):
            store = data[kind]
            store.x = x
            store.batch = graph_ids.repeat_interleave(counts[kind])  # [G·count]
            store.ptr = torch.arange(g + 1) * counts[kind]  # [G + 1]
        for (src, rel, dst), template in self._relations.items():
            step = torch.tensor([[counts[src]], [counts[dst]]])  # [2, 1]: per graph, the index offsets
            offsets = (graph_ids.repeat_interleave(template.size(1)) * step)  # [2, G·E_rel]
            data[src, rel, dst].edge_index = template.repeat(1, g) + offsets
        data["role", "dag", "role"].edge_index = _dag_edges(dags, n)  # [2, E_dag]
        data.role_names = [list(self.role_names) for _ in range(g)]
        data.llm_names = [list(self.llm_names) for _ in range(g)]
        return data

    @property
    def cost_conditioned(self) -> bool:
        """Whether the policy takes a cost weight per query (`policy/cost.py`)."""
        return getattr(self.features, "cost_range", None) is not None


def _fixed_relations(n: int, m: int) -> dict[tuple[str, str, str], Tensor]:
    """The edges every graph of `n` roles and `m` models has, per edge type in `build_graph`'s
    order (all but the DAG's). Local indices, [2, E_rel] each."""
    role_llm, q_role, q_llm = _all_pairs(n, m), _all_pairs(1, n), _all_pairs(1, m)
    return {("role", "to", "llm"): role_llm, ("llm", "to", "role"): role_llm.flip(0),
            ("query", "to", "role"): q_role, ("role", "to", "query"): q_role.flip(0),
            ("query", "to", "llm"): q_llm, ("llm", "to", "query"): q_llm.flip(0),
            ("role", "cand", "role"): candidate_pairs(n)}


def _dag_edges(dags: Sequence[Edges], n: int) -> Tensor:
    """Per-graph DAG edges of graphs of `n` roles each -> batched role indices. Shapes: -> [2, E_dag]."""
    return _offset_edges(dags, torch.arange(len(dags) + 1) * n)


def _offset_edges(dags: Sequence[Edges], ptr: Tensor) -> Tensor:
    """Per-graph edges (local role indices; graph g has roles ptr[g]..ptr[g + 1] - 1) -> batched
    role indices, each graph's checked as `build_graph` checks them (ValueError naming the
    graph's edges). Shapes: ptr [G + 1] -> [2, E]."""
    src: list[int] = []
    dst: list[int] = []
    graph: list[int] = []
    for g, edges in enumerate(dags):
        for s, d in edges:
            src.append(s)
            dst.append(d)
            graph.append(g)
    if not src:
        return torch.zeros(2, 0, dtype=torch.long)
    local = torch.tensor([src, dst], dtype=torch.long)  # [2, E]
    gid = torch.tensor(graph, dtype=torch.long)  # [E]
    start, size = ptr[:-1][gid], ptr.diff()[gid]  # [E] each
    if bool((local < 0).any() or (local >= size).any() or (local[0] == local[1]).any()):
        for g, edges in enumerate(dags):
            _edges_tensor(edges, int(ptr[g + 1] - ptr[g]))  # raises, naming the graph's edges
    return local + start


def dag_edge_index(batch: HeteroData, dags: Sequence[Edges]) -> Tensor:
    """Per-graph DAG edges (local role indices) → batched role indices. Shapes: -> [2, E_dag]."""
    ptr = role_ptr(batch)
    if len(dags) > ptr.numel() - 1:
        raise ValueError(f"got {len(dags)} DAGs for a batch of {ptr.numel() - 1} graphs")
    return _offset_edges(dags, ptr[: len(dags) + 1])


def role_ptr(batch: HeteroData) -> Tensor:
    """Role offsets per graph (works for a single HeteroData too). Shapes: -> [G + 1]."""
    store = batch["role"]
    if "ptr" in store:
        return store.ptr
    return torch.tensor([0, store.num_nodes])


def role_batch(batch: HeteroData) -> Tensor:
    """Graph id of each role node. Shapes: -> [N]."""
    store = batch["role"]
    if "batch" in store:
        return store.batch
    return torch.zeros(store.num_nodes, dtype=torch.long)


def num_graphs(batch: HeteroData) -> int:
    return int(batch["query"].x.size(0))


def names_per_graph(batch: HeteroData, key: str) -> list[list[str]]:
    """`role_names` / `llm_names` as one list per graph for a Batch or a single HeteroData."""
    value = batch[key]
    if value and isinstance(value[0], list):
        return value
    return [list(value)]
