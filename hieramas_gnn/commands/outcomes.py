"""`hieramas outcomes inspect FILE` / `hieramas outcomes pool FILE --out POOL.yaml`.

    hieramas outcomes inspect ../shared/data/outcomes/mmlu_redux_helm14.csv.gz [--json OUT]
    hieramas outcomes pool my_results.csv --out my_pool.yaml [--name NAME]
                           [--input-cost USD --output-cost USD]
    hieramas outcomes pool --crosswalk ../shared/data/outcomes/model_crosswalk.csv \
                           --tasks gsm8k mmlu_redux math_l5 --out mixed_pool.yaml \
                           [--prices-from data/pools/replay-gsm8k.yaml ...]

`pool --crosswalk` builds the replay pool of a mixed task (`task.name: mix`): one model per
`canonical_model` of the crosswalk (`canonical_model, file, source_model_name, match`) that
every named task's outcome table has, replaying each task from its own table under the name the
model has there (`extra.litellm_params.replay_models`). Where a table lists a model under
several names (other providers of the same weights), the `exact` match is taken, else the first
listed. Prices: the first `--prices-from` pool that replays the model under one of its names,
else litellm's cost map under the canonical name, else `--input-cost` / `--output-cost`.

`pool` turns your own per-question results (e.g. from your eval harness) into a `replay/` pool:
one model per `model` of the table, each replaying its real answers
(`extra.litellm_params.replay_table`); train with `pool.name=my_pool.yaml`. Prices: litellm's
cost map when it lists the model name, else `--input-cost` / `--output-cost` (USD per token,
default 0). The table is validated first (missing columns, empty ids, NaN or non-0/1 `correct`,
duplicate (question_id, model) rows: errors name the file, row and column).

FILE has columns `question_id, model, answer, correct` (the schema of `../shared/data/outcomes/`).
Printed: each model's accuracy; the plurality vote of all models; the oracle ("at least one model
right"). All three are over the questions every model answered (the common questions).

Plurality vote, per question: answers are grouped by `answer_num` when the table has it and it
is set (so `18` and `18.0` are one answer), else by the answer text stripped; empty answers do
not vote. The answer with the most votes wins; a tie goes to the tied answer given by the most
accurate model (overall accuracy in the file), and if that model gave several, the
lexicographically smallest. The vote is right when the models that gave the winning answer were
graded right (a majority of them, should they disagree). A question where no model gave an
answer counts as wrong.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hieramas_gnn.backends.outcomes import summarize
from hieramas_gnn.backends.replay import DEFAULT_TABLES, read_outcome_table
from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import check_apart, dumps, finite_number
from hieramas_gnn.llm.pool import litellm_prices, load_pool, pool_from_dict
from hieramas_gnn.paths import atomic_write_text, shared_data_dir
from hieramas_gnn.tasks import get_task
from hieramas_gnn.tasks.recorded import ROUTERBENCH_TABLE, ROUTERDC_TABLE, RecordedTask


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("outcomes", help="inspect real per-question outcome tables", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="outcomes_command", metavar="{inspect,pool}", required=True)
    ins = sub.add_parser("inspect", help="per-model accuracy, plurality vote and oracle of an outcome table")
    ins.add_argument("file", help="outcome table (.csv or .csv.gz)")
    ins.add_argument("--json", dest="json_out", default=None, help="also write the summary as JSON here")
    ins.set_defaults(func=handle_inspect)
    pool = sub.add_parser("pool", help="turn your own outcome table (or a model crosswalk) into a replay/ pool YAML")
    pool.add_argument("file", nargs="?", default=None,
                      help="outcome table (.csv or .csv.gz): question_id, model, answer, correct")
    pool.add_argument("--crosswalk", default=None, metavar="CSV",
                      help="instead of FILE: a model crosswalk (canonical_model, file, source_model_name, match); "
                           "the pool holds the models every --tasks table has")
    pool.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                      help="with --crosswalk: the tasks (components of the mixed task) each model must cover")
    pool.add_argument("--prices-from", nargs="+", default=[], metavar="POOL",
                      help="with --crosswalk: pools whose per-token prices a replayed model keeps")
    pool.add_argument("--out", required=True, help="pool YAML to write")
    pool.add_argument("--name", default=None, help="pool name (default: the --out file name)")
    pool.add_argument("--input-cost", type=float, default=0.0,
                      help="USD per prompt token of models litellm does not price (default 0)")
    pool.add_argument("--output-cost", type=float, default=0.0,
                      help="USD per completion token of models litellm does not price (default 0)")
    pool.set_defaults(func=handle_pool)


POOL_MARK = "# Written by `hieramas outcomes pool"  # the first line of a pool this command wrote


def read_table(path: str | Path):
    """The validated table (see `backends.replay.read_outcome_table`)."""
    return read_outcome_table(path)


def handle_inspect(args: argparse.Namespace) -> int:
    summary = {"file": str(args.file), **summarize(read_table(args.file))}
    print(f"{summary['file']}: {summary['n_questions']} questions answered by all {summary['n_models']} models"
          + (f" ({summary['n_rows_dropped']} rows on other questions left out)" if summary["n_rows_dropped"] else ""))
    width = max(len(m["model"]) for m in summary["models"])
    print(f"{'model':<{width}}  accuracy")
    for m in summary["models"]:
        print(f"{m['model']:<{width}}  {100 * m['accuracy']:6.2f}%")
    pl = summary["plurality"]
    print(f"{'plurality vote':<{width}}  {100 * pl['accuracy']:6.2f}%   ({pl['ties']} ties; {pl['tie_rule']})")
    print(f"{'oracle (any right)':<{width}}  {100 * summary['oracle']['accuracy']:6.2f}%")
    if args.json_out:
        check_apart(args.json_out, "--json", {"FILE": args.file})
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(dumps(summary, indent=2))
        print(f"wrote {args.json_out}")
    return 0


def pool_from_table(df, table: Path, name: str, input_cost: float, output_cost: float) -> dict:
    """The pool mapping (`llm/pool.py` format) replaying each model of a validated table."""
    models = []
    for model, g in df.groupby("model", sort=True):
        listed = litellm_prices(str(model))
        prices = listed if listed is not None else (input_cost, output_cost)
        entry = {"name": str(model), "litellm_model": f"replay/{model}",
                 "input_cost_per_token": float(prices[0]), "output_cost_per_token": float(prices[1]),
                 "profile": f"{model}: {100 * g['correct'].mean():.1f}% correct on {len(g)} questions "
                            f"of {table.name}",
                 "tags": ["replay", "priced-by-litellm" if listed is not None else "priced-by-flag"],
                 "extra": {"litellm_params": {"replay_table": str(table.resolve())}}}
        models.append(entry)
    return {"name": name, "description": f"Replay of {table.name} ({len(models)} models)", "models": models}


def handle_pool(args: argparse.Namespace) -> int:
    import yaml

    for flag in ("input_cost", "output_cost"):
        finite_number(getattr(args, flag), f"--{flag.replace('_', '-')}")
    if args.crosswalk is not None:
        if args.file is not None:
            raise UserError("outcomes pool: give FILE or --crosswalk, not both")
        return handle_crosswalk(args)
    if args.file is None:
        raise UserError("outcomes pool: give an outcome table FILE (or --crosswalk CSV --tasks ...)")
    if args.tasks or args.prices_from:
        raise UserError("outcomes pool: --tasks and --prices-from go with --crosswalk")
    table, out = Path(args.file), Path(args.out)
    check_apart(out, "--out", {"FILE": table})
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the pool YAML file to write")
    if out.exists() and not out.read_bytes().startswith(POOL_MARK.encode()):
        raise UserError(f"--out {out}: exists and was not written by `hieramas outcomes pool`; refusing to "
                        "overwrite it (give a new file name)")
    df = read_table(table)
    name = args.name or out.stem
    data = pool_from_table(df, table, name, args.input_cost, args.output_cost)
    pool_from_dict(data, where=f"pool {out.name}", default_name=name)  # what load_pool will check

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, f"{POOL_MARK} {table}`: replays its per-question outcomes.\n"
                      + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    print(f"{out}: pool {name!r}, {len(data['models'])} models, {df['question_id'].nunique()} questions")
    for m in data["models"]:
        print(f"  {m['name']:<30} {m['profile'].split(': ', 1)[1]}  ({m['tags'][1]})")
    return 0


# ---------------------------------------------------------------- crosswalk pools


def task_table(task: str) -> str:
    """The outcome table file (relative to the shared data folder) the replay reads for `task`."""
    if task in DEFAULT_TABLES:
        tables = DEFAULT_TABLES[task][0]
        if len(tables) != 1:
            raise UserError(f"--tasks {task}: replays {len(tables)} tables; the crosswalk names one per task")
        return tables[0]
    t = get_task(task)
    if isinstance(t, RecordedTask):
        return ROUTERDC_TABLE if t.spec.source == "routerdc" else ROUTERBENCH_TABLE
    raise UserError(f"--tasks {task}: has no outcome table of its own to replay (tables: "
                    f"{', '.join(DEFAULT_TABLES)}, and the routerdc_* / routerbench_* slices)")


def crosswalk_names(crosswalk, tasks: dict[str, str],
                    table_models: dict[str, dict[str, int]]) -> dict[str, dict[str, str]]:
    """canonical model -> {task: its name in that task's table}, for the models every task's
    table has. `table_models`: per task, the table's models and how many questions each answered.
    Among a model's names in one table: an `exact` match first, then the one that answered the
    most questions, then the first listed."""
    out: dict[str, dict[str, str]] = {}
    for canonical, rows in crosswalk.groupby("canonical_model", sort=False):
        names: dict[str, str] = {}
        for task, table in tasks.items():
            hits = rows[rows["file"] == Path(table).name]
            counts = table_models[task]
            listed = [(str(n), str(m)) for n, m in zip(hits["source_model_name"], hits["match"]) if n in counts]
            if not listed:
                break
            best = min(range(len(listed)), key=lambda i: (not listed[i][1].startswith("exact"),
                                                          -counts[listed[i][0]], i))
            names[task] = listed[best][0]
        else:
            out[str(canonical)] = names
    return out


def crosswalk_pool(names: dict[str, dict[str, str]], name: str, prices: dict[str, tuple[float, float, str]]) -> dict:
    """The pool mapping (`llm/pool.py` format) of `crosswalk_names`' models, priced by `prices`."""
    models = []
    for canonical, per_task in names.items():
        price = prices[canonical]
        models.append({
            "name": canonical, "litellm_model": f"replay/{canonical}",
            "input_cost_per_token": price[0], "output_cost_per_token": price[1],
            "profile": f"{canonical}: real answers replayed from "
                       + ", ".join(f"{t} ({n})" for t, n in per_task.items()),
            "tags": ["replay", "crosswalk", price[2]],
            "extra": {"litellm_params": {"replay_models": dict(per_task)}}})
    return {"name": name, "description": f"Replay over {', '.join(next(iter(names.values())))} "
                                         f"({len(models)} models every table has)", "models": models}


def crosswalk_prices(names: dict[str, dict[str, str]], pools: list, input_cost: float,
                     output_cost: float) -> dict[str, tuple[float, float, str]]:
    """canonical model -> (input, output USD per token, where from): a `--prices-from` pool
    replaying one of its names, else litellm's cost map, else the flags."""
    out = {}
    for canonical, per_task in names.items():
        wanted = {f"replay/{n}" for n in per_task.values()} | {f"replay/{canonical}"}
        spec = next((m for p in pools for m in p.models if m.litellm_model in wanted), None)
        listed = litellm_prices(canonical)
        if spec is not None:
            out[canonical] = (spec.input_cost_per_token, spec.output_cost_per_token, "priced-by-pool")
        elif listed is not None:
            out[canonical] = (*listed, "priced-by-litellm")
        else:
            out[canonical] = (input_cost, output_cost, "priced-by-flag")
    return out


def handle_crosswalk(args: argparse.Namespace) -> int:
    import pandas as pd
    import yaml

    if not args.tasks:
        raise UserError("outcomes pool --crosswalk: name the mixed task's components with --tasks")
    path, out = Path(args.crosswalk), Path(args.out)
    if not path.is_file():
        raise UserError(f"--crosswalk {path}: no such file")
    check_apart(out, "--out", {"--crosswalk": path})
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the pool YAML file to write")
    if out.exists() and not out.read_bytes().startswith(POOL_MARK.encode()):
        raise UserError(f"--out {out}: exists and was not written by `hieramas outcomes pool`; refusing to "
                        "overwrite it (give a new file name)")
    crosswalk = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"canonical_model", "file", "source_model_name", "match"} - set(crosswalk.columns)
    if missing:
        raise UserError(f"--crosswalk {path}: missing column(s) {', '.join(sorted(missing))}")
    tasks = {t: task_table(t) for t in dict.fromkeys(args.tasks)}
    table_models = {}
    for task, table in tasks.items():
        file = shared_data_dir() / table
        if not file.exists():
            raise UserError(f"--tasks {task}: its outcome table {file} is not here")
        answered = pd.read_csv(file, usecols=["model", "question_id"], dtype=str).groupby("model")["question_id"]
        table_models[task] = {str(m): int(n) for m, n in answered.nunique().items()}
    names = crosswalk_names(crosswalk, tasks, table_models)
    if not names:
        raise UserError(f"--crosswalk {path}: no model is in every table of {', '.join(tasks)}")
    name = args.name or out.stem
    prices = crosswalk_prices(names, [load_pool(p) for p in args.prices_from], args.input_cost, args.output_cost)
    data = crosswalk_pool(names, name, prices)
    pool_from_dict(data, where=f"pool {out.name}", default_name=name)  # what load_pool will check
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, f"{POOL_MARK} --crosswalk {path} --tasks {' '.join(tasks)}`: each model\n"
                      "# replays every task from that task's own table under the name it has there.\n"
                      + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    print(f"{out}: pool {name!r}, {len(data['models'])} models in every table of {', '.join(tasks)}")
    for m in data["models"]:
        print(f"  {m['name']:<30} {m['tags'][2]}: {m['input_cost_per_token']:.2e} / {m['output_cost_per_token']:.2e} $/token")
    return 0
