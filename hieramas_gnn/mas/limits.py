"""Per-request limits on a design's LLM calls and sequential rounds, and the rule that fits a
design into them.

`RequestLimits(max_calls, max_rounds)`: each None (no limit) or an int >= 1.

- **calls** (`design_calls`): the most LLM calls one execution can make — every active role's
  `Mixture.calls()` (k proposers, plus the synthesizer when k > 1 and it is not the plurality
  synthesizer), plus the decision call. The decision call is left out only for a design that
  answers without one: `Design.lone()` on a role whose answer is final (`final_roles`: the
  roleset's gradable roles; unknown: the decision call is counted). A `decision_inputs="all"`
  design that may skip the decision on unanimous answers counts it (the most it can make).
- **rounds** (`design_rounds`): the longest chain of calls that wait on one another — the calls
  of one round run concurrently. A role takes 1 round with one proposer, 2 with k > 1 and a
  synthesizer (its proposers together, then the synthesizer), and `vote_rounds(k)` with the
  plurality synthesizer (its proposers are asked in batches until the vote is settled,
  `mas.supernode.ask_until_settled`; the worst case over all answers). A role starts when its
  last active predecessor (`Design.active_dag()`) has finished; the design's rounds are the
  longest such chain plus 1 for the decision call (0 where `design_calls` leaves it out).
  The decision model alone (every role skipped) is 1 call in 1 round: every limit fits it.

`fit_design(design, limits, final_roles)` makes a design that fits from one that does not,
by removing, never adding (`policy.choose.DesignChooser` applies it to the route's own choice
when none of its candidate designs fits):

1. rounds: each active role, in topological order, keeps only the incoming edges from
   predecessors that finish early enough for it to end within the rounds left before the
   decision (the others are cut: the role runs without those inputs); a role that is too slow
   on its own (a synthesized mixture: 2 rounds; a plurality vote of k: `vote_rounds(k)`) keeps
   its first proposers — the greedy mixture's most likely ones — as few as it takes (one
   proposer: 1 round); a role that cannot start in time is skipped;
2. calls: while over the limit, the largest mixture (ties: the latest role) drops its last
   (least likely) proposer; once every active role has one proposer, the active role latest in
   topological order is skipped;
3. every role skipped: the decision model alone.

Each step only removes calls or shortens chains, so the result always fits.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.design import PLURALITY, Design, Mixture
from hieramas_gnn.mas.supernode import more_to_ask

LIMIT_FIELDS = ("max_calls", "max_rounds")


def check_limit(value: Any, name: str, *, text: bool = False) -> int | None:
    """`value` as an int >= 1, None for None; else a `UserError` naming `name`. Bools, floats
    (even 2.0), NaN and strings are refused, never coerced — except, with `text` (an HTTP header,
    a CLI flag), the decimal digits of a whole number."""
    if value is None:
        return None
    if isinstance(value, str) and not text:
        raise UserError(f"{name}: must be a whole number >= 1, got the string {value[:40]!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise UserError(f"{name}: must be a whole number >= 1, got {value[:40]!r}")
        value = int(text)
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
        raise UserError(f"{name}: must be a whole number >= 1, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise UserError(f"{name}: must be a whole number >= 1, got {value!r}") from None
    if value < 1:
        raise UserError(f"{name}: must be >= 1, got {value}")
    return value


@dataclass(frozen=True)
class RequestLimits:
    """The limits of one request (module docstring); `final_roles`: the roles whose lone answer
    is final (the roleset's gradable roles; None: the decision call is always counted)."""

    max_calls: int | None = None
    max_rounds: int | None = None
    final_roles: frozenset[str] | None = None

    @classmethod
    def make(cls, max_calls: Any = None, max_rounds: Any = None, *, where: str = "",
             final_roles: Collection[str] | None = None) -> RequestLimits:
        """Checked limits (`check_limit`, field names prefixed with `where`)."""
        return cls(check_limit(max_calls, f"{where}max_calls"), check_limit(max_rounds, f"{where}max_rounds"),
                   None if final_roles is None else frozenset(final_roles))

    @property
    def active(self) -> bool:
        return self.max_calls is not None or self.max_rounds is not None

    def fits(self, design: Design) -> bool:
        return ((self.max_calls is None or design_calls(design, self.final_roles) <= self.max_calls)
                and (self.max_rounds is None or design_rounds(design, self.final_roles) <= self.max_rounds))

    def to_dict(self) -> dict[str, int | None]:
        return {"max_calls": self.max_calls, "max_rounds": self.max_rounds}


# ------------------------------------------------------------------------------- measures
@cache
def vote_rounds(k: int) -> int:
    """The most rounds a plurality vote of `k` proposers takes (`ask_until_settled`), over every
    way its answers can come out. Only the answer counts matter to `more_to_ask` (the leader's
    count, the best rival's, the unasked), so the search runs over count multisets."""
    if k <= 1:
        return 1

    def batches(counts: tuple[int, ...], n: int) -> set[tuple[int, ...]]:
        states = {counts}
        for _ in range(n):  # each new answer: unparsed, one more for an answer seen, or a new answer
            nxt: set[tuple[int, ...]] = set()
            for c in states:
                nxt.add(c)
                nxt.add(tuple(sorted((*c, 1), reverse=True)))
                for j in set(range(len(c))):
                    nxt.add(tuple(sorted((*c[:j], c[j] + 1, *c[j + 1:]), reverse=True)))
            states = nxt
        return states

    @cache
    def worst(counts: tuple[int, ...], asked: int) -> int:
        answers = [a for a, c in enumerate(counts) for _ in range(c)] + [None] * (asked - sum(counts))
        n = more_to_ask(answers, k)
        if n == 0:
            return 0
        return 1 + max(worst(c, asked + n) for c in batches(counts, n))

    return worst((), 0)


def mixture_rounds(mixture: Mixture) -> int:
    """Rounds one role takes (module docstring)."""
    if mixture.k == 1:
        return 1
    return vote_rounds(mixture.k) if mixture.plurality else 2


def decision_free(design: Design, final_roles: Collection[str] | None = None) -> bool:
    """True when the design answers without a decision call: one lone role whose answer is final."""
    lone = design.lone()
    return lone is not None and final_roles is not None and design.roles[lone] in final_roles


def design_calls(design: Design, final_roles: Collection[str] | None = None) -> int:
    """The most LLM calls one execution of `design` makes (module docstring)."""
    roles = sum(m.calls() for m in design.mixtures if m is not None)
    return roles + (0 if decision_free(design, final_roles) else 1)


def finish_rounds(design: Design) -> dict[int, int]:
    """Per active role, the round its last call ends in (1-based), along the active DAG."""
    dag = design.active_dag()
    finish: dict[int, int] = {}
    for i in design.topological_order():
        if i in dag:
            finish[i] = max((finish[p] for p in dag.predecessors(i)), default=0) + mixture_rounds(design.mixtures[i])
    return finish


def design_rounds(design: Design, final_roles: Collection[str] | None = None) -> int:
    """The sequential rounds of calls of `design`, decision included (module docstring)."""
    roles = max(finish_rounds(design).values(), default=0)
    return roles + (0 if decision_free(design, final_roles) else 1)


# ------------------------------------------------------------------------------- fitting
def decision_alone(design: Design) -> Design:
    """The same roles, every one skipped: the decision model answers alone (1 call, 1 round)."""
    return replace(design, mixtures=(None,) * design.n, edges=())


def _first(mixture: Mixture, k: int) -> Mixture:
    """The mixture's first `k` proposers (a single proposer is its own synthesizer)."""
    props = mixture.proposers[:k]
    return Mixture(props, props[0] if k == 1 else mixture.synthesizer)


def _fit_rounds(design: Design, max_rounds: int, final_roles: Collection[str] | None) -> Design:
    if design_rounds(design, final_roles) <= max_rounds:
        return design
    # rounds left before the decision call (none to leave for a design that answers without one;
    # shrinking a lone role keeps it lone, skipping roles only shortens the rest)
    budget = max_rounds - (0 if decision_free(design, final_roles) else 1)
    dag = design.active_dag()
    mixtures = list(design.mixtures)
    finish: dict[int, int] = {}
    edges: list[tuple[int, int]] = []
    for i in design.topological_order():
        if i not in dag:
            continue
        mix = mixtures[i]
        while mix.k > 1 and mixture_rounds(mix) > budget:
            mix = _first(mix, mix.k - 1)
        if mixture_rounds(mix) > budget:  # no round left for it at all
            mixtures[i] = None
            continue
        mixtures[i] = mix
        keep = [p for p in sorted(dag.predecessors(i)) if p in finish and finish[p] + mixture_rounds(mix) <= budget]
        edges.extend((p, i) for p in keep)
        finish[i] = max((finish[p] for p in keep), default=0) + mixture_rounds(mix)
    return replace(design, mixtures=tuple(mixtures), edges=tuple(edges))


def _fit_calls(design: Design, max_calls: int, final_roles: Collection[str] | None) -> Design:
    order = design.topological_order()
    while design_calls(design, final_roles) > max_calls and design.active():
        active = design.active()
        mixtures = list(design.mixtures)
        big = max(active, key=lambda i: (mixtures[i].k, order.index(i)))
        if mixtures[big].k > 1:
            mixtures[big] = _first(mixtures[big], mixtures[big].k - 1)
        else:
            mixtures[max(active, key=order.index)] = None
        design = replace(design, mixtures=tuple(mixtures))
    return design


def fit_design(design: Design, limits: RequestLimits) -> Design:
    """A design within `limits` made from `design` by the rule of the module docstring (`design`
    itself when it fits)."""
    if limits.fits(design):
        return design
    final = limits.final_roles
    if limits.max_rounds is not None:
        design = _fit_rounds(design, limits.max_rounds, final)
    if limits.max_calls is not None:
        design = _fit_calls(design, limits.max_calls, final)
    if not design.active():
        design = decision_alone(design)
    if not limits.fits(design):  # cannot happen (each step only removes); never serve a design that does not fit
        design = decision_alone(design)
    return design


__all__ = ["LIMIT_FIELDS", "PLURALITY", "RequestLimits", "check_limit", "decision_alone", "design_calls",
           "design_rounds", "fit_design", "mixture_rounds", "vote_rounds"]
