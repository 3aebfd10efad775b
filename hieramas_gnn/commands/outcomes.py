"""`hieramas outcomes inspect FILE` / `hieramas outcomes pool FILE --out POOL.yaml`.

    hieramas outcomes inspect ../shared/data/outcomes/mmlu_redux_helm14.csv.gz [--json OUT]
    hieramas outcomes pool my_results.csv --out my_pool.yaml [--name NAME]
                           [--input-cost USD --output-cost USD]

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
from hieramas_gnn.backends.replay import read_outcome_table
from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import check_apart, dumps, finite_number
from hieramas_gnn.llm.pool import litellm_prices, pool_from_dict
from hieramas_gnn.paths import atomic_write_text


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("outcomes", help="inspect real per-question outcome tables", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="outcomes_command", metavar="{inspect,pool}", required=True)
    ins = sub.add_parser("inspect", help="per-model accuracy, plurality vote and oracle of an outcome table")
    ins.add_argument("file", help="outcome table (.csv or .csv.gz)")
    ins.add_argument("--json", dest="json_out", default=None, help="also write the summary as JSON here")
    ins.set_defaults(func=handle_inspect)
    pool = sub.add_parser("pool", help="turn your own outcome table into a replay/ pool YAML")
    pool.add_argument("file", help="outcome table (.csv or .csv.gz): question_id, model, answer, correct")
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
