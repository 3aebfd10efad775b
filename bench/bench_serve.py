"""`hieramas serve` under load: N chat completions at C concurrent through the real stack
(uvicorn, FastAPI, design choice, the MAS's calls through litellm to the sim backend with its
latency off, cache off). Figures: errors, status counts, p50 / p90 / p99 / max latency (ms),
throughput. Full: 2,000 requests at 64 concurrent; --quick: 64 at 32.

`run(quick)` returns the figures; `python -m bench.bench_serve [--quick]` prints them as JSON.
The same run with a results file: `python -m hieramas_gnn.serve.loadtest --out FILE`.
"""

from __future__ import annotations

import json
import sys


def run(quick: bool = False) -> dict:
    from hieramas_gnn.serve.loadtest import run_load

    figures = run_load(64 if quick else 2000, 32 if quick else 64)
    figures.pop("machine", None)  # bench.run records the machine in `_meta`
    return figures


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv[1:]), indent=2))
