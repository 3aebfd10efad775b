"""Stage 0 (`stage1.warm_start: search`): find the best simple design on the training split, and
start stage 1 from a policy that already chooses it.

Why: on real outcomes (replay) REINFORCE from a random policy did not find the strong simple
designs its space contains — a fixed vote of three one-proposer roles chosen on train + val beat
the learned policy on GSM8K and MMLU-Redux replay (`experiments/design_space_ceiling.py`). So
the learner starts where a careful user would: at the best fixed design of a small family,
measured on the search questions (`stage1.warm_start_on`: train + val by default, the questions
the fitted baselines are chosen on) under the run's own reward; stage 1 then learns per-query
departures from it, and the stage-1 validation at step 0 keeps the warm-started policy as
`best.pt` unless training beats it on the validation queries (which the default search has
seen: a departure must beat the searched design where that design was chosen).

The family (only designs the policy can express: a candidate whose log-prob under the policy is
−inf, e.g. a skipped role when `allow_skip` is off, is dropped):

- **vote of a** (a = 1..`warm_start_voters`): a roles (gradable ones first), each with one
  proposer, the rest skipped, no edges; with `decision_inputs: all` the decision model answers only when they
  disagree (a = 1 is "single model X"). Models: every a-subset of the `warm_start_models` pool
  models with the best single reward on the search queries (all of them in a small pool).
- **moa**: every role active with the same mixture of the top models (k = the policy's
  `k_proposers`, or 2..`proposer_slots`), synthesizer = the decision model; with k = 1, every
  role asks the same model (one design per model).
- **plurality vote of a** (only with `policy.arch.plurality`; a = 3..`proposer_slots`, at most
  the `warm_start_models` top models): one gradable role holding every a-subset of the top models
  as proposers, combined by the plurality synthesizer (no call), the rest skipped — with
  `decision_inputs: all`, the `vote` baseline's answer over that subset, asked until settled
  (`mas/supernode.py`: the list is the tie order, asked from its end). Each subset in two orders:
  most accurate first (ties go to it, and it is asked only when the others disagree) and dearest
  first (the cheap models are asked first: with three models, the cascade "the two cheap ones
  agree, else the dear one decides"); one design when the orders agree. This is how a vote of more
  models than the task has roles enters the family (MATH-L5's 3 roles cap the escalated votes
  above at 3). With 7 top models and 7 slots: up to 198 designs, all of them cache hits on the
  singles' calls.

Decision models tried: `pool.decision` when set; else the most accurate single model and the
best-reward single model on the search queries (one, when they agree). The chosen design's
decision becomes the run's decision model (`decision.json`).

Weights (`stage1.warm_start_weighting`): on a mixed task, whose metric `accuracy_task_mean` is
the mean over its components (`meta["component"]`), every mean of the search is weighted so that
each component counts equally (a question weighs 1 / its component's count: `stats.task_mean_weights`),
and a capped search (`warm_start_queries`) draws its questions evenly over the components (a
component with fewer takes all it has): ranking on the first 400 of RouterDC's train + val gave
HumanEval, a quarter of the metric, 12 questions. With one component (every single task) the
weights are uniform and the questions the first ones: the plain means, as with `question`.

Selection: the best mean reward on the search queries (`warm_start_on`: train + val or train;
at most `warm_start_queries` of them, 0 = all; ties: cheaper, then the name). Why train + val by
default: a family of ~200 designs picked on 300 questions suffers the winner's curse (the top
training reward is biased upward, the more so the more designs), and the baselines it is compared
with (`best_single`, `router`, `cascade`: `eval/routers.py`) are chosen on train + val; ranking on
the same 350 questions removes that asymmetry (measured: `experiments/warm_start_selection.py`).
Every search rollout goes through the run's runner and its cache, so a killed search re-run pays
nothing twice; the table is kept in `design_search.json`. Search cost: (M singles + Σ_a C(top, a) votes + mixtures) x queries
rollouts — with 7 models and 3 voters 63 designs; free on replay and sim, a real bill on a paid
provider (lower `warm_start_queries` / `warm_start_models` there).

Clone: Adam on −mean log π(design | query) over the training queries (each on a DAG of the
stage-1 pool, the design's mixtures kept) until the policy's greedy mixtures equal the design on
≥ 95 % of them or `warm_start_steps` steps; deterministic (full batch, no sampling).
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hieramas_gnn import stats
from hieramas_gnn.build import TrainingSetup
from hieramas_gnn.config import Config
from hieramas_gnn.guards import dumps
from hieramas_gnn.mas.design import PLURALITY, Design, Mixture
from hieramas_gnn.paths import atomic_write_text
from hieramas_gnn.policy.sample import sample

_log = logging.getLogger(__name__)
CLONE_MATCH = 0.95
CLONE_LR = 1e-2


@dataclass
class SearchResult:
    """The searched family's table and the winner (also `design_search.json`)."""

    design: Design
    decision: str
    rows: list[dict[str, Any]]
    queries: str = ""
    """Which questions the search ranked on, e.g. "train + val (350)"."""

    def to_dict(self) -> dict[str, Any]:
        return {"design": self.design.to_dict(), "summary": self.design.summary(), "decision": self.decision,
                "rule": "best mean reward of the simple-design family on the search queries",
                "queries": self.queries,
                "rows": self.rows}


