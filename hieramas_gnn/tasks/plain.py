"""A strict codec for plain Python data, used to move values across the sandbox boundary.

`encode` accepts only exact built-in types (None, bool, int, float, complex, str, bytes, list,
tuple, dict, set, frozenset; no subclasses, so no object can bring its own `__eq__`) and returns
JSON text; `decode` rebuilds the value. Both ends are standard-library only: this file's source
up to the "end of the part pasted" line is also pasted into the sandboxed programs (see
humaneval_harness.py), so keep it self-contained and its names `_hx_`-prefixed.
"""

import json as _hx_json

_HX_MAX_DEPTH = 200
_HX_BIG = 1 << 64


def _hx_enc(x, depth):
    if depth > _HX_MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(x)
    if t is int and not -_HX_BIG < x < _HX_BIG:
        return {"i": hex(x)}  # JSON would write it in decimal, which Python caps at 4300 digits
    if x is None or t is bool or t is int or t is str:
        return x
    if t is float:
        return x if x - x == 0 else {"f": repr(x)}  # finite floats are JSON numbers (exact round trip)
    if t is list:
        return [_hx_enc(v, depth + 1) for v in x]
    if t is tuple:
        return {"t": [_hx_enc(v, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[_hx_enc(k, depth + 1), _hx_enc(v, depth + 1)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "z": [_hx_enc(v, depth + 1) for v in x]}
    if t is bytes:
        return {"b": x.hex()}
    if t is complex:
        return {"c": [repr(x.real), repr(x.imag)]}
    raise TypeError(f"not plain data: {t.__name__}")


def _hx_dec(x, depth):
    if depth > _HX_MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if x is None or type(x) in (bool, int, float, str):
        return x
    if type(x) is list:
        return [_hx_dec(v, depth + 1) for v in x]
    if type(x) is not dict or len(x) != 1:
        raise ValueError("malformed plain data")
    (tag, v), = x.items()
    if tag == "f":
        return float(v)
    if tag == "i":
        return int(v, 16)
    if tag == "t":
        return tuple(_hx_dec(e, depth + 1) for e in v)
    if tag == "d":
        return {_hx_dec(k, depth + 1): _hx_dec(e, depth + 1) for k, e in v}
    if tag == "s":
        return {_hx_dec(e, depth + 1) for e in v}
    if tag == "z":
        return frozenset(_hx_dec(e, depth + 1) for e in v)
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "c":
        return complex(float(v[0]), float(v[1]))
    raise ValueError(f"unknown plain-data tag {tag!r}")


# -- end of the part pasted into sandboxed programs (humaneval_harness.py) --


def encode(x):
    """JSON text of a plain value; TypeError for anything else (a custom class, a generator...)."""
    return _hx_json.dumps(_hx_enc(x, 0))


def decode(text):
    """The value `encode` wrote; ValueError (or TypeError/RecursionError) on anything malformed."""
    return _hx_dec(_hx_json.loads(text), 0)
