"""The hostile-input table: inputs and faults a hostile user tried that the bad-input table
(bad_inputs.py) does not cover: commands that could delete or overwrite the user's data, bundles
that could send calls or keys anywhere, a cache whose integrity could be bypassed, numbers that
could enter a budget non-finite, inputs that could hang or exhaust memory, and malformed input
that gave tracebacks or misleading errors.

Each `Row` has a name, the class of failure it guards against (`data_loss`, `security`,
`silent_wrong`, `traceback`, `hang`, `misleading`) and a check run in a fresh folder: a CLI call
(`cli(...)`, in process, or in a subprocess with a timeout where it could hang) whose outcome must
be a clear error (exit 2, one `hieramas: error:` line, no traceback) with the named files
unchanged, or a function that returns None when the behaviour is right and a description when
not. `run_row` never raises: a traceback is a `traceback` failure, a timeout a `hang`, any other
wrong outcome a failure of the row's own class. Shared by test_hostile_inputs.py and report.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

CLASSES = ("data_loss", "security", "silent_wrong", "traceback", "hang", "misleading")
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Row:
    name: str
    guards: str  # one of CLASSES: what a failure of this row would be
    check: Callable[[Path], str | None]  # None: held; else what went wrong


@dataclass(frozen=True)
class Verdict:
    row: str
    guards: str
    outcome: str  # "held" or one of CLASSES
    detail: str
    seconds: float


# -- helpers -----------------------------------------------------------------------------------

@dataclass
class Result:
    code: int | None
    out: str
    err: str
    hung: bool = False


def cli(argv: list[str], cwd: Path) -> Result:
    """`hieramas ARGV` in process, in `cwd` (SystemExit of argparse becomes the code)."""
    from hieramas_gnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - classified by the caller
                err.write(traceback.format_exc())
                code = None
    finally:
        os.chdir(here)
    return Result(code, out.getvalue(), err.getvalue())


def cli_subprocess(argv: list[str], cwd: Path, timeout: float = TIMEOUT_S) -> Result:
    """`python -m hieramas_gnn.cli ARGV` with a timeout (a hang is killed and reported)."""
    try:
        proc = subprocess.run([sys.executable, "-m", "hieramas_gnn.cli", *argv], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "WANDB_MODE": "disabled"})
    except subprocess.TimeoutExpired:
        return Result(None, "", "", hung=True)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder)] = "DIR"
        for name in files:
            p = os.path.join(root, name)
            if os.path.isfile(p):
                out[os.path.relpath(p, folder)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


class Failure(Exception):
    """Raised by a check with the class of what went wrong (when not its row's own)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def clear_error(res: Result, *, contains: str = "") -> str | None:
    """None when `res` is a clear error (exit 2, a `hieramas: error:` line naming `contains`)."""
    if res.hung:
        raise Failure("hang", f"still running after {TIMEOUT_S:.0f} s")
    if "Traceback" in res.err:
        raise Failure("traceback", res.err.strip().splitlines()[-1][:300])
    if res.code != 2:
        return f"exit {res.code} (expected 2): {(res.err or res.out).strip()[-300:]}"
    if "hieramas: error:" not in res.err and "usage:" not in res.err:
        return f"no error line: {res.err.strip()[-300:]}"
    if contains and contains not in res.err:
        raise Failure("misleading", f"error does not say {contains!r}: {res.err.strip()[-300:]}")
    return None


def unchanged(before: dict[str, str], folder: Path, allow: tuple[str, ...] = ()) -> None:
    """Raise a data_loss Failure when any file of `before` changed or went missing."""
    after = snapshot(folder)
    lost = [k for k, v in before.items() if after.get(k) != v and not k.startswith(allow)]
    if lost:
        raise Failure("data_loss", f"changed or removed: {', '.join(sorted(lost)[:5])}")


def expect_clear(folder: Path, argv: list[str], *, contains: str = "", subprocess_: bool = False) -> str | None:
    """The command gives a clear error and changes nothing that was there before."""
    before = snapshot(folder)
    argv = [a.replace("{d}", str(folder)) for a in argv]
    res = cli_subprocess(argv, folder) if subprocess_ else cli(argv, folder)
    problem = clear_error(res, contains=contains)
    unchanged(before, folder)
    new = sorted(set(snapshot(folder)) - set(before))
    if problem is None and new:
        return f"wrote {', '.join(new[:5])} while refusing"
    return problem


def cache_file(path: Path, n: int = 3, models: tuple[str, ...] = ("m",)) -> Path:
    """A real rollout cache with `n` records per model."""
    from hieramas_gnn.llm.cache import RolloutCache
    from hieramas_gnn.llm.types import LLMRecord

    path.parent.mkdir(parents=True, exist_ok=True)
    with RolloutCache(path, "rw") as cache:
        for model in models:
            for i in range(n):
                request = json.dumps({"model": model, "q": i})
                key = hashlib.sha256(request.encode()).hexdigest()
                cache.put(LLMRecord(key=key, model=model, text=f"the answer is {i}", prompt_tokens=3, completion_tokens=4,
                                    cost_usd=0.001, latency_ms=5.0, cache_hit=False, created_at=1.0), request)
    return path


def fake_run(folder: Path) -> Path:
    """A run folder as `hieramas train` leaves it (config, checkpoint, metrics): the files export
    must never delete."""
    run = folder / "run"
    run.mkdir()
    (run / "config.yaml").write_text("run: {name: x}\n")
    (run / "best.pt").write_bytes(b"weights")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    return run


def pool_yaml(**model: Any) -> str:
    m = {"name": "a", "litellm_model": "faults/succeed", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, **model}
    return yaml.safe_dump({"name": "t", "models": [m]})


def collect_cfg(folder: Path, **over: Any) -> Path:
    cfg = {"task": "synthetic", "limit": 2, "pool": "pool.yaml", "designs": ["single"], "cache": "cache.sqlite", **over}
    (folder / "collect.yaml").write_text(yaml.safe_dump(cfg))
    if not (folder / "pool.yaml").exists():
        (folder / "pool.yaml").write_text(pool_yaml())
    return folder / "collect.yaml"


TINY_TRAIN = {"task": {"name": "synthetic", "train_size": 4, "val_size": 2, "test_size": 0},
              "policy": {"embedder": "hashing", "hashing_dim": 8, "arch": {"hidden": 8, "layers": 1, "heads": 1}},
              "stage1": {"steps": 1, "batch_size": 1, "val_every": 1, "checkpoint_every": 1, "dag_pool_size": 2},
              "topology": {"n_candidates": 2, "classifier": {"epochs": 1}},
              "pool": {"decision": "gpt-4o"}, "tracking": {"wandb": "disabled", "progress": False},
              "client": {"max_retries": 0}, "cache": {"path": "cache.sqlite"}}


def train_clear(folder: Path, *overrides: str, contains: str = "", config: dict | None = None) -> str | None:
    """`hieramas train` on a tiny sim config with `overrides`: a clear config error, nothing written."""
    (folder / "c.yaml").write_text(yaml.safe_dump(config if config is not None else TINY_TRAIN))
    out = [] if any(o.startswith("run.out_dir=") for o in overrides) else ["--out", "{d}/run"]
    return expect_clear(folder, ["train", "--config", "{d}/c.yaml", *out, *overrides], contains=contains)


def bundle(folder: Path, name: str = "b", edit: Callable[[dict], Any] | None = None) -> Path:
    """A real (untrained) sim bundle; `edit` changes its manifest and the checksums are then
    regenerated, as an attacker would (the bundle verifies)."""
    from hieramas_gnn.serve.testing import sim_bundle

    path = sim_bundle(folder / name)
    if edit is not None:
        meta = json.loads((path / "policy.json").read_text())
        edit(meta)
        (path / "policy.json").write_text(json.dumps(meta))
        (path / "checksums.sha256").write_text("".join(
            f"{hashlib.sha256((path / n).read_bytes()).hexdigest()}  {n}\n"
            for n in ("policy.json", "policy.safetensors", "embeddings.safetensors") if (path / n).exists()))
    return path


def expect_user_error(fn: Callable[[], Any], contains: str = "") -> str | None:
    """`fn()` raises a UserError (naming `contains`); anything else is what went wrong."""
    from hieramas_gnn.errors import UserError

    try:
        fn()
    except UserError as exc:
        if contains and contains not in str(exc):
            raise Failure("misleading", f"error does not say {contains!r}: {exc}") from None
        return None
    return "accepted (no error)"


def _redirect(meta: dict) -> None:
    for m in meta["pool_models"]:
        m["litellm_model"] = "openai/gpt-4o-mini"
        m["extra"] = {"api_base": "http://attacker.invalid/v1", "api_key_env": "MY_PRIVATE_TOKEN"}


# -- data loss ---------------------------------------------------------------------------------

def export_into_notes(d: Path) -> str | None:
    run = fake_run(d)
    (d / "notes").mkdir()
    (d / "notes" / "todo.txt").write_text("my notes\n")
    return expect_clear(d, ["export", "--run", str(run), "--out", "{d}/notes"], contains="not a policy bundle")


def export_into_run_folder(d: Path) -> str | None:
    run = fake_run(d)
    return expect_clear(d, ["export", "--run", str(run), "--out", str(run)], contains="same path as --run")


def export_over_parent_of_run(d: Path) -> str | None:
    fake_run(d)
    return expect_clear(d / "run", ["export", "--run", "{d}", "--out", ".."], contains="current folder")


def export_onto_a_file(d: Path) -> str | None:
    run = fake_run(d)
    (d / "afile").write_text("mine\n")
    return expect_clear(d, ["export", "--run", str(run), "--out", "{d}/afile"], contains="is a file")


def export_into_current_folder(d: Path) -> str | None:
    run = fake_run(d)
    return expect_clear(d, ["export", "--run", str(run), "--out", "."], contains="current folder")


def export_replaces_only_a_bundle(d: Path) -> str | None:
    """Re-exporting onto an existing bundle replaces it (ours); stale temp folders of a killed
    export are cleaned, a user's file beside them is not."""
    path = bundle(d)
    (d / ".b.deadbeef.tmp").mkdir()
    (d / ".b.deadbeef.tmp" / "policy.json").write_text("{}")
    (d / "keep.txt").write_text("mine")
    before = (path / "checksums.sha256").read_bytes()
    bundle(d)  # again: replaces
    if not (path / "policy.json").is_file() or (path / "checksums.sha256").read_bytes() != before:
        return "the bundle was not replaced by an identical one"
    if (d / ".b.deadbeef.tmp").exists():
        return "a stale temp folder of a killed export was left"
    if not (d / "keep.txt").exists():
        raise Failure("data_loss", "a file beside the bundle was removed")
    return None


def collect_out_is_cache(d: Path) -> str | None:
    cache_file(d / "cache.sqlite")
    collect_cfg(d, out="cache.sqlite")
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="same path as cache")


