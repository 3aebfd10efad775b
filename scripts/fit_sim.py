"""Refit the simulator's figures (`data/sim/`) from the real data in `../shared/data`.

    .venv/bin/python scripts/fit_sim.py [--shared PATH] [--out data/sim] [--behaviour-only]

Writes: irt_<benchmark>.json (abilities per model x domain), items.csv.gz (difficulty per real
item), wrong_answers.csv.gz (real wrong answers per item with counts), lengths.json (reply
lengths per model), behaviour.json (behaviour model fit + figures), models.yaml (the catalogue of
sim models derived from real ones) and settings.json; and the replay pools
data/pools/replay-{mmlu-redux,gsm8k,math-l5}.yaml. See data/sim/README.md.
`--behaviour-only` refits and writes behaviour.json alone (~1 min).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hieramas_gnn.backends.fit.replay_pools import write_replay_pools
from hieramas_gnn.backends.fit.simfit import build_catalogue, write_behaviour, write_fit
from hieramas_gnn.paths import data_dir, ensure_offline_defaults, shared_data_dir


def main() -> None:
    ensure_offline_defaults()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=shared_data_dir())
    ap.add_argument("--out", type=Path, default=data_dir() / "sim")
    ap.add_argument("--pools", type=Path, default=data_dir() / "pools", help="where replay-*.yaml go")
    ap.add_argument("--behaviour-only", action="store_true", help="refit and write behaviour.json only")
    args = ap.parse_args()
    if args.behaviour_only:
        print(f"wrote behaviour: {write_behaviour(args.shared, args.out)}")
        return
    for name, path in write_fit(args.shared, args.out).items():
        print(f"wrote {name}: {path}")
    models = build_catalogue(args.out)
    print(f"wrote models.yaml ({len(models)} sim models) and settings.json")
    for path in write_replay_pools(args.shared, args.pools):
        print(f"wrote replay pool {path}")


if __name__ == "__main__":
    main()
