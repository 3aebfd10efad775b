"""System-level check of the behaviour model: re-run the real debates inside the offline world.

The per-step figures (`behaviour_fit.py`) say what one agent does after reading its peers. This
module composes those steps the way the real debate protocols did and compares the *system*
outcome with the logs of `aggregation/debate_turns.csv.gz`:

* round 0 is the real round-0 answers (replayed, unparseable ones stay unparseable);
* every later round is drawn from the behaviour model: each agent reads its own and its peers'
  previous-round (simulated) answers and picks one of them, or re-solves to the correct answer
  nobody holds (`allow_new`, debaters only); then the reply may come out unparseable, as the
  logs' weak models' often do, with the format model's probability (`format_fit.py`: the
  setting's round-0 unparseable share, shifted by whether the agent's previous answer was
  right, wrong or unparseable; offsets fitted on the *training* settings' rows);
* with `model_effects`, the team model's own-answer weight carries its stubbornness
  (`model_effects.py`), estimated from that model's rows in the *other* settings;
* per setting (benchmark x team model, homogeneous teams, as in `strength_vs_aggregation.csv`):
  final mean agent accuracy, final majority vote and its gain over the round-0 vote.

Majority vote (real and simulated alike): the unique most common parsed answer; a tie, or no
parsed answer, counts as wrong (the rule behind `strength_vs_aggregation.csv`).

Held out: `system_validation` fits the behaviour parameters, the format model and the
stubbornness on every *other* setting's rows (leave-one-setting-out) before simulating a
setting, so the check is not a fit to itself: only the held-out setting's round 0 (the replayed
input) enters its simulation.
Simulated figures are means over `reps` Monte-Carlo replicates (seeded, reproducible).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hieramas_gnn.backends.behaviour import BehaviourConfig, logit, option_probs_batch
from hieramas_gnn.backends.fit import behaviour_fit
from hieramas_gnn.backends.fit import model_effects as me
from hieramas_gnn.backends.fit.behaviour_fit import (
    load_debate_rows,
    model_strength,
    predicted_correct,
)
from hieramas_gnn.backends.fit.format_fit import (
    FAIL,
    RIGHT,
    WRONG,
    FormatModel,
    fit_format,
    format_nll,
    format_transitions,
)

A_MAX = 7  # agents per debate in the logs
V = A_MAX + 2  # answer ids per debate: 0 = none/unparseable, 1 = gold, 2.. = distinct wrong answers


@dataclass(frozen=True)
class Debates:
    """Real debates of one or more settings as padded arrays. D debates, R rounds, A agents.

    answers: [D, R, A] answer ids (0 unparseable or absent, 1 the gold answer, >= 2 a wrong one);
    present: [D, A] the agent exists; last: [D] index of the debate's last round;
    strength: [D] the team model's round-0 accuracy on that benchmark; fail: [D] the setting's
    round-0 unparseable rate; setting: [D] index into `names`.
    """

    answers: np.ndarray
    present: np.ndarray
    last: np.ndarray
    strength: np.ndarray
    fail: np.ndarray
    setting: np.ndarray
    names: tuple[str, ...]

    def subset(self, keep: np.ndarray) -> Debates:
        return Debates(self.answers[keep], self.present[keep], self.last[keep], self.strength[keep],
                       self.fail[keep], self.setting[keep], self.names)


def setting_name(benchmark: str, model: str) -> str:
    return f"{benchmark}/{model}"


def _canon(a: str, numeric: bool) -> str:
    if not a or not numeric:
        return a.strip().upper()
    try:
        return repr(float(a.replace(",", "")))
    except ValueError:
        return a.strip()


def load_debates(path: Path | Any, homogeneous: bool = True, parsed_strength: bool = True) -> Debates:
    """The debates of the log at `path` (or a DataFrame of it), homogeneous teams by default
    (`parsed_strength`: see `behaviour_fit.model_strength`)."""
    import pandas as pd


    d = path if isinstance(path, pd.DataFrame) else pd.read_csv(path, keep_default_na=False, dtype=str)
    if homogeneous:
        d = d[d["team"] == "homogeneous"]
    d = d.assign(r=d["round"].astype(int), a=d["agent_idx"].astype(int))
    r0 = d[d["r"] == 0]
    strength = model_strength(r0, parsed_strength)
    fail = (r0["answer"] == "").groupby([r0["benchmark"], r0["model"]]).mean()
    names = tuple(sorted(setting_name(b, m) for b, m in strength.index))
    groups = list(d.groupby(["source_path", "question_id", "benchmark", "model"], sort=True))
    n, rounds = len(groups), int(d["r"].max()) + 1
    answers = np.zeros((n, rounds, A_MAX), dtype=np.int64)
    present = np.zeros((n, A_MAX), dtype=bool)
    last = np.zeros(n, dtype=np.int64)
    st, fl, si = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for i, ((_, _, bench, model), g) in enumerate(groups):
        numeric = bench != "mmlu"
        gold = _canon(g["gold"].iloc[0], numeric)
        vocab = {gold: 1}
        for row in g.itertuples(index=False):
            a = _canon(row.answer, numeric)
            if a:
                answers[i, row.r, row.a] = vocab.setdefault(a, len(vocab) + 1) if a != gold else 1
            present[i, row.a] = True
        if len(vocab) + 1 > V:  # more distinct answers than slots: fold the rarest into "other"
            answers[i] = np.minimum(answers[i], V - 1)
        last[i] = int(g["r"].max())
        st[i], fl[i] = strength[(bench, model)], fail[(bench, model)]
        si[i] = names.index(setting_name(bench, model))
    return Debates(answers, present, last, st, fl, si, names)


def majority_correct(state: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Strict majority vote is right: the unique most common parsed answer is the gold one.

    Shapes: state [..., A] answer ids, present [..., A] -> [...] bool."""
    onehot = (state[..., None] == np.arange(V)) & present[..., None]  # [..., A, V]
    counts = onehot.sum(axis=-2)[..., 1:]  # [..., V-1] parsed answers only
    top = counts.max(axis=-1)
    unique = (counts == top[..., None]).sum(axis=-1) == 1
    return (counts[..., 0] == top) & (top > 0) & unique


