"""Cost conditioning: one policy for every cost weight λ of a range (`reward.cost_lambda_range`).

The policy sees λ as one more query feature, `lambda_feature(λ)`: log(1 + λ) scaled so that the
range's ends are 0 and 1 (λ outside the range is clamped to it: the policy was never trained
there). Everything else a request can say about cost is turned into a λ here:

- `cost_lambda=λ`: that λ (clamped into the range);
- `max_cost_usd=X`: the most accurate point of the bundle's `CostGrid` whose measured cost per
  query is at most X (ties: the cheaper); none fits: the cheapest point (`CostPick.fits` False);
- neither: the grid's `default` λ (the run's `reward.cost_lambda`, clamped).

`CostGrid` is what a cost-conditioned bundle records (`policy.json` field `cost`): the range,
the default λ, and per grid point (λ log-spaced over the range) the decision model of the design
searched at that λ and the policy's measured accuracy and $/query on the run's validation
questions (`train/pipeline.py`); `designs` maps each design the policy chose there (its summary)
to its mean measured $/query, the expected cost `--target-cost-per-query` plans with.

Every number that enters a budget goes through `check_cost_number` (finite, >= 0; a `UserError`
naming the field otherwise): the Python API, the HTTP body and header, the CLI and the config.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hieramas_gnn.errors import UserError
from hieramas_gnn.guards import finite_number


def check_cost_number(value: Any, name: str, *, positive: bool = False) -> float:
    """`value` (a number, or a number's text: an HTTP header) as a float when it is finite and
    >= 0 (> 0 with `positive`); else a `UserError` naming `name` (`guards.finite_number`)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise UserError(f"{name}: must be a number, got {value[:40]!r}") from None
    value = finite_number(value, name)
    if positive and value == 0:
        raise UserError(f"{name}: must be > 0, got 0")
    return value


def log_grid(lo: float, hi: float, n: int) -> list[float]:
    """`n` λ points log-spaced from `lo` to `hi` (both included), rounded to 4 significant digits."""
    if n < 2:
        return [float(lo)]
    a, b = math.log(lo), math.log(hi)
    points = [float(f"{math.exp(a + (b - a) * i / (n - 1)):.4g}") for i in range(n)]
    points[0], points[-1] = float(lo), float(hi)
    return points


@dataclass(frozen=True)
class CostRange:
    """The λ range a policy was trained over: the feature's scale."""

    lo: float
    hi: float

    def clamp(self, cost_lambda: float) -> float:
        return min(max(float(cost_lambda), self.lo), self.hi)

    def feature(self, cost_lambda: float) -> float:
        """log(1 + λ) of the clamped λ, scaled to [0, 1] over the range."""
        a, b = math.log1p(self.lo), math.log1p(self.hi)
        return (math.log1p(self.clamp(cost_lambda)) - a) / (b - a)


@dataclass(frozen=True)
class CostPick:
    """The λ a request runs at and why: `source` is `cost_lambda`, `max_cost_usd` or `default`;
    `expected_cost_usd` the grid point's measured $/query (None: off the grid); `fits` False when
    no grid point was within `max_cost_usd` (the cheapest was taken)."""

    cost_lambda: float
    source: str
    expected_cost_usd: float | None = None
    fits: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"cost_lambda": self.cost_lambda, "source": self.source,
                "expected_cost_usd": self.expected_cost_usd, "fits": self.fits}


