"""Equivalence of MATH answers: LaTeX normalisation, then numbers, tuples, and sympy.

`math_equal(a, b)` is True when, in order: the normalised strings are equal; both are numbers
(incl. fractions, percents, `\\frac{1}{2}` vs `0.5`) and equal within 1e-6 relative; both are
tuples / intervals / lists with the same brackets and equal elements; or both parse as sympy
expressions whose difference simplifies to 0 (or agree numerically). Sympy only runs on short,
tame strings (no huge powers or factorials) and under a time limit, so grading never hangs.
"""

from __future__ import annotations

import functools
import re
import signal
import threading
from collections.abc import Callable
from typing import Any

SYMPY_TIMEOUT_S = 2.0
MAX_SYMPY_CHARS = 160
_UNIT_WORDS = (r"(?:sq(?:uare)?\s*)?(?:units?|cm|centimeters?|meters?|m|km|inches|inch|in|feet|foot|ft|"
               r"miles?|mph|hours?|minutes?|seconds?|days?|weeks?|years?|degrees?|dollars?|cents?|"
               r"pounds?|ounces?|students?|people|ways|cups?|points?)")


def strip_latex(s: str) -> str:
    """Normalise a LaTeX answer: the Hendrycks `strip_string` rules plus units, `\\text{}`, `^\\circ`."""
    s = str(s).strip().replace("\n", "")
    s = re.sub(r"\\boxed\s*\{(.*)\}", r"\1", s) if s.startswith("\\boxed") else s
    s = s.strip("$").strip()
    s = re.sub(r"\\(?:!|,|;|:|quad|qquad)|\\ ", "", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"√\s*(\d+|\w|\{[^{}]*\}|\([^()]*\))", lambda m: "\\sqrt{" + m.group(1).strip("{}()") + "}", s)
    s = _mixed_number(s)
    s = re.sub(r"\^\s*\{?\\circ\}?|°|\\degree", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "")
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}", r"\1", s)
    s = re.sub(rf"^(-?[\d.,/]+|\\frac\{{[^{{}}]*\}}\{{[^{{}}]*\}})\s*{_UNIT_WORDS}(?:\^?\{{?[23]\}}?)?\.?$", r"\1", s)
    s = re.sub(r"^(?:[a-zA-Z]|\\[a-z]+)\s*=\s*(?=[^=]+$)", "", s)  # `x = 5` -> `5`
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "").rstrip(".")
    s = re.sub(r"^([0-9A-Z]+)_\{?(?:\d+|b)\}?$", r"\1", s)  # base subscripts: `4210_{5}` -> `4210`
    s = re.sub(r"^\(([A-Za-z])\)$", r"\1", s)  # `(C)` -> `C`
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    s = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", s)
    if re.fullmatch(r"-?\d+/\d+", s):
        neg, (num, den) = s.startswith("-"), s.lstrip("-").split("/")
        s = f"{'-' if neg else ''}\\frac{{{num}}}{{{den}}}"
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    return s


def _mixed_number(s: str) -> str:
    """`137 \\frac{1}{2}` -> `\\frac{275}{2}` (a whole string that is a mixed number)."""
    m = re.fullmatch(r"(-?)(\d+)\s+\\frac\{(\d+)\}\{(\d+)\}", s.strip())
    if not m or int(m.group(4)) == 0:
        return s
    whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
    return f"{m.group(1)}\\frac{{{whole * den + num}}}{{{den}}}"


def split_top_level(s: str) -> list[str]:
    """Split on commas not nested in (), [], {}."""
    parts, depth, cur = [], 0, []
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def to_number(s: str) -> float | None:
    """A normalised answer as a float: `3`, `-2.5`, `\\frac{3}{4}`, `-\\frac{1}{2}`; else None."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}", s)
    if m:
        den = float(m.group(3))
        return None if den == 0 else (-1 if m.group(1) else 1) * float(m.group(2)) / den
    if re.fullmatch(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", s):
        return float(s)
    return None


def latex_to_sympy_text(s: str) -> str:
    """A LaTeX math string rewritten in sympy's input syntax (best effort)."""
    t = s
    for _ in range(4):  # nested fractions / roots
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", t)
        t = re.sub(r"\\sqrt\[([^\]]*)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", t)
        t = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", t)
    t = t.replace("\\pi", "pi").replace("\\infty", "oo").replace("\\cdot", "*").replace("\\times", "*")
    t = re.sub(r"\\(sin|cos|tan|log|ln|exp)", r"\1", t)
    t = t.replace("^", "**").replace("{", "(").replace("}", ")")
    return t


