"""Done-when of "bring your own task": a brand-new task in an empty folder (a jsonl + a YAML config,
no package edits) is trained with `sim` and with the user's own outcome table, exported and served."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from hieramas_gnn.cli import main

pytestmark = pytest.mark.slow

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Peru", "Lima"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Cuba", "Havana")]
CONFIG = {
    "run": {"name": "mine", "seed": 0},
    "task": {"name": "quiz", "path": "quiz.jsonl", "scorer": "exact", "train_size": 8, "val_size": 4, "test_size": 4},
    "pool": {"name": "sim"},
    "roles": {"family": "roles.yaml"},
    "cache": {"path": "runs/rollouts.sqlite"},
    "policy": {"embedder": "hashing", "hashing_dim": 16, "embed_cache": "runs/embeddings"},
    "stage1": {"steps": 3, "batch_size": 4, "val_every": 3, "checkpoint_every": 3, "dag_pool_size": 4},
    "credit": {"baseline": "moving_average"},
    "backend": {"sim": {"latency": "off"}},
    "tracking": {"wandb": "disabled", "progress": False},
}
ROLES = {"roles": [
    {"name": "recaller", "description": "Recalls the fact asked for.", "system": "Recall the fact.", "gradable": True},
    {"name": "checker", "description": "Double-checks a recalled fact.", "system": "Check the fact.", "gradable": True},
]}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """An empty folder with only the user's files: questions, results, roles, config."""
    monkeypatch.chdir(tmp_path)
    rng = random.Random(0)
    rows = [{"question": f"What is the capital of {c}?", "answer": a, "domain": "geo"} for c, a in CAPITALS]
    rows += [{"question": f"What is {x} + {y}?", "answer": str(x + y), "domain": "arith"}
             for x, y in ((rng.randint(10, 99), rng.randint(10, 99)) for _ in range(8))]
    Path("quiz.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = ["question_id,model,answer,correct"]
    for i, r in enumerate(rows):
        for model, p in (("big-model", 0.9), ("geo-expert", 0.95 if r["domain"] == "geo" else 0.2)):
            ok = rng.random() < p
            lines.append(f"quiz/{i},{model},{r['answer'] if ok else 'unknown'},{int(ok)}")
    Path("results.csv").write_text("\n".join(lines) + "\n")
    Path("roles.yaml").write_text(yaml.safe_dump(ROLES))
    Path("config.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path


def _serve_design(bundle: str, question: str) -> dict:
    """POST /design on the served bundle (the FastAPI app of `hieramas serve`, in process)."""
    from fastapi.testclient import TestClient

    from hieramas_gnn import Policy
    from hieramas_gnn.serve.app import create_app

    policy = Policy.load(bundle, "my_pool.yaml", cache=None, embed_cache="runs/embeddings")  # the user's pool: a
    # bundle never picks the replay table (a file) itself
    with TestClient(create_app(policy)) as client:
        reply = client.post("/design", json={"question": question})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_own_task_trains_on_sim_and_on_own_outcomes_then_exports_and_serves(project):
    assert main(["train", "--config", "config.yaml"]) == 0
    assert Path("runs/quiz__mine__0/best.pt").is_file()
    assert Path("runs/quiz__mine__0/designs.jsonl").read_text().strip()  # the last step's designs, at the defaults

    assert main(["outcomes", "pool", "results.csv", "--out", "my_pool.yaml"]) == 0
    assert main(["train", "--config", "config.yaml", "pool.name=my_pool.yaml", "run.name=replayed"]) == 0
    metrics = [json.loads(line) for line in Path("runs/quiz__replayed__0/metrics.jsonl").read_text().splitlines()]
    assert metrics, "the replay run logged no metrics"

    assert main(["export", "--run", "runs/quiz__replayed__0", "--out", "policy"]) == 0
    manifest = json.loads(Path("policy/policy.json").read_text())
    assert [r["name"] for r in manifest["roles"]] == ["recaller", "checker"]

    reply = _serve_design("policy", "What is the capital of Chile?")
    design = reply["design"]
    used = {m for mix in design["mixtures"] if mix for m in (*mix["proposers"], mix["synthesizer"])}
    assert used | {design["decision"]} <= {"big-model", "geo-expert"}  # the user's models only
    assert design["roles"] == ["recaller", "checker"]  # the user's roles

    # held-out by construction: `eval` of the bundle takes the test part its training drew
    assert main(["eval", "--policy", "policy", "--pool", "my_pool.yaml", "--out", "evaluated"]) == 0
    data = json.loads(Path("evaluated/results.json").read_text())
    split = json.loads(Path("runs/quiz__replayed__0/split.json").read_text())
    assert data["split"] == "held-out" and data["n"] == CONFIG["task"]["test_size"] == len(split["test"])
    assert data["trained_on"] == 0

    # portable: from another folder, the bundle grades its task's questions (carried inside it) and
    # runs the user's roles, with no path into the folder it was trained in
    (project / "elsewhere").mkdir()
    import os

    os.chdir(project / "elsewhere")
    from hieramas_gnn import Policy

    policy = Policy.load(project / "policy", str(project / "my_pool.yaml"), cache=None)
    assert policy.roleset.names == ("recaller", "checker") and policy.task.name == "quiz"
    solution = policy.solve("What is the capital of Italy?")
    assert solution.question_id == "quiz/2" and solution.correct is not None and not solution.failed