def collect_summary_is_cache(d: Path) -> str | None:
    cache_file(d / "cache.sqlite")
    collect_cfg(d)
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet", "--summary", "{d}/cache.sqlite"],
                        contains="same path as cache")


def collect_out_onto_a_users_file(d: Path) -> str | None:
    (d / "notes.jsonl").write_text('{"my": "own data"}\n')
    collect_cfg(d, out="notes.jsonl")
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="refusing to overwrite")


def baselines_json_is_cache(d: Path) -> str | None:
    cache_file(d / "x.sqlite")
    return expect_clear(d, ["baselines", "--task", "synthetic", "--pool", "sim", "--limit", "1", "--methods", "single",
                            "--cache", "{d}/x.sqlite", "--json", "{d}/x.sqlite"], contains="same path as --cache")


def cache_export_onto_cache(d: Path) -> str | None:
    cache_file(d / "x.sqlite")
    return expect_clear(d, ["cache", "export", "--cache", "{d}/x.sqlite", "--out", "{d}/x.sqlite"],
                        contains="same path as --cache")


def cache_export_onto_wal(d: Path) -> str | None:
    cache_file(d / "x.sqlite")
    (d / "x.sqlite-wal").write_bytes(b"")
    return expect_clear(d, ["cache", "export", "--cache", "{d}/x.sqlite", "--out", "{d}/x.sqlite-wal"],
                        contains="same path as --cache")


