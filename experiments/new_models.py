"""New models without retraining, on real outcomes: how much of a full retraining's gain does
`hieramas pool add` recover?

For one replay task (`experiments/configs/replay_<task>.yaml`, its 7-model pool) and one reward
point, with `policy.accuracy_hints` on (the ability feature `pool add` fills for a new model):

- `full`: the policy trained with the whole pool (the retraining that has every held-out model);
- per held-out model X: `without_X`, trained on the pool without X, and `added_X`: `without_X`'s
  bundle given X by `pool add` (50 calibration questions of its training split; no gradient step);
- every bundle evaluated on the same held-out test questions (`eval.experiment.evaluate_bundle`).

Per X: `gain_retrained` = mean test reward of `full` − `without_X`, `gain_added` = `added_X` −
`without_X` (paired over questions, with standard errors), `recovered` = added / retrained,
`calibration_usd` = what X's calibration calls cost, `used_*` = the share of test questions
whose chosen design names X, and `held_back` = `pool add`'s check left X out (its designs scored
less training reward on the calibration questions than without it; then `added_X` = `without_X`). Written to `experiments/results/new_models/<task>.json` (+ `.md`).

    python -m experiments.new_models --task gsm8k --point linear:0 \\
        --models claude-3-5-sonnet-20240620 gpt-4o-mini-2024-07-18 Qwen2-72B-Instruct

Every training resumes from its folder and every call is in the task's rollout cache.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.common import write_results
from experiments.real_frontier import point_overrides


def _pool_without(pool_path: Path, model: str, out: Path) -> Path:
    import yaml

    raw = yaml.safe_load(pool_path.read_text())
    raw["models"] = [m for m in raw["models"] if m["name"] != model]
    raw["name"] = f"{raw['name']}-without-{model}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def _train(cfg: Any) -> tuple[Path, float]:
    """The run's bundle (trained, or resumed from its folder) and the CPU seconds this call took."""
    from hieramas_gnn.train.pipeline import train_pipeline

    t0 = time.process_time()
    bundle = Path(cfg.run.dir) / "policy"
    if not (bundle / "checksums.sha256").is_file():
        train_pipeline(cfg)
    return bundle, time.process_time() - t0


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = np.asarray(a, float) - np.asarray(b, float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0


def _used(designs: list, model: str) -> float:
    """Share of the designs whose mixtures name `model`."""
    return float(np.mean([model in d.mixture_models() for d in designs])) if designs else 0.0


def _compact(design: Any) -> str:
    """`[a+b>s | skip | ...] decision d`: the mixtures of a design in one line."""
    parts = ["skip" if mix is None else f"{'+'.join(mix.proposers)}>{mix.synthesizer}" for mix in design.mixtures]
    return f"[{' | '.join(parts)}] decision {design.decision}"


def main(argv: list[str] | None = None) -> int:
    from hieramas_gnn.build import build_runner, load_models, load_questions, load_roles, make_client, ClientSettings
    from hieramas_gnn.bundle import load_chooser
    from hieramas_gnn.eval.experiment import CONFIGS, evaluate_bundle
    from hieramas_gnn.config import load_config
    from hieramas_gnn.paths import ensure_offline_defaults
    from hieramas_gnn.pool_add import add_models
    from hieramas_gnn.train.rewards import reward_function

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="gsm8k", choices=("gsm8k", "mmlu_redux", "math_l5"))
    p.add_argument("--point", default="linear:0", help="reward point shape:lambda (experiments/real_frontier.py)")
    p.add_argument("--models", nargs="+", required=True, help="held-out models (names in the task's pool)")
    p.add_argument("--out", default="runs/new_models")
    p.add_argument("--results", default="experiments/results/new_models")
    p.add_argument("--calibration-questions", type=int, default=50)
    p.add_argument("--embed-cache", default="runs/embeddings", help="embedding cache folder")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="key=value")
    args = p.parse_args(argv)
    ensure_offline_defaults()

    name, point = point_overrides(args.point)
    root = Path(args.out) / args.task / name
    cache = Path(args.out) / args.task / "rollouts.sqlite"
    config = CONFIGS / f"replay_{args.task}.yaml"
    base = ["tracking.wandb=disabled", "tracking.progress=false", "policy.accuracy_hints=true", "run.threads=1",
            f"cache.path={cache}", f"policy.embed_cache={args.embed_cache}", *point, *args.overrides]

    def cfg_for(folder: str, extra: list[str] = ()) -> Any:
        return load_config(config, [*base, f"run.out_dir={root / folder}", *extra])

    full_cfg = cfg_for("full")
    full_pool_path = Path(full_cfg.pool.name)
    full_bundle, cpu_full = _train(full_cfg)
    print(f"[{args.task} {args.point}] full pool trained ({cpu_full:.0f} s CPU)", flush=True)

    _, _, test, task = load_questions(full_cfg)
    roleset, _ = load_roles(full_cfg, task)
    pool, _ = load_models(full_cfg)
    runner = build_runner(full_cfg, task, roleset, pool, make_client(ClientSettings.from_config(full_cfg), pool))
    reward = reward_function(full_cfg.reward).of_trace
    embed = args.embed_cache

    def evaluate(bundle: Path) -> tuple[np.ndarray, list]:
        _, per_query, _ = evaluate_bundle(bundle, test, runner, reward=reward, embed_cache=embed, control=False)
        chooser, _ = load_chooser(bundle, embed_cache=embed)
        return per_query["hieramas"], chooser.designs(test)

    full_q, full_designs = evaluate(full_bundle)
    rows = []
    for model in args.models:
        if model not in pool.names:
            raise SystemExit(f"--models: {model!r} is not in the pool ({', '.join(pool.names)})")
        pool_path = _pool_without(full_pool_path, model, root / "pools" / f"without-{model}.yaml")
        without_bundle, cpu_without = _train(cfg_for(f"without-{model}", [f"pool.name={pool_path}"]))
        added_dir = root / f"added-{model}"
        t0 = time.process_time()
        if (added_dir / "checksums.sha256").is_file():
            import shutil

            shutil.rmtree(added_dir)  # ours: re-added from the (cached) calibration below
        res = add_models(without_bundle, full_pool_path, added_dir, calibration_questions_n=args.calibration_questions,
                         cache_path=cache, budget_usd=10.0, embed_cache=embed)
        cpu_add = time.process_time() - t0
        without_q, without_designs = evaluate(without_bundle)
        added_q, added_designs = evaluate(res.bundle)
        g_re, se_re = _paired(full_q["reward"], without_q["reward"])
        g_add, se_add = _paired(added_q["reward"], without_q["reward"])
        row = {"model": model, "point": args.point, "gain_retrained": g_re, "gain_added": g_add,
               "recovered": g_add / g_re if g_re else None, "calibration_usd": res.calibration_usd,
               "gain_retrained_se": se_re, "gain_added_se": se_add,
               "retrained_significant": bool(abs(g_re) > 2 * se_re and se_re > 0),
               "added_significantly_worse": bool(g_add < -2 * se_add and se_add > 0),
               "calibration_accuracy": res.calibration[0].accuracy,
               "held_back": model in res.held_back,
               "check": [c.__dict__ for c in res.checks],
               "used_retrained": _used(full_designs, model), "used_added": _used(added_designs, model),
               "accuracy": {"without": float(without_q["correct"].mean()), "added": float(added_q["correct"].mean()),
                            "retrained": float(full_q["correct"].mean())},
               "cost_usd": {"without": float(without_q["cost"].mean()), "added": float(added_q["cost"].mean()),
                            "retrained": float(full_q["cost"].mean())},
               "cpu_s": {"train_without": cpu_without, "pool_add": cpu_add},
               "designs": {"without": _compact(without_designs[0]), "added": _compact(added_designs[0]),
                           "retrained": _compact(full_designs[0])}}
        rows.append(row)
        print(f"[{args.task} {args.point}] {model}: retrained {g_re:+.4f} ± {se_re:.4f}, added {g_add:+.4f} ± "
              f"{se_add:.4f}, used {row['used_added']:.2f} (retrained {row['used_retrained']:.2f}), "
              f"calibration ${res.calibration_usd:.4f}", flush=True)
        _write(Path(args.results), args.task, args.point, rows, len(test))  # after each model: a stop keeps the rest
    return 0


def _write(folder: Path, task: str, point: str, rows: list[dict], n: int) -> None:
    path = folder / f"{task}.json"
    old = json.loads(path.read_text()).get("models", []) if path.is_file() else []
    keep = [r for r in old if (r.get("point"), r["model"]) not in {(point, r2["model"]) for r2 in rows}]
    models = [*keep, *rows]
    lines = [f"# New models without retraining: {task} replay ({n} test questions)", "",
             "| point | model | gain retrained | gain added | recovered | used (retrained / added) | held back by the check | calibration $ |",
             "|---|---|---|---|---|---|---|---|"]
    for r in models:
        rec = "n/a" if r["recovered"] is None else f"{r['recovered']:.2f}"
        lines.append(f"| {r['point']} | {r['model']} | {r['gain_retrained']:+.4f} ± {r['gain_retrained_se']:.4f} | "
                     f"{r['gain_added']:+.4f} ± {r['gain_added_se']:.4f} | {rec} | {r['used_retrained']:.2f} / "
                     f"{r['used_added']:.2f} | {'yes' if r.get('held_back') else 'no'} | {r['calibration_usd']:.4f} |")
    write_results(folder, task, {"models": models}, "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
