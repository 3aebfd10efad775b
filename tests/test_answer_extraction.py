"""`tasks/answers.py` by its contract: JSON answers (whole reply first, then the last pair),
number canonicalisation and numeric equality at the edges of their rules."""

from __future__ import annotations

import pytest

from hieramas_gnn.tasks.answers import canonical_number, json_answer, number_from_answer, numbers_equal


@pytest.mark.parametrize("text, answer", [
    ('{"answer": true}', "True"),                    # only the whole-reply parse reads a bool
    ('```json\n{"answer": true}\n```', "True"),      # fences removed first
    ('```\n{"answer": [1, 2]}\n```', "[1, 2]"),
    ('{"answer": null}', None),
    ('{"reasoning": "no answer field"}', None),
    ('{"answer": null, "reasoning": "cut off', None),  # truncated: the regex's null is no answer
    ('{"reasoning": "cut", "answer": "a\\q" ...', "a\\q"),  # an invalid escape: the quotes stripped
    ('{"answer": "X\\qX" ...', "X\\qX"),                    # ... and only the quotes
    ('{"answer": " B "}', "B"),
])
def test_json_answer(text, answer):
    assert json_answer(text) == answer


@pytest.mark.parametrize("text, number", [
    ("\u22123", "-3"),           # a typographic minus
    ("1 200", "1200"),           # a space as the thousands separator
    ("7..", "7"),                # trailing full stops
    ("0.5.", "0.5"),
    ("1" + "0" * 400, None),     # overflows to inf: not a number
    ("999999999999999", "999999999999999"),
    ("1000000000000000", "1000000000000000.0"),  # from 1e15 on, the float's repr
])
def test_canonical_number_edges(text, number):
    assert canonical_number(text) == number


def test_number_after_the_last_equals_sign_even_with_words_after_it():
    assert number_from_answer("a = 3 + 4 = 7 dollars") == "7"


@pytest.mark.parametrize("a, b, equal", [
    ("5", "abc", False), ("abc", "5", False), (None, "5", False),
    ("0", "0.000001", True),           # exactly at the absolute tolerance
    ("0", "0.0000001", True),          # near zero the tolerance is absolute
    ("0", "0.0000015", False),
    ("1000000", "1000000.5", True),    # relative to the larger magnitude
    ("1000000", "999999", True), ("999999", "1000000", True),
    ("1000000", "999998", False),
])
def test_numbers_equal_tolerance(a, b, equal):
    assert numbers_equal(a, b) is equal
