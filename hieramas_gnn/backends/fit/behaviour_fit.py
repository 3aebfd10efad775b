"""Calibrate and check the behaviour model against real debate logs.

Reads `aggregation/debate_turns.csv.gz` (one row per agent answer; rounds >= 1 are answers
given after reading the other agents' previous-round answers), turns every such row into the
behaviour model's inputs (own previous answer, peers' answers, which are correct, the model's
round-0 accuracy as its strength), fits `BehaviourConfig` by maximum likelihood of "the new
answer is correct", and computes the figures `hieramas sim validate` reports:
P(correct | k of 3 previous answers correct) on homogeneous 3-agent teams (unparseable replies
count as wrong, as in the logs' own tables), P(C->W) and P(W->C) on parsed rows.

The simulated figures are exact expectations under the model (no sampling noise), computed
with the same `option_probs_batch` the backends sample from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hieramas_gnn.backends.behaviour import (
    FIT_PARAMS,
    BehaviourConfig,
    logit,
    option_probs_batch,
)
from hieramas_gnn.backends.fit.format_fit import (
    FAIL,
    RIGHT,
    WRONG,
    FormatModel,
    fit_format,
    round0_fail_rates,
)

K_MAX = 8  # max options per row (7 agents + nothing else)
STRONG = 0.7  # round-0 accuracy splitting "strong" from "weak" models in the strength figures
N_REQUIRED = 6  # the first six figures are the fidelity bars


@dataclass(frozen=True)
class DebateRows:
    """Rows of answers given after an exchange, as arrays. R rows, K options.

    support, correct, mask: [R, K]; strength: [R] (round-0 accuracy of the model on that
    benchmark); y: [R] new answer correct; parsed: [R] own previous and new answer both parsed;
    own_correct: [R]; k3: [R] number correct of the 3 previous answers for homogeneous 3-agent
    teams, -1 otherwise; n_correct_peers, n_peers: [R]; out_parsed: [R] the new answer was
    parsed; prev_state: [R] the own previous answer's `format_fit` state code (FAIL / RIGHT /
    WRONG); base_fail: [R] the setting's round-0 unparseable share.
    """

    support: np.ndarray
    correct: np.ndarray
    mask: np.ndarray
    strength: np.ndarray
    y: np.ndarray
    parsed: np.ndarray
    own_correct: np.ndarray
    k3: np.ndarray
    n_correct_peers: np.ndarray
    n_peers: np.ndarray
    out_parsed: np.ndarray
    prev_state: np.ndarray
    base_fail: np.ndarray

    def subset(self, keep: np.ndarray) -> DebateRows:
        return DebateRows(**{k: v[keep] for k, v in self.__dict__.items()})


def _same(a: str, gold: str, numeric: bool) -> bool:
    if numeric:
        try:
            return abs(float(a.replace(",", "")) - float(gold.replace(",", ""))) < 1e-6
        except ValueError:
            return a.strip() == gold.strip()
    return a.strip().upper() == gold.strip().upper()


def model_strength(r0: Any, parsed_only: bool = False) -> Any:
    """Strength of each (benchmark, model): its round-0 accuracy, unparseable answers counted
    wrong (`parsed_only`: over parsed answers only; see docs/BACKENDS.md for both measured)."""
    if parsed_only:
        r0 = r0[r0["answer"] != ""]
    return r0.assign(c=r0["correct"].astype(int)).groupby(["benchmark", "model"])["c"].mean()


def read_log(path: Path | Any):
    """The debate log as a DataFrame of strings (`path` may already be one)."""
    import pandas as pd

    return path if isinstance(path, pd.DataFrame) else pd.read_csv(path, keep_default_na=False, dtype=str)


def load_debate_rows(path: Path | Any, own_weight: float = 1.0, parsed_strength: bool = True) -> DebateRows:
    """Read the debate log (a path or its DataFrame) into arrays (support uses `own_weight`
    for the own previous answer; `parsed_strength`: see `model_strength`)."""
    rows, own_flag, peer_count = debate_row_parts(path, parsed_strength)
    return _with_own_weight(rows, own_flag, peer_count, own_weight)


def debate_row_parts(path: Path | Any, parsed_strength: bool = True) -> tuple[DebateRows, np.ndarray, np.ndarray]:
    """(rows with unit own weight, own-answer flags [R, K], the peers' support [R, K]) of the
    debate log in one pass: `load_debate_rows(log, w).support == own_flags * w + peer_support`,
    so fits over the own weight read the log once."""
    d = read_log(path)
    r0 = d[d["round"] == "0"]
    strength = model_strength(r0, parsed_strength).to_dict()  # {(benchmark, model): float}
    f0 = round0_fail_rates(d).to_dict()  # {(benchmark, model, team): float}
    rows = d[d["round"] != "0"]
    n = len(rows)
    own_flag = np.zeros((n, K_MAX))
    peer_count = np.zeros((n, K_MAX))
    correct = np.zeros((n, K_MAX))
    mask = np.zeros((n, K_MAX), dtype=bool)
    out = {k: np.zeros(n) for k in ("strength", "y", "parsed", "own_correct", "k3", "ncp", "np",
                                    "out_parsed", "prev", "f0")}
    columns = ("benchmark", "model", "team", "n_agents", "gold", "answer", "correct", "own_previous_answer",
               "peer_answers")
    for i, (benchmark, model, team, n_agents, gold, answer, correct_, own_prev, peer_answers) in enumerate(
            zip(*(rows[c].tolist() for c in columns))):
        numeric = benchmark != "mmlu"
        peers = [p for p in json.loads(peer_answers or "[]")]
        answers: list[str] = []
        for j, a in enumerate([own_prev, *peers]):
            if not a:
                continue
            if a not in answers:
                answers.append(a)
            idx = answers.index(a)
            (own_flag if j == 0 else peer_count)[i, idx] += 1
        for idx, a in enumerate(answers):
            correct[i, idx] = float(_same(a, gold, numeric))
            mask[i, idx] = True
        own_c = bool(own_prev) and _same(own_prev, gold, numeric)
        ncp = sum(bool(p) and _same(p, gold, numeric) for p in peers)
        out["strength"][i] = strength[(benchmark, model)]
        out["y"][i] = float(correct_)
        out["parsed"][i] = float(bool(answer) and bool(own_prev))
        out["own_correct"][i] = float(own_c)
        homog3 = team == "homogeneous" and n_agents == "3"
        out["k3"][i] = own_c + ncp if homog3 else -1
        out["ncp"][i], out["np"][i] = ncp, len(peers)
        out["out_parsed"][i] = float(bool(answer))
        out["prev"][i] = RIGHT if own_c else (WRONG if own_prev else FAIL)
        out["f0"][i] = f0[(benchmark, model, team)]
    unit = DebateRows(
        support=own_flag + peer_count, correct=correct, mask=mask,
        strength=out["strength"], y=out["y"], parsed=out["parsed"].astype(bool),
        own_correct=out["own_correct"].astype(bool), k3=out["k3"].astype(int),
        n_correct_peers=out["ncp"].astype(int), n_peers=out["np"].astype(int),
        out_parsed=out["out_parsed"].astype(bool), prev_state=out["prev"].astype(int), base_fail=out["f0"],
    )
    return unit, own_flag, peer_count


def _with_own_weight(rows: DebateRows, own_flag: np.ndarray, peer: np.ndarray, w: float):
    return DebateRows(**{**rows.__dict__, "support": own_flag * w + peer})


def predicted_correct(rows: DebateRows, cfg: BehaviourConfig) -> np.ndarray:
    """P(new answer correct | it is parsed) per row under the model (debaters may re-solve; an
    agent that read no parsed answer re-solves with probability sigmoid(resolve utility), as in
    `system_fit.debate_step`). Shape [R]."""
    p, p_new = option_probs_batch(rows.support, rows.correct, rows.mask, rows.strength, cfg, True)
    u_new = cfg.resolve_base + cfg.resolve_slope * logit(rows.strength)  # [R]
    silent = ~rows.mask.any(axis=1)
    return np.where(silent, 1.0 / (1.0 + np.exp(-u_new)), (p * rows.correct).sum(axis=1) + p_new)


def parse_probability(rows: DebateRows, fmt: FormatModel | None) -> np.ndarray:
    """P(the new answer is parsed) per row under the format model (None: always). Shape [R]."""
    if fmt is None:
        return np.ones(len(rows.y))
    return 1.0 - fmt.p_fail(rows.base_fail, rows.prev_state)


def figure_masks(rows: DebateRows) -> list[tuple[str, np.ndarray, bool]]:
    """(name, row mask, is a C->W rate) of every figure: the six fidelity figures first, then the
    conditional and strength-split rates behind the documented assumptions."""
    c, w = rows.parsed & rows.own_correct, rows.parsed & ~rows.own_correct
    wrong_peers = rows.n_peers - rows.n_correct_peers
    strong = rows.strength >= STRONG
    some_right = rows.n_correct_peers >= 1
    figs = [(f"P(correct | {k} of 3 correct)", rows.k3 == k, False) for k in range(4)]
    figs += [("P(C->W)", c, True), ("P(W->C)", w, False),
             ("P(C->W | peer majority wrong)", c & (wrong_peers > rows.n_peers / 2), True),
             ("P(W->C | right answer a peer minority)", w & some_right & (rows.n_correct_peers < rows.n_peers / 2), False),
             ("P(W->C | peer majority right)", w & (rows.n_correct_peers > rows.n_peers / 2), False),
             (f"P(C->W), models with acc >= {STRONG}", c & strong, True),
             (f"P(C->W), models with acc < {STRONG}", c & ~strong, True),
             (f"P(W->C | >= 1 peer right), acc >= {STRONG}", w & some_right & strong, False),
             (f"P(W->C | >= 1 peer right), acc < {STRONG}", w & some_right & ~strong, False)]
    return figs


def fit_behaviour(path: Path | Any, base: BehaviourConfig | None = None, iters: int = 1000,
                  figure_weight: float = 20.0, n_figures: int = 0,
                  required_weight: float = 1.0, names: tuple[str, ...] = FIT_PARAMS,
                  parsed_only: bool = True, parsed_strength: bool = True) -> BehaviourConfig:
    """Fit the parameters `names` (default all of `FIT_PARAMS`) on the debate log at `path`
    (a path or its DataFrame); the others keep `base`'s values.

    Objective: mean negative log-likelihood of "the new answer is correct" over the rows whose
    new answer was parsed (`parsed_only`; False: over all rows, an unparseable reply counted as a
    wrong choice, the fit before the format model), plus `figure_weight` times the squared error
    of the reported figures (the first `n_figures`; 0 = all; the six fidelity figures count
    `required_weight` times), plus a small ridge term. The figures count an unparseable reply
    wrong, as the logs' own tables do, so with `parsed_only` the simulated figure of a row is
    P(correct | parsed) x P(parsed) under the format model fitted on the same rows.
    """
    from scipy.optimize import minimize

    base = base or BehaviourConfig()
    log = read_log(path)
    unit, own_flag, peer = debate_row_parts(log, parsed_strength)  # own_flag [R, K]: 1 where the own answer sits
    fmt = fit_format(log) if parsed_only else None
    p_parse = parse_probability(unit, fmt)  # [R]
    fit_rows = unit.out_parsed if parsed_only else np.ones(len(unit.y), dtype=bool)

    groups = np.array([m for _, m, _ in figure_masks(unit)][: n_figures or None])  # [G, R]
    weights = np.array([required_weight if i < N_REQUIRED else 1.0 for i in range(len(groups))])

    # The model's prediction depends on a row only through its options and strength, and the
    # log's 8k rows hold a few hundred distinct ones: the objective is evaluated on those, with
    # each row's terms summed into its pattern (the same objective, ~10x fewer rows per call).
    key = np.concatenate([own_flag, peer, unit.correct, unit.mask, unit.strength[:, None]], axis=1)
    _, first, pattern = np.unique(key, axis=0, return_index=True, return_inverse=True)
    pattern = pattern.reshape(-1)
    patterns, n_patterns = unit.subset(first), len(first)
    own_u, peer_u = own_flag[first], peer[first]
    n_fit = int(fit_rows.sum())
    right = np.bincount(pattern, weights=unit.y * fit_rows, minlength=n_patterns)  # fit rows answered right
    wrong = np.bincount(pattern, weights=(1 - unit.y) * fit_rows, minlength=n_patterns)
    # [G, P]: P(parsed) of each figure's rows, summed per pattern
    parse_mass = np.array([np.bincount(pattern, weights=g * p_parse, minlength=n_patterns) for g in groups])
    group_size = groups.sum(axis=1)
    real_figure = (groups * unit.y).sum(axis=1) / group_size

    def nll(theta: np.ndarray) -> float:
        cfg = base.with_params(theta, names)
        rows = _with_own_weight(patterns, own_u, peer_u, cfg.own_weight)
        p = np.clip(predicted_correct(rows, cfg), 1e-6, 1 - 1e-6)
        ll = float(right @ np.log(p) + wrong @ np.log1p(-p)) / n_fit
        # The reported figures are matched explicitly: squared error per figure, weighted so
        # that a 0.05 miss costs about as much as the whole likelihood term moves.
        fig = weights @ ((parse_mass @ p) / group_size - real_figure) ** 2
        return -ll + figure_weight * float(fig) + 1e-3 * float(np.sum(theta**2))

    # Powell's derivative-free search: the objective has kinks where `own_weight` crosses a
    # whole number (support ties decide which option gets the plurality bonus), where L-BFGS
    # with numerical gradients stopped early depending on its start (held-out fits ended at
    # objective 0.58 or 0.28 instead of 0.27); Powell reaches the same optimum from the defaults,
    # the old and the new committed fit.
    res = minimize(nll, np.array(base.params(names)), method="Powell",
                   options={"maxiter": iters * 20, "xtol": 1e-4, "ftol": 1e-9})
    return base.with_params([round(float(x), 4) for x in res.x], names)


def behaviour_figures(path: Path | Any, cfg: BehaviourConfig, fmt: FormatModel | None = None,
                      parsed_only: bool = True) -> list[dict[str, float | str]]:
    """Real vs simulated figures (see `figure_masks`); C->W rates are 1 - P(correct). An
    unparseable reply counts wrong on both sides: the simulated figure of a row is
    P(correct | parsed) x P(parsed), the latter from `fmt` (default: fitted on the same log;
    `parsed_only=False`: every reply parsed, the fit before the format model)."""
    log = read_log(path)
    rows = load_debate_rows(log, own_weight=cfg.own_weight)
    if parsed_only and fmt is None:
        fmt = fit_format(log)
    pred = predicted_correct(rows, cfg) * parse_probability(rows, fmt if parsed_only else None)
    out: list[dict[str, float | str]] = []
    for name, sel, flip in figure_masks(rows):
        real, sim = float(rows.y[sel].mean()), float(pred[sel].mean())
        out.append({"name": name, "real": 1 - real if flip else real, "sim": 1 - sim if flip else sim,
                    "n": int(sel.sum())})
    return out
