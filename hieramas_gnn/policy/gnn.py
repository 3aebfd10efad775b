"""`HieraPolicy`: one `nn.Module` = graph encoder + mixture head + edge head + graph-score head.

Symbols: G graphs (queries) in a batch, N role nodes in the batch (all graphs), M pool models
(the same pool for every graph of a batch), E candidate role→role edges, H hidden width.

- Encoder: per-type input projections + node-type embedding, then `layers` residual
  GAT / GATv2 / GCN layers over the merged (homogeneous) edge set (see `graph.py`).
  The actual DAG edges (`dag_edge_index`, batched role indices) are part of the message passing
  when given, so the mixture head can condition on a fixed DAG (stage 1).
- Mixture head: proposer logits [N, M], synthesizer logits [N, M], skip logit [N]; with
  `proposer_slots` > 0 also a stop logit [N] (`MixtureHead.stop_logit`: the learned number of
  proposers, see `distributions.py`).
- Edge head: order logits [N] (Plackett-Luce scores for the node order) and candidate edge
  logits [E].
- Graph-score head: structural encodings of each role in the DAG (in/out degree, source, sink,
  level, height; `dag_structure`) added to the role states, `score_layers` more message-passing
  steps over the DAG edges only, pooling (mean ‖ max) over role nodes, concatenated with the
  query node and the DAG's global shape (density, sinks, sources, depth) → logit of
  P(good | DAG, query) [G]. Attention-normalised convs average their messages and cannot count,
  so "how many answers reach the decision" would otherwise be invisible to the classifier.
  Stage 2 can train just `policy.score_head.parameters()` to keep the selector frozen.

Use: `policy = HieraPolicy(ArchConfig(...), builder.dims)`; `out = policy(batch, dag_edge_index)`.
Sampling and log-probs live in `sample.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import GATConv, GATv2Conv, GCNConv, global_max_pool, global_mean_pool
from torch_geometric.utils import scatter

from hieramas_gnn.policy.settings import ArchConfig
from hieramas_gnn.policy.features import InputDims
from hieramas_gnn.policy.graph import num_graphs, role_batch

NODE_TYPES = ("role", "llm", "query")
# Relations merged into the homogeneous edge set, with an id for the edge-type embedding.
RELATIONS = (
    ("role", "to", "llm"), ("llm", "to", "role"), ("query", "to", "role"),
    ("role", "to", "query"), ("query", "to", "llm"), ("llm", "to", "query"),
)
DAG_FWD, DAG_BACK = len(RELATIONS), len(RELATIONS) + 1




def _conv(cfg: ArchConfig) -> nn.Module:
    h = cfg.hidden
    if cfg.conv == "gcn":
        return GCNConv(h, h, add_self_loops=True)
    cls = GATConv if cfg.conv == "gat" else GATv2Conv
    return cls(h, h // cfg.heads, heads=cfg.heads, edge_dim=h, add_self_loops=True, fill_value="mean")


def _mlp(d_in: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


class MessagePassing(nn.Module):
    """Residual stack of convs. Shapes: h [V, H], edge_index [2, E_all], edge_type [E_all] -> [V, H]."""

    def __init__(self, cfg: ArchConfig, layers: int, edge_types: int) -> None:
        super().__init__()
        self.uses_edge_attr = cfg.conv != "gcn"
        self.convs = nn.ModuleList(_conv(cfg) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.hidden) for _ in range(layers))
        self.edge_emb = nn.Embedding(edge_types, cfg.hidden) if self.uses_edge_attr and layers else None
        self.dropout = nn.Dropout(cfg.dropout)

    def reset_parameters(self) -> None:
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()
        if self.edge_emb is not None:
            self.edge_emb.reset_parameters()

    def forward(self, h: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            if self.uses_edge_attr:
                msg = conv(h, edge_index, edge_attr=self.edge_emb(edge_type))  # [V, H]
            else:
                msg = conv(h, edge_index)  # [V, H]
            h = norm(h + self.dropout(torch.relu(msg)))
        return h


@dataclass
class Encoded:
    """Encoder output. h_role [N, H], h_llm [G·M, H], h_query [G, H], role_batch [N]."""

    h_role: Tensor
    h_llm: Tensor
    h_query: Tensor
    role_batch: Tensor
    num_llms: int


class MixtureHead(nn.Module):
    """Shapes: Encoded -> proposer [N, M], synthesizer [N, M] ([N, M + 1] with `plurality`: the
    last column is the plurality synthesizer), skip [N] logits; `stop_logit`: Encoded -> [N] (built
    only with `proposer_slots` > 0, so older checkpoints still load)."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.stop_per_slot = cfg.stop_per_slot
        self.proposer = _mlp(4 * h, h, cfg.dropout)
        self.synthesizer = _mlp(4 * h, h, cfg.dropout)
        self.skip = _mlp(2 * h, h, cfg.dropout)
        self.stop = None
        if cfg.proposer_slots > 0:  # one stop logit per role, or (stop_per_slot) one per slot position
            width = cfg.proposer_slots if cfg.stop_per_slot else 1
            self.stop = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(h, width))
        # the plurality synthesizer's logit (built only with `plurality`, so older checkpoints load)
        self.vote = _mlp(2 * h, h, cfg.dropout) if cfg.plurality else None

    def stop_logit(self, enc: Encoded) -> Tensor | None:
        """Logit of "skip the remaining proposer slots" per role [N] (per role and slot [N, S]
        with `stop_per_slot`); None without slots."""
        if self.stop is None:
            return None
        out = self.stop(torch.cat([enc.h_role, enc.h_query[enc.role_batch]], dim=-1))  # [N, 1] or [N, S]
        return out if self.stop_per_slot else out.squeeze(-1)

    def reset_parameters(self) -> None:
        _reset(self)

    def forward(self, enc: Encoded) -> tuple[Tensor, Tensor, Tensor]:
        n, m = enc.h_role.size(0), enc.num_llms
        hq = enc.h_query[enc.role_batch]  # [N, H]
        hl = enc.h_llm.view(-1, m, enc.h_llm.size(-1))[enc.role_batch]  # [N, M, H]
        hr = enc.h_role[:, None, :].expand(n, m, -1)  # [N, M, H]
        pair = torch.cat([hr, hl, hr * hl, hq[:, None, :].expand(n, m, -1)], dim=-1)  # [N, M, 4H]
        proposer = self.proposer(pair).squeeze(-1)  # [N, M]
        synthesizer = self.synthesizer(pair).squeeze(-1)  # [N, M]
        skip = self.skip(torch.cat([enc.h_role, hq], dim=-1)).squeeze(-1)  # [N]
        if self.vote is not None:  # column M: the plurality synthesizer
            synthesizer = torch.cat([synthesizer, self.vote(torch.cat([enc.h_role, hq], dim=-1))], dim=-1)  # [N, M + 1]
        return proposer, synthesizer, skip


