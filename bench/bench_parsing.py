"""Answer-extraction benchmark: every extractor is linear in the reply, even on hostile 50 MB replies.

For each reply shape (plain prose, `\\boxed{` repeated, deep nesting, many closed boxes, code
fences, many lines of non-code), `last_boxed`, `json_answer`, `numbers_in`, `choice_letter` and
`humaneval.extract_code` are timed on a reply of `size_mb` (50 MB; 0.5 MB with --quick) and on one
ten times smaller. Linear means time(50 MB) / time(5 MB) stays near 10 (quadratic would be ~100);
`budget_s` is the time budget per extractor per 50 MB reply (`within_budget`).

`run(quick)` returns the figures; `python -m bench.bench_parsing [--quick]` prints them as JSON.
"""

from __future__ import annotations

import json
import sys
import time

BUDGET_S = 120.0  # per extractor, per 50 MB reply, on one core of a shared 2-core machine


def _shapes(n: int) -> dict[str, str]:
    unit = "The total is 12 apples and {3} pears, so the answer is 15. "
    return {
        "prose": (unit * (n // len(unit) + 1))[:n],
        "boxed_open_repeated": ("\\boxed{" * (n // 7 + 1))[:n],
        "deep_nesting": "\\boxed{" + "{" * (n // 2) + "}" * (n // 2) + "}",
        "many_closed_boxes": ("\\boxed{7} " * (n // 10 + 1))[:n],
        "open_fences": ("```python\nx = 1\n" * (n // 16 + 1))[:n],
        "lines_of_prose": ("not code at all here\n" * (n // 21 + 1))[:n],
    }


def _extractors():
    from hieramas_gnn.tasks.answers import choice_letter, json_answer, last_boxed, numbers_in
    from hieramas_gnn.tasks.humaneval import extract_code

    return {"last_boxed": last_boxed, "json_answer": json_answer, "numbers_in": numbers_in,
            "choice_letter": choice_letter, "extract_code": lambda t: extract_code(t, "f")}


def _time(fn, text: str) -> float:
    start = time.perf_counter()
    fn(text)
    return time.perf_counter() - start


def run(quick: bool = False) -> dict:
    size_mb = 0.5 if quick else 50
    n = int(size_mb * 1_000_000)
    big, small = _shapes(n), _shapes(n // 10)
    out: dict = {"size_mb": size_mb, "budget_s_per_50mb": BUDGET_S}
    worst = 0.0
    for name, fn in _extractors().items():
        row = {}
        for shape in big:
            t_big, t_small = _time(fn, big[shape]), _time(fn, small[shape])
            row[shape] = {"seconds": round(t_big, 3), "ratio_to_tenth": round(t_big / max(t_small, 1e-4), 1)}
            worst = max(worst, t_big * 50 / size_mb)
        out[name] = row
    out["worst_seconds_scaled_to_50mb"] = round(worst, 2)
    out["within_budget"] = worst <= BUDGET_S
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