def cache_import_src_is_cache(d: Path) -> str | None:
    cache_file(d / "x.sqlite")
    return expect_clear(d, ["cache", "import", "--cache", "{d}/x.sqlite", "--src", "{d}/x.sqlite"],
                        contains="same path as --src")


def outcomes_pool_onto_its_table(d: Path) -> str | None:
    (d / "results.csv").write_text("question_id,model,answer,correct\nq/1,m,1,1\nq/2,m,2,0\n")
    return expect_clear(d, ["outcomes", "pool", "{d}/results.csv", "--out", "{d}/results.csv"], contains="same path")


def outcomes_pool_onto_a_users_file(d: Path) -> str | None:
    (d / "results.csv").write_text("question_id,model,answer,correct\nq/1,m,1,1\nq/2,m,2,0\n")
    (d / "pool.yaml").write_text("# my hand-written pool\nname: mine\n")
    return expect_clear(d, ["outcomes", "pool", "{d}/results.csv", "--out", "{d}/pool.yaml"],
                        contains="not written by `hieramas outcomes pool`")


def eval_out_into_notes(d: Path) -> str | None:
    (d / "notes").mkdir()
    (d / "notes" / "report.md").write_text("my own report\n")
    (d / "design.json").write_text(json.dumps({"schema_version": 1, "roles": ["planner", "solver", "verifier", "generalist"],
                                               "mixtures": [{"proposers": ["gpt-4o"], "synthesizer": "gpt-4o"}, None, None, None],
                                               "edges": [], "decision": "gpt-4o"}))
    return expect_clear(d, ["eval", "--task", "synthetic", "--pool", "sim", "--design", "{d}/design.json", "--limit", "1",
                            "--cache-mode", "off", "--out", "{d}/notes"], contains="holds other files")


def report_out_into_notes(d: Path) -> str | None:
    (d / "notes").mkdir()
    (d / "notes" / "todo.txt").write_text("mine\n")
    (d / "exp").mkdir()
    return expect_clear(d, ["report", "{d}/exp", "--out", "{d}/notes"], contains="holds other files")


def demo_out_into_notes(d: Path) -> str | None:
    (d / "notes").mkdir()
    (d / "notes" / "report.md").write_text("mine\n")
    return expect_clear(d, ["demo", "--quick", "--seeds", "1", "--out", "{d}/notes"], contains="holds other files")


def train_into_a_folder_of_other_files(d: Path) -> str | None:
    (d / "run").mkdir()
    (d / "run" / "thesis.tex").write_text("mine\n")
    return train_clear(d, contains="holds other files")


def two_trains_in_one_run_folder(d: Path) -> str | None:
    """A second `hieramas train` on a run folder another one holds is refused (no race)."""
    from hieramas_gnn.guards import folder_lock

    (d / "run").mkdir()
    with folder_lock(d / "run", "run folder"):  # as a running `hieramas train` holds it
        return train_clear(d, contains="in use by another hieramas process")


# -- security ----------------------------------------------------------------------------------

def tampered_bundle_policy_load(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=_redirect)
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="never decides that")


def tampered_bundle_serve(d: Path) -> str | None:
    bundle(d, edit=_redirect)
    return expect_clear(d, ["serve", "--policy", "{d}/b", "--port", "0", "--cache-mode", "off"], contains="never decides that")


def tampered_bundle_run(d: Path) -> str | None:
    bundle(d, edit=_redirect)
    return expect_clear(d, ["run", "--policy", "{d}/b", "--task", "synthetic", "--question-id", "synthetic/arithmetic/3/3",
                            "--cache-mode", "off"], contains="never decides that")


def tampered_bundle_eval(d: Path) -> str | None:
    bundle(d, edit=_redirect)
    return expect_clear(d, ["eval", "--policy", "{d}/b", "--task", "synthetic", "--limit", "1", "--cache-mode", "off"],
                        contains="never decides that")


