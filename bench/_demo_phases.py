"""`hieramas demo` under pyinstrument with a CPU / RSS mark at every phase boundary.

`python -m bench._demo_phases OUT_DIR PROFILE_TXT [--interval S] [-- DEMO ARGS...]` runs
`hieramas demo --out OUT_DIR` in this process, sampled by pyinstrument (main thread, `--interval`
seconds, default 0.005), and writes PROFILE_TXT: a header table with one row per phase line
(`hieramas: ...`) and per finished progress bar — wall, process CPU (user + sys, all threads) and
resident memory at the mark, the peak resident memory sampled every 0.1 s since the previous
mark — then the profile's text render. `bench/profile.py demo` is the entry that calls it.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from pathlib import Path


def rss_mb() -> float:
    """Current resident set size of this process (MB, from /proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Marks:
    """Phase marks and a sampler of the resident set between them."""

    def __init__(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.rows: list[tuple[float, float, float, float, str]] = []
        self.window_peak = rss_mb()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            now = rss_mb()
            with self._lock:
                self.window_peak = max(self.window_peak, now)

    def mark(self, label: str) -> None:
        now = rss_mb()
        with self._lock:
            peak, self.window_peak = max(self.window_peak, now), now
        self.rows.append((time.perf_counter() - self.t0, time.process_time() - self.c0, now, peak, label))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def table(self) -> str:
        lines = ["| wall s | CPU s | ΔCPU s | RSS MB | peak since last MB | mark |", "|---:|---:|---:|---:|---:|---|"]
        last = 0.0
        for wall, cpu, now, peak, label in self.rows:
            lines.append(f"| {wall:.1f} | {cpu:.1f} | {cpu - last:.1f} | {now:.0f} | {peak:.0f} | {label[:110]} |")
            last = cpu
        ru = resource.getrusage(resource.RUSAGE_SELF)
        lines.append(f"\nprocess peak RSS (ru_maxrss): {ru.ru_maxrss / 1024:.0f} MB; CPU user {ru.ru_utime:.1f} s + "
                     f"sys {ru.ru_stime:.1f} s")
        return "\n".join(lines)


def main(argv: list[str]) -> int:
    marks = Marks()  # before any project import: the imports are a phase too
    out, profile_txt, rest = argv[0], Path(argv[1]), argv[2:]
    interval = 0.005
    if rest[:1] == ["--interval"]:
        interval, rest = float(rest[1]), rest[2:]
    extra = rest[1:] if rest[:1] == ["--"] else rest

    from pyinstrument import Profiler

    prof = Profiler(interval=interval)
    prof.start()
    from hieramas_gnn import progress

    say = progress.phase

    def phase(text: str) -> None:
        marks.mark(text)
        say(text)

    progress.phase = phase  # before the commands import it by name
    close = progress.bar.close

    def bar_close(self) -> None:
        if not self._closed and not isinstance(self._impl, progress._Silent):
            marks.mark(f"bar done: {getattr(self._impl, 'desc', '')} ({self.n})")
        close(self)

    progress.bar.close = bar_close
    from hieramas_gnn import cli

    marks.mark("imports (cli)")
    code = cli.main(["demo", "--out", out, *extra])
    marks.mark("demo returned")
    prof.stop()
    marks.stop()
    profile_txt.write_text(f"{marks.table()}\n\n{prof.output_text(color=False, unicode=True)}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