def debate_step(state: np.ndarray, present: np.ndarray, strength: np.ndarray, fail: np.ndarray,
                cfg: BehaviourConfig, rng: np.random.Generator, fmt: FormatModel | None = None,
                u_agent: np.ndarray | None = None) -> np.ndarray:
    """One debate round for every agent. Shapes: state [D, S, A], present [D, A], strength and
    fail [D] -> new state [D, S, A]. The choice probabilities are `option_probs_batch`'s (the
    ones the backends sample from); an agent that read no parsed answer re-solves with
    probability sigmoid(resolve utility), else gives a wrong answer (id V-1, "another wrong
    one"). Then the reply is unparseable with the format model's probability given the agent's
    previous state and the setting's round-0 rate `fail` (`fmt` None: never). `u_agent`
    [D, S, A]: each agent's uniform draw, shared by its rounds (as the backends share one per
    model and question; the gold answer is the first option, so the draws are coupled like
    `behaviour.choose`'s); None: fresh."""
    d, s, a = state.shape
    onehot = (state[..., None] == np.arange(V)).astype(float) * present[:, None, :, None]  # [D,S,A,V]
    total = onehot[..., 1:].sum(axis=2)  # [D, S, V-1] support of the parsed answers (col 0 = gold)
    is_gold = np.zeros((d * s, V - 1))
    is_gold[:, 0] = 1.0
    st = np.repeat(strength, s)  # [D*S]
    out = state.copy()
    for j in range(a):
        support = (total + (cfg.own_weight - 1.0) * onehot[:, :, j, 1:]).reshape(d * s, V - 1)
        mask = support > 0
        p, p_new = option_probs_batch(support, is_gold, mask, st, cfg, True)  # [D*S, V-1], [D*S]
        p[:, 0] += p_new
        cum = np.cumsum(p, axis=1)  # [D*S, V-1]
        u = rng.random(d * s) if u_agent is None else u_agent[:, :, j].reshape(d * s)
        choice = 1 + (u[:, None] > cum).sum(axis=1)
        silent = ~mask.any(axis=1)
        p_solve = 1.0 / (1.0 + np.exp(-(cfg.resolve_base + cfg.resolve_slope * logit(st))))
        choice = np.where(silent, np.where(u < p_solve, 1, V - 1), np.minimum(choice, V - 1)).reshape(d, s)
        if fmt is not None:
            prev = np.where(state[:, :, j] == 0, FAIL, np.where(state[:, :, j] == 1, RIGHT, WRONG))  # [D, S]
            dropped = rng.random((d, s)) < fmt.p_fail(fail[:, None], prev)
            choice = np.where(dropped, 0, choice)
        out[:, :, j] = np.where(present[:, None, j], choice, 0)
    return out


