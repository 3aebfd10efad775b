"""pyinstrument profiles behind the summary's misses: `python -m bench.profile NAME [NAME ...]`.

Writes `bench/profiles/<NAME>.txt` (text render, wall-clock samples of the main thread; the
header says the CPU time):

- `policy_load`: `Policy.load` of the MATH-L5 replay bundle of `bench/_bundle.py` (a fresh
  interpreter: imports included);
- `design_unseen`: that bundle, one torch thread: `Policy.design` on 100 unseen texts, then
  `Policy.designs` on 200 more (`bench/bench_design.py`'s generator);
- `serve_solve`: the serving path without HTTP: `Policy.solve_many` over 400 synthetic questions
  (the sim bundle, sim latency off, cache off, one torch thread), and the CPU ms per question of
  design choice alone vs the whole solve (design choice runs in a worker thread, outside the
  profile's main thread);
- `scoring`: `DesignChooser.scored` (the `classifier` route's K = 200 candidates of a query: one
  batch, one encoder pass shared by the selector and the graph-score head) on 20 queries of the
  policy of `bench/bench_scoring.py`, one torch thread;
- `training`: the timed part of `bench/bench_training.py`'s `replay_1_thread` (12 stage-1 steps of
  32 episodes over a rollout cache the same steps filled first: every call a cache hit, one
  torch thread), and the process CPU split of those steps;
- `frontier_seed`: one seed of `bench/bench_frontier.py` (`hieramas train` on MATH-L5 replay at
  λ = 1000 with the design search), from an empty folder (minutes);
- `demo`: `hieramas demo` from an empty folder (`bench/_demo_phases.py`: pyinstrument at 5 ms, and
  a table of process CPU and resident memory at every phase line and finished progress bar;
  the memory benchmark's run without the profiler gives the figures).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._bundle import CONFIG, REPO, env, replay_bundle

PROFILES = REPO / "bench" / "profiles"


def _write(name: str, text: str, note: str) -> Path:
    path = PROFILES / f"{name}.txt"
    path.write_text(f"# {note}\n{text}")
    return path


def _profile(fn, interval: float = 0.001):
    from pyinstrument import Profiler

    prof = Profiler(interval=interval)
    c0 = time.process_time()
    prof.start()
    out = fn()
    prof.stop()
    return out, time.process_time() - c0, prof.output_text(color=False, unicode=True)


def policy_load(tmp: Path) -> Path:
    bundle = replay_bundle(tmp)
    out = PROFILES / "policy_load.txt"
    subprocess.run([sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out), "-c",
                    f"from hieramas_gnn.serve.policy import Policy; Policy.load({str(bundle)!r}, cache=None)"],
                   cwd=REPO, env=env(), check=True)
    text = out.read_text()
    return _write("policy_load", text, "python -m bench.profile policy_load: Policy.load of a MATH-L5 replay bundle, "
                  "fresh interpreter (imports included)")


def design_unseen(tmp: Path) -> Path:
    import torch

    from bench.bench_design import questions
    from hieramas_gnn.serve.policy import Policy

    torch.set_num_threads(1)
    policy = Policy.load(replay_bundle(tmp), cache=None)
    texts = questions(301, seed=1)
    policy.design(texts[0])

    def work():
        for text in texts[1:101]:
            policy.design(text)
        return policy.designs(texts[101:301])

    _, cpu, text = _profile(work, 0.0005)
    return _write("design_unseen", text, f"python -m bench.profile design_unseen: replay bundle, 1 torch thread, "
                  f"Policy.design x 100 unseen texts then Policy.designs x 200; {cpu:.2f} CPU s under the profiler")


def serve_solve(tmp: Path) -> Path:
    import torch

    from hieramas_gnn.serve.policy import Policy
    from hieramas_gnn.serve.testing import sim_bundle

    torch.set_num_threads(1)
    policy = Policy.load(sim_bundle(tmp / "sim"), cache=None, backend={"sim": {"latency": "off"}})
    qs = [q.text for q in policy.task.load(None, "test", limit=200)] * 2
    policy.solve_many(qs[:8])
    policy.designs(qs[:8])
    c0 = time.process_time()
    policy.designs(qs)
    design_ms = (time.process_time() - c0) * 1000 / len(qs)
    sols, cpu, text = _profile(lambda: policy.solve_many(qs, max_concurrency=16), 0.0005)
    return _write("serve_solve", text, f"python -m bench.profile serve_solve: Policy.solve_many over {len(sols)} "
                  f"synthetic questions (sim bundle, sim latency off, cache off, 1 torch thread): {cpu * 1000 / len(sols):.1f} "
                  f"CPU ms per question under the profiler; Policy.designs alone (no profiler): {design_ms:.1f} CPU ms per "
                  "question (design choice runs in a worker thread: not in this main-thread profile)")


def scoring(tmp: Path) -> Path:
    import numpy as np
    import torch

    from bench._setup import make_trainer
    from bench.bench_scoring import K
    from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser
    from hieramas_gnn.train.topology_classifier import (
        ClassifierTraining,
        candidate_dags,
    )

    torch.set_num_threads(1)
    setup = make_trainer(tmp, n_train=64).setup
    chooser = DesignChooser(setup.policy.eval(), setup.builder,
                            ChoiceSettings(route="classifier", decision=setup.decision, n_candidates=K))
    dags = candidate_dags(5, K, np.random.default_rng(0), ClassifierTraining())
    queries = list(setup.train[:20])
    chooser.scored(queries[0], dags)

    def work():
        return [chooser.scored(q, dags) for q in queries]

    _, cpu, text = _profile(work, 0.0005)
    return _write("scoring", text, f"python -m bench.profile scoring: DesignChooser.scored, K = {K} candidate DAGs x "
                  f"{len(queries)} queries, 1 torch thread: {cpu * 1000 / len(queries):.1f} CPU ms per query under the "
                  "profiler")


def training(tmp: Path) -> Path:
    import torch

    from bench._setup import make_trainer
    from bench.bench_training import BATCH
    from hieramas_gnn.llm.cache import RolloutCache

    torch.set_num_threads(1)
    steps = 12
    cache = RolloutCache(tmp / "rollouts.sqlite", "rw")
    fill = make_trainer(tmp, batch_size=BATCH, cache=cache)
    for _ in range(steps):
        fill.train_step()
    cached = make_trainer(tmp, batch_size=BATCH, cache=cache)  # same seed: the same calls, all cache hits

    def work():
        for _ in range(steps):
            cached.train_step()

    _, cpu, text = _profile(work, 0.0005)
    client = cached.setup.runner.client
    cache.close()
    return _write("training", text, f"python -m bench.profile training: {steps} replay stage-1 steps x {BATCH} episodes "
                  f"(bench_training's replay_1_thread), 1 torch thread, {client.stats.cache_hits} cache hits, "
                  f"{client.stats.calls} provider calls: {steps * BATCH / cpu:.1f} episodes per CPU s under the profiler")


def frontier_seed(tmp: Path) -> Path:
    from bench.bench_frontier import POINT

    out = PROFILES / "frontier_seed.txt"
    cmd = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out), "-m", "hieramas_gnn.cli", "train",
           "--config", str(CONFIG), "--out", str(tmp / "run"), "--quiet", *POINT, "tracking.wandb=disabled",
           "tracking.progress=false", f"cache.path={tmp / 'rollouts.sqlite'}", f"policy.embed_cache={tmp / 'embeddings'}"]
    c0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env(), check=True)
    return _write("frontier_seed", out.read_text(), "python -m bench.profile frontier_seed: hieramas train --config "
                  f"experiments/configs/replay_math_l5.yaml {' '.join(POINT)} from an empty folder "
                  f"({time.perf_counter() - c0:.0f} s wall under the profiler)")


def demo(tmp: Path) -> Path:
    out = PROFILES / "demo.txt"
    c0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench._demo_phases", str(tmp / "demo"), str(out)], cwd=REPO, env=env(),
                   check=True, stdout=subprocess.DEVNULL)
    return _write("demo", out.read_text(), f"python -m bench.profile demo: hieramas demo --out DIR from an empty folder "
                  f"({time.perf_counter() - c0:.0f} s wall under the profiler); the table: process CPU (all threads) "
                  "and RSS at each phase line / finished progress bar, peak RSS sampled every 0.1 s since the mark before")


def main(argv: list[str]) -> int:
    from hieramas_gnn.paths import ensure_offline_defaults

    ensure_offline_defaults()
    known = {"policy_load": policy_load, "design_unseen": design_unseen, "serve_solve": serve_solve,
             "scoring": scoring, "training": training, "frontier_seed": frontier_seed, "demo": demo}
    bad = [n for n in argv if n not in known]
    if not argv or bad:
        print(f"usage: python -m bench.profile NAME [NAME ...] (known: {', '.join(known)})", file=sys.stderr)
        return 2
    PROFILES.mkdir(parents=True, exist_ok=True)
    for name in argv:
        with tempfile.TemporaryDirectory(prefix=f"hieramas-profile-{name}-") as tmp:
            print(f"wrote {known[name](Path(tmp))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
