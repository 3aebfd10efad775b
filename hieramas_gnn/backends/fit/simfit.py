"""Fit the simulator's figures from the real outcome tables, and validate the fit.

Used by `scripts/fit_sim.py` (writes `data/sim/`) and `hieramas sim validate`. Benchmarks:
MMLU (MMLU-Redux x 14 HELM models joined with full MMLU x 10 HELM models on the shared
question ids; domain = subject), GSM8K (42 models; domain `arithmetic`) and MATH level 5
(40 models; domain `math`). Everything read here comes from `shared_data_dir()`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from hieramas_gnn.backends.behaviour import BehaviourConfig
from hieramas_gnn.backends.fit import (  # module attributes: tests replace the fits
    behaviour_fit,
    irt,
    model_effects,
)
from hieramas_gnn.backends.fit.format_fit import fit_format
from hieramas_gnn.backends.fit.system_fit import system_validation
from hieramas_gnn.errors import DataMissingError, UserError

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
             files: tuple[str, ...] | None = None, heldout_frac: float = 0.3,
             system: bool = True) -> dict:
    """The `hieramas sim validate` report: held-out IRT check, behaviour figures and (unless
    `system=False`) the system-level debate re-run (`system_fit.system_validation`)."""
    df = load_benchmark(shared, benchmark, files)
    report = heldout_validation(df, heldout_frac)
    log = shared / DEBATE_LOG
    if not log.exists():
        raise DataMissingError(f"debate log {log} not found (needed for the behaviour figures)")
    report["behaviour"] = behaviour_fit.behaviour_figures(log, behaviour)
    if system:
        report["system"] = system_validation(log, behaviour)
    report["benchmark"] = benchmark
    return report


def write_fit(shared: Path, out: Path) -> dict[str, Path]:
    """Fit every benchmark and the behaviour model; write the figures under `out`."""
    import pandas as pd


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
    # gzip with mtime 0 so that a refit with unchanged data gives byte-identical files
    pd.concat(items).to_csv(out / "items.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    wrong_all = pd.concat(wrongs)
    table = {q: [[a, int(c)] for a, c in zip(g["answer"], g["count"])] for q, g in wrong_all.groupby("question_id")}
    blob = json.dumps(table, separators=(",", ":")).encode()
    with open(out / "wrong_answers.json.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(blob)
    (out / "lengths.json").write_text(json.dumps(lengths, indent=1))
    written.update(items=out / "items.csv.gz", wrong=out / "wrong_answers.json.gz",
                   lengths=out / "lengths.json", behaviour=write_behaviour(shared, out))
    return written


def write_behaviour(shared: Path, out: Path) -> Path:
    """Fit the behaviour model on the whole debate log; write `out/behaviour.json`: "config"
    (what the backends read), "figures" (real vs fitted per-step figures), and for the record
    the format model and the stubbornness spread fitted on the same rows (the system check
    refits both per held-out setting; the backends use neither)."""
    import pandas as pd


    log = pd.read_csv(shared / DEBATE_LOG, keep_default_na=False, dtype=str)
    cfg = behaviour_fit.fit_behaviour(log)
    fmt = fit_format(log)
    tau, deltas = model_effects.stubbornness_spread(log, cfg)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "behaviour.json"
    path.write_text(json.dumps({
        "config": cfg.to_dict(), "figures": behaviour_fit.behaviour_figures(log, cfg, fmt),
        "format": fmt.to_dict(),
        "stubbornness": {"tau": round(tau, 4), "per_setting": {k: round(v, 4) for k, v in deltas.items()}},
    }, indent=1))
    return path


# --- the catalogue of sim models derived from real ones -------------------------------------
# sim name -> the real model each benchmark's abilities are taken from (source names).
CATALOGUE: dict[str, dict[str, str]] = {
    "claude-3.5-sonnet": {"mmlu": "anthropic_claude-3-5-sonnet-20240620",
                          "gsm8k": "claude-3-5-sonnet-20240620", "math_l5": "claude-3-5-sonnet-20240620"},
    "claude-3-opus": {"mmlu": "anthropic_claude-3-opus-20240229", "gsm8k": "claude-3-opus-20240229",
                      "math_l5": "claude-3-opus-20240229"},
    "gpt-4o": {"mmlu": "openai_gpt-4o-2024-05-13", "gsm8k": "gpt-4o-2024-05-13",
               "math_l5": "gpt-4o-2024-05-13"},
    "gemini-1.5-pro": {"mmlu": "google_gemini-1.5-pro-001", "gsm8k": "gemini-1.5-pro",
                       "math_l5": "gemini-1.5-pro"},
    "gemini-1.5-flash": {"mmlu": "google_gemini-1.5-flash-preview-0514", "gsm8k": "gemini-1.5-flash",
                         "math_l5": "gemini-1.5-flash"},
    "qwen2-72b": {"mmlu": "qwen_qwen2-72b-instruct", "gsm8k": "Qwen2-72B-Instruct",
                  "math_l5": "Qwen2-72B-Instruct"},
    "llama-3.1-70b": {"mmlu": "meta_llama-3.1-70b-instruct-turbo", "gsm8k": "Meta-Llama-3.1-70B-Instruct",
                      "math_l5": "Meta-Llama-3.1-70B-Instruct"},
    "llama-3.1-405b": {"mmlu": "meta_llama-3.1-405b-instruct-turbo", "gsm8k": "Llama-3.1-405B-Instruct-Turbo",
                       "math_l5": "Llama-3.1-405B-Inst@sambanova"},
    "mistral-large": {"mmlu": "mistralai_mistral-large-2407", "gsm8k": "Mistral-Large-2",
                      "math_l5": "Mistral-Large-2"},
}
# Synthetic domains (and code) -> the real MMLU subjects / benchmark domains they borrow from.
DOMAIN_MAP: dict[str, list[str]] = {
    "arithmetic": ["arithmetic"],
    "physics": ["high_school_physics", "college_physics", "conceptual_physics"],
    "units": ["elementary_mathematics", "high_school_mathematics"],
    "logic": ["formal_logic", "logical_fallacies"],
    "history": ["high_school_world_history", "high_school_us_history", "high_school_european_history",
                "prehistory"],
    "biology": ["high_school_biology", "college_biology", "anatomy", "medical_genetics"],
    "code": ["college_computer_science", "high_school_computer_science", "computer_security",
             "machine_learning"],
}
SETTINGS = {
    "synthetic_domains": {k: v for k, v in DOMAIN_MAP.items() if k != "code"},
    "synthetic_levels": 3,
    "level_tasks": {"math500": {"pool": ["math"], "top_level": 5, "shift_per_level": 1.0}},
    "unknown_difficulty_sd": 1.5,
    "latency_stand_in": {"base_ms": 300.0, "ms_per_token": 10.0, "log_sd": 0.4},
}


def _abilities(fits: dict[str, dict], sources: dict[str, str], counts: dict[str, int]) -> dict[str, float]:
    """Ability map of one sim model from the fitted per-benchmark abilities of its sources."""
    ab: dict[str, float] = {}
    for bench, src in sources.items():
        fit = fits[bench]
        row = dict(zip(fit["domains"], fit["theta"][fit["models"].index(src)]))
        ab.update(row)
        if bench == "math_l5":
            ab["family:math"] = row["math"]
    mm = [(ab[d], counts.get(d, 1)) for d in fits["mmlu"]["domains"] if d in ab]
    for name, subjects in DOMAIN_MAP.items():
        got = [(ab[s], counts.get(s, 1)) for s in subjects if s in ab]
        if got and name not in ab:
            ab[name] = sum(t * n for t, n in got) / sum(n for _, n in got)
    if "code" in ab:
        ab["family:humaneval"] = ab.pop("code")
    ab["default"] = sum(t * n for t, n in mm) / sum(n for _, n in mm)
    return {k: round(float(v), 3) for k, v in ab.items()}


def build_catalogue(out: Path) -> dict:
    """`models.yaml` (derived sim models) and `settings.json` from the fitted figures in `out`."""
    import pandas as pd
    import yaml

    fits = {b: json.loads((out / f"irt_{b}.json").read_text()) for b in BENCHMARKS}
    lengths = json.loads((out / "lengths.json").read_text())
    items = pd.read_csv(out / "items.csv.gz")
    counts = items.groupby("domain").size().to_dict()
    lat = SETTINGS["latency_stand_in"]
    models = {}
    for name, sources in CATALOGUE.items():
        ln = lengths.get("gsm8k", {}).get(sources.get("gsm8k", ""), {"median_chars": 600.0, "log_sd": 0.4})
        models[name] = {
            "ability": _abilities(fits, sources, counts),
            "median_chars": round(ln["median_chars"], 1), "chars_log_sd": round(ln["log_sd"], 3),
            "latency_ms": round(lat["base_ms"] + lat["ms_per_token"] * ln["median_chars"] / 4, 1),
            "latency_log_sd": lat["log_sd"], "derived_from": dict(sources),
        }
    (out / "models.yaml").write_text(yaml.safe_dump({"models": models}, sort_keys=False, width=100))
    (out / "settings.json").write_text(json.dumps(SETTINGS, indent=1))
    return models
