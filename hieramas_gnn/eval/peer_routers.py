"""Published-style peers of a per-query policy, fitted on train + val single-model outcomes.

Each is fitted from `SingleOutcomes` (every pool model's direct answer to the training and
validation questions, `eval/routers.py`) and the query embeddings of the policy's own encoder,
never on the questions it is evaluated on; at test time each routes a query to one model.

- `best_per_task` (knows the task label): per task (a mixed task's component, else the task),
  the model with the best mean reward on that task's train + val questions; a task the fit never
  saw (out of distribution) goes to the best single model overall.
- `knn_router` (retrieval, as in RouterBench's kNN router): the k nearest training questions by
  cosine similarity of their embeddings vote with each model's mean reward on them; k from
  `KNN_K` chosen on val (fit on train).
- `contrastive_router` (RouterDC, Chen et al. 2024, on the same frozen embedder): a small MLP maps
  a query embedding to a unit vector, each model has a learned unit vector, the score is their
  cosine / τ. Trained with RouterDC's sample-LLM contrastive loss (per training question, each
  of the `top_k` best-reward models is a positive against the `bottom_k` worst) plus its
  sample-sample loss (questions of the same k-means cluster of the embeddings attract, a
  supervised contrastive loss over the batch); questions on which every model scores the same
  carry no routing signal and are left out of the sample-LLM loss. The epoch is chosen on val.

The task label of a question is `task_label(q)`: `meta["component"]` (mixed tasks), else its task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hieramas_gnn.tasks.base import Question

KNN_K = (5, 10, 20, 50)


def task_label(q: Question) -> str:
    """A question's task: its component in a mixed task, else its task name."""
    return str(q.meta.get("component") or q.task)


def _routed_reward(reward: Any, outcomes: Any, choice: np.ndarray) -> float:
    rows = np.arange(len(choice))
    return float(reward(outcomes.correct[rows, choice], outcomes.cost[rows, choice]).mean())


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------- kNN router


@dataclass
class KnnRouter:
    """Route to the model with the best mean reward over the k nearest training questions."""

    models: list[str]
    x: np.ndarray          # [N, F] unit-norm training embeddings
    reward: np.ndarray     # [N, M] each model's reward on each training question
    k: int
    prior: np.ndarray      # [M] mean reward (breaks ties)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Mean reward of each model over each query's k nearest training questions. [Q, F] -> [Q, M]."""
        sim = _normalise(x) @ self.x.T  # [Q, N]
        k = min(self.k, self.x.shape[0])
        near = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # [Q, k]
        return self.reward[near].mean(axis=1) + 1e-9 * self.prior[None, :]

    def choose(self, x: np.ndarray) -> list[str]:
        return [self.models[i] for i in np.argmax(self.scores(x), axis=1)]


def fit_knn_router(x_train: np.ndarray, train: Any, x_val: np.ndarray | None, val: Any | None, reward: Any,
                   ks: Sequence[int] = KNN_K) -> KnnRouter:
    """Neighbours from train; k from `ks` by the routed mean val reward (the smallest on ties)."""
    r = reward(train.correct, train.cost)  # [N, M]
    make = lambda k: KnnRouter(list(train.models), _normalise(x_train), np.asarray(r, float), k, r.mean(0))  # noqa: E731
    if val is None or x_val is None or len(val.question_ids) == 0:
        return make(ks[0])
    scored = [(_routed_reward(reward, val, np.argmax(make(k).scores(x_val), axis=1)), -k) for k in ks]
    return make(-max(scored)[1])


# ---------------------------------------------------------------- contrastive router (RouterDC-style)


@dataclass
class ContrastiveSettings:
    """Hyper-parameters of the contrastive router (RouterDC's defaults where they apply)."""

    dim: int = 64               # width of the shared query / model space
    hidden: int = 256           # hidden width of the query MLP
    tau: float = 0.1            # temperature of the cosine scores
    top_k: int = 3              # positives per question (RouterDC: K+ = 3)
    bottom_k: int = 3           # negatives per question (RouterDC: K- = 3)
    sample_weight: float = 1.0  # weight of the sample-sample loss (RouterDC: λ = 1)
    clusters: int = 5           # k-means clusters of the training embeddings (RouterDC: 5)
    epochs: int = 300           # full passes (mini-batches of `batch`); the best on val is kept
    batch: int = 256
    lr: float = 1e-3
    eval_every: int = 10
    seed: int = 0


@dataclass
class ContrastiveRouter:
    """A trained query encoder and model embeddings; routes to the highest cosine score."""

    models: list[str]
    encoder: Any              # torch.nn.Module: [Q, F] -> [Q, dim]
    model_vectors: Any        # torch.nn.Parameter [M, dim]
    settings: ContrastiveSettings
    epoch: int = 0            # the epoch kept (best on val)
    history: list[tuple[int, float]] = field(default_factory=list)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """cos(query, model) / τ. Shapes: [Q, F] -> [Q, M]."""
        import torch

        with torch.no_grad():
            return _logits(self.encoder, self.model_vectors, torch.as_tensor(np.asarray(x), dtype=torch.float32),
                           self.settings.tau).numpy()

    def choose(self, x: np.ndarray) -> list[str]:
        return [self.models[i] for i in np.argmax(self.scores(x), axis=1)]