def lone_roles(roleset: Any, roles: Sequence[str]) -> list[int]:
    """Role indices in the order votes fill them: gradable roles first (their answers count
    towards unanimity), then the others (their outputs only inform the decision, which is then
    always called)."""
    gradable = {r.name for r in roleset.roles if r.gradable}
    return sorted(range(len(roles)), key=lambda i: roles[i] not in gradable)


def vote_design(roles: Sequence[str], slots: Sequence[int], models: Sequence[str], decision: str,
                inputs: str) -> Design:
    """One-proposer roles at `slots` (one model each), every other role skipped, no edges."""
    mixes: list[Mixture | None] = [None] * len(roles)
    for i, m in zip(slots, models):
        mixes[i] = Mixture((m,), m)
    return Design(tuple(roles), tuple(mixes), (), decision, inputs)


def moa_design(roles: Sequence[str], models: Sequence[str], decision: str, inputs: str) -> Design:
    """Every role the same mixture of `models`, synthesized by the decision model (one model:
    no synthesis, every role asks it)."""
    mix = Mixture(tuple(models), decision if len(models) > 1 else models[0])
    return Design(tuple(roles), tuple(mix for _ in roles), (), decision, inputs)


def plurality_design(roles: Sequence[str], slot: int, models: Sequence[str], decision: str, inputs: str) -> Design:
    """One role (`slot`) whose proposers are `models`, combined by the plurality synthesizer;
    every other role skipped: with `decision_inputs: all` the plurality vote of `models` (ties:
    the earliest of them, which is asked last), no decision call."""
    mixes: list[Mixture | None] = [None] * len(roles)
    mixes[slot] = Mixture(tuple(models), PLURALITY)
    return Design(tuple(roles), tuple(mixes), (), decision, inputs)


def family(roles: Sequence[str], voters: Sequence[int], ranked: Sequence[str], decisions: Sequence[str],
           inputs: str, max_voters: int, top: int, moa_sizes: Sequence[int], fixed: bool = False,
           plurality_sizes: Sequence[int] = (), by_accuracy: Sequence[str] = (),
           by_cost: Sequence[str] = ()) -> list[Design]:
    """The candidate designs (module docstring), duplicates removed, in a fixed order. A single
    model is its own decision model unless the decision is `fixed`. A plurality vote lists its
    models in each tie order given: `by_accuracy` (most accurate first) and `by_cost` (dearest
    first); the last of the list is asked first."""
    out: dict[Design, None] = {}
    pick = list(ranked[:top])
    orders = [{m: i for i, m in enumerate(o)} for o in (by_accuracy or ranked, by_cost) if o]
    for d in decisions:
        for a in range(1, min(max_voters, len(voters), len(pick)) + 1):
            for combo in itertools.combinations(pick, a):
                out[vote_design(roles, voters[:a], combo, combo[0] if a == 1 and not fixed else d, inputs)] = None
        for k in moa_sizes:
            for models in ([(m,) for m in pick] if k == 1 else [pick[:k]] if k <= len(pick) else []):
                out[moa_design(roles, models, d, inputs)] = None
    if voters:
        for a in plurality_sizes:
            for combo in itertools.combinations(pick, a):
                for rank in orders:
                    out[plurality_design(roles, voters[0], sorted(combo, key=rank.__getitem__), decisions[0], inputs)] = None
    return list(out)


