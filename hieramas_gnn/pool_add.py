"""New pool models for a trained policy bundle, without retraining (`hieramas pool add`).

A bundle's policy scores (role, model) pairs from the models' *features* (`policy/features.py`:
profile embedding, prices, ability hints, name identity); its weights hold no per-model parameter
(the mixture head is an MLP over pairs, `policy/gnn.py`). So a model it never saw can be given a
feature row and scored like the others. `add_models` does that and writes a **new** bundle:

1. the old bundle is verified (checksums) and only read: its files stay byte-identical;
2. the user's pool YAML says which models are new (names the bundle does not know) and how every
   call is routed (model strings, bases, key variables): a bundle never chooses where calls go.
   A model the bundle knows keeps its features; listing it with another model string is refused
   (a different model under a trained name). Bundle models the YAML leaves out keep the bundle's
   recorded entry only when it names no endpoint, key or file (`bundle_trust.untrusted_settings`);
3. calibration: each new model answers `calibration_questions` questions (default 50) drawn,
   seeded, from the bundle's training split, alone (the `single:<model>` episode), through the
   normal LLM client behind the rollout cache (a killed run re-run pays nothing twice) under a
   finite spend cap (`budget_usd`). A refused or failed call stops the command: no bundle is
   written from a partial measurement;
4. recomputed: the new models' ability hints (`accuracy_hints` of their calibration answers, the
   same quantity the bundle's hints estimate on the whole training split; only for a bundle
   trained with `policy.accuracy_hints`), and the LLM feature rows of *every* model (the price
   z-score and price rank are computed over the pool as a set, so adding a model moves them);
5. kept: the weights (no gradient step), the old models' profiles, prices and hints, the roles,
   the task, the topology route; the decision model unless `decision` names another;
6. checked (`check=True`, the default): the bundle's designs on the calibration questions with
   each new model offered alone next to the old pool, against its designs without it, both run
   through the same client and scored with the bundle's training reward (`hyperparameters.reward`;
   a cost-conditioned bundle at every λ of its grid). A new model whose designs score a lower mean
   reward there at any λ is **held back**: recorded with both rewards, and left out of the new
   bundle's pool (a feature row the head ranks high is no proof the model pays: measured on
   GSM8K at a cost-aware point, the head swapped a dearer model into a plurality vote and lost
   reward). The check's calls are calibration calls: cached, under the same spend cap.

What the policy can do with a new model, and what it cannot: only the mixture head names models
(proposers and synthesizers of each role, `policy/sample.py`), so that is where a new model enters;
the decision model is a fixed name in the bundle's `choice`, and the topology heads score DAGs
(they never name a model). The design search of training (`train/warm_start.py`,
`train/cluster_search.py`) left no design in the bundle: its searched designs were cloned into the
weights, so there is nothing naming models to recompute there (the run folder's
`design_search.json` still names the old pool). Whether the head places a new model well depends on
how it generalises over features it was trained on with a handful of models: measured in
`experiments/new_models.py` (docs/RESULTS.md), not assumed.

API: `add_models(bundle, pool, out, *, calibration_questions=50, seed=0, budget_usd=1.0, ...)
-> AddResult`; `RECOMPUTED` (the recorded explanation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hieramas_gnn.bundle import (
    bundle_digest,
    check_bundle_out,
    export_policy,
    load_policy,
    read_meta,
)
from hieramas_gnn.bundle_trust import bundle_roleset, recorded_backend, untrusted_settings
from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import is_within
from hieramas_gnn.llm.client import ClientConfig
from hieramas_gnn.llm.pool import Pool, load_pool, pool_from_dict
from hieramas_gnn.llm.types import BackendSettings
from hieramas_gnn.mas.runner import labelled
from hieramas_gnn.mas.single import single_job

DEFAULT_QUESTIONS = 50
DEFAULT_BUDGET_USD = 1.0
RECOMPUTED = {
    "llm_features": "every model's feature row: the price z-score and price rank are computed over the pool as a "
                    "set, so adding a model moves them for all; profiles, prices and hints of the bundle's models "
                    "are kept as trained",
    "ability_hints": "the new models' hints: accuracy on the calibration questions (drawn from the bundle's training "
                     "split: the same quantity its hints estimate on the whole training split)",
    "weights": "unchanged (no gradient step): the mixture head scores (role, model) pairs from features, so the "
               "new models are ranked by the weights the bundle has",
    "decision": "kept unless --decision names another model (it was chosen at training among the old pool)",
    "searched_designs": "none in the bundle: the training's searched designs were cloned into the weights "
                        "(the run folder's design_search.json still names the old pool)",
    "topology": "the recorded route and heads: they score DAGs, never models",
    "check": "each new model offered alone is kept only if the bundle's designs with it score no lower mean "
             "training reward on the calibration questions than without it (at every λ of a cost-conditioned "
             "bundle); otherwise it is held back: recorded, not in the new bundle's pool",
    "description_embeddings": "the bundle's stored embeddings (embeddings.safetensors): the role descriptions and "
                              "every model's profile, the new models' included, embedded again with the bundle's embedder",
}


class BudgetStop(UserError):
    """The spend cap refused calibration calls (completed calls are cached)."""


@dataclass
class Calibration:
    """One new model's calibration: single-model answers to the calibration questions."""

    model: str
    questions: int
    correct: int
    accuracy: float
    hints: list[float]
    cost_usd: float
    """What its calibration calls cost (paid now or when first paid: cached calls included)."""


