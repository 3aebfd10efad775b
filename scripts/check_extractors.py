"""Print how often this project's extractors agree with graded real model outputs; write a JSON.

    .venv/bin/python scripts/check_extractors.py [--out runs/check_extractors.json] [--show 20]

Reads ../shared/data (or $HIERAMAS_SHARED_DATA). See hieramas_gnn/tasks/agreement.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hieramas_gnn.paths import shared_data_dir
from hieramas_gnn.tasks.agreement import gsm8k_agreement, mmlu_redux_agreement


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/check_extractors.json", help="where to write the JSON report")
    parser.add_argument("--show", type=int, default=20, help="disagreements to print per task")
    args = parser.parse_args()
    root = shared_data_dir()
    if not root.exists():
        parser.error(f"shared data not found at {root} (set HIERAMAS_SHARED_DATA)")
    reports = [gsm8k_agreement(root), mmlu_redux_agreement(root)]
    for rep in reports:
        print(f"\n{rep['task']}: agreement {rep['agreement']:.4%} ({rep['agree']}/{rep['n']}), "
              f"{rep['n'] - rep['agree']} disagreements")
        for cause, count in rep["causes"].items():
            print(f"  {count:5d}  {cause}")
        for d in rep["disagreements"][: args.show]:
            fields = {k: v for k, v in d.items() if k != "reply_tail"}
            print("   ", json.dumps(fields, ensure_ascii=False)[:300])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(reports, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