def expressible(policy: Any, builder: Any, q: Any, designs: Sequence[Design]) -> list[bool]:
    """Whether the policy gives each design a finite log-prob (its space contains it)."""
    if not designs:
        return []
    with torch.no_grad():
        batch = builder.batch([q] * len(designs), [d.edges for d in designs])
        out = sample(policy, batch, decision=[d.decision for d in designs], mode="mixture", designs=designs)
    return [bool(torch.isfinite(v)) for v in out.log_prob]


def evaluate(runner: Any, designs: Sequence[Design], questions: Sequence[Any],
             reward: Callable[[Any], float], weights: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Mean accuracy, cost and reward of each design on `questions` (a failed rollout: reward of
    a wrong answer, counted as wrong); `weights` [Q] (`question_weights`): weighted means."""
    traces = runner.run([(d, q) for d in designs for q in questions])
    n, rows = len(questions), []
    for i, d in enumerate(designs):
        ts = traces[i * n:(i + 1) * n]
        if weights is not None:
            w = np.asarray(weights, dtype=float) / float(np.sum(weights))
            rows.append({"design": d.summary(),
                         "accuracy": float(w @ [float(bool(t.correct) and not t.failed) for t in ts]),
                         "cost_usd": float(w @ [float(t.cost_usd) for t in ts]),
                         "reward": float(w @ [float(reward(t)) for t in ts]),
                         "failed": sum(bool(t.failed) for t in ts)})
            continue
        rows.append({"design": d.summary(), "accuracy": sum(bool(t.correct) and not t.failed for t in ts) / n,
                     "cost_usd": sum(float(t.cost_usd) for t in ts) / n,
                     "reward": sum(float(reward(t)) for t in ts) / n,
                     "failed": sum(bool(t.failed) for t in ts)})
    return rows


def component(q: Any) -> str | None:
    """A question's component (`meta["component"]`: the part of a mixed task it belongs to)."""
    return (getattr(q, "meta", None) or {}).get("component")


def by_component(cfg: Config, questions: Sequence[Any]) -> bool:
    """Whether the search weighs these questions per component: `warm_start_weighting: component`
    and at least two components among them (every question carrying one)."""
    comps = [component(q) for q in questions]
    return (cfg.stage1.warm_start_weighting == "component" and all(c is not None for c in comps)
            and len(set(comps)) > 1)


def question_weights(cfg: Config, questions: Sequence[Any]) -> np.ndarray | None:
    """Per question, the weight the search gives it (module docstring: mean 1, each component
    the same total); None where every question weighs the same. Shapes: -> [Q] or None."""
    if not by_component(cfg, questions):
        return None
    return stats.task_mean_weights([str(component(q)) for q in questions])


def first_questions(cfg: Config, questions: Sequence[Any], n: int) -> list[Any]:
    """At most `n` of `questions` (0: all), in their order: the first ones, or, when the search
    weighs per component, round-robin over the components (each takes its next question in turn),
    so that each has min(its count, an equal share)."""
    qs = list(questions)
    if not n or n >= len(qs) or not by_component(cfg, qs):
        return qs[: n or None]
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(qs):
        groups.setdefault(str(component(q)), []).append(i)
    keep: set[int] = set()
    for r in range(max(len(g) for g in groups.values())):
        for g in groups.values():
            if r < len(g) and len(keep) < n:
                keep.add(g[r])
    return [q for i, q in enumerate(qs) if i in keep]


def search_queries(cfg: Config, setup: TrainingSetup) -> tuple[list[Any], str]:
    """The questions the search ranks on (`stage1.warm_start_on`, at most `warm_start_queries`:
    `first_questions`) and how to name them, e.g. "train + val (350)" or, weighed per component,
    "train + val (800; 4 components weighed equally)"."""
    s1 = cfg.stage1
    on = [*setup.train, *setup.val] if s1.warm_start_on == "train_val" else list(setup.train)
    queries = first_questions(cfg, on, s1.warm_start_queries)
    name = f"{'train + val' if s1.warm_start_on == 'train_val' else 'train'} ({len(queries)}"
    if by_component(cfg, queries):
        name += f"; {len({component(q) for q in queries})} components weighed equally"
    return queries, name + ")"


def single_designs(cfg: Config, setup: TrainingSetup, fixed_decision: str | None) -> list[Design]:
    """"single model X" for each pool model (in the pool's order), each its own decision model
    unless the decision is fixed."""
    roles = list(setup.builder.role_names)
    voters = lone_roles(setup.runner.roleset, roles)
    return [vote_design(roles, voters[:1], (m,), fixed_decision or m, cfg.policy.arch.decision_inputs)
            for m in setup.builder.llm_names]


def candidates(cfg: Config, setup: TrainingSetup, singles: Sequence[dict[str, Any]], fixed_decision: str | None,
               probe: Any, known: dict[Design, bool] | None = None) -> list[Design]:
    """The family (module docstring) built from the singles' rows (`evaluate` of `single_designs`
    on the search queries: their reward, accuracy and cost rank the models), minus the designs the
    policy cannot express on the query `probe` (`known`: design -> expressible, read and filled,
    so repeated calls probe each design once)."""
    s1, arch = cfg.stage1, cfg.policy.arch
    roles, models = list(setup.builder.role_names), list(setup.builder.llm_names)
    voters = lone_roles(setup.runner.roleset, roles)
    ranked = [models[i] for i in sorted(range(len(models)),
                                        key=lambda i: (-singles[i]["reward"], singles[i]["cost_usd"], models[i]))]
    by_acc = [models[i] for i in sorted(range(len(models)),
                                        key=lambda i: (-singles[i]["accuracy"], singles[i]["cost_usd"], models[i]))]
    by_cost = [models[i] for i in sorted(range(len(models)), key=lambda i: (-singles[i]["cost_usd"], models[i]))]
    decisions = [fixed_decision] if fixed_decision else list(dict.fromkeys([by_acc[0], ranked[0]]))
    slots = arch.proposer_slots
    moa_sizes = range(2, slots + 1) if slots > 0 else [arch.k_proposers]
    plurality_sizes: Sequence[int] = []
    if arch.plurality:  # a vote of 3 or more (with slots: up to min(slots, the top models))
        top = min(s1.warm_start_models, len(models))
        plurality_sizes = range(3, min(slots, top) + 1) if slots > 0 else [k for k in [arch.k_proposers] if k >= 3]
    cands = family(roles, voters, ranked, decisions, arch.decision_inputs, s1.warm_start_voters, s1.warm_start_models,
                   moa_sizes, fixed=bool(fixed_decision), plurality_sizes=plurality_sizes, by_accuracy=by_acc,
                   by_cost=by_cost)
    known = {} if known is None else known
    fresh = [d for d in cands if d not in known]
    known.update(zip(fresh, expressible(setup.policy, setup.builder, probe, fresh)))
    return [d for d in cands if known[d]]


def search(cfg: Config, setup: TrainingSetup, reward: Callable[[Any], float], fixed_decision: str | None) -> SearchResult:
    """Run the family on the search queries and return the best design (module docstring)."""
    queries, where = search_queries(cfg, setup)
    weights = question_weights(cfg, queries)
    lone = single_designs(cfg, setup, fixed_decision)
    singles = evaluate(setup.runner, lone, queries, reward, weights)
    cands = candidates(cfg, setup, singles, fixed_decision, queries[0])
    if not cands:
        raise ValueError("stage1.warm_start=search: the policy can express none of the simple designs "
                         "(a vote needs allow_skip and proposer_slots >= 1; a mixture needs k_proposers <= the pool)")
    known = dict(zip(lone, singles))  # the family repeats the singles: run each design once
    fresh = [d for d in cands if d not in known]
    known.update(zip(fresh, evaluate(setup.runner, fresh, queries, reward, weights)))
    rows = [dict(known[d]) for d in cands]
    best = min(range(len(cands)), key=lambda i: (-rows[i]["reward"], rows[i]["cost_usd"], rows[i]["design"]))
    for i, r in enumerate(rows):
        r["decision"] = cands[i].decision
    rows = sorted(rows, key=lambda r: (-r["reward"], r["cost_usd"], r["design"]))
    _log.info("design search: %d designs on %d queries; best %s (reward %.4f, accuracy %.3f)",
              len(cands), len(queries), cands[best].summary(), rows[0]["reward"], rows[0]["accuracy"])
    return SearchResult(cands[best], cands[best].decision, rows, where)


def resolve(cfg: Config, setup: TrainingSetup, reward: Callable[[Any], float], fixed_decision: str | None) -> SearchResult:
    """The run's search result: `design_search.json` when the run folder has it, else searched
    (and written) now."""
    path = Path(cfg.run.dir) / "design_search.json"
    if path.exists():
        data = json.loads(path.read_text())
        return SearchResult(Design.from_dict(data["design"]), data["decision"], data["rows"], data.get("queries", ""))

    result = search(cfg, setup, reward, fixed_decision)
    atomic_write_text(path, dumps(result.to_dict(), indent=2, default=float) + "\n")
    return result


def clone(policy: Any, builder: Any, design: Design | Sequence[Design], questions: Sequence[Any],
          dags: Sequence[Any], steps: int, cost_lambdas: Sequence[float] | None = None) -> dict[str, float]:
    """Behaviour-clone `design`'s mixtures into the policy (module docstring); a list gives each
    question its own design (the per-cluster warm start; one decision model for all). With
    `cost_lambdas` (a cost-conditioned policy) question g is seen at λ = cost_lambdas[g] and the
    designs may differ in their decision model (it is the searched one of each λ). It stops once
    the greedy policy chooses the design on `CLONE_MATCH` of the queries — with `cost_lambdas`, on
    that share at every λ (an overall share would let one λ's design, typically the range's end
    where the searched design changes least from its neighbour's, stay cloned on far fewer). Returns
    {steps, match (share of queries whose greedy mixtures equal their design's; with
    `cost_lambdas` the least share over the λ), nll}."""
    qs = list(questions)
    design = _per_query(design, len(qs), mixed_decisions=cost_lambdas is not None)
    edges = [tuple(dags[i % len(dags)]) for i in range(len(qs))]
    batch = builder.batch(qs, edges, cost_lambdas)
    opt = torch.optim.Adam(policy.parameters(), lr=CLONE_LR)
    was_training = policy.training
    policy.train()
    step, nll, match = 0, float("nan"), _match(policy, batch, design, edges, cost_lambdas)
    while step < steps and match < CLONE_MATCH:
        loss = bc_loss(policy, batch, design, edges)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step, nll = step + 1, float(loss.detach())
        if step % 5 == 0 or step == steps:
            match = _match(policy, batch, design, edges, cost_lambdas)
    policy.train(was_training)
    return {"steps": step, "match": match, "nll": nll}


def bc_loss(policy: Any, batch: Any, design: Design | Sequence[Design], dags: Sequence[Any]) -> torch.Tensor:
    """Mean −log π(design's mixtures | query, DAG) over a batch built on `dags` (one per graph;
    `design`: one for all, or one per graph): the clone's loss, and stage 1's pull towards the
    searched design(s) (`warm_start_bc`)."""
    designs = _per_query(design, len(dags), mixed_decisions=True)
    targets = [replace(d, edges=tuple(e)) for d, e in zip(designs, dags)]
    return -sample(policy, batch, decision=[d.decision for d in designs], mode="mixture",
                   designs=targets).log_prob.mean()


def _per_query(design: Design | Sequence[Design], n: int, mixed_decisions: bool = False) -> list[Design]:
    """One design per query; they must share the decision model (the policy has one), unless
    `mixed_decisions` (a cost-conditioned policy: one decision model per λ)."""
    designs = [design] * n if isinstance(design, Design) else list(design)
    if len(designs) != n:
        raise ValueError(f"{len(designs)} warm-start designs for {n} queries")
    if not mixed_decisions and len({d.decision for d in designs}) > 1:
        raise ValueError("warm-start designs must share one decision model, got "
                         f"{sorted({d.decision for d in designs})}")
    return designs


@torch.no_grad()
def _match(policy: Any, batch: Any, design: Sequence[Design], edges: Sequence[Any],
           groups: Sequence[float] | None = None) -> float:
    """Share of queries whose greedy mixtures equal their design's; with `groups` (one key per
    query: its λ) the least such share over the groups."""
    was_training = policy.training
    policy.eval()
    out = sample(policy, batch, decision=[d.decision for d in design], mode="mixture", dags=list(edges), greedy=True)
    policy.train(was_training)
    return least_share([d.mixtures == t.mixtures for d, t in zip(out.designs, design)], groups)


def least_share(hits: Sequence[bool], groups: Sequence[Any] | None = None) -> float:
    """The share of `hits` that are true; with `groups` (one key per hit) the least share over
    the groups; 0 without hits."""
    keys = list(groups) if groups is not None else [None] * len(hits)
    if len(keys) != len(hits):
        raise ValueError(f"{len(keys)} group keys for {len(hits)} hits")
    shares = [sum(bool(h) for h, k in zip(hits, keys) if k == g) / keys.count(g) for g in dict.fromkeys(keys)]
    return min(shares) if shares else 0.0