def simulate(deb: Debates, cfg: BehaviourConfig, reps: int = 200, seed: int = 0,
             fmt: FormatModel | None = None) -> dict[str, np.ndarray]:
    """Per debate: mean agent accuracy and majority vote at the last round, averaged over reps.

    Returns {"agent_last", "vote_last"}: [D] each (expectations over the replicates)."""
    rng = np.random.default_rng(seed)
    state = np.repeat(deb.answers[:, None, 0, :], reps, axis=1)  # [D, S, A]
    agent = np.zeros((len(deb.last), reps))
    vote = np.zeros((len(deb.last), reps))
    n_agents = deb.present.sum(axis=1)  # [D]
    u_agent = rng.random(state.shape)  # [D, S, A] one judgement draw per agent, all rounds
    for r in range(1, deb.answers.shape[1]):
        state = debate_step(state, deb.present, deb.strength, deb.fail, cfg, rng, fmt, u_agent)
        at = deb.last == r
        agent[at] = ((state[at] == 1) & deb.present[at][:, None, :]).sum(-1) / n_agents[at][:, None]
        vote[at] = majority_correct(state[at], np.repeat(deb.present[at][:, None, :], reps, axis=1))
    return {"agent_last": agent.mean(axis=1), "vote_last": vote.mean(axis=1)}


def real_outcomes(deb: Debates) -> dict[str, np.ndarray]:
    """Per debate: round-0 and last-round mean agent accuracy and majority vote. Each [D]."""
    idx = np.arange(len(deb.last))
    final = deb.answers[idx, deb.last]  # [D, A]
    first = deb.answers[:, 0]
    n = deb.present.sum(axis=1)
    return {"agent_0": ((first == 1) & deb.present).sum(1) / n,
            "agent_last": ((final == 1) & deb.present).sum(1) / n,
            "vote_0": majority_correct(first, deb.present).astype(float),
            "vote_last": majority_correct(final, deb.present).astype(float)}


def per_setting(deb: Debates, sim: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> list[dict]:
    """Rows of the `system` report: real vs simulated figures of every setting in `deb`."""
    rows = []
    for k in sorted(set(deb.setting.tolist())):
        m = deb.setting == k
        vote0 = float(real["vote_0"][m].mean())
        row = {"setting": deb.names[k], "n_debates": int(m.sum()), "strength": float(deb.strength[m][0]),
               "agent_acc_round0": float(real["agent_0"][m].mean()),
               "vote_round0": vote0,
               "real_agent_acc": float(real["agent_last"][m].mean()),
               "sim_agent_acc": float(sim["agent_last"][m].mean()),
               "real_vote": float(real["vote_last"][m].mean()),
               "sim_vote": float(sim["vote_last"][m].mean())}
        row["real_gain"] = row["real_vote"] - vote0
        row["sim_gain"] = row["sim_vote"] - vote0
        rows.append(row)
    return rows


def _summary(rows: list[dict], prefix: str = "sim_") -> dict[str, float | int]:
    """vote_mae, agent_acc_mae and gain_within_005 of the rows' `prefix`-named figures."""
    return {"vote_mae": float(np.mean([abs(r[prefix + "vote"] - r["real_vote"]) for r in rows])),
            "agent_acc_mae": float(np.mean([abs(r[prefix + "agent_acc"] - r["real_agent_acc"]) for r in rows])),
            "gain_within_005": int(sum(abs(r[prefix + "gain"] - r["real_gain"]) <= 0.05 for r in rows))}


@dataclass(frozen=True)
class SystemOptions:
    """How the held-out re-run is fitted. The defaults are the model; the other values are the
    variants and sensitivity checks of docs/BACKENDS.md (`experiments/system_variants.py`).

    parsed_only:     the choice model is fitted on parsed replies (False: an unparseable reply
                     counts as a wrong choice, the fit before the format model).
    parsed_strength: strength = round-0 accuracy over parsed answers (False: over all).
    format_failures: "fitted" (`format_fit`), "neutral" (offsets 0: the round-0 rate, whatever
                     the previous answer) or "none" (every reply parsed).
    model_effects:   the per-model stubbornness (`model_effects`); tau_scale multiplies its prior
                     spread, min_rows is the informative rows a setting needs to enter it.
    figure_weight:   weight of the per-step figures in the behaviour fit (`fit_behaviour`; 0 =
                     likelihood only).
    """

    parsed_only: bool = True
    parsed_strength: bool = True
    format_failures: str = "fitted"
    model_effects: bool = True
    tau_scale: float = 1.0
    min_rows: int = 30
    figure_weight: float = 20.0


def _heldout_nll(held: Any, cfg: BehaviourConfig, fmt: FormatModel | None, opts: SystemOptions) -> tuple[float, int, float]:
    """(summed choice NLL over the parsed replies, their number, summed format NLL) of the rows
    of `held` (a setting's log) under the parameters fitted without it."""
    rows = load_debate_rows(held, own_weight=cfg.own_weight, parsed_strength=opts.parsed_strength)
    p = np.clip(predicted_correct(rows, cfg), 1e-6, 1 - 1e-6)[rows.out_parsed]
    y = rows.y[rows.out_parsed]
    choice = -float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))
    fmt_nll = float(format_nll(fmt or FormatModel(), format_transitions(held)).sum())
    return choice, int(rows.out_parsed.sum()), fmt_nll


