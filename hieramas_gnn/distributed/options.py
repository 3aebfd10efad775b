"""The `--executor local|ray [--ray-address ADDR] [--ray-workers N]` flags shared by `hieramas
collect`, `baselines` and `eval` (and whatever else runs rollouts), and their checks."""

from __future__ import annotations

import argparse
from typing import Any

from hieramas_gnn.errors import UserError

EXECUTORS = ("local", "ray")


def add_executor_args(p: argparse.ArgumentParser, default: str | None = "local") -> None:
    """`default=None` leaves the choice to a config file (`hieramas train`: `client.executor`)."""
    p.add_argument("--executor", choices=EXECUTORS, default=default,
                   help="where rollouts run: this process (local) or Ray workers (ray; needs the "
                        "[ray] extra). Same traces and cache either way")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster for --executor ray: `auto` (the cluster `ray start` made), "
                        "ray://HOST:10001, or none to start a local one")
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="Ray workers for --executor ray (default: the cluster's CPUs)")


def check_executor_args(args: argparse.Namespace) -> None:
    """Bad combinations are UserErrors; `--executor ray` without Ray names the extra."""
    if args.executor is None:  # the config decides (`client.executor`); it is checked there
        return
    if args.executor != "ray":
        for flag, value in (("--ray-address", args.ray_address), ("--ray-workers", args.ray_workers)):
            if value is not None:
                raise UserError(f"{flag} only applies with --executor ray")
        return
    if args.ray_workers is not None and args.ray_workers < 1:
        raise UserError(f"--ray-workers must be >= 1, got {args.ray_workers}")
    require_ray()


RAY_EXTRA_HINT = "install the Ray extra: pip install '.[ray]' (or pip install -c constraints.txt ray)"


def require_ray() -> Any:
    """The `ray` module, or a UserError naming the extra to install."""
    try:
        import ray
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise UserError(f"--executor ray needs Ray, which is not installed: {RAY_EXTRA_HINT}") from exc
    return ray