def _tame(text: str) -> bool:
    """Safe to hand to sympy: short, no LaTeX left, no factorials, no big or stacked exponents."""
    if len(text) > MAX_SYMPY_CHARS or "\\" in text or "!" in text or "=" in text:
        return False
    if re.search(r"\*\*\s*\(?\s*-?\d{4,}", text) or re.search(r"\*\*[^*]*\*\*", text):
        return False
    return not re.search(r"\d{40,}", text)


def run_with_timeout(fn: Callable[[], Any], seconds: float) -> Any:
    """fn() or None when it takes longer than `seconds`.

    On the main thread a SIGALRM timer interrupts it; elsewhere it runs in a daemon thread that is
    abandoned (left to finish in the background) when the time is up.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def _raise(signum, frame):
            raise TimeoutError
        old = signal.signal(signal.SIGALRM, _raise)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn()
        except TimeoutError:
            return None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else None


def sympy_equal(a: str, b: str, timeout_s: float = SYMPY_TIMEOUT_S) -> bool:
    """Symbolic equality of two normalised answers; False when either does not parse or time runs out.

    Remembered per (a, b, timeout) in this process: grading and the replay backend compare the
    same answer pairs over and over (every design of a design search re-grades the same replies),
    and each comparison costs milliseconds of sympy."""
    return _sympy_equal(a, b, timeout_s)


@functools.lru_cache(maxsize=1 << 16)
def _sympy_equal(a: str, b: str, timeout_s: float) -> bool:
    ta, tb = latex_to_sympy_text(a), latex_to_sympy_text(b)
    if not (_tame(ta) and _tame(tb)):
        return False

    def check() -> bool:
        import sympy  # noqa: PLC0415  (heavy; only when needed)
        from sympy.parsing.sympy_parser import (  # noqa: PLC0415
            convert_xor, implicit_multiplication_application, parse_expr, standard_transformations)
        tr = standard_transformations + (implicit_multiplication_application, convert_xor)
        try:
            ea, eb = parse_expr(ta, transformations=tr, evaluate=True), parse_expr(tb, transformations=tr, evaluate=True)
            diff = sympy.simplify(ea - eb)
            if diff == 0:
                return True
            if not diff.free_symbols:
                return abs(complex(sympy.N(diff))) < 1e-9
            return False
        except Exception:  # any parse or evaluation failure means "not shown equal"
            return False

    return bool(run_with_timeout(check, timeout_s))


def math_equal(a: str | None, b: str | None, use_sympy: bool = True) -> bool:
    """Are two MATH answers the same? (see module docstring for the order of checks)"""
    if a is None or b is None:
        return False
    na, nb = strip_latex(a), strip_latex(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    xa, xb = to_number(na), to_number(nb)
    if xa is not None and xb is not None:
        return abs(xa - xb) <= 1e-6 * max(1.0, abs(xa), abs(xb))
    pa, pb = split_top_level(na), split_top_level(nb)
    if len(pa) > 1 or len(pb) > 1:
        return _tuples_equal(na, nb, pa, pb, use_sympy)
    return use_sympy and sympy_equal(na, nb)


def _tuples_equal(na: str, nb: str, pa: list[str], pb: list[str], use_sympy: bool) -> bool:
    if len(pa) != len(pb):
        return False
    brackets = (na[0] + na[-1], nb[0] + nb[-1])
    if brackets[0] != brackets[1] and all(x[0] in "([{" for x in brackets):
        return False  # (a,b) vs [a,b]: different intervals
    if na[0] in "([{" and nb[0] in "([{":
        pa[0], pa[-1] = pa[0][1:], pa[-1][:-1]
        pb[0], pb[-1] = pb[0][1:], pb[-1][:-1]
        return all(math_equal(x, y, use_sympy) for x, y in zip(pa, pb))
    # bare lists (`1, -2`: all solutions) match in any order
    rest = list(pb)
    for x in pa:
        hit = next((i for i, y in enumerate(rest) if math_equal(x, y, use_sympy)), None)
        if hit is None:
            return False
        rest.pop(hit)
    return True