def tampered_bundle_with_users_pool(d: Path) -> str | None:
    """With the user's own pool the tampered bundle runs, and only the user's models are called."""
    from hieramas_gnn import Policy
    from hieramas_gnn.tasks import get_task

    path = bundle(d, edit=_redirect)
    policy = Policy.load(path, "sim", cache=None, backend={"sim": {"latency": "off"}})
    if any(m.provider != "sim" or m.extra.get("api_base") for m in policy.pool):
        return "the bundle's endpoints were used despite the user's pool"
    sol = policy.solve(get_task("synthetic").load(None, "test", limit=1)[0].text)
    return f"the episode failed: {sol.failure_reason}" if sol.failed else None


def bundle_scorer_code(d: Path) -> str | None:
    from hieramas_gnn import Policy

    def edit(meta: dict) -> None:
        meta["task"] = "quiz"
        meta["hyperparameters"]["task"] = {"name": "quiz", "scorer": "os:system", "path": "q.jsonl"}

    path = bundle(d, edit=edit)
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="never chooses code")


def bundle_task_code(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m.update(task="antigravity:fly"))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="never chooses code")


def bundle_roles_file_outside(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m.update(family="/etc/hieramas/roles.yaml"))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="only names files inside the current folder")


def bundle_pool_file_relative_to_cwd(d: Path) -> str | None:
    """`run`/`eval` reloaded a bundle's `pool_name` relative to the current folder: another
    folder's pp/cheap.yaml ran another pool. Now a bundle never picks a file."""
    bundle(d, edit=lambda m: m.update(pool_models=[], pool_name="pp/cheap.yaml"))
    (d / "pp").mkdir()
    (d / "pp" / "cheap.yaml").write_text(pool_yaml(name="gpt-4o", litellm_model="sim/gpt-4o"))
    return expect_clear(d, ["run", "--policy", "{d}/b", "--task", "synthetic", "--question-id", "synthetic/arithmetic/3/3",
                            "--cache-mode", "off"], contains="names the pool file")


def bundle_digest_pin(d: Path) -> str | None:
    from hieramas_gnn import Policy
    from hieramas_gnn.bundle import bundle_digest

    good = bundle(d, "good")
    other = bundle(d, "other", edit=lambda m: m["training"].update(note="edited"))
    digest = bundle_digest(good)
    Policy.load(good, cache=None, sha256=digest)
    return expect_user_error(lambda: Policy.load(other, cache=None, sha256=digest), contains="not the pinned")


def null_checksum_not_served(d: Path) -> str | None:
    """Erasing an edited row's checksum no longer slips it past verify, stats or replay."""
    from hieramas_gnn.llm.cache import RolloutCache

    path = cache_file(d / "c.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE records SET text = 'edited', checksum = NULL")
    codes = [cli(["cache", a, "--cache", str(path)], d).code for a in ("verify", "stats")]
    if codes != [1, 1]:
        return f"verify/stats exit {codes} on rows without a checksum (expected 1, 1)"
    key = hashlib.sha256(json.dumps({"model": "m", "q": 0}).encode()).hexdigest()
    with RolloutCache(path, "replay") as cache:
        return expect_user_error(lambda: cache.get(key), contains="not served")


def import_edited_text(d: Path) -> str | None:
    cache_file(d / "src.sqlite")
    cli(["cache", "export", "--cache", str(d / "src.sqlite"), "--out", str(d / "e.jsonl")], d)
    lines = [json.loads(x) for x in (d / "e.jsonl").read_text().splitlines()]
    lines[0]["text"] = "edited"
    (d / "e.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return expect_clear(d, ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"],
                        contains="checksum does not match")


def import_without_checksum(d: Path) -> str | None:
    cache_file(d / "src.sqlite")
    cli(["cache", "export", "--cache", str(d / "src.sqlite"), "--out", str(d / "e.jsonl")], d)
    lines = [json.loads(x) for x in (d / "e.jsonl").read_text().splitlines()]
    for x in lines:
        x.pop("checksum")
        x["text"] = "edited"
    (d / "e.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return expect_clear(d, ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"], contains="no checksum")


def import_infinite_cost(d: Path) -> str | None:
    cache_file(d / "src.sqlite")
    cli(["cache", "export", "--cache", str(d / "src.sqlite"), "--out", str(d / "e.jsonl")], d)
    text = (d / "e.jsonl").read_text().replace('"cost_usd":0.001', '"cost_usd":Infinity')
    (d / "e.jsonl").write_text(text)
    return expect_clear(d, ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"], contains="cost_usd")


def serve_public_without_key_warns(d: Path) -> str | None:
    res = cli(["serve", "--host", "0.0.0.0", "--policy", str(d / "none")], d)
    if "WARNING" not in res.err or "without an API key" not in res.err:
        return f"no warning for a public address without a key: {res.err.strip()[-200:]}"
    return clear_error(res)


# -- money and silent wrong --------------------------------------------------------------------

def pool_nan_price(d: Path) -> str | None:
    (d / "pool.yaml").write_text(pool_yaml(input_cost_per_token=float("nan")))
    collect_cfg(d)
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="finite")


def pool_inf_price(d: Path) -> str | None:
    (d / "pool.yaml").write_text(pool_yaml(output_cost_per_token=float("inf")))
    collect_cfg(d)
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="finite")


def outcomes_pool_nan_cost(d: Path) -> str | None:
    (d / "results.csv").write_text("question_id,model,answer,correct\nq/1,mymodel,1,1\nq/2,mymodel,2,0\n")
    return expect_clear(d, ["outcomes", "pool", "{d}/results.csv", "--out", "{d}/p.yaml", "--input-cost", "nan"],
                        contains="finite")