class EdgeHead(nn.Module):
    """Shapes: Encoded, cand_edge_index [2, E] -> order logits [N], edge logits [E]."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.order = _mlp(2 * h, h, cfg.dropout)
        self.edge = _mlp(4 * h, h, cfg.dropout)

    def reset_parameters(self) -> None:
        _reset(self)

    def forward(self, enc: Encoded, cand_edge_index: Tensor) -> tuple[Tensor, Tensor]:
        hq = enc.h_query[enc.role_batch]  # [N, H]
        order = self.order(torch.cat([enc.h_role, hq], dim=-1)).squeeze(-1)  # [N]
        cand_edge_index = cand_edge_index.to(enc.h_role.device)
        src, dst = enc.h_role[cand_edge_index[0]], enc.h_role[cand_edge_index[1]]  # [E, H]
        pair = torch.cat([src, dst, src * dst, hq[cand_edge_index[0]]], dim=-1)  # [E, 4H]
        return order, self.edge(pair).squeeze(-1)  # [N], [E]


NODE_STRUCT, GRAPH_STRUCT = 6, 4  # widths of `dag_structure`'s node and graph features


def dag_structure(dag_edge_index: Tensor, batch: Tensor, num_graphs: int) -> tuple[Tensor, Tensor]:
    """Structural encodings of batched DAGs (no learned parameters).

    Shapes: dag_edge_index [2, E] (batched role indices), batch [N] (graph of each role) ->
    node [N, 6] = (in degree, out degree, is source, is sink, level, height), degrees and
    depths divided by n - 1 of the role's graph; graph [G, 4] = (edges / (n(n-1)/2),
    sinks / n, sources / n, longest path / (n - 1)). Level = longest path from a source,
    height = longest path to a sink.
    """
    n_nodes = batch.numel()
    src, dst = dag_edge_index[0], dag_edge_index[1]
    ones = torch.ones(src.numel(), device=batch.device)
    indeg = scatter(ones, dst, 0, dim_size=n_nodes, reduce="sum")  # [N]
    outdeg = scatter(ones, src, 0, dim_size=n_nodes, reduce="sum")  # [N]
    sizes = scatter(torch.ones(n_nodes, device=batch.device), batch, 0, dim_size=num_graphs, reduce="sum")  # [G]
    level = torch.zeros(n_nodes, device=batch.device)
    height = torch.zeros(n_nodes, device=batch.device)
    for _ in range(int(sizes.max().item()) if n_nodes else 0):  # longest paths: relax n times
        level = torch.maximum(level, scatter(level[src] + 1, dst, 0, dim_size=n_nodes, reduce="max"))
        height = torch.maximum(height, scatter(height[dst] + 1, src, 0, dim_size=n_nodes, reduce="max"))
    span = (sizes - 1).clamp(min=1)[batch]  # [N]
    source, sink = (indeg == 0).float(), (outdeg == 0).float()
    node = torch.stack([indeg / span, outdeg / span, source, sink, level / span, height / span], dim=-1)
    pairs = (sizes * (sizes - 1) / 2).clamp(min=1)  # [G]
    per_graph = lambda x: scatter(x, batch, 0, dim_size=num_graphs, reduce="sum")  # noqa: E731
    depth = scatter(level, batch, 0, dim_size=num_graphs, reduce="max")
    graph = torch.stack([per_graph(outdeg) / pairs, per_graph(sink) / sizes.clamp(min=1),
                         per_graph(source) / sizes.clamp(min=1), depth / (sizes - 1).clamp(min=1)], dim=-1)
    return node, graph


class ScoreHead(nn.Module):
    """Graph classifier. Shapes: Encoded, dag_edge_index [2, E_dag] -> logit [G]."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        self.struct = nn.Linear(NODE_STRUCT, cfg.hidden)
        self.mp = MessagePassing(cfg, cfg.score_layers, edge_types=2)
        self.out = _mlp(3 * cfg.hidden + GRAPH_STRUCT, cfg.hidden, cfg.dropout)

    def reset_parameters(self) -> None:
        self.struct.reset_parameters()
        self.mp.reset_parameters()
        _reset(self.out)

    def forward(self, enc: Encoded, dag_edge_index: Tensor) -> Tensor:
        g = enc.h_query.size(0)
        dag_edge_index = dag_edge_index.to(enc.h_role.device)
        node_struct, graph_struct = dag_structure(dag_edge_index, enc.role_batch, g)  # [N, 6], [G, 4]
        edge_index = torch.cat([dag_edge_index, dag_edge_index.flip(0)], dim=1)  # [2, 2·E_dag]
        edge_type = torch.cat([torch.zeros(dag_edge_index.size(1), dtype=torch.long),
                               torch.ones(dag_edge_index.size(1), dtype=torch.long)])
        h = enc.h_role + self.struct(node_struct)  # [N, H]
        h = self.mp(h, edge_index, edge_type.to(enc.h_role.device))  # [N, H]
        pooled = torch.cat([global_mean_pool(h, enc.role_batch, size=g),
                            global_max_pool(h, enc.role_batch, size=g)], dim=-1)  # [G, 2H]
        return self.out(torch.cat([pooled, enc.h_query, graph_struct], dim=-1)).squeeze(-1)  # [G]