def system_validation(path: Path, base: BehaviourConfig, reps: int = 200, seed: int = 0,
                      heldout: bool = True, options: SystemOptions | None = None) -> dict[str, Any]:
    """The `system` section of `hieramas sim validate`.

    heldout=True: every setting is simulated with the behaviour parameters, the format model and
    the stubbornness spread fitted on the rows of all *other* settings (leave-one-setting-out;
    heterogeneous-team rows always stay in the fit), and with its model's stubbornness
    estimated from that model's rows in those other settings; else with `base` as it is and
    everything fitted on the whole log. Each row also carries the figures without the
    stubbornness term (`population_sim_*`, what the backends' models get), summarised under
    "population". `heldout_choice_nll` / `heldout_format_nll`: mean negative log-likelihood of
    the held-out settings' per-step rows (the criterion the model structure was chosen by).
    Returns {"settings": [...], "vote_mae", "agent_acc_mae", "gain_within_005", "population",
    "heldout_choice_nll", "heldout_format_nll", "n_settings", "heldout", "reps",
    "mmlu_pro_5agent": [...]}.
    """
    import pandas as pd


    opts = options or SystemOptions()
    log = pd.read_csv(path, keep_default_na=False, dtype=str)
    deb = load_debates(log, parsed_strength=opts.parsed_strength)
    real = real_outcomes(deb)
    rows: list[dict] = []
    nll = np.zeros(3)  # choice NLL, parsed rows, format NLL
    n_format = 0
    for k, name in enumerate(deb.names):
        m = deb.setting == k
        bench, model = name.split("/", 1)
        held = (log["benchmark"] == bench) & (log["model"] == model) & (log["team"] == "homogeneous")
        cfg, train = base, log
        if heldout:
            train = log[~held]
            cfg = behaviour_fit.fit_behaviour(train, base=base, parsed_only=opts.parsed_only,
                                              parsed_strength=opts.parsed_strength,
                                              figure_weight=opts.figure_weight)
        fmt = {"fitted": fit_format, "neutral": lambda _: FormatModel(), "none": lambda _: None}[opts.format_failures](train)
        delta, n_info = 0.0, 0
        if opts.model_effects:
            tau, _ = me.stubbornness_spread(train, cfg, opts.parsed_strength, opts.min_rows)
            delta, n_info = me.model_stubbornness(train, model, cfg, tau * opts.tau_scale, opts.parsed_strength)
        sub, real_k = deb.subset(m), {key: v[m] for key, v in real.items()}
        pop = simulate(sub, cfg, reps=reps, seed=seed + k, fmt=fmt)
        full = simulate(sub, me.with_stubbornness(cfg, delta), reps=reps, seed=seed + k, fmt=fmt) if delta else pop
        row = per_setting(sub, full, real_k)[0]
        alt = per_setting(sub, pop, real_k)[0]
        row.update({"stubbornness": delta, "stubbornness_rows": n_info,
                    **{f"population_sim_{x}": alt[f"sim_{x}"] for x in ("vote", "gain", "agent_acc")}})
        rows.append(row)
        nll += _heldout_nll(log[held], me.with_stubbornness(cfg, delta), fmt, opts)
        n_format += int((log[held]["round"] != "0").sum())
    return {"heldout": "leave-one-setting-out" if heldout else "none", "reps": reps,
            "settings": rows, "n_settings": len(rows), **_summary(rows),
            "population": _summary(rows, "population_sim_"),
            "heldout_choice_nll": float(nll[0] / max(nll[1], 1)),
            "heldout_format_nll": float(nll[2] / max(n_format, 1)),
            "mmlu_pro_5agent": mmlu_pro_transitions(path.parent / "mmlu_pro_5agent_debate_transitions.csv",
                                                    base, seed=seed)}


