"""Paired statistics over queries: the one place a gap between two methods is judged.

Every claim in the demo, the reports and the experiments compares two methods on the *same*
questions, so the noise band is that of the mean per-query difference (queries both get right or
both get wrong cancel). `paired_gap(a, b)` gives the gap, its standard error and a paired t-test
p-value (scipy); `verdict(gap)` says BEATS / TIES / does NOT beat with a two-standard-error band.
`unpaired_band` is the conservative binomial band for rows without per-query vectors.
`task_mean_weights` weighs the questions of a mixed task so that a mean over questions is the mean
over its components (the metric `accuracy_task_mean`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PairedGap:
    """mean(a - b) over n queries, its standard error and the paired t-test p-value."""

    gap: float
    se: float
    n: int
    p_value: float

    @property
    def band(self) -> float:
        """Two standard errors: a gap inside it is a tie."""
        return 2.0 * self.se

    def to_dict(self) -> dict:
        return {"gap": round(self.gap, 4), "se": round(self.se, 4), "n": self.n,
                "p_value": round(self.p_value, 4) if not math.isnan(self.p_value) else None}


def paired_gap(a: Sequence[float], b: Sequence[float]) -> PairedGap:
    """Per-query vectors `a`, `b` (same queries, same order) -> PairedGap of a - b."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired vectors must have the same 1-d shape, got {x.shape} and {y.shape}")
    d = x - y  # [Q]
    n = int(d.size)
    if n < 2:
        return PairedGap(float(d.mean()) if n else 0.0, float("inf"), n, float("nan"))
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0.0:
        p = 1.0 if float(d.mean()) == 0.0 else 0.0
    else:
        from scipy import stats

        p = float(stats.ttest_rel(x, y).pvalue)
    return PairedGap(float(d.mean()), se, n, p)


def task_mean_weights(components: Sequence[str]) -> np.ndarray:
    """Per question, n / (K · n_c) (n questions, K components, n_c of the question's component):
    the mean of `weights * x` is the mean over the K components of each component's mean of x.
    One component: every weight 1. Shapes: [Q] -> [Q]."""
    names, counts = np.unique(np.asarray(components), return_counts=True)
    size = dict(zip(names.tolist(), counts.tolist()))
    n, k = len(components), len(size)
    return np.asarray([n / (k * size[c]) for c in components], dtype=float)


def unpaired_band(p1: float, p2: float, n: int) -> float:
    """Two binomial standard errors of p1 - p2 on n questions each (conservative)."""
    return 2 * math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / max(n, 1))


def verdict(gap: float, band: float, kind: str = "paired 2 SE") -> str:
    """BEATS / does NOT beat / TIES, naming the gap and the band."""
    if gap > band:
        return f"BEATS it (+{gap:.3f} > {kind} {band:.3f})"
    if -gap > band:
        return f"does NOT beat it ({gap:+.3f}, beyond {kind} {band:.3f})"
    return f"TIES with it ({gap:+.3f} within {kind} {band:.3f})"


def word(gap: PairedGap) -> str:
    """'better' / 'worse' / 'tie' at two standard errors (for tables)."""
    return "better" if gap.gap > gap.band else ("worse" if -gap.gap > gap.band else "tie")
