"""`sim/<model>`: the simulator backend calibrated on real outcomes (its litellm provider is
`backends.providers.SimProvider`).

One call, given its metadata (task, question id, role, position, context answers, sample index):

1. The model's own answer. P(correct) = sigmoid(ability[domain] + role_skill[role] - b), with b
   the item's fitted difficulty (shared by every model, so errors are correlated). A wrong
   answer is drawn from the real wrong answers models gave on that item (attractive
   distractors), else from a deterministic per-item distractor distribution. Code tasks answer
   with a real program: the reference solution, or a mutated one (scoring runs the sandbox).
2. With context answers (synthesizer, decision, downstream node), the behaviour model
   (`behaviour.py`) picks the output among the context answers and the own answer, with the
   model's expected accuracy on the domain (+ synth_skill) as its strength.
3. The reply text is `task.render_answer(answer, q)`; completion tokens come from a lognormal
   reply length fitted on real replies (chars / 4); latency is lognormal (or fixed, or off) and
   really awaited, so an executor's concurrency is real.

Everything random is drawn from generators hashed from (seed, model, question, role,
position, sample index, context), so a call is reproducible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieramas_gnn.backends.behaviour import (
    BehaviourConfig,
    choose,
    load_behaviour,
    rng_for,
)
from hieramas_gnn.backends.simcode import mutate_program
from hieramas_gnn.backends.simdata import SimFigures, SimModelSpec
from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.types import SimSettings
from hieramas_gnn.tasks import get_task

LETTERS = "ABCDEFGHIJ"


@dataclass
class SimReply:
    """What one simulated call returns."""

    text: str
    answer: str | None
    own_answer: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _answer_kind(task: Any, q: Any) -> str:
    kind = getattr(task, "answer_kind", "")
    return q.meta.get("answer_kind", kind) if kind == "mixed" else kind


def distractors(q: Any, kind: str) -> tuple[list[str], np.ndarray]:
    """A deterministic per-item distribution over wrong answers (same for every model)."""
    gold = str(q.gold)
    if kind == "choice":
        n = len(q.meta.get("choices") or []) or 4
        cands = [c for c in LETTERS[:n] if c != gold.upper()]
    elif kind == "number":
        try:
            g = float(gold.replace(",", ""))
            vals = [g + 1, g - 1, g * 2, g + 10, g / 2 if g % 2 == 0 else g - 10]
            cands = [str(int(v)) if float(v).is_integer() else str(v) for v in vals]
        except ValueError:
            cands = [f"{gold}0", f"{gold}1"]
    else:  # latex and anything else: a visibly different expression
        cands = [f"{gold}+1", f"2({gold})", f"-({gold})"]
    cands = list(dict.fromkeys(c for c in cands if c != gold))
    # One attractive distractor per item: weights from a hash-seeded Dirichlet(0.7).
    w = rng_for("distractors", q.id).dirichlet(np.full(len(cands), 0.7))
    return cands, w


class Simulator:
    """The pure part of the backend: figures + config -> replies (no litellm involved)."""

    def __init__(self, settings: SimSettings | None = None, figures: SimFigures | None = None,
                 behaviour: BehaviourConfig | None = None) -> None:
        """settings: seed, latency and behaviour file (`llm.types.SimSettings`, what a client
        sends with each call); behaviour: parameters that override the file's (tests)."""
        self.settings = settings or SimSettings()
        self.figures = figures or SimFigures()
        if behaviour is None and self.settings.behaviour:  # read now: a bad file is named at once
            behaviour = load_behaviour(self.settings.behaviour, seed=self.settings.seed)
        self._specs: dict[str, SimModelSpec] = {}
        self._inline: dict[str, SimModelSpec] = {}
        self._wrong_cache: dict[tuple[str, str], tuple[list[str], np.ndarray]] = {}
        self._strength_cache: dict[tuple[float, str, float], float] = {}
        self._behaviour = behaviour

    @property
    def behaviour(self) -> BehaviourConfig:
        if self._behaviour is None:
            self._behaviour = load_behaviour(seed=self.settings.seed)
        return self._behaviour

    def warm(self) -> None:
        """Load the figures every call reads (catalogue, item difficulties, wrong answers,
        behaviour) now, so the first calls do not stall the event loop for them (~0.6 s, which
        tripped short per-call timeouts of every call in flight)."""
        self.figures.catalogue, self.figures._items, self.figures.wrong  # noqa: B018
        self.behaviour  # noqa: B018

    def register(self, spec: SimModelSpec) -> None:
        """Add a model defined outside the catalogue (e.g. in a pool YAML)."""
        self._specs[spec.name] = spec

    def spec(self, name: str, inline: dict | None = None) -> SimModelSpec:
        if inline:
            key = json.dumps([name, inline], sort_keys=True, default=str)
            if key not in self._inline:
                self._inline[key] = self.figures.make_spec(name, dict(inline), "pool sim_model")
            return self._inline[key]
        if name in self._specs:
            return self._specs[name]
        if name in self.figures.catalogue:
            return self.figures.catalogue[name]
        known = sorted({*self._specs, *self.figures.catalogue})
        raise UserError(f"unknown sim model {name!r} (known: {', '.join(known)}; or define it in the "
                        f"pool under extra.litellm_params.sim_model)")

    def ability(self, spec: SimModelSpec, q: Any, task: Any, role: str | None) -> float:
        base = spec.ability_for(str(q.meta.get("domain", "")), q.task, getattr(task, "family", ""))
        return base + float(spec.role_skill.get(role or "", 0.0))

    def strength(self, theta: float, domain: str, synth_skill: float) -> float:
        """Expected accuracy on the domain at this ability (the behaviour model's strength);
        memoised per (theta, domain, synth_skill): the figures do not change under a simulator."""
        key = (theta, domain, synth_skill)
        out = self._strength_cache.get(key)
        if out is None:
            pool = self.figures.strength_pool(domain)
            b = pool if len(pool) else np.array([0.0])
            out = float(np.mean(1.0 / (1.0 + np.exp(-(theta + synth_skill - b)))))
            if len(self._strength_cache) >= 1 << 14:
                self._strength_cache.clear()
            self._strength_cache[key] = out
        return out

    def own_answer(self, spec: SimModelSpec, q: Any, task: Any, role: str | None,
                   sample_index: int) -> tuple[str, bool]:
        """The model's independent answer to `q` and whether it is correct."""
        kind = _answer_kind(task, q)
        rng = rng_for(self.settings.seed, "own", spec.name, q.id, role, sample_index)
        b = self.figures.difficulty(q.id, str(q.meta.get("domain", "")), q.meta, q.task)
        p = _sigmoid(self.ability(spec, q, task, role) - b)
        correct = bool(rng.random() < p)
        if kind == "code":
            return (str(q.gold) if correct else mutate_program(str(q.gold), rng)), correct
        if correct:
            return str(q.gold), True
        answers, weights = self._wrong_answers(task, q, kind)
        return answers[int(rng.choice(len(answers), p=weights / weights.sum()))], False

    def _wrong_answers(self, task: Any, q: Any, kind: str) -> tuple[list[str], np.ndarray]:
        """The item's real wrong answers (those the task's own grader also calls wrong), else
        its deterministic distractors. Cached per (task, question): grading can be slow (sympy)."""
        key = (q.task, q.id)
        if key not in self._wrong_cache:
            answers, weights = self.figures.wrong.get(q.id) or ([], np.array([]))
            keep = [i for i, a in enumerate(answers) if not task.is_correct(a, q)]
            self._wrong_cache[key] = (([answers[i] for i in keep], np.asarray(weights)[keep]) if keep
                                      else distractors(q, kind))
        return self._wrong_cache[key]

    def reply(self, model: str, meta: dict[str, Any], prompt_chars: int,
              inline: dict | None = None) -> SimReply:
        """Simulate one call (see the module docstring)."""
        spec = self.spec(model, inline)
        for key in ("task", "question_id"):
            if not meta.get(key):
                raise UserError(f"sim/{model}: call metadata lacks {key!r} (the runtime must pass "
                                f"task and question_id)")
        task = get_task(meta["task"])
        q = task.get(meta["question_id"])
        role, sample_index = meta.get("role"), int(meta.get("sample_index", 0))
        own, _ = self.own_answer(spec, q, task, role, sample_index)
        if _answer_kind(task, q) != "code":  # normalise like the context answers (`$1,200` -> `1200`)
            own = task.extract(task.render_answer(own, q), q) or own
        context = [a for a in (meta.get("context_answers") or [])]
        answer = own
        if any(a is not None for a in context):
            # one draw per (model, question, sample): the model's readings are coupled (`choose`)
            rng = rng_for(self.settings.seed, "behaviour", spec.name, q.id, sample_index)
            theta = self.ability(spec, q, task, role)
            s = self.strength(theta, str(q.meta.get("domain", "")), spec.synth_skill)
            judge = _code_judge(q) if _answer_kind(task, q) == "code" else (lambda a: task.is_correct(a, q))
            answer = choose(own, context, judge, s, self.behaviour, rng)
        text = task.render_answer(answer, q) if answer is not None else ""
        rng = rng_for(self.settings.seed, "length", spec.name, q.id, role, sample_index)
        chars = max(len(text), float(np.exp(np.log(max(spec.median_chars, 1.0))
                                            + spec.chars_log_sd * rng.standard_normal())))
        return SimReply(text=text, answer=answer, own_answer=own, prompt_tokens=max(1, prompt_chars // 4),
                        completion_tokens=max(1, int(chars // 4)), latency_ms=self.latency_ms(spec, rng))

    def latency_ms(self, spec: SimModelSpec, rng: np.random.Generator) -> float:
        if self.settings.latency == "off":
            return 0.0
        if self.settings.latency == "fixed":
            return float(self.settings.fixed_latency_ms)
        return float(spec.latency_ms * np.exp(spec.latency_log_sd * rng.standard_normal()))


def _code_judge(q: Any):
    """Programs are judged by identity with the reference (the sim only emits those two kinds)."""
    ref = "".join(str(q.gold).split())
    return lambda a: a is not None and "".join(str(a).split()) == ref
