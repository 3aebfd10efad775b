"""The load figure for `hieramas serve`: 2,000 chat completions at 64 concurrent, zero
errors, p99 reported (sim backend, latency off, cache off). Heavy: about 10 minutes on 2 busy
cores; runs with `HIERAMAS_HEAVY=1 python -m pytest -m heavy tests/test_serve_load.py`. The small
variant (a burst against the module server) is in tests/test_policy_serve.py."""

from __future__ import annotations

import json
import math
import os

import pytest

pytestmark = [pytest.mark.heavy,
              pytest.mark.skipif(os.environ.get("HIERAMAS_HEAVY") != "1", reason="heavy: set HIERAMAS_HEAVY=1")]


def test_serve_holds_2000_requests_at_64_concurrent_with_zero_errors(tmp_path):
    from hieramas_gnn.serve.loadtest import main

    out = tmp_path / "load.json"
    assert main(["--requests", "2000", "--concurrency", "64", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0 and figures["ok"] == 2000
    assert math.isfinite(figures["p99_ms"]) and figures["p99_ms"] >= figures["p50_ms"] > 0
