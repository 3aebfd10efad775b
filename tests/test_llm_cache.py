"""Rollout cache: the key, durable puts, modes, several processes, export/import, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest
from helpers.llm import request

from hieramas_gnn.cli import main as cli
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.cache import RolloutCache, canonical_json, canonical_request, request_key
from hieramas_gnn.llm.types import LLMRecord, LLMRequest


def _record(req: LLMRequest, model: str = "openai/m", text: str = "four") -> tuple[LLMRecord, str]:
    key = request_key(req, model)
    rec = LLMRecord(key=key, model=req.model, text=text, prompt_tokens=5, completion_tokens=1,
                    cost_usd=1e-5, latency_ms=12.0, cache_hit=False, created_at=time.time(),
                    litellm_model=model)
    return rec, canonical_json(canonical_request(req, model))


def test_key_is_the_same_for_equal_requests():
    assert request_key(request(), "openai/m") == request_key(request(), "openai/m")


@pytest.mark.parametrize("change", [
    {"sample_index": 1}, {"prompt_version": "v2"}, {"temperature": 0.7}, {"max_tokens": 64},
    {"params": {"top_p": 0.9}}, {"text": "What is 3+3?"},
])
def test_key_changes_with_each_part_of_the_request(change):
    assert request_key(request(**change), "openai/m") != request_key(request(), "openai/m")


def test_key_changes_with_the_model_string():
    assert request_key(request(), "openai/a") != request_key(request(), "openai/b")


def test_metadata_is_not_in_the_key_of_a_real_provider():
    a, b = request(metadata={"question_id": "q1"}), request(metadata={"question_id": "q2"})
    assert request_key(a, "openai/m") == request_key(b, "openai/m")


@pytest.mark.parametrize("provider", ["sim", "replay"])
def test_metadata_is_in_the_key_of_an_offline_provider(provider):
    a, b = request(metadata={"question_id": "q1"}), request(metadata={"question_id": "q2"})
    assert request_key(a, f"{provider}/m") != request_key(b, f"{provider}/m")


def test_put_then_get_is_a_cache_hit(tmp_path):
    cache = RolloutCache(tmp_path / "c.sqlite")
    rec, body = _record(request())
    assert cache.put(rec, body)
    hit = cache.get(rec.key, "succeed")
    assert hit.cache_hit and hit.text == "four" and hit.model == "succeed"
    assert hit.cost_usd == rec.cost_usd and hit.litellm_model == "openai/m"


def test_first_answer_stored_for_a_key_wins(tmp_path):
    cache = RolloutCache(tmp_path / "c.sqlite")
    rec, body = _record(request())
    cache.put(rec, body)
    other, _ = _record(request(), text="five")
    assert not cache.put(other, body)
    assert cache.get(rec.key).text == "four"


def test_a_put_is_visible_to_a_new_connection_at_once(tmp_path):
    writer = RolloutCache(tmp_path / "c.sqlite")
    rec, body = _record(request())
    writer.put(rec, body)  # no close, no flush: each put commits
    got = RolloutCache(tmp_path / "c.sqlite", "replay").get(rec.key)
    assert got is not None and (got.key, got.text, got.cost_usd) == (rec.key, "four", rec.cost_usd)


def test_off_mode_stores_nothing(tmp_path):
    cache = RolloutCache(None, "off")
    rec, body = _record(request())
    assert not cache.put(rec, body)
    assert cache.get(rec.key) is None and len(cache) == 0


def test_replay_mode_never_writes(tmp_path):
    RolloutCache(tmp_path / "c.sqlite").close()
    replay = RolloutCache(tmp_path / "c.sqlite", "replay")
    rec, body = _record(request())
    assert not replay.put(rec, body)
    assert len(replay) == 0


def test_replay_mode_needs_an_existing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        RolloutCache(tmp_path / "absent.sqlite", "replay")


def test_unknown_mode_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="'rx'"):
        RolloutCache(tmp_path / "c.sqlite", "rx")


def _writer(path: str, worker: int, n: int) -> None:
    cache = RolloutCache(path)
    for i in range(n):
        rec, body = _record(request(text=f"w{worker} q{i}"))
        cache.put(rec, body)


def test_several_processes_write_one_file_without_losing_records(tmp_path):
    path = str(tmp_path / "c.sqlite")
    RolloutCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 150)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(RolloutCache(path)) == 450


def test_export_then_import_gives_the_same_records(tmp_path):
    src = RolloutCache(tmp_path / "a.sqlite")
    for i in range(5):
        src.put(*_record(request(text=f"q{i}")))
    assert src.export_jsonl(tmp_path / "x.jsonl") == 5
    dst = RolloutCache(tmp_path / "b.sqlite")
    assert dst.import_jsonl(tmp_path / "x.jsonl") == (5, 0)
    assert dst.import_jsonl(tmp_path / "x.jsonl") == (0, 5)
    assert dst.keys() == src.keys()


def test_import_rejects_an_edited_line_naming_it(tmp_path):
    src = RolloutCache(tmp_path / "a.sqlite")
    src.put(*_record(request()))
    src.export_jsonl(tmp_path / "x.jsonl")
    row = json.loads((tmp_path / "x.jsonl").read_text())
    row["request"] = row["request"].replace("2+2", "2+3")
    (tmp_path / "x.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"x\.jsonl:1: key is not the sha256"):
        RolloutCache(tmp_path / "b.sqlite").import_jsonl(tmp_path / "x.jsonl")


def test_stats_count_records_cost_and_models(tmp_path):
    cache = RolloutCache(tmp_path / "c.sqlite")
    cache.put(*_record(request(text="a"), model="openai/x"))
    cache.put(*_record(request(text="b"), model="sim/y"))
    st = cache.stats()
    assert st.records == 2 and st.by_model == {"openai/x": 1, "sim/y": 1}
    assert st.cost_usd == pytest.approx(2e-5) and st.prompt_tokens == 10


def test_cli_cache_export_import_stats(tmp_path, capsys):
    src = RolloutCache(tmp_path / "a.sqlite")
    for i in range(3):
        src.put(*_record(request(text=f"q{i}")))
    src.close()
    assert cli(["cache", "export", "--cache", str(tmp_path / "a.sqlite"), "--out", str(tmp_path / "x.jsonl")]) == 0
    assert cli(["cache", "import", "--cache", str(tmp_path / "b.sqlite"), "--src", str(tmp_path / "x.jsonl")]) == 0
    assert cli(["cache", "stats", "--json", "--cache", str(tmp_path / "b.sqlite")]) == 0
    stats = json.loads(capsys.readouterr().out.split("\n", 2)[2])
    assert stats["records"] == 3


def test_cli_cache_stats_of_a_missing_file_is_a_user_error(tmp_path, capsys):
    assert cli(["cache", "stats", "--cache", str(tmp_path / "none.sqlite")]) == 2
    assert "none.sqlite" in capsys.readouterr().err


def test_provider_params_are_in_the_key_of_an_offline_provider_only():
    a, b = {"sim_model": {"base": "x"}}, {"sim_model": {"base": "y"}}
    assert request_key(request(), "sim/m", a) != request_key(request(), "sim/m", b)
    assert request_key(request(), "openai/m", a) == request_key(request(), "openai/m", b)