@dataclass
class ModelCheck:
    """One new model's check: the bundle's mean training reward on the calibration questions
    without and with the model offered (per λ: one entry for a fixed-λ bundle), and the share of
    questions whose design names it."""

    model: str
    cost_lambdas: list[float]
    reward_without: list[float]
    reward_with: list[float]
    used: float
    kept: bool


@dataclass
class AddResult:
    """What `add_models` wrote and measured."""

    bundle: Path
    added: list[str]
    calibration: list[Calibration]
    question_ids: list[str]
    paid_usd: float
    """Spent by this run (cache hits are free)."""
    cached_calls: int
    decision: str
    hint_dim: int
    notes: list[str] = field(default_factory=list)
    checks: list[ModelCheck] = field(default_factory=list)
    """Per new model: its designs' reward on the calibration questions with and without it."""

    @property
    def held_back(self) -> list[str]:
        return [c.model for c in self.checks if not c.kept]

    @property
    def calibration_usd(self) -> float:
        return float(sum(c.cost_usd for c in self.calibration))


def check_budget(budget_usd: Any) -> float:
    """The calibration spend cap: a finite number >= 0 (UserError otherwise)."""
    if isinstance(budget_usd, bool) or not isinstance(budget_usd, int | float) \
            or not math.isfinite(budget_usd) or budget_usd < 0:
        raise UserError(f"--budget must be a finite number of USD >= 0, got {budget_usd!r}")
    return float(budget_usd)


def check_new_out(out: str | Path, bundle: str | Path) -> Path:
    """The new bundle's folder: absent or empty, never the old bundle nor inside it or around it."""
    path = Path(out)
    if path.is_dir() and any(path.iterdir()):
        raise UserError(f"--out {out}: folder is not empty; `pool add` writes a new bundle into a new or empty "
                        "folder (it never replaces a bundle)")
    absolute = check_bundle_out(path, {"--bundle": bundle})
    if is_within(absolute, Path(bundle).resolve()) or is_within(Path(bundle).resolve(), absolute):
        raise UserError(f"--out {out}: is the old bundle {bundle} or holds it; give a new folder")
    return absolute


