"""Source text of the programs the HumanEval tasks run in the sandbox, and the parent-side verdicts.

Nothing a candidate prints or returns as an exit code decides its grade. Three programs:

- `record_calls_program` (HumanEval, once per problem, canonical solution): runs the dataset's
  `check` with a recording wrapper around the canonical solution and writes every call's
  arguments to `calls.json` (random seeded, so the sequence is reproducible).
- `outputs_program` (every candidate, and the canonical solution for HumanEval+): runs the
  candidate's code, then calls the entry point on each recorded call / each input and writes the
  results to `outputs.json` in the strict plain-data codec (plain.py): no custom objects, so no
  `__eq__` that always says yes. Exceptions become `{"err": ...}`.
- `replay_program` (HumanEval): the dataset's `check` run against a stub that returns the
  candidate's recorded outputs; it never executes candidate code, so its verdict file is trusted.
HumanEval+ compares the outputs with the canonical outputs in the parent (`plus_verdict`).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from hieramas_gnn.tasks.plain import decode

CALLS, OUTPUTS, VERDICT = "calls.json", "outputs.json", "verdict.json"


@functools.cache
def _codec_source() -> str:
    text = Path(__file__).with_name("plain.py").read_text(encoding="utf-8")
    return text[: text.index("# -- end of the part pasted")]


def record_calls_program(prompt_and_solution: str, test: str, entry_point: str) -> str:
    """Run `check` on the canonical solution, recording each call's (args, kwargs)."""
    return f'''{prompt_and_solution}

{test}

{_codec_source()}
import random as _random
_calls = []
_canonical = {entry_point}

def _recorder(*args, **kwargs):
    _calls.append([_hx_enc(list(args), 0), _hx_enc(kwargs, 0)])
    return _canonical(*args, **kwargs)

_random.seed(0)
check(_recorder)
with open({CALLS!r}, "w") as _fh:
    _fh.write(_hx_json.dumps(_calls))
'''


def outputs_program(program: str, entry_point: str) -> str:
    """Run the candidate, then its entry point on every call in `calls.json`; write `outputs.json`."""
    return f'''{program}

{_codec_source()}
def _hx_run():
    fn = {entry_point}
    with open({CALLS!r}) as fh:
        calls = _hx_json.loads(fh.read())
    results = []
    for args, kwargs in calls:
        try:
            results.append({{"ok": _hx_enc(fn(*_hx_dec(args, 0), **_hx_dec(kwargs, 0)), 0)}})
        except Exception as exc:
            results.append({{"err": type(exc).__name__}})
    with open({OUTPUTS!r}, "w") as fh:
        fh.write(_hx_json.dumps(results))

_hx_run()
'''


def replay_program(prompt_and_solution: str, test: str, entry_point: str) -> str:
    """Run `check` against the candidate's recorded outputs and write a verdict.

    No candidate code runs here; the canonical solution is present because some tests call the
    entry point by name as their reference (HumanEval/33).
    """
    return f'''{prompt_and_solution}

{test}

{_codec_source()}
import random as _random
with open({CALLS!r}) as _fh:
    _calls = _hx_json.loads(_fh.read())
with open({OUTPUTS!r}) as _fh:
    _outputs = _hx_json.loads(_fh.read())
_i = [0]

def _replay(*args, **kwargs):
    i = _i[0]
    _i[0] += 1
    if i >= len(_calls) or i >= len(_outputs) or [_hx_enc(list(args), 0), _hx_enc(kwargs, 0)] != _calls[i]:
        raise AssertionError("call differs from the recorded sequence")
    out = _outputs[i]
    if type(out) is not dict or "ok" not in out:
        raise RuntimeError("candidate raised")
    return _hx_dec(out["ok"], 0)

_random.seed(0)
check(_replay)
with open({VERDICT!r}, "w") as _fh:
    _fh.write(_hx_json.dumps({{"passed": True, "calls": _i[0]}}))
'''


def replay_verdict(files: dict[str, bytes]) -> bool:
    """The trusted replay's verdict file says it passed."""
    try:
        verdict = json.loads(files[VERDICT])
    except (KeyError, ValueError):
        return False
    return type(verdict) is dict and verdict.get("passed") is True


def read_outputs(data: bytes | None) -> list | None:
    """Decode `outputs.json`: a list of ("ok", value) / ("err", name); None when malformed."""
    if data is None:
        return None
    try:
        raw = json.loads(data)
        if type(raw) is not list:
            return None
        out = []
        for item in raw:
            if type(item) is dict and set(item) == {"ok"}:
                out.append(("ok", decode(json.dumps(item["ok"]))))
            elif type(item) is dict and set(item) == {"err"}:
                out.append(("err", str(item["err"])))
            else:
                return None
        return out
    except (ValueError, TypeError, RecursionError):
        return None


def close(out: object, exp: object, atol: float) -> bool:
    """evalplus's rule on plain data: exact, except floats (rtol 1e-7, atol) compared elementwise."""
    if isinstance(exp, float) or isinstance(out, float):
        if type(out) is bool or type(exp) is bool or type(out) not in (int, float) or type(exp) not in (int, float):
            return False
        if math.isnan(exp) and math.isnan(out):
            return True
        return abs(out - exp) <= atol + 1e-7 * abs(exp)
    if type(exp) in (list, tuple) and type(out) is type(exp):
        return len(out) == len(exp) and all(close(o, e, atol) for o, e in zip(out, exp))
    return out == exp


def plus_verdict(outputs: list | None, expected: list, inputs: list, entry_point: str, atol: float) -> bool:
    """HumanEval+: every candidate output matches the canonical one (any root for `find_zero`)."""
    if outputs is None or len(outputs) != len(expected):
        return False
    atol = atol or 1e-6
    for (tag, out), (_, exp), inp in zip(outputs, expected, inputs):
        if tag != "ok":
            return False
        if entry_point == "find_zero":
            if type(out) not in (int, float):
                return False
            try:
                if not abs(sum(c * out ** i for i, c in enumerate(inp[0]))) <= atol:
                    return False
            except (OverflowError, TypeError):
                return False
        elif not close(out, exp, atol):
            return False
    return True
