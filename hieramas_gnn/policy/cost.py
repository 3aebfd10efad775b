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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hieramas_gnn.errors import UserError


def check_cost_number(value: Any, name: str, *, positive: bool = False) -> float:
    """`value` as a float when it is a finite number >= 0 (> 0 with `positive`); else a
    `UserError` naming `name` (NaN, inf, negative, a bool or a non-number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise UserError(f"{name} must be a number, got {value[:40]!r}") from None
        else:
            raise UserError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if value < 0 or (positive and value == 0):
        raise UserError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value:g}")
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
