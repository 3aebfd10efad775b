"""An IRT-style fit of real per-question outcomes: ability per model and domain, difficulty per item.

    P(model m answers item i correctly) = sigmoid(theta[m, domain(i)] - b[i])

Abilities get a hierarchical prior (each domain's ability is shrunk towards the model's mean
ability, sd `tau`), difficulties a N(0, `sigma_b`) prior, so items every model got right (or
wrong) stay finite. The MAP estimate is found by alternating one-dimensional Newton steps, which
are exact per parameter because the parameters of one block do not interact.

Shared item difficulty is what makes simulated errors correlated across models: a hard item is
hard for every model. `simulate_heldout` draws a held-out item's difficulty from the fitted
difficulties of the same domain (the simulator does not know it), then draws every model's
outcome on it; this is what `hieramas sim validate` compares with the real held-out outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IRTFit:
    """Fitted figures. M models, D domains, Q items.

    models: [M] names; domains: [D] names; theta: [M, D] abilities; items: [Q] ids;
    item_domain: [Q] domain index; b: [Q] difficulties.
    """

    models: list[str]
    domains: list[str]
    theta: np.ndarray
    items: list[str]
    item_domain: np.ndarray
    b: np.ndarray

    def p_correct(self) -> np.ndarray:
        """Model-implied P(correct) for every fitted item. Shape [Q, M]."""
        return _sigmoid(self.theta[:, self.item_domain].T - self.b[:, None])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def outcome_matrix(df, domain_col: str) -> tuple[np.ndarray, list[str], list[str], np.ndarray, list[str]]:
    """Long table -> (Y [Q, M] with NaN for missing, items, models, item_domain [Q], domains)."""
    wide = df.pivot_table(index="question_id", columns="model", values="correct", aggfunc="first")
    items = [str(i) for i in wide.index]
    models = [str(m) for m in wide.columns]
    dom_of = df.drop_duplicates("question_id").set_index("question_id")[domain_col]
    domains = sorted(set(dom_of.astype(str)))
    d_index = {d: j for j, d in enumerate(domains)}
    item_domain = np.array([d_index[str(dom_of[i])] for i in wide.index])
    return wide.to_numpy(dtype=float), items, models, item_domain, domains


def fit_irt(
    y: np.ndarray, item_domain: np.ndarray, n_domains: int, *, sigma_b: float = 2.0,
    tau: float = 0.5, iters: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP fit. y: [Q, M] in {0, 1, NaN}; item_domain: [Q]. Returns (theta [M, D], b [Q])."""
    q, m = y.shape
    seen = ~np.isnan(y)  # [Q, M]
    y0 = np.nan_to_num(y)
    theta = np.zeros((m, n_domains))
    b = np.zeros(q)
    onehot = np.zeros((q, n_domains))
    onehot[np.arange(q), item_domain] = 1.0  # [Q, D]
    for _ in range(iters):
        for _newton in range(2):
            p = _sigmoid(theta[:, item_domain].T - b[:, None])  # [Q, M]
            resid = np.where(seen, y0 - p, 0.0)
            w = np.where(seen, p * (1 - p), 0.0)
            grad_b = -resid.sum(axis=1) - b / sigma_b**2
            hess_b = -w.sum(axis=1) - 1.0 / sigma_b**2
            b = b - grad_b / hess_b
        for _newton in range(2):
            p = _sigmoid(theta[:, item_domain].T - b[:, None])
            resid = np.where(seen, y0 - p, 0.0)
            w = np.where(seen, p * (1 - p), 0.0)
            mean_theta = _domain_weighted_mean(theta, onehot, seen)  # [M]
            grad_t = (resid.T @ onehot) - (theta - mean_theta[:, None]) / tau**2  # [M, D]
            hess_t = -(w.T @ onehot) - 1.0 / tau**2
            theta = theta - grad_t / hess_t
    return theta, b


def _domain_weighted_mean(theta: np.ndarray, onehot: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Each model's ability averaged over domains, weighted by how many items it has there."""
    counts = seen.T.astype(float) @ onehot  # [M, D]
    return (theta * counts).sum(axis=1) / np.maximum(counts.sum(axis=1), 1.0)


def fit_table(df, domain_col: str, **kw) -> IRTFit:
    """Fit a long outcome table (`question_id, model, correct, <domain_col>`)."""
    y, items, models, item_domain, domains = outcome_matrix(df, domain_col)
    theta, b = fit_irt(y, item_domain, len(domains), **kw)
    return IRTFit(models, domains, theta, items, item_domain, b)


def simulate_heldout(
    fit: IRTFit, item_domain: np.ndarray, rng: np.random.Generator, reps: int = 20
) -> np.ndarray:
    """Simulated outcomes of every fitted model on unseen items of the given domains.

    Each item's difficulty is drawn from the fitted difficulties of its domain; `reps`
    independent replicates are stacked. Returns [reps * Q, M] in {0, 1}.
    """
    pools = [fit.b[fit.item_domain == d] for d in range(len(fit.domains))]
    allb = fit.b
    out = []
    for _ in range(reps):
        b = np.array([rng.choice(pools[d] if len(pools[d]) else allb) for d in item_domain])
        p = _sigmoid(fit.theta[:, item_domain].T - b[:, None])  # [Q, M]
        out.append((rng.random(p.shape) < p).astype(float))
    return np.concatenate(out, axis=0)


def error_corr(y: np.ndarray) -> np.ndarray:
    """Pairwise Pearson correlation of error indicators. y: [Q, M] -> [M, M] (NaN for constant)."""
    e = 1.0 - y
    e = e - e.mean(axis=0)
    sd = np.sqrt((e**2).mean(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (e.T @ e / len(e)) / np.outer(sd, sd)


def split_items(items: list[str], heldout_frac: float, salt: str = "heldout") -> np.ndarray:
    """Deterministic held-out mask by hashing item ids (stable across runs and machines). [Q]"""
    import hashlib

    def frac(i: str) -> float:
        h = hashlib.sha256(f"{salt}:{i}".encode()).digest()
        return int.from_bytes(h[:8], "little") / 2**64

    return np.array([frac(i) < heldout_frac for i in items])