@dataclass
class CostGrid:
    """A cost-conditioned bundle's λ range, default λ and grid table (module docstring)."""

    lo: float
    hi: float
    default: float
    points: list[dict[str, Any]]
    """Per grid λ (ascending): cost_lambda, decision, design (the searched one), and once measured
    accuracy, cost_usd (the policy's, on the validation questions)."""
    shape: str = "exp"
    designs: dict[str, float] = field(default_factory=dict)
    """Design summary -> its mean measured $/query on the validation questions."""

    @property
    def range(self) -> CostRange:
        return CostRange(self.lo, self.hi)

    @property
    def lambdas(self) -> list[float]:
        return [float(p["cost_lambda"]) for p in self.points]

    def nearest(self, cost_lambda: float) -> dict[str, Any]:
        """The grid point nearest to λ in log(1 + λ)."""
        x = math.log1p(self.range.clamp(cost_lambda))
        return min(self.points, key=lambda p: abs(math.log1p(float(p["cost_lambda"])) - x))

    def decision(self, cost_lambda: float) -> str:
        """The decision model at λ: that of the design searched at the nearest grid point."""
        return str(self.nearest(cost_lambda)["decision"])

    def pick(self, cost_lambda: Any = None, max_cost_usd: Any = None, *, where: str = "") -> CostPick:
        """The λ of a request (module docstring); `where` prefixes the field names in errors
        (e.g. "request body field ")."""
        if cost_lambda is not None and max_cost_usd is not None:
            raise UserError(f"give {where}cost_lambda or {where}max_cost_usd, not both")
        if cost_lambda is not None:
            lam = check_cost_number(cost_lambda, f"{where}cost_lambda")
            return CostPick(self.range.clamp(lam), "cost_lambda", self._cost_at(lam))
        if max_cost_usd is not None:
            cap = check_cost_number(max_cost_usd, f"{where}max_cost_usd")
            return self.for_cost(cap)
        return CostPick(self.range.clamp(self.default), "default", self._cost_at(self.default))

    def for_cost(self, max_cost_usd: float) -> CostPick:
        """The most accurate measured grid point with cost <= `max_cost_usd` (ties: cheaper, then
        the larger λ); none: the cheapest point, `fits` False."""
        measured = [p for p in self.points if p.get("cost_usd") is not None]
        if not measured:
            raise UserError("this policy bundle records no measured cost per grid point; max_cost_usd needs one "
                            "(re-export it with this version of `hieramas train`)")
        fit = [p for p in measured if float(p["cost_usd"]) <= max_cost_usd]
        if fit:
            best = min(fit, key=lambda p: (-float(p.get("accuracy") or 0.0), float(p["cost_usd"]), -float(p["cost_lambda"])))
            return CostPick(float(best["cost_lambda"]), "max_cost_usd", float(best["cost_usd"]), True)
        cheap = min(measured, key=lambda p: (float(p["cost_usd"]), -float(p["cost_lambda"])))
        return CostPick(float(cheap["cost_lambda"]), "max_cost_usd", float(cheap["cost_usd"]), False)

    def _cost_at(self, cost_lambda: float) -> float | None:
        for p in self.points:
            if math.isclose(float(p["cost_lambda"]), self.range.clamp(cost_lambda), rel_tol=1e-9):
                return None if p.get("cost_usd") is None else float(p["cost_usd"])
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"range": [self.lo, self.hi], "default": self.default, "shape": self.shape,
                "points": [dict(p) for p in self.points], "designs": dict(self.designs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "cost") -> CostGrid:
        """From a bundle manifest's `cost` field (UserError naming what is wrong)."""
        try:
            lo, hi = (check_cost_number(v, f"{where}.range") for v in data["range"])
            default = check_cost_number(data["default"], f"{where}.default")
            points = [dict(p) for p in data["points"]]
            for i, p in enumerate(points):
                p["cost_lambda"] = check_cost_number(p["cost_lambda"], f"{where}.points[{i}].cost_lambda")
                if not isinstance(p.get("decision"), str) or not p["decision"]:
                    raise UserError(f"{where}.points[{i}].decision must name a model")
                for key in ("cost_usd", "accuracy"):
                    if p.get(key) is not None:
                        p[key] = check_cost_number(p[key], f"{where}.points[{i}].{key}")
            designs = {str(k): check_cost_number(v, f"{where}.designs[{k!r}]")
                       for k, v in dict(data.get("designs") or {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where}: malformed cost grid ({type(exc).__name__}: {exc})") from None
        if not 0 < lo < hi or not points:
            raise UserError(f"{where}: the range must be 0 < lo < hi and the grid non-empty")
        return cls(lo, hi, default, sorted(points, key=lambda p: p["cost_lambda"]), str(data.get("shape", "exp")),
                   designs)


def per_query(values: Any, n: int, name: str = "cost_lambda") -> list[Any]:
    """One value per query: a scalar (or None) repeated, or a sequence of exactly `n`."""
    if values is None or isinstance(values, int | float | str):
        return [values] * n
    values = list(values) if isinstance(values, Sequence) else [values] * n
    if len(values) != n:
        raise UserError(f"{len(values)} values of {name} for {n} questions")
    return values


@dataclass
class TargetPlan:
    """`plan_target_cost`'s answer: per query the grid index it runs at, the planned mean expected
    $/query, the two grid points mixed (indices; equal when one point is used) and whether the
    target could be met (False: below the cheapest point, which every query then gets)."""

    assign: list[int]
    planned_cost_usd: float
    low: int
    high: int
    feasible: bool

    def to_dict(self, lambdas: Sequence[float]) -> dict[str, Any]:
        shares = {f"{lambdas[k]:g}": self.assign.count(k) / max(len(self.assign), 1) for k in sorted(set(self.assign))}
        return {"planned_cost_usd": self.planned_cost_usd, "feasible": self.feasible,
                "mixed": [lambdas[self.low], lambdas[self.high]], "share_per_cost_lambda": shares}


def plan_target_cost(expected: Sequence[Sequence[float]], accuracy: Sequence[float], target: float,
                     keys: Sequence[str]) -> TargetPlan:
    """Per query, a grid point whose designs' mean expected cost over the queries meets `target`.

    expected[k][q]: the expected $/query of query q's design at grid point k; accuracy[k]: the
    point's measured accuracy. The frontier is the upper hull of (mean expected cost, accuracy)
    over the points; the target falls between two neighbouring frontier points a (cheaper, mean
    <= target) and b. Every query starts at a and queries move to b in the order of their extra
    expected cost (smallest first; ties by a hash of `keys`, e.g. the question ids) while the planned mean
    stays <= target: where the policy's design at b costs the same as at a for a query, the move is
    free (query-dependent spending); where every query's designs are alike, it is a mix of the two
    frontier points in the proportion that meets the target. Equal extra costs go in the order of a
    hash of their keys (CRC-32), not of the keys: ids in file order (`math_l5/12`) would make the
    mix a slice of the file, whose parts differ in difficulty and domain. A target at or above the most
    accurate point's mean: every query there; below the cheapest point's: every query at the
    cheapest, `feasible` False."""
    import numpy as np

    e = np.asarray(expected, dtype=float)  # [K, Q]
    k_n, q_n = e.shape
    mean = e.mean(1)  # [K]
    acc = np.asarray(accuracy, dtype=float)
    order = sorted(range(k_n), key=lambda k: (mean[k], -acc[k]))
    front: list[int] = []
    for k in order:  # cheapest first; keep a point only if it is more accurate than every cheaper one kept
        if not front or acc[k] > acc[front[-1]] + 1e-12:
            front.append(k)
    cheapest = front[0]
    if mean[cheapest] > target + 1e-15:
        return TargetPlan([cheapest] * q_n, float(mean[cheapest]), cheapest, cheapest, False)
    a = max((k for k in front if mean[k] <= target + 1e-15), key=lambda k: mean[k])
    later = [k for k in front if mean[k] > mean[a]]
    if not later:
        return TargetPlan([a] * q_n, float(mean[a]), a, a, True)
    b = later[0]
    assign = [a] * q_n
    spend = float(e[a].sum())
    extra = e[b] - e[a]
    for q in sorted(range(q_n), key=lambda q: (extra[q], zlib.crc32(str(keys[q]).encode()), keys[q])):
        if spend + extra[q] <= target * q_n + 1e-15:
            assign[q] = b
            spend += float(extra[q])
    return TargetPlan(assign, spend / q_n, a, b, True)
