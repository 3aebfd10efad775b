"""Source text of the programs the HumanEval tasks run in the sandbox.

Each program ends by printing `__HIERAMAS_PASS__` only if every test passed; the grader also
requires exit status 0. Programs read their inputs / expected outputs from pickles written into
the sandbox directory (`inputs.pkl`, `expected.pkl`).
"""

from __future__ import annotations

PASS = "__HIERAMAS_PASS__"

_COMPARE = r'''
import math as _math

def _hx_close(out, exp, atol):
    """evalplus's rule: exact, except floats (rtol 1e-7, atol) compared elementwise."""
    if isinstance(exp, float) or isinstance(out, float):
        if isinstance(out, bool) or isinstance(exp, bool) or not isinstance(out, (int, float)):
            return False
        if _math.isnan(exp) and _math.isnan(out):
            return True
        return abs(out - exp) <= atol + 1e-7 * abs(exp)
    if isinstance(exp, (list, tuple)) and isinstance(out, (list, tuple)) and type(exp) is type(out):
        return len(out) == len(exp) and all(_hx_close(o, e, atol) for o, e in zip(out, exp))
    return out == exp
'''


def check_program(program: str, test: str, entry_point: str) -> str:
    """HumanEval: the candidate, the dataset's `check`, then the pass marker."""
    return f"{program}\n\n{test}\n\ncheck({entry_point})\nprint({PASS!r})\n"


def record_program(program: str, entry_point: str) -> str:
    """Run the canonical solution on every input and pickle its outputs to `expected.pkl`."""
    return f'''{program}

import copy as _copy, pickle as _pickle
with open("inputs.pkl", "rb") as _fh:
    _inputs = _pickle.load(_fh)
_outs = [{entry_point}(*_copy.deepcopy(_inp)) for _inp in _inputs]
with open("expected.pkl", "wb") as _fh:
    _pickle.dump(_outs, _fh)
print({PASS!r})
'''


def plus_program(program: str, entry_point: str, atol: float) -> str:
    """HumanEval+: run the candidate on every input and compare with the canonical outputs."""
    if entry_point == "find_zero":  # any root is right: |poly(xs, x)| <= atol
        check = ("_ok = isinstance(_out, (int, float)) and "
                 "abs(sum(c * _out ** i for i, c in enumerate(_inp[0]))) <= _atol")
    else:
        check = "_ok = _hx_close(_out, _exp, _atol)"
    return f'''{program}

{_COMPARE}
import copy as _copy, pickle as _pickle, sys as _sys
with open("inputs.pkl", "rb") as _fh:
    _inputs = _pickle.load(_fh)
with open("expected.pkl", "rb") as _fh:
    _expected = _pickle.load(_fh)
_atol = {float(atol)!r} or 1e-6
for _i, (_inp, _exp) in enumerate(zip(_inputs, _expected)):
    _out = {entry_point}(*_copy.deepcopy(_inp))
    {check}
    if not _ok:
        print("failed on input", _i, file=_sys.stderr)
        _sys.exit(1)
print({PASS!r})
'''