def mmlu_pro_transitions(path: Path, cfg: BehaviourConfig, seed: int = 0, n_q: int = 20000,
                         sigma_b: float | None = None) -> list[dict]:
    """Per-agent round-1 -> round-2 transitions of the heterogeneous 5-model MMLU-Pro debate.

    Only per-agent counts exist, so round 1 is generated: agent i right with probability
    sigmoid(theta_i - b), b ~ N(0, sigma_b) per question (shared, so errors correlate), theta_i
    set so each agent's round-1 accuracy matches the real one; wrong answers drawn from a
    per-question Dirichlet(0.7) over the 9 wrong options (as `sim/` does). sigma_b is chosen so
    the round-1 plurality matches the real 0.817 (the repo's own group figure). Round 2 is the
    behaviour model with each agent's round-1 accuracy as its strength.
    """
    import pandas as pd

    if not path.exists():
        return []
    t = pd.read_csv(path)
    acc = t["round1_acc_of_valid"].to_numpy(float)  # [M]
    rng = np.random.default_rng(seed)
    sigma = sigma_b if sigma_b is not None else _calibrate_sigma(acc, 0.817, seed)
    state = _round1(acc, sigma, n_q, rng)  # [Q, M]
    m = len(acc)
    deb_state = state[:, None, :]  # [Q, 1, M]
    present = np.ones((n_q, m), dtype=bool)
    out_state = np.zeros_like(deb_state)
    for j in range(m):  # each agent with its own strength
        step = debate_step(deb_state, present, np.full(n_q, acc[j]), np.zeros(n_q), cfg, rng)
        out_state[:, :, j] = step[:, :, j]
    before, after = state == 1, out_state[:, 0] == 1  # [Q, M]
    rows = []
    for j, r in enumerate(t.itertuples(index=False)):
        c, w = before[:, j], ~before[:, j]
        rows.append({"model": r.model, "real_round1_acc": float(acc[j]), "sim_round1_acc": float(c.mean()),
                     "real_round2_acc": float(r.round2_acc_of_valid), "sim_round2_acc": float(after[:, j].mean()),
                     "real_p_c_to_w": float(r.p_C_to_W), "sim_p_c_to_w": float((~after[c, j]).mean()),
                     "real_p_w_to_c": float(r.p_W_to_C), "sim_p_w_to_c": float(after[w, j].mean())})
    return rows


def _round1(acc: np.ndarray, sigma: float, n_q: int, rng: np.random.Generator) -> np.ndarray:
    """Round-1 answer ids [Q, M] (1 = right, 2..10 = the 9 wrong options of MMLU-Pro)."""
    from scipy.optimize import brentq

    b = rng.normal(0.0, sigma, n_q)  # [Q]
    theta = np.array([brentq(lambda x: np.mean(1 / (1 + np.exp(-(x - b)))) - a, -20, 20) for a in acc])
    right = rng.random((n_q, len(acc))) < 1 / (1 + np.exp(-(theta[None, :] - b[:, None])))
    w = rng.dirichlet(np.full(9, 0.7), size=n_q)  # [Q, 9]
    cum = w.cumsum(axis=1)
    wrong = 2 + (rng.random((n_q, len(acc)))[..., None] > cum[:, None, :]).sum(-1)  # [Q, M]
    return np.where(right, 1, np.minimum(wrong, V - 1))


def _calibrate_sigma(acc: np.ndarray, target: float, seed: int) -> float:
    """sigma_b whose simulated round-1 plurality accuracy is closest to `target` (grid)."""
    grid = np.linspace(0.0, 4.0, 17)
    best, err = 0.0, np.inf
    for s in grid:
        st = _round1(acc, float(s), 4000, np.random.default_rng(seed))
        pres = np.ones((4000, len(acc)), dtype=bool)
        v = _plurality_first(st, pres)
        if abs(v - target) < err:
            best, err = float(s), abs(v - target)
    return best


def _plurality_first(state: np.ndarray, present: np.ndarray) -> float:
    """Plurality vote accuracy, ties broken at random (the group figure's rule is not stated)."""
    onehot = (state[..., None] == np.arange(V)) & present[..., None]
    counts = onehot.sum(axis=-2)[..., 1:].astype(float)
    top = counts.max(axis=-1, keepdims=True)
    n_top = (counts == top).sum(-1)
    return float(np.mean((counts[..., 0] == top[..., 0]) / n_top))


def summary_json(report: dict) -> str:
    return json.dumps(report, indent=2)
