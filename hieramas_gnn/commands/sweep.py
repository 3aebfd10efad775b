"""`hieramas sweep FILE [--wandb MODE] [--dry-run]`: run a wandb sweep file's grid here, no server.

`wandb sweep FILE` + `wandb agent` need the wandb server. This command reads the same file
(`experiments/sweeps/*.yaml`: `program: hieramas`, `method: grid`, `parameters` with `values` /
`value`, and a `command` of `hieramas train ...` with `${args_no_hyphens}`) and runs every grid
point in turn, in this process, as its `hieramas train` command with that point's `key=value`
overrides. All runs form one wandb group (`--name`, default the sweep file's name; job type
`train`), each tagged with its point (`reward.cost_lambda=300`, `run.seed=1`), so the dashboard
(or `wandb sync` of the offline runs later) shows the grid side by side. `--wandb` (default
`auto`: online with WANDB_API_KEY, else offline) replaces a `tracking.wandb` the file sets.
Each point's run folder comes from the file (a `run.out_dir` with `{cost_lambda}` / `{seed}`), so
re-running the command resumes every point where it stopped. Only `method: grid` runs here
(random / bayes need the server's search: use `wandb sweep`).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import UserError

WANDB_MODES = ("auto", "online", "offline", "disabled")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a wandb sweep file's grid locally (offline wandb, one group)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="wandb sweep YAML (e.g. experiments/sweeps/replay_math_l5_cost_lambda.yaml)")
    p.add_argument("--wandb", choices=WANDB_MODES, default="auto",
                   help="wandb mode of every run (default auto: online with WANDB_API_KEY, else offline)")
    p.add_argument("--name", default=None, help="wandb group of the sweep's runs (default: the file's name)")
    p.add_argument("--dry-run", action="store_true", help="print each grid point's command and run nothing")
    p.set_defaults(func=run)


def read_sweep(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"sweep file {path}: no such file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"sweep file {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"sweep file {path}: expected a mapping with program, method, parameters, command")
    if data.get("method", "grid") != "grid":
        raise UserError(f"sweep file {path}: method {data.get('method')!r} needs wandb's sweep server "
                        "(`wandb sweep FILE`); `hieramas sweep` runs grids only")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise UserError(f"sweep file {path}: parameters: a mapping of name -> {{values: [...]}} or {{value: x}}")
    for name, spec in params.items():
        if not isinstance(spec, dict) or not ("values" in spec or "value" in spec):
            raise UserError(f"sweep file {path}: parameters.{name}: needs `values: [...]` or `value: x`")
        if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
            raise UserError(f"sweep file {path}: parameters.{name}.values: a non-empty list")
    command = data.get("command")
    if not isinstance(command, list) or "train" not in command or "hieramas" not in command:
        raise UserError(f"sweep file {path}: command: a list running `hieramas train ...` (with ${{args_no_hyphens}})")
    return data


def grid_points(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the parameters' values (a `value` is one fixed value), in file order."""
    names = list(params)
    choices = [params[n]["values"] if "values" in params[n] else [params[n]["value"]] for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


def point_command(command: list[Any], point: dict[str, Any]) -> list[str]:
    """The `hieramas ...` argument list of one grid point (`${env}` dropped, the arguments filled in)."""
    args: list[str] = []
    for token in command[command.index("hieramas") + 1:]:
        token = str(token)
        if token == "${args_no_hyphens}":
            args += [f"{k}={_text(v)}" for k, v in point.items()]
        elif token == "${args}":
            args += [f"--{k}={_text(v)}" for k, v in point.items()]
        elif token in ("${env}", "${interpreter}", "${program}"):
            continue
        else:
            args.append(token)
    return args


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def run(args: argparse.Namespace) -> int:
    import json
    import shlex

    from hieramas_gnn.cli import main
    from hieramas_gnn.progress import phase, quiet

    sweep = read_sweep(args.file)
    group = args.name or Path(args.file).stem
    varied = {k for k, spec in sweep["parameters"].items() if "values" in spec}
    points = grid_points(sweep["parameters"])
    for i, point in enumerate(points):
        tags = [f"{k}={_text(v)}" for k, v in point.items() if k in varied][:20]
        command = [*point_command(sweep["command"], point), f"tracking.wandb={args.wandb}",
                   f"tracking.group={group}", f"tracking.tags={json.dumps([t[:64] for t in tags])}"]
        if args.dry_run:
            print("hieramas " + " ".join(shlex.quote(c) for c in command))
            continue
        phase(f"sweep {group}: point {i + 1}/{len(points)}: {' '.join(tags) or 'the only point'}")
        code = main(["--quiet", *command] if quiet() else command)
        if code != 0:
            print(f"hieramas sweep: point {i + 1} ({' '.join(tags)}) failed (exit {code}); the points before it "
                  "are done, a re-run resumes", flush=True)
            return code
    if not args.dry_run:
        print(f"hieramas sweep: {len(points)} runs in wandb group {group!r}")
    return 0