def _reset(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()


@dataclass
class PolicyOut:
    """All heads at once. proposer/synthesizer [N, M], skip [N], order [N], edge [E], graph [G]."""

    proposer: Tensor
    synthesizer: Tensor
    skip: Tensor
    order: Tensor
    edge: Tensor
    graph: Tensor


class HieraPolicy(nn.Module):
    """The policy. Build with `HieraPolicy(ArchConfig(...), InputDims(role, llm, query))`.

    Shapes:
        batch: a `graph.py` HeteroData / Batch with G graphs, N roles, G·M LLM nodes.
        dag_edge_index: [2, E_dag] batched role indices (None → the batch's `(role, dag, role)`).
        encode -> Encoded; forward -> PolicyOut (proposer/synthesizer [N, M], skip [N],
        order [N], edge [E] over `(role, cand, role)`, graph [G]).
    """

    def __init__(self, cfg: ArchConfig, dims: InputDims) -> None:
        super().__init__()
        cfg.validate()
        self.cfg, self.dims = cfg, dims
        h = cfg.hidden
        self.proj = nn.ModuleDict({
            "role": nn.Linear(dims.role, h), "llm": nn.Linear(dims.llm, h), "query": nn.Linear(dims.query, h),
        })
        self.type_emb = nn.Embedding(len(NODE_TYPES), h)
        self._init_type_emb()
        self.encoder = MessagePassing(cfg, cfg.layers, edge_types=len(RELATIONS) + 2)
        self.mixture_head = MixtureHead(cfg)
        self.edge_head = EdgeHead(cfg)
        self.score_head = ScoreHead(cfg)

    def reset_parameters(self) -> None:
        for lin in self.proj.values():
            lin.reset_parameters()
        self._init_type_emb()
        self.encoder.reset_parameters()
        self.mixture_head.reset_parameters()
        self.edge_head.reset_parameters()
        self.score_head.reset_parameters()

    def _init_type_emb(self) -> None:
        # A small init (std 0.02, as for BERT/GPT token embeddings), not nn.Embedding's N(0, 1):
        # the projected features are O(1/sqrt(F)) per dimension, so an N(0, 1) type vector swamps
        # them and every role node starts out nearly identical (cosine > 0.95 after the encoder).
        # A LayerNorm after the sum would not help: it rescales the sum, still dominated by the
        # shared type vector. Small, the embedding only tags the node type; features decide.
        nn.init.normal_(self.type_emb.weight, std=0.02)

    def encode(self, batch: HeteroData, dag_edge_index: Tensor | None = None) -> Encoded:
        device = self.type_emb.weight.device
        xs = {t: batch[t].x.to(device) for t in NODE_TYPES}
        sizes = [xs[t].size(0) for t in NODE_TYPES]
        g = num_graphs(batch)
        if g and sizes[1] % g:
            raise ValueError("every graph of a batch must have the same pool (M LLM nodes)")
        offset = dict(zip(NODE_TYPES, [0, sizes[0], sizes[0] + sizes[1]]))
        h = torch.cat([self.proj[t](xs[t]) + self.type_emb.weight[i] for i, t in enumerate(NODE_TYPES)])  # [V, H]
        edges, types = [], []
        for rid, (src, rel, dst) in enumerate(RELATIONS):
            ei = batch[src, rel, dst].edge_index
            edges.append(torch.stack([ei[0] + offset[src], ei[1] + offset[dst]]))
            types.append(torch.full((ei.size(1),), rid, dtype=torch.long))
        dag = self._dag(batch, dag_edge_index)
        edges += [dag, dag.flip(0)]
        types += [torch.full((dag.size(1),), DAG_FWD, dtype=torch.long),
                  torch.full((dag.size(1),), DAG_BACK, dtype=torch.long)]
        edge_index = torch.cat(edges, dim=1).to(h.device)  # [2, E_all]
        h = self.encoder(h, edge_index, torch.cat(types).to(h.device))  # [V, H]
        h_role, h_llm, h_query = torch.split(h, sizes)
        return Encoded(h_role, h_llm, h_query, role_batch(batch).to(h.device), sizes[1] // max(g, 1))

    @staticmethod
    def _dag(batch: HeteroData, dag_edge_index: Tensor | None) -> Tensor:
        if dag_edge_index is not None:
            return dag_edge_index
        if ("role", "dag", "role") in batch.edge_types:
            return batch["role", "dag", "role"].edge_index
        return torch.zeros(2, 0, dtype=torch.long)

    def forward(self, batch: HeteroData, dag_edge_index: Tensor | None = None) -> PolicyOut:
        enc = self.encode(batch, dag_edge_index)
        proposer, synthesizer, skip = self.mixture_head(enc)
        order, edge = self.edge_head(enc, batch["role", "cand", "role"].edge_index)
        graph = self.score_head(enc, self._dag(batch, dag_edge_index))
        return PolicyOut(proposer, synthesizer, skip, order, edge, graph)

    def graph_logits(self, batch: HeteroData, dag_edge_index: Tensor | None = None) -> Tensor:
        """Stage 2: logit of P(good | DAG, query). Shapes: -> [G]."""
        enc = self.encode(batch, dag_edge_index)
        return self.score_head(enc, self._dag(batch, dag_edge_index))