def budget_inf(d: Path) -> str | None:
    return expect_clear(d, ["baselines", "--task", "synthetic", "--pool", "sim", "--limit", "1", "--methods", "single",
                            "--budget", "inf"], contains="finite")


def client_budget_nan(d: Path) -> str | None:
    from hieramas_gnn.llm.client import ClientConfig

    return expect_user_error(lambda: ClientConfig(budget_usd=float("nan")), contains="finite")


def demo_seeds_on_different_routes(d: Path) -> str | None:
    """Seeds whose routes differ (one learned, one random) aggregate over every seed, no KeyError.
    (tests/test_demo.py runs `demo --quick --seeds 3` itself.)"""
    import numpy as np

    from hieramas_gnn.eval.evaluate import aggregate_seeds
    from hieramas_gnn.eval.experiment import _same_methods_every_seed

    def row(method: str, acc: float) -> dict:
        from hieramas_gnn.eval.evaluate import ROW_KEYS

        return {**{k: 1.0 for k in ROW_KEYS[1:]}, "method": method, "accuracy": acc, "n_failed": 0, "n": 4}

    per_seed = [[row("hieramas", 0.5), row("hieramas-random-dag", 0.25)], [row("hieramas", 0.75)]]
    learned = [{"hieramas": {"correct": np.ones(4)}, "hieramas-random-dag": {"correct": np.zeros(4)}},
               {"hieramas": {"correct": np.ones(4)}}]
    _same_methods_every_seed(per_seed, learned)
    agg = {r["method"]: r for r in aggregate_seeds(per_seed)}
    if agg["hieramas-random-dag"]["seeds"] != 2 or abs(agg["hieramas-random-dag"]["accuracy"] - 0.5) > 1e-9:
        return f"control aggregated over {agg['hieramas-random-dag']['seeds']} seeds"
    _ = {m: {k: np.mean([pq[m][k] for pq in learned], axis=0) for k in learned[0][m]} for m in learned[0]}
    return None


def stage1_lr_inf(d: Path) -> str | None:
    return train_clear(d, "stage1.lr=.inf", contains="stage1.lr")


def cost_lambda_inf(d: Path) -> str | None:
    return train_clear(d, "reward.cost_lambda=.inf", contains="reward.cost_lambda")


def budget_nan_in_config(d: Path) -> str | None:
    return train_clear(d, "client.budget_usd=.nan", contains="client.budget_usd")


def export_non_finite_weights(d: Path) -> str | None:
    """A policy whose weights went non-finite is never exported as a bundle."""
    import torch

    from hieramas_gnn.bundle import export_policy
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder
    from hieramas_gnn.policy.graph import GraphBuilder
    from hieramas_gnn.policy.testing import toy_policy

    pool = load_pool("sim")
    builder = GraphBuilder(FeatureBuilder(CachedEmbedder(HashingEmbedder(8)), [], 4),
                           list(get_roleset("synthetic").roles)[:2], list(pool.models))
    policy = toy_policy(builder, seed=0)
    with torch.no_grad():
        next(iter(policy.parameters())).fill_(float("inf"))
    problem = expect_user_error(lambda: export_policy(policy, d / "b", builder=builder, decision="gpt-4o"),
                                contains="non-finite")
    if (d / "b").exists():
        return "a bundle folder was written"
    return problem


def out_dir_bound_method(d: Path) -> str | None:
    return train_clear(d, "run.out_dir=r_{task.upper}", contains="unknown placeholder")


def sim_50mb_question(d: Path) -> str | None:
    """A 50 MB prompt is refused before any call (the sim billed it $65 before)."""
    import asyncio

    from hieramas_gnn.llm.client import LLMClient
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.llm.types import LLMRequest

    client = LLMClient(load_pool("sim"))
    request = LLMRequest(model="gpt-4o", messages=({"role": "user", "content": "x" * 50_000_000},),
                         metadata={"question_id": "synthetic/arithmetic/3/3", "task": "synthetic"})
    problem = expect_user_error(lambda: asyncio.run(client.complete(request)), contains="context")
    if client.stats.calls or client.stats.spent_usd:
        raise Failure("silent_wrong", f"{client.stats.calls} calls made, ${client.stats.spent_usd} spent")
    return problem


def policy_json_strict(d: Path) -> str | None:
    """policy.json is strict JSON (no bare NaN) even when a training figure is NaN."""
    from hieramas_gnn.serve.testing import sim_bundle  # noqa: F401 - same path as bundle()
    from hieramas_gnn.bundle import export_policy
    from hieramas_gnn.llm.pool import load_pool
    from hieramas_gnn.mas.roles import get_roleset
    from hieramas_gnn.policy.choose import ChoiceSettings
    from hieramas_gnn.policy.features import CachedEmbedder, FeatureBuilder, HashingEmbedder
    from hieramas_gnn.policy.graph import GraphBuilder
    from hieramas_gnn.policy.testing import toy_policy

    pool = load_pool("sim")
    builder = GraphBuilder(FeatureBuilder(CachedEmbedder(HashingEmbedder(8)), [], 4),
                           list(get_roleset("synthetic").roles)[:2], list(pool.models))
    export_policy(toy_policy(builder, seed=0), d / "b", builder=builder, decision="gpt-4o", pool=pool,
                  choice=ChoiceSettings(route="random", decision="gpt-4o", n_candidates=2),
                  training={"best_val_auc": float("nan"), "loss": float("inf")})

    def refuse(token: str) -> None:
        raise ValueError(f"bare {token}")

    try:
        json.loads((d / "b" / "policy.json").read_text(), parse_constant=refuse)
    except ValueError as exc:
        return f"policy.json is not strict JSON: {exc}"
    return None


