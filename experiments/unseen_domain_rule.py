"""Which design should a per-domain policy run on a domain it never saw? Leave-one-domain-out
over the design search's questions.

A run warm-started per domain (`stage1.warm_start: search_per_cluster`, the `domain` partition)
gives a question of an unknown domain the global design. Is that the right rule, or would the
best single model generalise better to new domains? This answers it from the training questions
only, as a rule chosen before any test question is seen must be: for each domain d of the search
questions, each rule is fitted on the other domains' questions and scored on d's:

- `global`: the best design of the global search's family (single models, votes, mixtures: the
  candidates `train/warm_start.py` builds, with the run's decision model) on the other domains;
- `single`: the best single model on the other domains.

The mean over held-out domains (each domain once; rewards weighted within a domain as the search
weighs its questions) says which rule generalises to a domain left out. Every rollout is a cache
hit of the run's rollout cache. Two leaks, both small: the family is built from the single models'
ranks on all search questions, and the decision model was chosen on them.

    python -m experiments.unseen_domain_rule runs/mixed/routerdc/runs/seed0 [seed1 ...] \\
        --out experiments/results/mixed/routerdc_ood/unseen_domain_rule

Run from the folder the run was trained in (its config's cache paths are relative to it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def leave_one_domain_out(run: Path) -> dict:
    """The two rules' held-out reward per domain of the run's search questions."""
    from hieramas_gnn.build import build_training
    from hieramas_gnn.config import load_config
    from hieramas_gnn.mas.design import Design
    from hieramas_gnn.train import cluster_search as C
    from hieramas_gnn.train import warm_start as W
    from hieramas_gnn.train.rewards import reward_function

    searched = run / "design_search.json"
    if not searched.exists():
        raise SystemExit(f"{run}: no design_search.json (not a run warm-started by the design search)")
    cfg = load_config(run / "config.yaml")
    setup = build_training(cfg)
    data = json.loads(searched.read_text())
    base, decision = Design.from_dict(data["design"]), data["decision"]
    queries, _ = W.search_queries(cfg, setup)
    domains = np.array([C._domain(q) or "" for q in queries])
    if "" in set(domains) or len(set(domains)) < 2:
        raise SystemExit(f"{run}: leave-one-domain-out needs a domain on every search question and two domains or more")
    out = C.Outcomes(C.MemoRunner(setup.runner), queries, reward_function(cfg.reward).of_trace,
                     W.question_weights(cfg, queries))
    everywhere = np.arange(len(queries))
    lone = out.run(W.single_designs(cfg, setup, decision), everywhere)
    family = out.run([base, *W.candidates(cfg, setup, out.single_rows(lone, everywhere), decision, queries[0])],
                     everywhere)
    names = {i: d.summary() for d, i in out.index.items()}
    return {"run": str(run), "designs": len(set(family + lone)), "search_questions": len(queries),
            "on_all": {"global": names[out.best(family + lone, everywhere, names)],
                       "single": names[out.best(lone, everywhere, names)]},
            **held_out_rules(out, family, lone, domains, names)}


def held_out_rules(out, family: list[int], lone: list[int], domains: np.ndarray, names: dict[int, str]) -> dict:
    """Per domain d: the `global` rule (best of `family` + `lone` rows of `out` on the other
    domains' questions) and the `single` rule (best of `lone` there), each scored on d's
    questions; the mean over domains of each, and the better rule (ties: `global`, what the
    lookup does today)."""
    rows = []
    for d in sorted(set(domains)):
        fit, held = np.flatnonzero(domains != d), np.flatnonzero(domains == d)
        g, s = out.best(family + lone, fit, names), out.best(lone, fit, names)
        rows.append({"domain": d, "questions": int(len(held)),
                     "global": {"design": names[g], "reward": out.mean(out.r, g, held),
                                "accuracy": out.mean(out.acc, g, held)},
                     "single": {"design": names[s], "reward": out.mean(out.r, s, held),
                                "accuracy": out.mean(out.acc, s, held)}})
    mean = {rule: float(np.mean([r[rule]["reward"] for r in rows])) for rule in ("global", "single")}
    return {"domains": rows, "mean_heldout_reward": mean,
            "better_rule": "single" if mean["single"] > mean["global"] else "global"}


def write(results: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"runs": results}, indent=1) + "\n")
    lines = ["# Which design for a domain never seen: leave one training domain out", "",
             "`python -m experiments.unseen_domain_rule` (module docstring): per held-out domain of the search",
             "questions, the best design of the global family and the best single model, each fitted on the",
             "other domains, scored on the held-out one (reward = accuracy at the accuracy-only point).", ""]
    for res in results:
        lines += [f"## {res['run']}", "",
                  f"Fitted on all {res['search_questions']} search questions, the global rule runs "
                  f"{res['on_all']['global']}; the single rule runs {res['on_all']['single']}.", "",
                  "| held-out domain | questions | global rule: design (fitted on the others) | reward | "
                  "single rule: model | reward |", "|---|---:|---|---:|---|---:|"]
        for r in res["domains"]:
            lines.append(f"| {r['domain']} | {r['questions']} | {r['global']['design']} | {r['global']['reward']:.4f} | "
                         f"{r['single']['design']} | {r['single']['reward']:.4f} |")
        m = res["mean_heldout_reward"]
        lines += ["", f"Mean over held-out domains: global {m['global']:.4f}, single {m['single']:.4f} "
                      f"-> **{res['better_rule']}**.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    from hieramas_gnn.paths import ensure_offline_defaults

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (runs/<...>/seed<k>) warm-started by the design search")
    p.add_argument("--out", required=True, help="file stem: writes <out>.json and <out>.md")
    args = p.parse_args(argv)
    ensure_offline_defaults()
    results = []
    for run in args.runs:
        results.append(leave_one_domain_out(Path(run)))
        r = results[-1]
        print(f"{run}: global {r['mean_heldout_reward']['global']:.4f} single {r['mean_heldout_reward']['single']:.4f}"
              f" -> {r['better_rule']}", flush=True)
        write(results, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
