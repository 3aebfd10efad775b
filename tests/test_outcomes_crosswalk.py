"""`hieramas outcomes pool --crosswalk`: the replay pool of a mixed task, one model per canonical
name that every component's outcome table has, each replaying a task under its name there."""

from __future__ import annotations

import pandas as pd

from hieramas_gnn.backends.replay import Replayer
from hieramas_gnn.cli import main
from hieramas_gnn.commands.outcomes import crosswalk_names
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.paths import data_dir
from hieramas_gnn.tasks import get_task
from tests.conftest import require_shared

CROSSWALK = "outcomes/model_crosswalk.csv"


def _walk(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["canonical_model", "file", "source_model_name", "match"])


def test_only_models_every_table_has_enter_the_pool():
    walk = _walk([("a", "t1.csv", "a1", "exact"), ("a", "t2.csv", "a2", "exact"), ("b", "t1.csv", "b1", "exact")])
    got = crosswalk_names(walk, {"x": "t1.csv", "y": "t2.csv"}, {"x": {"a1": 5, "b1": 5}, "y": {"a2": 5}})
    assert got == {"a": {"x": "a1", "y": "a2"}}


def test_an_exact_name_then_the_fullest_one_is_taken():
    walk = _walk([("a", "t.csv", "partial", "other provider"), ("a", "t.csv", "full", "same weights"),
                  ("b", "t.csv", "b-alias", "probable"), ("b", "t.csv", "b", "exact")])
    got = crosswalk_names(walk, {"x": "t.csv"}, {"x": {"partial": 3, "full": 9, "b": 1, "b-alias": 9}})
    assert got == {"a": {"x": "full"}, "b": {"x": "b"}}


def test_the_crosswalk_flags_are_checked(tmp_path, capsys):
    out = str(tmp_path / "p.yaml")
    for argv, message in ((["--crosswalk", "c.csv"], "--tasks"),
                          (["--crosswalk", str(tmp_path / "c.csv"), "--tasks", "gsm8k"], "no such file"),
                          (["t.csv", "--crosswalk", "c.csv", "--tasks", "gsm8k"], "FILE or --crosswalk"),
                          (["t.csv", "--tasks", "gsm8k"], "go with --crosswalk")):
        assert main(["outcomes", "pool", *argv, "--out", out]) == 2
        assert message in capsys.readouterr().err


# ------------------------------------------------------------------ ../shared/data


def test_the_shipped_mixed_pool_is_what_the_command_writes(tmp_path):
    shared = require_shared(CROSSWALK, "outcomes/gsm8k_zeroeval.csv.gz", "outcomes/mmlu_redux_helm14.csv.gz",
                            "outcomes/math_l5_zeroeval.csv.gz")
    out = tmp_path / "replay-mix-frontier-8.yaml"
    pools = [str(data_dir() / "pools" / f"replay-{t}.yaml") for t in ("gsm8k", "mmlu-redux", "math-l5")]
    assert main(["outcomes", "pool", "--crosswalk", str(shared / CROSSWALK), "--tasks", "gsm8k", "mmlu_redux",
                 "math_l5", "--out", str(out), "--prices-from", *pools]) == 0
    written, shipped = load_pool(out), load_pool("replay-mix-frontier-8")
    assert len(shipped.models) == 8
    assert [(m.name, m.input_cost_per_token, m.extra) for m in written.models] == \
        [(m.name, m.input_cost_per_token, m.extra) for m in shipped.models]


def test_a_crosswalk_model_replays_each_task_under_its_name_there():
    shared = require_shared("outcomes/gsm8k_zeroeval.csv.gz", "outcomes/mmlu_redux_helm14.csv.gz")
    spec = load_pool("replay-mix-frontier-8").get("llama-3.1-70b-instruct")
    names = spec.extra["litellm_params"]["replay_models"]
    rep = Replayer()
    for task, table in (("gsm8k", "gsm8k_zeroeval.csv.gz"), ("mmlu_redux", "mmlu_redux_helm14.csv.gz")):
        rows = pd.read_csv(shared / "outcomes" / table)
        rows = rows[rows["model"] == names[task]].head(25)
        t = get_task(task)
        for qid, correct in zip(rows["question_id"], rows["correct"]):
            text, *_ = rep.call("llama-3.1-70b-instruct", {"task": task, "question_id": qid}, 100, names=names)
            assert t.score(text, t.get(qid)).correct == bool(correct)