def newer_schema_cache(d: Path) -> str | None:
    path = cache_file(d / "cache.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA user_version = 7")
    collect_cfg(d)
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="newer hieramas_gnn")


# -- hangs -------------------------------------------------------------------------------------

def fifo_cache_stats(d: Path) -> str | None:
    os.mkfifo(d / "c.sqlite")
    return expect_clear(d, ["cache", "stats", "--cache", "{d}/c.sqlite"], contains="FIFO", subprocess_=True)


def fifo_cache_collect(d: Path) -> str | None:
    os.mkfifo(d / "cache.sqlite")
    collect_cfg(d)
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="FIFO", subprocess_=True)


def fifo_config(d: Path) -> str | None:
    os.mkfifo(d / "c.yaml")
    return expect_clear(d, ["train", "--config", "{d}/c.yaml"], contains="FIFO", subprocess_=True)


def train_size_huge(d: Path) -> str | None:
    return train_clear(d, "task.train_size=1000000000", contains="task.train_size")


def bundle_n_candidates_huge(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m["choice"].update(n_candidates=10_000_000))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="n_candidates")


def config_n_candidates_huge(d: Path) -> str | None:
    return train_clear(d, "topology.n_candidates=10000000", contains="topology.n_candidates")


def regex_backtracking(d: Path) -> str | None:
    (d / "q.jsonl").write_text(json.dumps({"question": "Say a", "answer": "a"}) + "\n")
    (d / "task.yaml").write_text(yaml.safe_dump({"name": "ddos", "path": "q.jsonl", "scorer": "regex:(a|aa)+$"}))
    (d / "s.jsonl").write_text(json.dumps({"question_id": "ddos/0", "response": "a" * 44 + "!"}) + "\n")
    return expect_clear(d, ["score", "{d}/task.yaml", "--samples", "{d}/s.jsonl"], contains="backtracking",
                        subprocess_=True)


# -- tracebacks and misleading errors ----------------------------------------------------------

def out_dir_open_brace(d: Path) -> str | None:
    return train_clear(d, "run.out_dir=r_{", contains="run.out_dir")


def out_dir_bad_spec(d: Path) -> str | None:
    return train_clear(d, "run.out_dir=r_{seed:Z}", contains="run.out_dir")


def out_dir_huge_width(d: Path) -> str | None:
    return train_clear(d, "run.out_dir=r_{seed:>999999999}", contains="run.out_dir")


def run_name_nul(d: Path) -> str | None:
    return train_clear(d, "run.name=a\x00b", contains="run.name")


def run_name_300_chars(d: Path) -> str | None:
    return train_clear(d, f"run.name={'x' * 300}", contains="run.name")


def config_base_int(d: Path) -> str | None:
    return train_clear(d, config={**TINY_TRAIN, "base": 5}, contains="base")


def yaml_nested_5000(d: Path) -> str | None:
    (d / "c.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    return expect_clear(d, ["train", "--config", "{d}/c.yaml"], contains="nested too deeply")


def yaml_alias_bomb_in_pool(d: Path) -> str | None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 9)]
    bomb = "\n".join("        " + x for x in lines)
    (d / "pool.yaml").write_text(f"name: t\nmodels:\n  - name: a\n    litellm_model: sim/gpt-4o\n"
                                 f"    input_cost_per_token: 1.0e-6\n    output_cost_per_token: 1.0e-6\n"
                                 f"    extra:\n      litellm_params:\n{bomb}\n")
    collect_cfg(d)
    return expect_clear(d, ["collect", "--config", "{d}/collect.yaml", "--quiet"], contains="expands to more than",
                        subprocess_=True)


def task_jsonl_non_utf8(d: Path) -> str | None:
    (d / "q.jsonl").write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    (d / "task.yaml").write_text(yaml.safe_dump({"name": "mine", "path": "q.jsonl", "scorer": "exact"}))
    (d / "s.jsonl").write_text(json.dumps({"question_id": "mine/0", "response": "1"}) + "\n")
    return expect_clear(d, ["score", "{d}/task.yaml", "--samples", "{d}/s.jsonl"], contains="not UTF-8")


def bundle_hidden_wrong_type(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m["policy_config"].update(hidden="64"))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="hidden")


def bundle_hidden_huge(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m["policy_config"].update(hidden=65536))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="hidden")


def bundle_dims_absurd(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m["input_dims"].update(query=10 ** 12))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="input_dims.query")


def bundle_roles_wrong_type(d: Path) -> str | None:
    from hieramas_gnn import Policy

    path = bundle(d, edit=lambda m: m.update(roles=["planner", 5]))
    return expect_user_error(lambda: Policy.load(path, cache=None), contains="roles")


def import_tokens_1e30(d: Path) -> str | None:
    cache_file(d / "src.sqlite")
    cli(["cache", "export", "--cache", str(d / "src.sqlite"), "--out", str(d / "e.jsonl")], d)
    text = (d / "e.jsonl").read_text().replace('"prompt_tokens":3', '"prompt_tokens":' + "1" + "0" * 30)
    (d / "e.jsonl").write_text(text)
    problem = expect_clear(d, ["cache", "import", "--cache", "{d}/new.sqlite", "--src", "{d}/e.jsonl"], contains="prompt_tokens")
    if (d / "new.sqlite").exists():
        return "an empty cache file was left behind"
    return problem


