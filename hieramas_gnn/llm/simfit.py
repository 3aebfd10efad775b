"""Fit the simulator's figures from the real outcome tables, and validate the fit.

Used by `scripts/fit_sim.py` (writes `data/sim/`) and `hieramas sim validate`. Benchmarks:
MMLU (MMLU-Redux x 14 HELM models joined with full MMLU x 10 HELM models on the shared
question ids; domain = subject), GSM8K (42 models; domain `arithmetic`) and MATH level 5
(40 models; domain `math`). Everything read here comes from `shared_data_dir()`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hieramas_gnn.errors import DataMissingError
from hieramas_gnn.llm import irt
from hieramas_gnn.llm.behaviour import BehaviourConfig

# benchmark -> (outcome files, fixed domain or None for the `subject` column)
BENCHMARKS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "mmlu": (("outcomes/mmlu_redux_helm14.csv.gz", "outcomes/mmlu_helm10.csv.gz"), None),
    "gsm8k": (("outcomes/gsm8k_zeroeval.csv.gz",), "arithmetic"),
    "math_l5": (("outcomes/math_l5_zeroeval.csv.gz",), "math"),
}
# Validation sets that are not fitted separately: MMLU-Redux alone (its 14 HELM models).
VALIDATION_SETS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "mmlu_redux": (("outcomes/mmlu_redux_helm14.csv.gz",), None),
}
IRT_KW = {"sigma_b": 4.0, "tau": 0.5, "iters": 60}
DEBATE_LOG = "aggregation/debate_turns.csv.gz"


def load_benchmark(shared: Path, bench: str, files: tuple[str, ...] | None = None):
    """Long outcome table of one benchmark with a `domain` column."""
    import pandas as pd

    known = {**BENCHMARKS, **VALIDATION_SETS}
    if bench not in known:
        from hieramas_gnn.errors import UserError

        raise UserError(f"unknown benchmark {bench!r}; known: {', '.join(known)}")
    names, fixed = known[bench]
    frames = []
    for rel in files or names:
        path = shared / rel
        if not path.exists():
            raise DataMissingError(f"outcome table {path} not found (needed for benchmark {bench})")
        frames.append(pd.read_csv(path, keep_default_na=False, dtype={"answer": str}))
    df = pd.concat(frames, ignore_index=True)
    df["domain"] = fixed if fixed else df["subject"].astype(str)
    df = df.drop_duplicates(["question_id", "model"])
    df["correct"] = df["correct"].astype(int)
    return df


def fit_benchmark(df) -> irt.IRTFit:
    return irt.fit_table(df, "domain", **IRT_KW)


def wrong_answers(df):
    """Per question, the real wrong answers and how many models gave each (the attractive ones)."""
    w = df[(df["correct"] == 0) & (df["answer"].astype(str).str.strip() != "")]
    return (w.groupby(["question_id", "answer"]).size().rename("count").reset_index()
            .sort_values(["question_id", "count"], ascending=[True, False]))


def output_lengths(df) -> dict[str, dict[str, float]]:
    """Per model: median reply length in characters and the sd of its log (lognormal fit)."""
    if "output_chars" not in df:
        return {}
    out = {}
    for model, s in df.groupby("model")["output_chars"]:
        x = np.log(np.maximum(s.astype(float).to_numpy(), 1.0))
        out[str(model)] = {"median_chars": float(np.exp(np.median(x))), "log_sd": float(x.std())}
    return out


def heldout_validation(df, heldout_frac: float = 0.3, reps: int = 20, seed: int = 0) -> dict:
    """Refit on the other questions, simulate the held-out ones, compare with the real outcomes.

    Returns {"models": [{"model", "real_acc", "sim_acc"}], "corr_mae", "corr_real_mean",
    "corr_sim_mean", "n_heldout"}.
    """
    y, items, models, item_domain, domains = irt.outcome_matrix(df, "domain")
    held = irt.split_items(items, heldout_frac)
    theta, b = irt.fit_irt(y[~held], item_domain[~held], len(domains), **IRT_KW)
    fit = irt.IRTFit(models, domains, theta, [i for i, h in zip(items, held) if not h],
                     item_domain[~held], b)
    sim = irt.simulate_heldout(fit, item_domain[held], np.random.default_rng(seed), reps=reps)
    real = y[held]  # [Qh, M]
    real_acc = np.nanmean(real, axis=0)
    complete = ~np.isnan(real).any(axis=1)
    iu = np.triu_indices(len(models), 1)
    cr, cs = irt.error_corr(real[complete])[iu], irt.error_corr(sim)[iu]
    ok = ~np.isnan(cr) & ~np.isnan(cs)
    return {
        "models": [{"model": m, "real_acc": float(r), "sim_acc": float(s)}
                   for m, r, s in zip(models, real_acc, sim.mean(axis=0))],
        "corr_mae": float(np.abs(cr[ok] - cs[ok]).mean()),
        "corr_real_mean": float(cr[ok].mean()),
        "corr_sim_mean": float(cs[ok].mean()),
        "n_heldout": int(held.sum()),
    }


def validate(shared: Path, behaviour: BehaviourConfig, benchmark: str = "mmlu_redux",
             files: tuple[str, ...] | None = None, heldout_frac: float = 0.3) -> dict:
    """The `hieramas sim validate` report: held-out IRT check plus behaviour figures."""
    from hieramas_gnn.llm.behaviour_fit import behaviour_figures

    df = load_benchmark(shared, benchmark, files)
    report = heldout_validation(df, heldout_frac)
    log = shared / DEBATE_LOG
    if not log.exists():
        raise DataMissingError(f"debate log {log} not found (needed for the behaviour figures)")
    report["behaviour"] = behaviour_figures(log, behaviour)
    report["benchmark"] = benchmark
    return report


def write_fit(shared: Path, out: Path) -> dict[str, Path]:
    """Fit every benchmark and the behaviour model; write the figures under `out`."""
    import pandas as pd

    from hieramas_gnn.llm.behaviour_fit import behaviour_figures, fit_behaviour

    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    items, wrongs, lengths = [], [], {}
    for bench in BENCHMARKS:
        df = load_benchmark(shared, bench)
        fit = fit_benchmark(df)
        path = out / f"irt_{bench}.json"
        path.write_text(json.dumps({
            "benchmark": bench, "models": fit.models, "domains": fit.domains,
            "theta": np.round(fit.theta, 4).tolist(), "irt": IRT_KW,
            "accuracy": {m: float(a) for m, a in df.groupby("model")["correct"].mean().items()},
        }, indent=1))
        written[f"irt_{bench}"] = path
        items.append(pd.DataFrame({"question_id": fit.items, "benchmark": bench,
                                   "domain": [fit.domains[d] for d in fit.item_domain],
                                   "difficulty": np.round(fit.b, 4)}))
        wrongs.append(wrong_answers(df))
        lengths[bench] = output_lengths(df)
    pd.concat(items).to_csv(out / "items.csv.gz", index=False)
    pd.concat(wrongs).to_csv(out / "wrong_answers.csv.gz", index=False)
    (out / "lengths.json").write_text(json.dumps(lengths, indent=1))
    cfg = fit_behaviour(shared / DEBATE_LOG)
    (out / "behaviour.json").write_text(json.dumps({
        "config": cfg.to_dict(), "figures": behaviour_figures(shared / DEBATE_LOG, cfg)}, indent=1))
    written.update(items=out / "items.csv.gz", wrong=out / "wrong_answers.csv.gz",
                   lengths=out / "lengths.json", behaviour=out / "behaviour.json")
    return written
