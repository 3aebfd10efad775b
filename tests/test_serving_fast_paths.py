"""The serving path's fast paths give what the plain code gives, value for value.

Each fast path (answer extraction that skips `json.loads` when it cannot give an object, the
memoised seeding of `rng_for`, the memoised synthetic item, the memoised behaviour-model
probabilities and simulator strengths, the field-by-field `Trace.to_dict`) is compared with the
plain computation it replaces, written out here, on many inputs; and the solutions of a fixed
set of requests are pinned to the digest the plain code gave.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieramas_gnn.backends.behaviour import (
    BehaviourConfig,
    choice_distribution,
    option_probs_batch,
    rng_for,
)
from hieramas_gnn.backends.sim import Simulator
from hieramas_gnn.mas.trace import CallTrace, NodeTrace, Trace
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.answers import json_answer, last_answer_pair
from hieramas_gnn.tasks.synthetic import make_question

def plain_json_answer(text: str) -> str | None:
    """`json_answer` without its shortcuts (the regex fallback is the same function)."""
    body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        obj = None
    if isinstance(obj, dict) and "answer" in obj:
        value = obj["answer"]
        return None if value is None else str(value).strip()
    return last_answer_pair(text)


REPLIES = [
    "The answer is (B).", '{"answer": "B"}', ' \n{"reasoning": "x", "answer": 12}\n', '```json\n{"answer": "C"}\n```',
    '```\n{"answer": null}\n```', '{"\\u0061nswer": "D"}', '\ufeff{"answer": "A"}', '["answer", 1]', '"answer"',
    '{"answer": "B", "answer": "C"}', 'text "answer": "7" then "answer": 8', '{"answer": "B"', '  ```json{"answer": 3}```',
    '{"answer": {"x": 1}}', "12", "", "   ", '\t\r\n{"answer": "x"}', '\u00a0{"answer": "nbsp"}', '{"answer": "\\ud800"}',
    'x ``` {"answer": 1} ```', '{"answer": 1e5}', '"answer": -3,5',
]


@pytest.mark.parametrize("text", REPLIES)
def test_json_answer_equals_the_plain_extraction_on_edge_replies(text):
    assert json_answer(text) == plain_json_answer(text)


json_bits = st.sampled_from(['{', '}', '"answer"', ':', ' ', '\n', '```', 'json', '"B"', '12', 'null', '[', ']',
                             ',', '\\', '"', 'The answer is (C).', '\ufeff', '\u00a0', '-', '.', 'e'])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(json_bits, max_size=14).map("".join)))
def test_json_answer_equals_the_plain_extraction(text):
    assert json_answer(text) == plain_json_answer(text)


def plain_rng_for(*parts: object) -> np.random.Generator:
    blob = json.dumps([str(p) for p in parts], separators=(",", ":")).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(blob).digest()[:16], "little"))


parts_st = st.lists(st.one_of(st.integers(-5, 10**12), st.text(max_size=12), st.none(), st.booleans(),
                              st.floats(allow_nan=False)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(parts_st)
def test_rng_for_is_the_generator_of_the_hashed_seed(parts):
    for _ in range(2):  # the second time through the memo
        fast, plain = rng_for(*parts), plain_rng_for(*parts)
        assert fast.bit_generator.state == plain.bit_generator.state
        assert fast.random(3).tolist() == plain.random(3).tolist()


def test_rng_for_keeps_1_and_1_0_and_true_apart_and_pickles():
    assert len({rng_for(p).random() for p in (1, 1.0, True, "1")}) == 3  # "1" and 1 hash alike (str)
    rng = rng_for(0, "own", "m", "q")
    rng.random()
    again = pickle.loads(pickle.dumps(rng))
    assert again.random() == rng.random()


def test_synthetic_get_equals_the_generated_item_and_hands_out_copies():
    task = get_task("synthetic")
    for q in task.load(None, "test", limit=30) + task.load(None, "train", limit=30):
        got = task.get(q.id)
        assert (got.id, got.task, got.text, got.gold, got.meta) == (q.id, q.task, q.text, q.gold, q.meta)
        got.meta["domain"] = "changed"
        got.meta.get("choices", []).append("changed")
        again = task.get(q.id)
        assert again.meta == q.meta
    made = make_question("physics", 5, 7, "synthetic_mc")
    assert get_task("synthetic_mc").get("synthetic/physics/5/7").meta == made.meta


def plain_choice_distribution(own, context, is_correct, strength, cfg, allow_new=False):
    support: dict[str, float] = {}
    if own is not None:
        support[own] = cfg.own_weight
    for a in context:
        if a is not None:
            support[a] = support.get(a, 0.0) + 1.0
    answers = list(support)
    if not answers and not allow_new:
        return {}
    k = max(len(answers), 1)
    sup, cor, mask = np.zeros((1, k)), np.zeros((1, k)), np.zeros((1, k), dtype=bool)
    sup[0, : len(answers)] = list(support.values())
    cor[0, : len(answers)] = [float(is_correct(a)) for a in answers]
    mask[0, : len(answers)] = True
    p, p_new = option_probs_batch(sup, cor, mask, np.array([strength]), cfg, allow_new)
    out = {a: float(p[0, j]) for j, a in enumerate(answers)}
    if p_new[0] > 0:
        out["<new-correct>"] = float(p_new[0])
    return out


answer_st = st.sampled_from(["A", "B", "C", "12", "13"])
cfg_st = st.builds(BehaviourConfig, support_weight=st.floats(0, 3), own_weight=st.floats(0, 2),
                   plurality_bonus=st.sampled_from([0.0, 0.5]))


@settings(max_examples=400, deadline=None)
@given(own=st.one_of(st.none(), answer_st), context=st.lists(st.one_of(st.none(), answer_st), max_size=6),
       strength=st.one_of(st.sampled_from([0.25, 0.5, 0.8]), st.floats(0, 1)), cfg=cfg_st, allow_new=st.booleans(),
       gold=answer_st)
def test_choice_distribution_equals_the_plain_computation(own, context, strength, cfg, allow_new, gold):
    def judge(a):
        return a == gold

    for _ in range(2):  # the second time through the memo
        fast = choice_distribution(own, context, judge, strength, cfg, allow_new)
        plain = plain_choice_distribution(own, context, judge, strength, cfg, allow_new)
        assert list(fast) == list(plain)
        assert [v.hex() for v in fast.values()] == [v.hex() for v in plain.values()]


def test_simulator_strength_equals_the_plain_mean():
    sim = Simulator()
    for domain in ("arithmetic", "physics", "history", "no-such-domain"):
        for theta in (-1.0, 0.0, 0.37, 2.5):
            pool = sim.figures.strength_pool(domain)
            b = pool if len(pool) else np.array([0.0])
            plain = float(np.mean(1.0 / (1.0 + np.exp(-(theta + 0.1 - b)))))
            assert sim.strength(theta, domain, 0.1) == plain == sim.strength(theta, domain, 0.1)


def _trace(seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    calls = [CallTrace(model=f"m{i}", role="solver", position="proposer", prompt_tokens=int(rng.integers(1, 99)),
                       completion_tokens=3, cost_usd=float(rng.random()), latency_ms=1.5, cache_hit=bool(i % 2),
                       sample_index=i, key=f"k{i}") for i in range(int(rng.integers(0, 4)))]
    nodes = [NodeTrace(index=0, role="solver", text="x", answer="B", correct=True, proposals=["x", None],
                       proposal_answers=["B", None]), NodeTrace(index=1, role="critic", skipped=True, gradable=False)]
    design = {"roles": ["solver"], "mixtures": [{"proposers": ["a", "b"], "synthesizer": "c"}, None],
              "edges": [[0, 1]], "decision": "d", "decision_inputs": "sinks", "schema_version": 2}
    t = Trace(task="synthetic", question_id=f"synthetic/physics/3/{seed}", design=design if seed % 3 else None,
              calls=calls, nodes=nodes[: seed % 3], answer="B" if seed % 2 else None, correct=[None, True, False][seed % 3],
              latency_ms=2.0, wall_ms=3.0, component="c" if seed % 4 == 0 else None)
    if seed % 5 == 0:
        t.fail("timeout")
    if seed % 7 == 0:  # values asdict deep-copies through its generic path
        t.design = {"tuple": (1, [2]), "np": np.float64(0.5), "nested": {"k": [{"x": None}]}}
    return t


@pytest.mark.parametrize("seed", range(15))
def test_trace_to_dict_equals_asdict_with_fresh_containers(seed):
    trace = _trace(seed)
    plain = dataclasses.asdict(trace) | {"cost_usd": trace.cost_usd, "tokens": trace.tokens, "n_calls": trace.n_calls}
    out = trace.to_dict()
    assert list(out) == list(plain) and out == plain
    assert json.dumps(out, default=str) == json.dumps(plain, default=str)
    before = copy.deepcopy(trace)
    for value in out.values():  # no container of the result is one of the trace's
        if isinstance(value, dict):
            value.clear()
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    item.clear()
            value.clear()
    assert trace == before
    assert Trace.from_dict(json.loads(json.dumps(trace.to_dict(), default=str))).question_id == trace.question_id


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("wall_ms", "latency_ms")}  # measured times
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


# sha256 of the solutions below (measured times left out) as the plain code (no fast paths) gave them
SOLUTIONS_SHA256 = "5e95d225715be508cbccbcb8687ff4f39c046023aff68b41d8318ba9cf9ba31d"


def test_the_solutions_of_fixed_requests_are_pinned(tmp_path):
    from hieramas_gnn.serve.policy import Policy
    from hieramas_gnn.serve.testing import sim_bundle

    policy = Policy.load(sim_bundle(tmp_path / "b"), cache=None, backend={"sim": {"latency": "off"}})
    qs = [q.text for q in policy.task.load(None, "test", limit=12)]
    sols = policy.solve_many(qs, max_concurrency=4)
    assert [s.answer for s in sols] == ["53", "B", "C", "C", "A", "D", "66", "C", "A", "B", "C", "D"]
    assert sum(len(s.trace["calls"]) for s in sols) == 120
    blob = json.dumps([_strip(s.to_dict()) for s in sols], sort_keys=True)
    assert hashlib.sha256(blob.encode()).hexdigest() == SOLUTIONS_SHA256