def cache_stats_into_closed_pipe(d: Path) -> str | None:
    """`hieramas cache stats | head -1`: the reader leaves; no BrokenPipeError traceback."""
    cache_file(d / "c.sqlite", n=2, models=tuple(f"model-{i}" for i in range(50)))
    proc = subprocess.Popen([sys.executable, "-m", "hieramas_gnn.cli", "cache", "stats", "--cache", str(d / "c.sqlite")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d)
    proc.stdout.close()  # the reader is gone before anything is written
    try:
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failure("hang", "cache stats into a closed pipe did not finish") from None
    err = err.decode(errors="replace")
    if "Traceback" in err or "BrokenPipeError" in err:
        raise Failure("traceback", err.strip().splitlines()[-1][:300])
    return None


def policy_design_bad_tuple(d: Path) -> str | None:
    from hieramas_gnn import Policy

    policy = Policy.load(bundle(d), cache=None)
    return expect_user_error(lambda: policy.design(("q", "notadict")), contains="meta dict")


def _served(d: Path, body: bytes) -> tuple[int, str]:
    from fastapi.testclient import TestClient

    from hieramas_gnn import Policy
    from hieramas_gnn.serve.app import create_app

    policy = Policy.load(bundle(d), cache=None)
    with TestClient(create_app(policy), raise_server_exceptions=False) as client:
        reply = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    return reply.status_code, reply.text


def serve_json_nested_200000(d: Path) -> str | None:
    status, text = _served(d, b'{"model": "b", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    return None if status == 400 and "nested too deeply" in text else f"HTTP {status}: {text[:200]}"


def serve_lone_surrogate(d: Path) -> str | None:
    status, text = _served(d, b'{"model": "b", "messages": [{"role": "user", "content": "hi \\ud800"}]}')
    return None if status == 400 and "surrogate" in text else f"HTTP {status}: {text[:200]}"


def read_only_cache_is_not_damaged(d: Path) -> str | None:
    """An intact cache without write permission is not "damaged" (root ignores modes: simulated)."""
    from unittest import mock

    from hieramas_gnn.llm.cache import RolloutCache

    path = cache_file(d / "c.sqlite")
    real = os.access
    with mock.patch("os.access", lambda p, m, *a, **k: False if str(p) == str(path) and m & os.W_OK else real(p, m)):
        problem = expect_user_error(lambda: RolloutCache(path, "rw"), contains="read-only")
    with RolloutCache(path, "replay") as cache:  # and it reads
        if len(cache) != 3:
            return "the read-only cache did not read back"
    return problem


def cache_without_checksum_column(d: Path) -> str | None:
    """A cache from before checksums: stats says the records are unverified (not "damaged")."""
    path = d / "old.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE records (key TEXT PRIMARY KEY, model TEXT NOT NULL, text TEXT NOT NULL, "
                     "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, "
                     "latency_ms REAL NOT NULL, created_at REAL NOT NULL, request TEXT NOT NULL) WITHOUT ROWID")
        request = '{"model":"m"}'
        conn.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)",
                     (hashlib.sha256(request.encode()).hexdigest(), "m", "old", 1, 1, 0.0, 1.0, 0.0, request))
    before = path.read_bytes()
    res = cli(["cache", "stats", "--cache", str(path)], d)
    if "damaged" in res.err or "Traceback" in res.err:
        raise Failure("misleading", f"reported as {res.err.strip()[-200:]}")
    if res.code != 1 or "no checksum" not in res.err:
        return f"exit {res.code}: {res.err.strip()[-200:]}"
    if path.read_bytes() != before:
        raise Failure("data_loss", "stats wrote into the cache")
    return None


