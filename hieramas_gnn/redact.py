"""Redact secrets from any message that can reach a file or the console.

`redact(text)` replaces (1) key-shaped strings (OpenAI/Anthropic/OpenRouter `sk-...`, Hugging
Face `hf_...`, Google `AIza...`, Groq `gsk_...`, xAI `xai-...`, Replicate `r8_...`, AWS
`AKIA...`, GitHub `ghp_...`, `Bearer <token>`, `api_key=<value>`) and (2) the value of every
environment variable that holds a key: names ending in KEY / TOKEN / SECRET / PASSWORD, plus
names registered with `add_key_env` (e.g. a pool's `api_key_env`). Values shorter than 8
characters are left alone (too likely to be ordinary words). Pure and cheap: the environment is
read at each call, nothing is cached, nothing runs at import.
"""

from __future__ import annotations

import os
import re

MASK = "[REDACTED]"
_KEY_SHAPED = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:sk-(?:ant-|proj-|or-v1-)?[A-Za-z0-9_\-]{16,}"
    r"|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{30,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}"
    r"|r8_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|(?<=Bearer )[A-Za-z0-9._\-]{12,}"
    r"|(?i:(?<=api[_-]key=)|(?<=api[_-]key\": \")|(?<=api[_-]key\":\")|(?<=api[_-]key: ))[^\s\"',}&]{8,})"
)
_SECRET_NAME = re.compile(r"(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.I)
_MIN_LEN = 8
_extra_names: set[str] = set()


def add_key_env(*names: str) -> None:
    """Also redact the values of these environment variables (e.g. a pool's `api_key_env`)."""
    _extra_names.update(n for n in names if n)


def secret_values() -> list[str]:
    """Current values of the key-holding environment variables, longest first."""
    vals = {v for k, v in os.environ.items() if (_SECRET_NAME.search(k) or k in _extra_names) and len(v) >= _MIN_LEN}
    return sorted(vals, key=len, reverse=True)


def redact(text: object) -> str:
    """`text` as a string with every secret replaced by `[REDACTED]` (None stays "None")."""
    out = str(text)
    for value in secret_values():
        if value in out:
            out = out.replace(value, MASK)
    return _KEY_SHAPED.sub(MASK, out)


def redact_obj(obj: object) -> object:
    """A JSON-like object with every string redacted (dict keys too)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj
