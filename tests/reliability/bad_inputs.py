"""The bad-input table: >= 200 hostile-but-realistic inputs across the CLI surfaces.

Each `Case` is a name, a surface, the files it needs (written into a fresh folder) and the argv
(with `{d}` standing for that folder). `run_case` calls `hieramas_gnn.cli.main` in-process and
classifies the outcome: `clear` (exit 2, one `hieramas: error:` line or an argparse usage error,
no traceback, nothing written), `traceback`, `wrong_exit`, `wrote` (the folder changed), `slow`
(over `SLOW_S`) or `hang` (a subprocess case still running at `SLOW_S`, killed). Shared by test_bad_inputs.py and report.py.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import io
import json
import os
import sqlite3
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SLOW_S = 60.0
NON_UTF8 = b"\xff\xfe\x00bad \xc3\x28 bytes\n"


@dataclass(frozen=True)
class Case:
    name: str
    surface: str
    argv: list[str]
    files: dict[str, Any] = field(default_factory=dict)  # name -> bytes | str | "DIR" | ("sqlite", sql)
    subprocess: bool = False  # run `python -m hieramas_gnn.cli` with a timeout (a case that may train)

    @property
    def id(self) -> str:
        return f"{self.surface}:{self.name}"


@dataclass(frozen=True)
class Outcome:
    case: str
    kind: str  # clear | traceback | wrong_exit | wrote | slow
    code: int | None
    message: str
    seconds: float


# -- the table ---------------------------------------------------------------------------------

def _valid_design() -> dict[str, Any]:
    return {"schema_version": 1, "roles": ["planner", "solver", "verifier", "generalist"],
            "mixtures": [{"proposers": ["gpt-4o"], "synthesizer": "gpt-4o"},
                         {"proposers": ["claude-3.5-sonnet"], "synthesizer": "gpt-4o"},
                         {"proposers": ["llama-70b-arith"], "synthesizer": "gpt-4o"},
                         {"proposers": ["flash-science"], "synthesizer": "gpt-4o"}],
            "edges": [[0, 1], [1, 2], [2, 3]], "decision": "gpt-4o"}


def _design_variants() -> dict[str, Any]:
    def with_(key: str, value: Any) -> dict[str, Any]:
        d = copy.deepcopy(_valid_design())
        if value is _DROP:
            del d[key]
        else:
            d[key] = value
        return d

    out: dict[str, Any] = {
        "edge_float": with_("edges", [[0, 1.5]]), "edge_float_integral": with_("edges", [[0.0, 1.0]]),
        "edge_strings": with_("edges", [["0", "1"]]), "edge_bools": with_("edges", [[True, False]]),
        "edge_null": with_("edges", [[None, 1]]), "edge_short": with_("edges", [[0]]),
        "edge_long": with_("edges", [[0, 1, 2]]), "edge_dict": with_("edges", [{"src": 0, "dst": 1}]),
        "edge_out_of_range": with_("edges", [[0, 99]]), "edge_negative": with_("edges", [[-1, 0]]),
        "edge_self_loop": with_("edges", [[1, 1]]), "edge_duplicate": with_("edges", [[0, 1], [0, 1]]),
        "edge_cycle": with_("edges", [[0, 1], [1, 2], [2, 0]]), "edges_string": with_("edges", "0-1"),
        "edges_null": with_("edges", None), "edges_missing": with_("edges", _DROP),
        "edge_huge_int": with_("edges", [[0, 10 ** 30]]), "edge_nested": with_("edges", [[[0], [1]]]),
        "roles_missing": with_("roles", _DROP), "roles_not_list": with_("roles", "planner"),
        "roles_ints": with_("roles", [1, 2, 3, 4]), "roles_duplicate": with_("roles", ["solver"] * 4),
        "roles_unknown": with_("roles", ["planner", "solver", "verifier", "wizard"]),
        "roles_empty": with_("roles", []), "mixtures_short": with_("mixtures", [None]),
        "mixtures_not_list": with_("mixtures", {"a": 1}), "mixture_bad": with_("mixtures", [5, None, None, None]),
        "mixture_unknown_model": with_("mixtures", [{"proposers": ["nope"], "synthesizer": "gpt-4o"}, None, None, None]),
        "mixture_empty_proposers": with_("mixtures", [{"proposers": [], "synthesizer": "gpt-4o"}, None, None, None]),
        "decision_missing": with_("decision", _DROP), "decision_empty": with_("decision", ""),
        "decision_int": with_("decision", 3), "decision_unknown": with_("decision", "gpt-9"),
        "schema_missing": with_("schema_version", _DROP), "schema_wrong": with_("schema_version", 99),
        "schema_string": with_("schema_version", "1"), "top_list": [1, 2], "top_string": "design",
        "top_null": None,
    }
    return out


_DROP = object()


def _samples_cases() -> list[Case]:
    ok = {"question_id": "synthetic/arithmetic/3/3", "response": "42"}
    line = lambda obj: json.dumps(obj) + "\n"  # noqa: E731
    files: dict[str, Any] = {
        "empty": b"", "blank_lines": b"\n\n  \n", "not_json": b"hello\n", "array_line": b"[1, 2]\n",
        "number_line": b"18\n", "string_line": b'"x"\n', "null_line": b"null\n", "truncated_json": b'{"question_id": "a"\n',
        "missing_id": line({"response": "1"}), "missing_reply": line({"question_id": "synthetic/arithmetic/3/3"}),
        "id_null": line({"question_id": None, "response": "1"}), "id_float": line({"question_id": 1.0, "response": "1"}),
        "id_bool": line({"question_id": True, "response": "1"}), "id_list": line({"question_id": ["a"], "response": "1"}),
        "id_dict": line({"question_id": {"a": 1}, "response": "1"}), "id_empty": line({"question_id": "", "response": "1"}),
        "response_int": line({**ok, "response": 18}), "response_float": line({**ok, "response": 1.5}),
        "response_null": line({**ok, "response": None}), "response_list": line({**ok, "response": ["42"]}),
        "response_dict": line({**ok, "response": {"a": 1}}), "response_bool": line({**ok, "response": True}),
        "completion_int": line({"task_id": "synthetic/arithmetic/3/3", "completion": 5}),
        "same_line_3x": line(ok) * 3, "same_line_2x": line(ok) * 2,
        "unequal_counts": line(ok) + line({**ok, "response": "41"}) + line({"question_id": "synthetic/physics/3/2", "response": "1"}),
        "non_utf8": NON_UTF8, "unknown_id": line({"question_id": "synthetic/nope/1/1", "response": "1"}),
        "deep_nesting": b"[" * 100000 + b"]" * 100000 + b"\n", "nul_bytes": b'{"question_id": "a\x00", "response": "1"\n',
        "bom": b"\xef\xbb\xbf" + line(ok).encode(), "one_good_then_bad": (line(ok) + "oops\n").encode(),
        "id_int_unknown": line({"question_id": 7, "response": "1"}), "nan_id": b'{"question_id": NaN, "response": "1"}\n',
    }
    cases = []
    for name, data in files.items():
        fname = "s.jsonl"
        cases.append(Case(name, "score", ["score", "synthetic", "--samples", "{d}/" + fname, "--json", "{d}/out/summary.json"],
                          {fname: data}))
    good = {"s.jsonl": line(ok)}
    gz_bad = {"s.jsonl.gz": b"not gzip at all"}
    gz_trunc = {"s.jsonl.gz": gzip.compress(line(ok).encode() * 50)[:30]}
    cases += [
        Case("gzip_garbage", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl.gz"], gz_bad),
        Case("gzip_truncated", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl.gz"], gz_trunc),
        Case("samples_is_dir", "score", ["score", "synthetic", "--samples", "{d}/sd"], {"sd": "DIR"}),
        Case("samples_missing", "score", ["score", "synthetic", "--samples", "{d}/nope.jsonl"]),
        Case("workers_zero", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl", "--workers", "0"], good),
        Case("workers_negative", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl", "--workers", "-4"], good),
        Case("workers_text", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl", "--workers", "many"], good),
        Case("json_is_dir", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl", "--json", "{d}/od"], {**good, "od": "DIR"}),
        Case("only_ok_wrong_task", "score", ["score", "synthetic", "--samples", "{d}/s.jsonl", "--only-ok"], good),
        Case("unknown_task", "score", ["score", "nosuchtask", "--samples", "{d}/s.jsonl"], good),
        Case("no_samples_flag", "score", ["score", "synthetic"], good),
    ]
    return cases


def _cache_cases() -> list[Case]:
    valid = ("sqlite", None)
    foreign = ("sqlite", "CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'ada');")
    wrong_cols = ("sqlite", "CREATE TABLE records (key TEXT, other TEXT);")
    damaged = {"text": b"plain text, not sqlite\n" * 50, "json": b'{"records": []}\n', "zeros": bytes(8192),
               "random": hashlib.sha256(b"x").digest() * 300, "header_only": b"SQLite format 3\x00" + bytes(50),
               "foreign": foreign, "wrong_columns": wrong_cols, "empty_file": b""}
    cases = []
    for name, content in damaged.items():
        for action in ("stats", "verify", "export"):
            extra = ["--out", "{d}/o.jsonl"] if action == "export" else []
            cases.append(Case(f"{action}_{name}", "cache", ["cache", action, "--cache", "{d}/c.sqlite", *extra], {"c.sqlite": content}))
        if name in ("text", "json", "foreign", "wrong_columns", "random"):
            cases.append(Case(f"import_into_{name}", "cache", ["cache", "import", "--cache", "{d}/c.sqlite", "--src", "{d}/e.jsonl"],
                              {"c.sqlite": content, "e.jsonl": _export_line()}))
    row = json.loads(_export_line())
    bad_exports = {"missing_field": {k: v for k, v in row.items() if k != "text"}, "key_mismatch": {**row, "key": "0" * 64},
                   "tokens_negative": {**row, "prompt_tokens": -5}, "tokens_bool": {**row, "completion_tokens": True},
                   "cost_negative": {**row, "cost_usd": -1.0}, "cost_string": {**row, "cost_usd": "0.1"},
                   "text_int": {**row, "text": 5}, "array": [1, 2]}
    for name, obj in bad_exports.items():
        cases.append(Case(f"import_{name}", "cache", ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"],
                          {"e.jsonl": json.dumps(obj) + "\n"}))
    cases += [
        Case("import_not_json", "cache", ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"], {"e.jsonl": b"{{{\n"}),
        Case("import_non_utf8", "cache", ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"], {"e.jsonl": NON_UTF8}),
        Case("import_src_missing", "cache", ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/none.jsonl"]),
        Case("import_src_dir", "cache", ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/sd"], {"sd": "DIR"}),
        Case("stats_missing", "cache", ["cache", "stats", "--cache", "{d}/none.sqlite"]),
        Case("stats_dir", "cache", ["cache", "stats", "--cache", "{d}/cd"], {"cd": "DIR"}),
        Case("verify_dir", "cache", ["cache", "verify", "--cache", "{d}/cd"], {"cd": "DIR"}),
        Case("import_cache_is_dir", "cache", ["cache", "import", "--cache", "{d}/cd", "--src", "{d}/e.jsonl"],
             {"cd": "DIR", "e.jsonl": _export_line()}),
        Case("export_out_is_dir", "cache", ["cache", "export", "--cache", "{d}/c.sqlite", "--out", "{d}/od"], {"c.sqlite": valid, "od": "DIR"}),
        Case("export_out_under_file", "cache", ["cache", "export", "--cache", "{d}/c.sqlite", "--out", "{d}/f/x.jsonl"],
             {"c.sqlite": valid, "f": b"a file"}),
        Case("no_action", "cache", ["cache"]), Case("unknown_action", "cache", ["cache", "repair", "--cache", "{d}/c"]),
    ]
    return cases


def _export_line() -> str:
    request = '{"model":"m"}'
    key = hashlib.sha256(request.encode()).hexdigest()
    return json.dumps({"key": key, "model": "m", "text": "t", "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0.0,
                       "latency_ms": 1.0, "created_at": 0.0, "request": request}) + "\n"


def _eval_cases() -> list[Case]:
    base = ["eval", "--task", "synthetic", "--pool", "sim", "--cache-mode", "off", "--limit", "2"]
    cases = [Case(f"design_{name}", "eval", [*base, "--design", "{d}/design.json"], {"design.json": json.dumps(d)})
             for name, d in _design_variants().items()]
    good = {"design.json": json.dumps(_valid_design())}
    flags = {"limit_zero": ["--limit", "0"], "limit_negative": ["--limit", "-5"], "offset_negative": ["--offset", "-1"],
             "offset_huge": ["--offset", "100000000"], "limit_huge": ["--limit", "1000000000"],
             "candidates_negative": ["--candidates", "-3"], "candidates_zero": ["--candidates", "0"],
             "max_in_flight_zero": ["--max-in-flight", "0"], "budget_negative": ["--budget", "-1"],
             "budget_nan": ["--budget", "nan"], "budget_text": ["--budget", "lots"], "cache_mode_bogus": ["--cache-mode", "sometimes"],
             "task_unknown": ["--task", "nosuch"], "pool_unknown": ["--pool", "nosuchpool"], "split_unknown": ["--split", "nosplit"]}
    for name, extra in flags.items():
        cases.append(Case(name, "eval", [*base, "--design", "{d}/design.json", *extra], good))
    cases += [
        Case("design_not_json", "eval", [*base, "--design", "{d}/design.json"], {"design.json": b"{oops"}),
        Case("design_empty", "eval", [*base, "--design", "{d}/design.json"], {"design.json": b""}),
        Case("design_non_utf8", "eval", [*base, "--design", "{d}/design.json"], {"design.json": NON_UTF8}),
        Case("design_missing", "eval", [*base, "--design", "{d}/none.json"]),
        Case("design_is_dir", "eval", [*base, "--design", "{d}/dd"], {"dd": "DIR"}),
        Case("out_is_file", "eval", [*base, "--design", "{d}/design.json", "--out", "{d}/f"], {**good, "f": b"x"}),
        Case("policy_missing", "eval", ["eval", "--task", "synthetic", "--policy", "{d}/nopolicy", "--cache-mode", "off"]),
        Case("policy_is_file", "eval", ["eval", "--task", "synthetic", "--policy", "{d}/f", "--cache-mode", "off"], {"f": b"x"}),
        Case("policy_empty_dir", "eval", ["eval", "--task", "synthetic", "--policy", "{d}/pd", "--cache-mode", "off"], {"pd": "DIR"}),
        Case("both_policy_and_design", "eval", [*base, "--design", "{d}/design.json", "--policy", "{d}/pd"], good),
    ]
    return cases


def _pool_yaml() -> str:
    return yaml.safe_dump({"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed", "input_cost_per_token": 1e-6,
                                                   "output_cost_per_token": 2e-6}]})


def _collect_config(**over: Any) -> dict[str, Any]:
    cfg = {"task": "synthetic", "limit": 2, "pool": "pool.yaml", "designs": ["single"], "cache": "cache.sqlite"}
    for k, v in over.items():
        if v is _DROP:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return cfg


def _collect_cases() -> list[Case]:
    bad_design = copy.deepcopy(_valid_design())
    variants: dict[str, dict[str, Any]] = {
        "unknown_field": {"budget": 1.0}, "task_missing": {"task": _DROP}, "pool_missing": {"pool": _DROP},
        "designs_missing": {"designs": _DROP}, "cache_missing": {"cache": _DROP}, "designs_empty": {"designs": []},
        "designs_string": {"designs": "single"}, "design_int": {"designs": [5]}, "design_method_unknown": {"designs": ["nosuch"]},
        "design_file_missing": {"designs": ["missing.json"]}, "design_inline_bad_edges": {"designs": [{**bad_design, "edges": [[0, 1.5]]}]},
        "design_inline_string_edges": {"designs": [{**bad_design, "edges": [["0", "1"]]}]},
        "design_inline_bool_edges": {"designs": [{**bad_design, "edges": [[True, False]]}]},
        "design_inline_cycle": {"designs": [{**bad_design, "edges": [[0, 1], [1, 0]]}]},
        "design_inline_unknown_model": {"designs": [{**bad_design, "decision": "gpt-9"}]},
        "limit_zero": {"limit": 0}, "limit_negative": {"limit": -1}, "limit_bool": {"limit": True}, "limit_float": {"limit": 1.5},
        "limit_string": {"limit": "3"}, "samples_zero": {"samples": 0}, "samples_bool": {"samples": True},
        "samples_string": {"samples": "x"}, "max_in_flight_zero": {"max_in_flight": 0}, "max_in_flight_bool": {"max_in_flight": True},
        "seed_negative": {"seed": -1}, "seed_string": {"seed": "x"}, "seed_bool": {"seed": False},
        "budget_negative": {"budget_usd": -1}, "budget_bool": {"budget_usd": True}, "budget_string": {"budget_usd": "5"},
        "budget_nan": {"budget_usd": float("nan")}, "budget_inf": {"budget_usd": float("inf")},
        "temperature_negative": {"temperature": -0.5}, "temperature_huge": {"temperature": 50},
        "temperature_string": {"temperature": "hot"}, "temperature_bool": {"temperature": True},
        "temperature_nan": {"temperature": float("nan")}, "client_not_mapping": {"client": [1]},
        "client_unknown_key": {"client": {"retries": 2}}, "task_unknown": {"task": "nosuch"}, "task_int": {"task": 5},
        "pool_file_missing": {"pool": "nopool.yaml"}, "pool_int": {"pool": 5}, "split_int": {"split": 5},
        "data_missing": {"data": "nodata.jsonl"}, "cache_is_dir": {"cache": "cd"}, "cache_is_text": {"cache": "notes.txt"},
        "cache_is_foreign_sqlite": {"cache": "app.db"}, "out_is_dir": {"out": "od"},
    }
    extra_files = {"cd": "DIR", "notes.txt": b"my notes\n", "app.db": ("sqlite", "CREATE TABLE users (id INTEGER);"), "od": "DIR"}
    cases = []
    for name, over in variants.items():
        cfg = yaml.safe_dump(_collect_config(**over))
        cases.append(Case(name, "collect", ["collect", "--config", "{d}/collect.yaml", "--quiet"],
                          {"collect.yaml": cfg, "pool.yaml": _pool_yaml(), **extra_files}))
    raw = {"empty_file": b"", "yaml_syntax": b"task: [unclosed\n", "non_utf8": NON_UTF8, "top_list": b"- 1\n- 2\n",
           "top_scalar": b"42\n", "tabs": b"task:\tsynthetic\n\tpool: x\n"}
    for name, data in raw.items():
        cases.append(Case(f"config_{name}", "collect", ["collect", "--config", "{d}/collect.yaml", "--quiet"],
                          {"collect.yaml": data, "pool.yaml": _pool_yaml()}))
    pools = {"pool_inline_key": {"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed", "extra": {"api_key": "sk-x"}}]},
             "pool_no_models": {"name": "t", "models": []}, "pool_models_string": {"name": "t", "models": "a"},
             "pool_model_no_litellm": {"name": "t", "models": [{"name": "a"}]},
             "pool_duplicate_names": {"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed"}] * 2},
             "pool_negative_price": {"name": "t", "models": [{"name": "a", "litellm_model": "faults/succeed", "input_cost_per_token": -1}]}}
    for name, pool in pools.items():
        cases.append(Case(name, "collect", ["collect", "--config", "{d}/collect.yaml", "--quiet"],
                          {"collect.yaml": yaml.safe_dump(_collect_config()), "pool.yaml": yaml.safe_dump(pool)}))
    good = {"collect.yaml": yaml.safe_dump(_collect_config()), "pool.yaml": _pool_yaml()}
    cases += [
        Case("summary_is_dir", "collect", ["collect", "--config", "{d}/collect.yaml", "--quiet", "--summary", "{d}/sd"], {**good, "sd": "DIR"}),
        Case("config_missing", "collect", ["collect", "--config", "{d}/none.yaml", "--quiet"]),
        Case("config_is_dir", "collect", ["collect", "--config", "{d}/cfgdir", "--quiet"], {"cfgdir": "DIR"}),
    ]
    return cases


def _baselines_cases() -> list[Case]:
    base = ["baselines", "--task", "synthetic", "--pool", "sim", "--limit", "2", "--methods", "single"]
    flags = {"limit_zero": ["--limit", "0"], "max_in_flight_zero": ["--max-in-flight", "0"], "sc_samples_zero": ["--sc-samples", "0"],
             "fixed_k_zero": ["--fixed-k", "0"], "budget_negative": ["--budget", "-1"], "budget_nan": ["--budget", "nan"],
             "json_is_dir": ["--json", "{d}/od"], "json_under_file": ["--json", "{d}/f/x.json"], "method_unknown": ["--methods", "wizard"],
             "pool_unknown": ["--pool", "nosuchpool"], "task_unknown": ["--task", "nosuch"], "anchor_unknown": ["--anchor", "gpt-9"],
             "vote_order_bad": ["--methods", "vote", "--vote-order", "gpt-4o"], "cache_is_dir": ["--cache", "{d}/od"],
             "cache_is_text": ["--cache", "{d}/f"], "replay_cache_missing": ["--cache", "{d}/none.sqlite", "--cache-mode", "replay"],
             "data_missing": ["--data", "{d}/none.jsonl"], "limit_text": ["--limit", "ten"]}
    return [Case(name, "baselines", [*base, *extra], {"od": "DIR", "f": b"x"}) for name, extra in flags.items()]


def _train_cases() -> list[Case]:
    """Configs (the lead's config.py): only checked for a clear error."""
    raw = {"empty_file": b"", "yaml_syntax": b"run: [\n", "non_utf8": NON_UTF8, "top_list": b"- 1\n",
           "unknown_section": b"bogus: {a: 1}\n", "unknown_field": b"run: {nosuch: 1}\n",
           "steps_string": b"stage1: {steps: many}\n", "steps_negative": b"stage1: {steps: -5}\n",
           "lr_string": b"stage1: {lr: fast}\n", "seed_float": b"run: {seed: 1.5}\n", "seed_bool": b"run: {seed: true}\n"}
    cases = [Case(name, "train", ["train", "--config", "{d}/c.yaml", "--out", "{d}/run", "--wandb", "disabled"], {"c.yaml": data},
                  subprocess=True) for name, data in raw.items()]
    cases.append(Case("config_missing", "train", ["train", "--config", "{d}/none.yaml", "--out", "{d}/run"], subprocess=True))
    return cases


def _run_cases() -> list[Case]:
    return [Case("candidates_negative", "run", ["run", "--policy", "{d}/pd", "--task", "synthetic", "--question-id", "x",
                                                "--candidates", "-3"], {"pd": "DIR"}, subprocess=True),
            Case("policy_missing", "run", ["run", "--policy", "{d}/none", "--task", "synthetic", "--question-id", "x"],
                 subprocess=True)]


def all_cases() -> list[Case]:
    return [*_samples_cases(), *_cache_cases(), *_eval_cases(), *_collect_cases(), *_baselines_cases(),
            *_train_cases(), *_run_cases()]


# -- running -----------------------------------------------------------------------------------

def _materialize(folder: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        path = folder / name
        if content == "DIR":
            path.mkdir()
        elif isinstance(content, tuple):
            _sqlite(path, content[1])
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)


def _sqlite(path: Path, sql: str | None) -> None:
    if sql is None:
        from hieramas_gnn.llm.cache import RolloutCache

        RolloutCache(path, "rw").close()
        return
    with sqlite3.connect(path) as conn:
        conn.executescript(sql)


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder)] = "DIR"
        for name in files:
            p = os.path.join(root, name)
            out[os.path.relpath(p, folder)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def run_case(case: Case, folder: Path) -> Outcome:
    """Run one case in `folder` (created empty by the caller); never raises."""
    _materialize(folder, case.files)
    before = snapshot(folder)
    argv = [a.replace("{d}", str(folder)) for a in case.argv]
    if case.subprocess:
        return _run_subprocess(case, folder, argv, before)
    return _run_in_process(case, folder, argv, before)


def _classify(case: Case, folder: Path, before: dict[str, str], code: int | None, err: str, seconds: float) -> Outcome:
    message = err.strip().splitlines()[-1] if err.strip() else ""
    if "Traceback" in err:
        kind = "traceback"
    elif code != 2:
        kind = "wrong_exit"
    elif snapshot(folder) != before:
        kind = "wrote"
    elif seconds > SLOW_S:
        kind = "slow"
    else:
        kind = "clear"
    return Outcome(case.id, kind, code, message[:300], seconds)


def _run_subprocess(case: Case, folder: Path, argv: list[str], before: dict[str, str]) -> Outcome:
    import subprocess
    import sys

    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "hieramas_gnn.cli", *argv], cwd=folder, capture_output=True,
                              text=True, timeout=SLOW_S, env={**os.environ, "WANDB_MODE": "disabled"})
    except subprocess.TimeoutExpired:
        return Outcome(case.id, "hang", None, f"still running after {SLOW_S:.0f} s (killed)", SLOW_S)
    return _classify(case, folder, before, proc.returncode, proc.stderr, time.perf_counter() - start)


def _run_in_process(case: Case, folder: Path, argv: list[str], before: dict[str, str]) -> Outcome:
    from hieramas_gnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    code: int | None
    cwd = os.getcwd()
    try:
        os.chdir(folder)  # a command that writes a default path (runs/...) writes here, where we look
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the point is to classify it
        seconds = time.perf_counter() - start
        return Outcome(case.id, "traceback", None, traceback.format_exc(limit=3)[-600:], seconds)
    finally:
        os.chdir(cwd)
    return _classify(case, folder, before, code, err.getvalue(), time.perf_counter() - start)
