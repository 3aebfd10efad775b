"""The plain-data codec that carries values across the sandbox boundary: exact round trips, and
nothing but built-in types (no object can bring its own `__eq__`)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hieramas_gnn.tasks.plain import decode, encode

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary() | \
    st.complex_numbers(allow_nan=False)
_hashable = st.none() | st.booleans() | st.integers() | st.text()
_values = st.recursive(_scalars, lambda kids: st.lists(kids) | st.tuples(kids, kids) | st.dictionaries(_hashable, kids)
                       | st.sets(_hashable) | st.frozensets(_hashable), max_leaves=20)


@given(_values)
def test_plain_values_round_trip_exactly(value):
    back = decode(encode(value))
    assert back == value and type(back) is type(value)


def test_huge_integers_round_trip():
    assert decode(encode([10 ** 5000, -(3 ** 9000)])) == [10 ** 5000, -(3 ** 9000)]


def test_nan_and_infinities_round_trip():
    nan, inf = decode(encode([math.nan, -math.inf]))
    assert math.isnan(nan) and inf == -math.inf


def test_bool_and_int_stay_distinct():
    assert decode(encode([True, 1, 1.0])) == [True, 1, 1.0]
    assert [type(v) for v in decode(encode([True, 1, 1.0]))] == [bool, int, float]


@pytest.mark.parametrize("value", [type("S", (str,), {})("x"), type("L", (list,), {})(), object(), (x for x in ()),
                                   range(3), type("A", (), {"__eq__": lambda s, o: True})()])
def test_anything_but_exact_builtins_is_refused(value):
    with pytest.raises(TypeError, match="not plain data"):
        encode(value)


@pytest.mark.parametrize("text", ['{"x": 1}', '{"f": "1", "t": []}', '{"q": 1}', "[" * 5000 + "]" * 5000])
def test_malformed_text_is_refused(text):
    with pytest.raises((ValueError, RecursionError)):
        decode(text)
