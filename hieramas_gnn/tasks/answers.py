"""Answer extraction shared by the families: JSON answers, `\\boxed{}`, numbers and choice letters.

Pure string functions, no state. Each returns None when a reply has no answer of that kind.
"""

from __future__ import annotations

import json
import math
import re

_JSON_ANSWER_RE = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*"|-?[\d.,eE+]+|null)', re.S)


def json_answer(text: str) -> str | None:
    """The `answer` field of a JSON reply (`{"reasoning": ..., "answer": ...}`), as a string.

    Tries the whole reply (with ```json fences removed) first, then the last `"answer": ...` pair
    found by regex, which tolerates truncated or otherwise invalid JSON around it.
    """
    body = text.strip()
    if "```" in body:
        body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", body)
    # json.loads gives a dict only for a body whose first non-JSON-whitespace character is `{`
    obj = None
    if body.lstrip(" \t\n\r").startswith("{"):
        try:
            obj = json.loads(body)
        except (json.JSONDecodeError, ValueError):
            obj = None
    if isinstance(obj, dict) and "answer" in obj:
        value = obj["answer"]
        return None if value is None else str(value).strip()
    if '"answer"' not in text:  # the regex cannot match
        return None
    return last_answer_pair(text)


def last_answer_pair(text: str) -> str | None:
    """The value of the last `"answer": ...` pair of `text` found by regex (a string, a number or
    null), for replies whose JSON does not parse."""
    matches = _JSON_ANSWER_RE.findall(text)
    if not matches:
        return None
    raw = matches[-1]
    if raw == "null":
        return None
    if raw.startswith('"'):
        try:
            return str(json.loads(raw)).strip()
        except json.JSONDecodeError:
            return raw.strip('"').strip()
    return raw.strip()


_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE_RE = re.compile(r"[{}]")


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if none.

    One pass over the braces with a stack (linear in the reply, whatever its nesting).
    """
    openers = {m.end() for m in _BOXED_RE.finditer(text)}  # content start of each \boxed{
    best: tuple[int, int] | None = None
    stack: list[int] = []  # per open brace: its content start if it opens a \boxed, else -1
    first = min(openers, default=len(text)) - 1  # braces before the first \\boxed{ cannot matter
    for m in _BRACE_RE.finditer(text, max(0, first)):
        if m.group() == "{":
            stack.append(m.end() if m.end() in openers else -1)
        elif stack:
            start = stack.pop()
            if start >= 0 and (best is None or start > best[0]):
                best = (start, m.start())
    if best is not None:
        return text[best[0] : best[1]].strip()
    m = list(re.finditer(r"\\boxed ([^\s$]+)", text))  # `\boxed 5` without braces
    return m[-1].group(1).strip() if m else None


# -- numbers -----------------------------------------------------------------------------------

_NUM_RE = re.compile(r"(?<![\w.])[-−]?\s?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])|(?<![\w.])[-−]?\.\d+")


def numbers_in(text: str) -> list[str]:
    """Every number in `text`, normalised (`$1,200.50` -> `1200.5`), in order of appearance."""
    out = []
    for m in _NUM_RE.finditer(text):
        canon = canonical_number(m.group(0))
        if canon is not None:
            out.append(canon)
    return out


def canonical_number(text: str) -> str | None:
    """`' $1,200.50 '` -> `'1200.5'`, `'18.00'` -> `'18'`, `'-3'` -> `'-3'`; None if not a number."""
    s = text.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    s = s.rstrip(".")
    if not re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)", s):
        return None
    value = float(s)
    if math.isinf(value) or math.isnan(value):
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def numbers_equal(a: str | None, b: str | None, rel: float = 1e-6) -> bool:
    """Numeric equality of two number strings (tolerance relative to the larger magnitude)."""
    if a is None or b is None:
        return False
    ca, cb = canonical_number(a), canonical_number(b)
    if ca is None or cb is None:
        return False
    x, y = float(ca), float(cb)
    return abs(x - y) <= rel * max(1.0, abs(x), abs(y))


def number_from_answer(answer: str) -> str | None:
    """The number an answer string states: after the last `=` if any, else its first number."""
    tail = answer.rsplit("=", 1)[-1] if "=" in answer else answer
    nums = numbers_in(tail) or numbers_in(answer)
    return nums[0] if nums else None


# -- choice letters ----------------------------------------------------------------------------

def letters_for(n_choices: int) -> str:
    """`ABCD` for 4 choices (at most 26)."""
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: max(1, min(26, n_choices))]


def choice_letter(text: str, letters: str = "ABCD", choices: list[str] | None = None) -> str | None:
    """The chosen letter in a reply: `(B)`, `B.`, `Answer: B`, `the answer is B`, `{"answer": "B"}`.

    Order: JSON answer; the last explicit `answer is / Answer: / \\boxed{}` letter; a reply that is
    just a letter (`B`, `(B)`, `**B.**`); a reply that starts with `B.` / `(B)` / `B)`; the only
    distinct `(X)` in the reply; a reply equal to exactly one choice text. Lowercase letters count
    only inside explicit forms, so the article "a" is never read as choice A.
    """
    if not text:
        return None
    cls = f"[{letters}]"
    js = json_answer(text)
    if js is not None:
        hit = choice_letter(js, letters, choices) if js != text else None
        if hit:
            return hit
    key = r"(?i:answer|correct (?:option|choice)|best (?:option|choice))"
    link = r"(?i:\s*(?:is|would be|=|:)\s*)?:?\s*[*_`]*\s*"
    explicit = [
        (m.group(1) or m.group(2) or m.group(3)).upper()
        for m in re.finditer(rf"{key}{link}(?:\(({cls})\)|({cls})(?![\w'])|\(({cls.lower()})\))", text)
    ]
    boxed = last_boxed(text)
    if boxed is not None:
        m = re.fullmatch(rf"\(?(?:\\text\{{)?({cls})\}}?\)?", boxed.strip(), re.I)
        if m:
            return m.group(1).upper()
    if explicit:
        return explicit[-1].upper()
    bare = re.sub(r"[*_`\s]", "", text)
    m = re.fullmatch(rf"\(?({cls})[).:]?", bare)
    if m:
        return m.group(1)
    m = re.match(rf"\s*[*_`]*\(?({cls})(?:\)|\.|:|\s*-)(?:\s|$)", text)
    if m:
        return m.group(1)
    paren = set(re.findall(rf"\(({cls})\)", text))
    if len(paren) == 1:
        return paren.pop()
    if choices:
        norm = _norm_choice(text)
        hits = [letters[i] for i, c in enumerate(choices[: len(letters)]) if _norm_choice(c) == norm]
        if len(hits) == 1:
            return hits[0]
    return None


def _norm_choice(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip(".").lower())
