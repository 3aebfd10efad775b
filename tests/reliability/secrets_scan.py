"""The echoing provider and the leak scan of the secrets tests (test_secrets*.py) and report.py.

`install_echoing_provider(setenv, refuse)` sets two fake credentials (a key-shaped `KEY` in
HIERAMAS_FAKE_API_KEY, a plain `PLAIN_SECRET` in HIERAMAS_FAKE_TOKEN) and makes every `faults/`
model whose litellm name `refuse(name)` accepts answer with a 401 whose body echoes both; the
others answer like `faults/succeed`. `leaks(folder, console)` lists every file under `folder`
(binary ones included: SQLite, safetensors, wandb logs) and the console text that holds either
value or any key-shaped string (`redact`'s patterns).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

KEY = "sk-proj-FAKEkey0123456789abcdefXYZ"
PLAIN_SECRET = "plain-secret-value-42"  # not key-shaped: caught as the value of a *_TOKEN variable
POOL_MODEL_EXTRA = {"api_key_env": "HIERAMAS_FAKE_API_KEY"}


def install_echoing_provider(setenv: Callable[[str, str], None], refuse: Callable[[str], bool]) -> Callable[[], None]:
    """Route `faults/` calls through the echoing 401 (see module docstring); returns an undo."""
    import litellm

    from hieramas_gnn.llm import faults

    async def answer(handler, model, messages, kwargs):
        if not refuse(model):
            return faults._response(model, messages)
        sent = kwargs.get("api_key") or os.environ["HIERAMAS_FAKE_API_KEY"]
        raise litellm.AuthenticationError(
            message=f"Incorrect API key provided: {sent}. Also saw token {os.environ['HIERAMAS_FAKE_TOKEN']}",
            llm_provider="faults", model=model)

    setenv("HIERAMAS_FAKE_API_KEY", KEY)
    setenv("HIERAMAS_FAKE_TOKEN", PLAIN_SECRET)
    original, faults._answer = faults._answer, answer
    faults.register(faults.FaultProvider(fail_times=0))

    def undo() -> None:
        faults._answer = original

    return undo


def _found(text: str) -> list[str]:
    from hieramas_gnn.redact import _KEY_SHAPED

    hits = [s for s in (KEY, PLAIN_SECRET) if s in text]
    return hits + [f"key-shaped {m.group(0)[:12]}..." for m in _KEY_SHAPED.finditer(text)]


def leaks(folder: Path, console: str) -> list[str]:
    """'<where>: <what>' for every secret value or key-shaped string in a file or the console."""
    found = [f"console: {s}" for s in _found(console)]
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{path.relative_to(folder)}: {s}" for s in _found(text)]
    return found


def files_scanned(folder: Path) -> int:
    return sum(p.is_file() for p in folder.rglob("*"))