def _logits(encoder: Any, vectors: Any, x: Any, tau: float) -> Any:
    return _cosine(encoder(x), vectors, tau)


def _cosine(z: Any, vectors: Any, tau: float) -> Any:
    """cos(z_q, v_m) / τ. Shapes: z [Q, dim], vectors [M, dim] -> [Q, M]."""
    import torch.nn.functional as F

    return F.normalize(z, dim=1) @ F.normalize(vectors, dim=1).T / tau


def _sample_llm_loss(logits: Any, score: Any, s: ContrastiveSettings) -> Any:
    """RouterDC's sample-LLM loss: each top-k model against the bottom-k ones. logits, score [B, M]."""
    import torch

    m = score.shape[1]
    top, bottom = min(s.top_k, m - 1), min(s.bottom_k, m - 1)
    order = torch.argsort(score + 1e-6 * torch.arange(m, dtype=score.dtype), dim=1, descending=True)  # [B, M]
    pos, neg = order[:, :top], order[:, m - bottom:]
    lp, ln = logits.gather(1, pos), logits.gather(1, neg)  # [B, top], [B, bottom]
    neg_sum = torch.logsumexp(ln, dim=1, keepdim=True)  # [B, 1]
    return -(lp - torch.logaddexp(lp, neg_sum)).mean()


def _sample_sample_loss(z: Any, cluster: Any, tau: float) -> Any:
    """Supervised contrastive loss: questions of the same cluster attract. z [B, dim], cluster [B]."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(z, dim=1)
    sim = z @ z.T / tau  # [B, B]
    eye = torch.eye(len(z), dtype=torch.bool)
    same = (cluster[:, None] == cluster[None, :]) & ~eye
    log_p = sim.masked_fill(eye, float("-inf")).log_softmax(dim=1)
    has = same.any(dim=1)
    if not bool(has.any()):
        return sim.sum() * 0.0
    return -(log_p.masked_fill(~same, 0.0).sum(1)[has] / same.sum(1)[has]).mean()


def fit_contrastive_router(x_train: np.ndarray, train: Any, x_val: np.ndarray | None, val: Any | None,
                           reward: Any, settings: ContrastiveSettings | None = None) -> ContrastiveRouter:
    """Train on the training outcomes; keep the epoch with the best routed mean val reward (one
    torch thread: the model is tiny, and more threads only contend)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_contrastive(x_train, train, x_val, val, reward, settings or ContrastiveSettings())
    finally:
        torch.set_num_threads(threads)


def _fit_contrastive(x_train: np.ndarray, train: Any, x_val: np.ndarray | None, val: Any | None, reward: Any,
                     s: ContrastiveSettings) -> ContrastiveRouter:
    import copy

    import torch
    from sklearn.cluster import KMeans

    gen = torch.Generator().manual_seed(s.seed)
    torch.manual_seed(s.seed)  # nn.Linear's init draws from the global generator
    x = torch.as_tensor(np.asarray(x_train), dtype=torch.float32)  # [N, F]
    score = torch.as_tensor(np.asarray(reward(train.correct, train.cost), dtype=np.float32))  # [N, M]
    informative = (score.max(1).values > score.min(1).values)  # every model alike: no routing signal
    k = max(1, min(s.clusters, len(x)))
    cluster = torch.as_tensor(KMeans(n_clusters=k, n_init=10, random_state=s.seed).fit_predict(x.numpy()))
    encoder = torch.nn.Sequential(torch.nn.Linear(x.shape[1], s.hidden), torch.nn.ReLU(), torch.nn.Linear(s.hidden, s.dim))
    vectors = torch.nn.Parameter(torch.randn(score.shape[1], s.dim, generator=gen) * 0.1)
    opt = torch.optim.Adam([*encoder.parameters(), vectors], lr=s.lr)
    router = ContrastiveRouter(list(train.models), encoder, vectors, s)
    best: tuple[float, int, Any] | None = None
    for epoch in range(1, s.epochs + 1):
        for idx in torch.randperm(len(x), generator=gen).split(s.batch):
            z = encoder(x[idx])  # [B, dim]
            logits = _cosine(z, vectors, s.tau)  # [B, M]
            keep = informative[idx]
            loss = _sample_sample_loss(z, cluster[idx], s.tau) * s.sample_weight
            if bool(keep.any()):
                loss = loss + _sample_llm_loss(logits[keep], score[idx][keep], s)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if val is not None and x_val is not None and (epoch % s.eval_every == 0 or epoch == s.epochs):
            got = _routed_reward(reward, val, np.argmax(router.scores(x_val), axis=1))
            router.history.append((epoch, got))
            if best is None or got > best[0] + 1e-12:
                best = (got, epoch, copy.deepcopy((encoder.state_dict(), vectors.detach().clone())))
    if best is not None:
        encoder.load_state_dict(best[2][0])
        with torch.no_grad():
            vectors.copy_(best[2][1])
        router.epoch = best[1]
    else:
        router.epoch = s.epochs
    return router
