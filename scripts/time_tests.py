"""Time the test suite (`make test-timed`): run a pytest command, write its wall time to a JSON file.

    python scripts/time_tests.py [--out bench/pytest_wall.json] -- PYTEST COMMAND ...

The command runs under `/usr/bin/time -v` when it exists (CPU seconds and peak RSS of the whole
run, workers included); its output passes through. Written, whatever the outcome:
`{"wall_s", "when", "commit", "passed", "failed", "exit_code", "cpu_s", "peak_rss_mb", "nproc",
"load_before", "load_after", "command"}` (`passed` / `failed`: the counts of pytest's last line;
`bench/bench_pytest.py` reports `wall_s` as the summary's `pytest_wall_s` only for a run that exited
0). The file is this script's own output: it refuses to overwrite a file that lacks `wall_s`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def counts(text: str) -> dict[str, int]:
    """pytest's final counts (`1941 passed, 1 skipped, 2 failed in 445.1s`) -> {"passed": 1941, ...}."""
    lines = [line for line in text.splitlines() if re.search(r"\b(passed|failed|error|errors)\b", line)]
    found = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)",
                                                     lines[-1])} if lines else {}
    if "error" in found:
        found["errors"] = found.pop("error")
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python scripts/time_tests.py [--out FILE] -- PYTEST COMMAND ...", file=sys.stderr)
        return 2
    split = argv.index("--")
    p = argparse.ArgumentParser(prog="python scripts/time_tests.py")
    p.add_argument("--out", default=str(REPO / "bench" / "pytest_wall.json"))
    args, command = p.parse_args(argv[:split]), argv[split + 1:]
    if not command:
        print("time_tests: no command after --", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists():
        try:
            ours = "wall_s" in json.loads(out.read_text())
        except (OSError, ValueError):
            ours = False
        if not ours:
            print(f"time_tests: {out} exists and is not a test-timing file; not overwriting it", file=sys.stderr)
            return 2
    timer = Path("/usr/bin/time").exists()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-v", "-o", tf.name, *command] if timer else command
        load_before = _load()
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
        code = proc.wait()
        wall = time.perf_counter() - t0
        timing = Path(tf.name).read_text() if timer else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                            capture_output=True, check=False).stdout.strip()
    record: dict = {"wall_s": round(wall, 1), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "commit": commit or None, "passed": 0, "failed": 0, **counts("".join(lines[-50:])),
                    "exit_code": code, "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                    else os.cpu_count(), "load_before": load_before, "load_after": _load(),
                    "command": " ".join(command)}
    user = re.search(r"User time \(seconds\): ([\d.]+)", timing)
    sys_ = re.search(r"System time \(seconds\): ([\d.]+)", timing)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing)
    if user and sys_:
        record["cpu_s"] = round(float(user.group(1)) + float(sys_.group(1)), 1)
    if rss:
        record["peak_rss_mb"] = round(int(rss.group(1)) / 1024, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"time_tests: {record['wall_s']} s wall, exit {code}; wrote {out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