def merged_pool(meta: Any, user: Pool, bundle: str | Path) -> tuple[Pool, list[str]]:
    """(the new bundle's pool, the new model names): the user's entries for every model they list,
    the bundle's offline entries for the bundle models they leave out (see module docstring)."""
    known = {m["name"]: m for m in meta.pool_models} if meta.pool_models else {}
    trained = meta.model_names
    clashes = [f"{m.name} (bundle: {known[m.name]['litellm_model']!r}, your pool: {m.litellm_model!r})"
               for m in user.models if m.name in known and known[m.name].get("litellm_model") != m.litellm_model]
    if clashes:
        raise UserError(f"pool {user.name}: model name(s) the bundle was trained with call another model: "
                        f"{'; '.join(clashes)}. `pool add` keeps the trained features of the bundle's models, so a "
                        "different model under a trained name would be mis-described: give the new model another "
                        "name (to run the bundle's models through other endpoints, pass your pool when you load "
                        "the bundle: --pool)")
    new = [m.name for m in user.models if m.name not in trained]
    if not new:
        raise UserError(f"pool {user.name}: adds no model: every model in it ({', '.join(user.names)}) is already "
                        f"in the policy bundle {bundle}")
    if all(name in user.names for name in trained):
        return user, new
    missing = [n for n in trained if n not in user.names]
    entries = [known[n] for n in missing if n in known]
    unknown = [n for n in missing if n not in known]
    if unknown:
        raise UserError(f"pool {user.name}: lacks the bundle's models {unknown} and the bundle records no model "
                        "string for them; list them in your pool")
    found = untrusted_settings(entries)
    if found:
        raise UserError(f"pool {user.name}: lacks the bundle's models {missing}, whose recorded entries choose where "
                        f"calls go or which key they carry ({'; '.join(found[:4])}); a bundle never decides that: "
                        "list them in your pool with your own model strings")
    mine = {m.name: m for m in user.models}
    rest = pool_from_dict({"name": user.name, "models": entries}, where=f"policy bundle {bundle} pool_models",
                          default_name=user.name)
    theirs = {m.name: m for m in rest.models}
    order = [*trained, *new]
    return Pool(user.name, tuple(mine.get(n) or theirs[n] for n in order)), new


def calibration_questions(task: Any, meta: Any, n: int, seed: int) -> list[Any]:
    """`n` questions drawn (seeded) from the bundle's training split (its recorded question ids),
    in the split's order; the whole training split when it holds fewer."""
    recorded = (meta.training or {}).get("split")
    ids = recorded.get("train") if isinstance(recorded, dict) else None
    if not isinstance(ids, list) or not ids:
        raise UserError("the policy bundle records no training split (exported by an earlier version, or not from a "
                        "training run): calibration questions must come from the questions it was trained on; "
                        "re-export it from its run folder with `hieramas export`")
    source = ((meta.hyperparameters or {}).get("task") or {}).get("split") or "test"
    every: dict[str, Any] = {}
    for split in dict.fromkeys((source, "train")):
        try:
            every.update({q.id: q for q in task.load(None, split=split)})
        except (UserError, OSError, ValueError):
            continue
    qs = [every[str(i)] for i in ids if str(i) in every]
    if len(qs) < len(ids):
        raise UserError(f"{len(ids) - len(qs)} of the bundle's {len(ids)} training questions are not in task "
                        f"{task.name} here: is it the data the policy was trained on?")
    if n >= len(qs):
        return qs
    pick = np.sort(np.random.default_rng(seed).choice(len(qs), size=n, replace=False))
    return [qs[int(i)] for i in pick]


def _bundle_task(bundle: str | Path, meta: Any, trust: bool) -> Any:
    from hieramas_gnn.serve.policy import bundle_task as task_of  # the loader `Policy.load` uses

    if not meta.task:
        raise UserError(f"{bundle}: the policy bundle records no task; it cannot be calibrated")
    return task_of(meta.task, meta, bundle, trust)


