"""Answer extraction is linear in the reply: `last_boxed` agrees with the reference (quadratic)
definition on random replies and handles 10^5 nested or repeated openings in well under a second.
The 50 MB figures are in the benchmark suite (bench/bench_parsing.py), not here."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.tasks.answers import last_boxed


def _reference(text: str) -> str | None:
    """The definition (the old implementation): scan from each `\\boxed{`, last balanced one wins."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start: i - 1].strip()
    m = list(re.finditer(r"\\boxed ([^\s$]+)", text))
    return m[-1].group(1).strip() if m else None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["\\boxed{", "\\fbox{", "\\boxed ", "{", "}", "x", "12", " ", "$", "\\frac{1}{2}"]),
                max_size=30).map("".join))
def test_last_boxed_matches_the_reference_definition(text):
    assert last_boxed(text) == _reference(text)


def test_last_boxed_takes_the_last_balanced_box():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{3}{4}} and \boxed{5") == r"\frac{3}{4}"


def test_repeated_openings_are_linear():
    start = time.perf_counter()
    assert last_boxed("\\boxed{" * 100_000) is None  # 48 s for 10^4 on main
    assert time.perf_counter() - start < 2.0


def test_deep_nesting_is_linear():
    text = "\\boxed{" + "{" * 200_000 + "}" * 200_000 + "}"
    start = time.perf_counter()
    assert last_boxed(text) == "{" * 200_000 + "}" * 200_000
    assert time.perf_counter() - start < 2.0


def test_bare_reply_trimming_is_bounded():
    from hieramas_gnn.tasks.humaneval import extract_code

    text = "def f(:\n" + "this is not code\n" * 20_000
    start = time.perf_counter()
    extract_code(text, "f")
    assert time.perf_counter() - start < 5.0
