"""The `hieramas` command.

Each subcommand lives in `hieramas_gnn/commands/<name>.py` and exposes
`add_parser(subparsers) -> None`, which registers its parser and sets `func` (taking the parsed
args, returning an exit code). Command modules keep heavy imports inside their functions so that
`hieramas --help` stays fast and nothing happens at import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hieramas_gnn.version import __version__
from hieramas_gnn.errors import UserError
from hieramas_gnn.paths import ensure_offline_defaults
from hieramas_gnn.progress import set_quiet
from hieramas_gnn.redact import redact

# Order is the order shown in --help.
COMMANDS = [
    "demo", "experiment", "tasks", "score", "outcomes", "sim", "cache", "collect",
    "baselines", "train", "sweep", "eval", "report", "export", "pool", "run", "serve", "bench",
]


QUIET_HELP = ("no progress bars or phase lines on stderr (also env HIERAMAS_QUIET=1); results and errors "
              "are still printed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hieramas",
        description="Learn which multi-agent LLM design to run per query (HieraMAS + GNN policy).",
    )
    parser.add_argument("--version", action="version", version=f"hieramas_gnn {__version__}")
    parser.add_argument("--quiet", "-q", dest="quiet_all", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"hieramas_gnn.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hieramas_gnn.commands.{name}":
                raise
            continue  # command not built yet
        module.add_parser(sub)
    _add_quiet(sub)  # `hieramas eval ... --quiet` as well as `hieramas --quiet eval ...`
    return parser


def _add_quiet(sub: argparse._SubParsersAction) -> None:
    """`--quiet` on every subcommand (and theirs), not only before the subcommand."""
    for command in sub.choices.values():
        if not any("--quiet" in a.option_strings for a in command._actions):
            command.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_quiet(action)


def main(argv: list[str] | None = None) -> int:
    ensure_offline_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    set_quiet(bool(args.quiet_all or getattr(args, "quiet", False)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except UserError as exc:
        print(f"hieramas: error: {redact(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `hieramas cache stats | head -1`: the reader left; stop quietly
        import os

        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe


if __name__ == "__main__":
    sys.exit(main())