def calibrate(runner: Any, models: Sequence[str], questions: Sequence[Any], domain_vocab: Sequence[str],
              hint_dim: int) -> list[Calibration]:
    """Single-model answers of each of `models` to `questions` -> their `Calibration`s. A failed
    or refused call raises (a partial measurement never becomes a feature)."""
    from hieramas_gnn.policy.features import accuracy_hints  # lazy: loads torch

    jobs = [single_job(runner.task, runner.roleset, q, m) for m in models for q in questions]
    traces = runner.run_jobs(jobs)
    failed = [t for t in traces if t.failed]
    if failed:
        raise UserError(f"{len(failed)} of {len(traces)} calibration calls failed (first: "
                        f"{failed[0].failure_reason}); no bundle written. Completed calls are cached: fix the cause "
                        "(e.g. raise --budget) and re-run")
    n = len(questions)
    correct = np.array([[float(bool(traces[j * n + i].correct)) for j in range(len(models))] for i in range(n)])  # [Q, M_new]
    hints = accuracy_hints(correct, [q.meta.get("domain") for q in questions], domain_vocab) if hint_dim else [()] * len(models)
    return [Calibration(model=m, questions=n, correct=int(correct[:, j].sum()), accuracy=float(correct[:, j].mean()),
                        hints=[float(h) for h in hints[j]],
                        cost_usd=float(sum(t.cost_usd for t in traces[j * n:(j + 1) * n])))
            for j, m in enumerate(models)]


def _llm_nodes(meta: Any, pool: Pool, calibrations: Sequence[Calibration]) -> list[Any]:
    from hieramas_gnn.policy.features import LLMNode  # lazy: loads torch

    old = {m["name"]: LLMNode(m["name"], m.get("profile", ""), m["input_cost_per_token"], m["output_cost_per_token"],
                              tuple(m.get("hints", ()))) for m in meta.pool}
    new = {c.model: c for c in calibrations}
    return [old[m.name] if m.name in old else
            LLMNode(m.name, m.profile or "", float(m.input_cost_per_token), float(m.output_cost_per_token),
                    tuple(new[m.name].hints))
            for m in pool.models]


def bundle_reward(meta: Any) -> tuple[str, float] | None:
    """(shape, λ) of the reward the bundle was trained with (`hyperparameters.reward`); None when
    it records none."""
    reward = (meta.hyperparameters or {}).get("reward") or {}
    if "shape" not in reward or "cost_lambda" not in reward:
        return None
    return str(reward["shape"]), float(reward["cost_lambda"])


def check_new_models(meta: Any, policy: Any, settings: Any, builder_for: Callable[[Sequence[str]], Any],
                     runner: Any, added: Sequence[str], questions: Sequence[Any],
                     reward: tuple[str, float]) -> list[ModelCheck]:
    """Step 6 of the module docstring: per new model, the bundle's designs on `questions` with the
    old pool plus that model (`builder_for(names)`: the graph builder of those models) against the
    old pool alone, each run through `runner` and scored with `reward` (at every λ of the bundle's
    cost grid)."""
    from hieramas_gnn.policy.choose import DesignChooser  # lazy: loads torch
    from hieramas_gnn.train.rewards import Reward  # lazy: loads torch

    grid = meta.cost_grid()
    lams = [float(p["cost_lambda"]) for p in grid.points] if grid is not None else [reward[1]]
    old = [m["name"] for m in meta.pool]

    def rewards(names: Sequence[str]) -> tuple[list[float], list[Any]]:
        chooser = DesignChooser(policy, builder_for(names), settings, grid)
        means, chosen = [], []
        for lam in lams:
            designs = chooser.designs(questions, lam if grid is not None else None)
            traces = runner.run(list(zip(designs, questions)))
            failed = [t for t in traces if t.failed]
            if failed:
                raise UserError(f"{len(failed)} of {len(traces)} calls of the check failed (first: "
                                f"{failed[0].failure_reason}); no bundle written. Completed calls are cached: fix "
                                "the cause (e.g. raise --budget) and re-run, or skip the check (--no-check)")
            score = Reward(reward[0], lam)
            means.append(float(np.mean([score.of_trace(t) for t in traces])))
            chosen.extend(designs)
        return means, chosen

    without, _ = rewards(old)
    checks = []
    for model in added:
        with_it, designs = rewards([*old, model])
        used = float(np.mean([model in d.mixture_models() for d in designs]))
        checks.append(ModelCheck(model=model, cost_lambdas=lams, reward_without=without, reward_with=with_it,
                                 used=used, kept=all(w >= o - 1e-12 for w, o in zip(with_it, without))))
    return checks