ROWS: list[Row] = [
    # data loss
    Row("export_into_a_folder_of_notes", "data_loss", export_into_notes),
    Row("export_into_the_run_folder", "data_loss", export_into_run_folder),
    Row("export_over_a_parent_of_the_run", "data_loss", export_over_parent_of_run),
    Row("export_onto_a_file", "data_loss", export_onto_a_file),
    Row("export_into_the_current_folder", "data_loss", export_into_current_folder),
    Row("export_replaces_only_a_bundle", "data_loss", export_replaces_only_a_bundle),
    Row("collect_out_is_the_cache", "data_loss", collect_out_is_cache),
    Row("collect_summary_is_the_cache", "data_loss", collect_summary_is_cache),
    Row("collect_out_onto_a_users_file", "data_loss", collect_out_onto_a_users_file),
    Row("baselines_json_is_the_cache", "data_loss", baselines_json_is_cache),
    Row("cache_export_onto_the_cache", "data_loss", cache_export_onto_cache),
    Row("cache_export_onto_the_wal", "data_loss", cache_export_onto_wal),
    Row("cache_import_src_is_the_cache", "data_loss", cache_import_src_is_cache),
    Row("outcomes_pool_onto_its_table", "data_loss", outcomes_pool_onto_its_table),
    Row("outcomes_pool_onto_a_users_file", "data_loss", outcomes_pool_onto_a_users_file),
    Row("eval_out_into_a_folder_of_notes", "data_loss", eval_out_into_notes),
    Row("report_out_into_a_folder_of_notes", "data_loss", report_out_into_notes),
    Row("demo_out_into_a_folder_of_notes", "data_loss", demo_out_into_notes),
    Row("train_into_a_folder_of_other_files", "data_loss", train_into_a_folder_of_other_files),
    Row("two_trains_in_one_run_folder", "data_loss", two_trains_in_one_run_folder),
    # security
    Row("tampered_bundle_policy_load", "security", tampered_bundle_policy_load),
    Row("tampered_bundle_serve", "security", tampered_bundle_serve),
    Row("tampered_bundle_run", "security", tampered_bundle_run),
    Row("tampered_bundle_eval", "security", tampered_bundle_eval),
    Row("tampered_bundle_with_the_users_pool", "security", tampered_bundle_with_users_pool),
    Row("bundle_scorer_is_code", "security", bundle_scorer_code),
    Row("bundle_task_is_code", "security", bundle_task_code),
    Row("bundle_roles_file_outside", "security", bundle_roles_file_outside),
    Row("bundle_pool_file_relative_to_cwd", "security", bundle_pool_file_relative_to_cwd),
    Row("bundle_digest_pin", "security", bundle_digest_pin),
    Row("cache_null_checksum_not_served", "security", null_checksum_not_served),
    Row("cache_import_edited_text", "security", import_edited_text),
    Row("cache_import_without_checksum", "security", import_without_checksum),
    Row("cache_import_infinite_cost", "security", import_infinite_cost),
    Row("serve_public_host_without_key_warns", "security", serve_public_without_key_warns),
    # money and silent wrong
    Row("pool_nan_price", "silent_wrong", pool_nan_price),
    Row("pool_inf_price", "silent_wrong", pool_inf_price),
    Row("outcomes_pool_input_cost_nan", "silent_wrong", outcomes_pool_nan_cost),
    Row("baselines_budget_inf", "silent_wrong", budget_inf),
    Row("client_budget_nan", "silent_wrong", client_budget_nan),
    Row("config_budget_nan", "silent_wrong", budget_nan_in_config),
    Row("demo_seeds_on_different_routes", "silent_wrong", demo_seeds_on_different_routes),
    Row("stage1_lr_inf", "silent_wrong", stage1_lr_inf),
    Row("export_non_finite_weights", "silent_wrong", export_non_finite_weights),
    Row("reward_cost_lambda_inf", "silent_wrong", cost_lambda_inf),
    Row("out_dir_bound_method", "silent_wrong", out_dir_bound_method),
    Row("sim_50mb_question", "silent_wrong", sim_50mb_question),
    Row("policy_json_strict_json", "silent_wrong", policy_json_strict),
    Row("newer_schema_cache", "silent_wrong", newer_schema_cache),
    # hangs
    Row("fifo_cache_stats", "hang", fifo_cache_stats),
    Row("fifo_cache_collect", "hang", fifo_cache_collect),
    Row("fifo_config", "hang", fifo_config),
    Row("task_train_size_1e9", "hang", train_size_huge),
    Row("bundle_n_candidates_1e7", "hang", bundle_n_candidates_huge),
    Row("config_n_candidates_1e7", "hang", config_n_candidates_huge),
    Row("regex_scorer_backtracking", "hang", regex_backtracking),
    Row("yaml_alias_bomb_in_pool", "hang", yaml_alias_bomb_in_pool),
    # tracebacks and misleading errors
    Row("out_dir_open_brace", "traceback", out_dir_open_brace),
    Row("out_dir_bad_format_spec", "traceback", out_dir_bad_spec),
    Row("out_dir_huge_width", "traceback", out_dir_huge_width),
    Row("run_name_nul", "traceback", run_name_nul),
    Row("run_name_300_chars", "traceback", run_name_300_chars),
    Row("config_base_int", "traceback", config_base_int),
    Row("yaml_nested_5000", "traceback", yaml_nested_5000),
    Row("task_jsonl_non_utf8", "traceback", task_jsonl_non_utf8),
    Row("bundle_hidden_wrong_type", "traceback", bundle_hidden_wrong_type),
    Row("bundle_hidden_65536", "traceback", bundle_hidden_huge),
    Row("bundle_input_dims_absurd", "traceback", bundle_dims_absurd),
    Row("bundle_roles_wrong_type", "traceback", bundle_roles_wrong_type),
    Row("cache_import_tokens_1e30", "traceback", import_tokens_1e30),
    Row("cache_stats_into_a_closed_pipe", "traceback", cache_stats_into_closed_pipe),
    Row("policy_design_bad_tuple", "traceback", policy_design_bad_tuple),
    Row("serve_json_nested_200000", "traceback", serve_json_nested_200000),
    Row("serve_lone_surrogate", "traceback", serve_lone_surrogate),
    Row("read_only_cache_not_damaged", "misleading", read_only_cache_is_not_damaged),
    Row("cache_without_checksum_column", "misleading", cache_without_checksum_column),
]


def run_row(row: Row, folder: Path) -> Verdict:
    """Run one row in `folder` (created empty by the caller); never raises."""
    start = time.perf_counter()
    try:
        problem = row.check(folder)
        outcome, detail = ("held", "") if problem is None else (row.guards, problem)
    except Failure as exc:
        outcome, detail = exc.kind, str(exc)
    except BaseException:  # noqa: BLE001 - the point is to classify it
        outcome, detail = "traceback", traceback.format_exc(limit=4)[-600:]
    return Verdict(row.name, row.guards, outcome, detail, time.perf_counter() - start)
