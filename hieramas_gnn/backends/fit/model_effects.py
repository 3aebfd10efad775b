"""Per-model stubbornness: a random effect on the behaviour model's own-answer weight.

Models differ in how firmly they keep their own answer after reading peers, beyond what their
strength says: in the real debate logs Qwen3-0.6B barely moves on GSM8K *and* on MMLU, while
Llama-3.2-3B and Mistral-7B follow their peers more than average on both. The effect is a
property of the model, shared across benchmarks, so a model's other settings tell about it.

The model: for model m the own answer counts `own_weight * exp(delta_m)` peers, with delta_m ~
N(0, tau^2). Estimated in two stages, the population parameters (`BehaviourConfig`) held fixed:

* tau: the spread of the per-setting maximum-likelihood deltas over the settings given (each
  setting's parsed rows where the reader faced more than one answer; settings with fewer than
  `MIN_ROWS` such rows, e.g. those at the accuracy ceiling, carry no information and are left out);
* delta_m: the posterior mode given the rows of m in the settings given (the held-out setting
  excluded by the caller), i.e. shrunk towards 0 by the prior; no rows -> 0.

The offline backends use the population value (delta = 0): their pool models have no debate logs.
The system check (`system_fit.system_validation`) reports the figures with and without it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from hieramas_gnn.backends.behaviour import BehaviourConfig
from hieramas_gnn.backends.fit.behaviour_fit import DebateRows, debate_row_parts, predicted_correct

MIN_ROWS = 30  # informative rows (parsed, > 1 option) a setting needs to enter tau's estimate
BOUND = 4.0  # |delta| bound of the per-setting maximum-likelihood estimates


def with_stubbornness(cfg: BehaviourConfig, delta: float) -> BehaviourConfig:
    """`cfg` with the own answer weighted exp(delta) times more."""
    return replace(cfg, own_weight=cfg.own_weight * float(np.exp(delta)))


def _rows(log: Any, parsed_strength: bool) -> tuple[DebateRows, np.ndarray, np.ndarray]:
    """Unit-weight rows, the own-answer flags [R, K] and the peers' support [R, K]."""
    return debate_row_parts(log, parsed_strength)


def _nll(delta: float, unit: DebateRows, own: np.ndarray, peer: np.ndarray, cfg: BehaviourConfig) -> float:
    c = with_stubbornness(cfg, delta)
    rows = DebateRows(**{**unit.__dict__, "support": own * c.own_weight + peer})
    p = np.clip(predicted_correct(rows, c), 1e-6, 1 - 1e-6)
    return -float(np.sum(unit.y * np.log(p) + (1 - unit.y) * np.log1p(-p)))


def _fit(unit: DebateRows, own: np.ndarray, peer: np.ndarray, cfg: BehaviourConfig, keep: np.ndarray,
         tau: float | None) -> float:
    from scipy.optimize import minimize_scalar

    unit, own, peer = unit.subset(keep), own[keep], peer[keep]  # the likelihood is row-wise

    def obj(x: float) -> float:
        prior = 0.0 if tau is None else 0.5 * x * x / max(tau, 1e-6) ** 2
        return _nll(x, unit, own, peer, cfg) + prior

    return float(minimize_scalar(obj, bounds=(-BOUND, BOUND), method="bounded").x)


def informative(unit: DebateRows) -> np.ndarray:
    """Rows where the stubbornness can matter: parsed reply, more than one answer read. [R]"""
    return unit.out_parsed & (unit.mask.sum(axis=1) > 1)


def stubbornness_spread(log: Any, cfg: BehaviourConfig, parsed_strength: bool = True,
                        min_rows: int = MIN_ROWS) -> tuple[float, dict[str, float]]:
    """tau and the per-setting maximum-likelihood deltas it was estimated from."""
    unit, own, peer = _rows(log, parsed_strength)
    rows = log[log["round"] != "0"]
    key = (rows["benchmark"] + "/" + rows["model"] + "/" + rows["team"]).to_numpy()
    info = informative(unit)
    deltas = {}
    for k in sorted(set(key)):
        keep = (key == k) & info
        if keep.sum() >= min_rows:
            deltas[k] = _fit(unit, own, peer, cfg, keep, None)
    tau = float(np.std(list(deltas.values()))) if len(deltas) >= 2 else 0.0
    return tau, deltas


def model_stubbornness(log: Any, model: str, cfg: BehaviourConfig, tau: float,
                       parsed_strength: bool = True) -> tuple[float, int]:
    """(delta, informative rows used) of `model` from its rows in `log` (posterior mode)."""
    mine = log[log["model"] == model]
    if tau <= 0 or not (mine["round"] != "0").any():
        return 0.0, 0
    unit, own, peer = _rows(mine, parsed_strength)
    keep = informative(unit)
    if not keep.any():
        return 0.0, 0
    return round(_fit(unit, own, peer, cfg, keep, tau), 4), int(keep.sum())