def add_models(bundle: str | Path, pool: Any, out: str | Path, *, calibration_questions_n: int = DEFAULT_QUESTIONS,
               seed: int = 0, budget_usd: float = DEFAULT_BUDGET_USD, cache_path: str | Path | None = "runs/rollouts.sqlite",
               cache_mode: str = "rw", decision: str | None = None, embed_cache: str | Path | None = None,
               backend: BackendSettings | None = None, max_in_flight: int = 8, trust: bool = False,
               client: Any = None, check: bool = True, say: Callable[[str], None] = lambda line: None) -> AddResult:
    """Measure the new models of `pool` and write the new bundle `out` (module docstring;
    `check=False` skips step 6: every new model goes into the bundle).
    `client`: an LLM client over the new pool (tests); default: the project's client over
    `cache_path` with the spend cap `budget_usd`; `backend`: the offline backends' settings
    (default: those the bundle was trained with)."""
    from hieramas_gnn.build import ClientSettings, make_client
    from hieramas_gnn.distributed.runner import make_runner
    from hieramas_gnn.policy.choose import ChoiceSettings  # lazy: loads torch
    from hieramas_gnn.policy.graph import GraphBuilder, RoleNode  # lazy: loads torch

    budget = check_budget(budget_usd)
    if isinstance(calibration_questions_n, bool) or not isinstance(calibration_questions_n, int) \
            or calibration_questions_n < 1:
        raise UserError(f"--calibration-questions must be an integer >= 1, got {calibration_questions_n!r}")
    out_abs = check_new_out(out, bundle)
    meta = read_meta(bundle)  # verifies every checksum: a damaged bundle is refused before any call
    before = bundle_digest(bundle)
    user = pool if isinstance(pool, Pool) else load_pool(pool)
    new_pool, added = merged_pool(meta, user, bundle)
    choice = dict(meta.choice)
    if decision is not None:
        if decision not in new_pool.names:
            raise UserError(f"--decision {decision!r} is not a model of the new pool ({', '.join(new_pool.names)})")
        choice["decision"] = decision
    if not choice:
        raise UserError(f"{bundle}: the policy bundle records no design-choice route; re-export it with `hieramas train`")
    settings = ChoiceSettings.from_dict(choice)

    task = _bundle_task(bundle, meta, trust)
    roleset = bundle_roleset(bundle, meta, trust, task.family)
    questions = calibration_questions(task, meta, calibration_questions_n, seed)
    say(f"calibration: {len(added)} new model(s) ({', '.join(added)}) x {len(questions)} questions of the "
        f"bundle's training split (seed {seed}), spend cap ${budget:g}")
    if client is None:
        client = make_client(ClientSettings(cache_path=None if cache_mode == "off" else (str(cache_path) if cache_path else None),
                                            cache_mode=cache_mode if cache_path else "off",
                                            config=ClientConfig(max_concurrency=max_in_flight,
                                                                per_model_concurrency=max_in_flight, budget_usd=budget),
                                            backend=backend or recorded_backend(meta)), new_pool)
    runner = make_runner("local", task=task, roleset=roleset, pool=new_pool, client=client, max_in_flight=max_in_flight)
    try:
        with labelled(runner, "calibration"):
            calibrations = calibrate(runner, added, questions, meta.domain_vocab, meta.hint_dim)
    except UserError as exc:
        if getattr(client.stats, "refused", 0):
            raise BudgetStop(f"the spend cap ${budget:g} refused {client.stats.refused} calibration calls; no bundle "
                             "written. Completed calls are cached: raise --budget and re-run") from None
        raise

    notes = []
    if not meta.hint_dim:
        notes.append("the bundle was trained without ability hints (policy.accuracy_hints: false): the new models "
                     "enter by profile and price only; their calibration accuracy is recorded, not a feature")
    policy, _ = load_policy(bundle)
    fb = meta.feature_builder(cache_dir=embed_cache)
    roles = [RoleNode(r["name"], r["description"]) for r in meta.roles]

    def builder_for(names: Sequence[str]) -> Any:
        sub = replace(new_pool, models=tuple(m for m in new_pool.models if m.name in set(names)))
        return GraphBuilder(fb, roles, _llm_nodes(meta, sub, calibrations))

    checks: list[ModelCheck] = []
    reward = bundle_reward(meta)
    if check and reward is None:
        notes.append("the bundle records no training reward (hyperparameters.reward): the new models were not checked")
    elif check:
        say(f"check: the bundle's designs on the {len(questions)} calibration questions with each new model and without")
        try:
            with labelled(runner, "check"):
                checks = check_new_models(meta, policy, settings, builder_for, runner, added, questions, reward)
        except UserError:
            if getattr(client.stats, "refused", 0):
                raise BudgetStop(f"the spend cap ${budget:g} refused {client.stats.refused} calls of the check; no "
                                 "bundle written. Completed calls are cached: raise --budget and re-run (or --no-check)") from None
            raise
        for c in checks:
            if not c.kept and c.model == settings.decision:
                c.kept = True  # the user named it the decision model
                notes.append(f"{c.model}: its designs scored lower on the calibration questions, kept as the decision model")
    held = {c.model for c in checks if not c.kept}
    for c in checks:
        if not c.kept:
            notes.append(f"{c.model} held back: the bundle's designs with it scored a mean reward of "
                         f"{', '.join(f'{w:.4f}' for w in c.reward_with)} on the calibration questions against "
                         f"{', '.join(f'{o:.4f}' for o in c.reward_without)} without it (chosen for {c.used:.0%} of "
                         "them); not in the new bundle's pool (--no-check adds it anyway)")
    kept = [m for m in added if m not in held]
    new_pool = replace(new_pool, models=tuple(m for m in new_pool.models if m.name not in held))
    builder = builder_for(new_pool.names)
    stats = client.stats
    record = {"from_bundle": str(bundle), "from_digest": before, "added": kept, "held_back": sorted(held),
              "checks": [asdict(c) for c in checks],
              "calibration": [asdict(c) for c in calibrations], "calibration_questions": [q.id for q in questions],
              "calibration_seed": seed, "budget_usd": budget, "decision_before": meta.decision,
              "recomputed": RECOMPUTED, "notes": notes}
    path = export_policy(policy, out_abs, builder=builder, decision=settings.decision, pool=new_pool,
                         pool_name=new_pool.name, choice=settings, family=meta.family, task=meta.task,
                         hyperparameters=meta.hyperparameters, training=meta.training,
                         extra={**meta.extra, "pool_add": record}, task_questions=meta.task_questions,
                         role_prompts=meta.role_prompts, prompt_version=meta.prompt_version,
                         cost=meta.cost or None)  # a cost-conditioned bundle keeps its λ grid (measured on the old pool)
    if bundle_digest(bundle) != before:  # never happens: the old bundle is only read
        raise UserError(f"{bundle}: the old bundle changed while `pool add` ran")
    return AddResult(bundle=path, added=kept, calibration=calibrations, question_ids=[q.id for q in questions],
                     paid_usd=float(stats.spent_usd), cached_calls=int(stats.cache_hits), decision=settings.decision,
                     hint_dim=meta.hint_dim, notes=notes, checks=checks)

