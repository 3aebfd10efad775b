"""Format failures of debaters: when does a reply after an exchange come out unparseable?

In the real debate logs (`aggregation/debate_turns.csv.gz`) weak models often write replies from
which no answer can be extracted (MMLU: 19-29 % for Mistral-7B, 35-47 % for Llama-3.2-3B). Those
failures are not independent of the debate: an agent whose previous answer was *wrong* fails
more often than one whose previous answer was right (MMLU Mistral-7B: 22 % vs 5 %), and a
failure tends to repeat. Since an unparseable reply does not vote, this filters wrong answers out
of the final majority, part of how weak teams gain by debating.

The model: P(unparseable at round r) = sigmoid(logit(f0) + offset[state at round r-1]), with f0
the setting's round-0 unparseable share (the replayed round; clipped to [0.001, 0.999]) and one
offset per previous state (right, wrong, unparseable), fitted by maximum likelihood on the rows of
the settings given (a held-out setting's later rounds never enter). The behaviour model itself
(`behaviour.py`) describes the *choice* among answers, fitted on parsed replies only: the offline
backends' models answer in format, and a reply's failure is this model's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FAIL, RIGHT, WRONG = 0, 1, 2  # previous-round state codes (the order of `FormatModel.offsets`)
_CLIP = 1e-3


@dataclass(frozen=True)
class FormatModel:
    """Logit offsets of P(unparseable) after a right, a wrong and an unparseable answer."""

    after_right: float = 0.0
    after_wrong: float = 0.0
    after_fail: float = 0.0

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(3)
        out[[FAIL, RIGHT, WRONG]] = [self.after_fail, self.after_right, self.after_wrong]
        return out

    def p_fail(self, base_rate: np.ndarray, prev_state: np.ndarray) -> np.ndarray:
        """P(unparseable). base_rate: the setting's round-0 rate; prev_state: FAIL / RIGHT /
        WRONG codes; broadcast together (e.g. [D, 1] and [D, S] -> [D, S])."""
        b = np.clip(base_rate, _CLIP, 1 - _CLIP)
        z = np.log(b) - np.log1p(-b) + self.offsets[prev_state]
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, float]:
        return {"after_right": self.after_right, "after_wrong": self.after_wrong, "after_fail": self.after_fail}


def round0_fail_rates(log: Any) -> Any:
    """Round-0 unparseable share per (benchmark, model, team) of the log (a DataFrame)."""
    r0 = log[log["round"] == "0"]
    return (r0["answer"] == "").groupby([r0["benchmark"], r0["model"], r0["team"]]).mean().rename("f0")


def format_transitions(log: Any) -> Any:
    """Rows with a previous round: `f0` (setting's round-0 rate), `prev` (state code at r-1),
    `fail` (1.0 = unparseable now)."""
    d = log.assign(r=log["round"].astype(int), fail=(log["answer"] == "").astype(float),
                   state=np.where(log["answer"] == "", FAIL, np.where(log["correct"] == "1", RIGHT, WRONG)))
    prev = d[["source_path", "question_id", "agent_idx", "r", "state"]].assign(r=d["r"] + 1)
    m = d.merge(prev, on=["source_path", "question_id", "agent_idx", "r"], suffixes=("", "_prev"))
    m = m.join(round0_fail_rates(log), on=["benchmark", "model", "team"])
    return m.rename(columns={"state_prev": "prev"})


def format_nll(fmt: FormatModel, trans: Any) -> np.ndarray:
    """Negative log-likelihood of every transition row under `fmt`. Shape [N]."""
    p = np.clip(fmt.p_fail(trans["f0"].to_numpy(float), trans["prev"].to_numpy(int)), 1e-9, 1 - 1e-9)
    y = trans["fail"].to_numpy(float)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def fit_format(log: Any) -> FormatModel:
    """Maximum-likelihood offsets on the rows of `log` (a DataFrame of the debate log)."""
    from scipy.optimize import minimize

    trans = format_transitions(log)
    if trans.empty:
        return FormatModel()

    def nll(x: np.ndarray) -> float:
        return float(format_nll(FormatModel(*x), trans).mean()) + 1e-4 * float(np.sum(x**2))

    res = minimize(nll, np.zeros(3), method="L-BFGS-B")
    return FormatModel(*(round(float(v), 4) for v in res.x))
