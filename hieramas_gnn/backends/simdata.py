"""The simulator's model specs and its committed figures (`data/sim/`), loaded lazily.

`SimModelSpec` is one simulated LLM: an ability per domain (IRT logit scale), optional per-role
offsets, a synthesis skill, reply lengths and latency. Specs come from the fitted catalogue
`data/sim/models.yaml` or are written directly in a pool YAML (`extra.litellm_params.sim_model`).

`SimFigures` holds what the simulator knows about questions: the fitted difficulty of every real
item, the real wrong answers models gave (attractive distractors), and how synthetic domains map
to real ones (a synthetic item of level L draws its difficulty from the L-th tercile of the
mapped real domain's fitted difficulties).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.paths import data_dir


@dataclass(frozen=True)
class SimModelSpec:
    """One simulated model.

    name:           the name after `sim/`.
    ability:        logit ability per key; lookup order for a question: its domain,
                    `task:<task>`, `family:<family>`, `default`.
    role_skill:     ability offset per role name (e.g. {"Inspector": 0.8}).
    synth_skill:    offset of the strength the behaviour model uses when aggregating.
    median_chars:   median reply length in characters (lognormal), for token counts.
    chars_log_sd:   sd of log reply length.
    latency_ms:     median latency of one call (lognormal).
    latency_log_sd: sd of log latency.
    derived_from:   where the figures come from (documentation only).
    """

    name: str
    ability: dict[str, float]
    role_skill: dict[str, float] = field(default_factory=dict)
    synth_skill: float = 0.0
    median_chars: float = 600.0
    chars_log_sd: float = 0.4
    latency_ms: float = 800.0
    latency_log_sd: float = 0.5
    derived_from: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any], where: str = "sim model",
                  catalogue: dict[str, SimModelSpec] | None = None) -> SimModelSpec:
        """Validate a mapping (from YAML); errors name the field.

        `base: <catalogue model>` starts from that model's figures; `ability_offset` then adds
        to its abilities per key, and any other field given replaces the base's.
        """
        data = dict(data)
        base, offset = data.pop("base", None), data.pop("ability_offset", None) or {}
        if base is not None:
            if not catalogue or base not in catalogue:
                raise ConfigError(f"{where} {name}: base {base!r} is not a catalogue sim model "
                                  f"(known: {sorted(catalogue or {})})")
            parent = {f.name: getattr(catalogue[base], f.name) for f in fields(cls) if f.name != "name"}
            ability = {**parent["ability"], **(data.get("ability") or {})}
            for k, v in offset.items():
                if k not in ability and "default" not in ability:
                    raise ConfigError(f"{where} {name}: ability_offset.{k}: base {base} has no such ability")
                ability[k] = float(ability.get(k, ability.get("default", 0.0))) + float(v)
            data = {**parent, **data, "ability": ability,
                    "derived_from": {**parent["derived_from"], "base": base,
                                     "ability_offset": json.dumps(offset, sort_keys=True)}}
        elif offset:
            raise ConfigError(f"{where} {name}: ability_offset needs a base model")
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where} {name}: unknown field(s) {unknown} (known: {sorted(known)})")
        if not isinstance(data.get("ability"), dict) or not data["ability"]:
            raise ConfigError(f"{where} {name}: ability must be a non-empty mapping domain -> logit")
        for key in ("ability", "role_skill"):
            for k, v in (data.get(key) or {}).items():
                if not isinstance(v, (int, float)):
                    raise ConfigError(f"{where} {name}: {key}.{k} must be a number, got {v!r}")
        for key in ("median_chars", "latency_ms"):
            if key in data and not float(data[key]) >= 0:
                raise ConfigError(f"{where} {name}: {key} must be >= 0")
        return cls(name=name, **data)

    def ability_for(self, domain: str, task: str, family: str) -> float:
        for key in (domain, f"task:{task}", f"family:{family}", "default"):
            if key in self.ability:
                return float(self.ability[key])
        raise UserError(f"sim model {self.name}: no ability for domain {domain!r} of task {task!r} "
                        f"and no `default` (known: {sorted(self.ability)})")


def hash_uniform(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts`."""
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64


class SimFigures:
    """Lazily loaded figures of `data/sim/` (or another folder)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder else data_dir() / "sim"
        self._pools: dict[tuple[str, ...], np.ndarray] = {}
        self._difficulty: dict[tuple, float] = {}  # (qid, domain, level, task) -> difficulty

    def _read(self, name: str) -> Path:
        path = self.folder / name
        if not path.exists():
            raise ConfigError(f"simulator figures: {path} is missing (run scripts/fit_sim.py)")
        return path

    @cached_property
    def catalogue(self) -> dict[str, SimModelSpec]:
        import yaml

        raw = yaml.safe_load(self._read("models.yaml").read_text()) or {}
        return {n: SimModelSpec.from_dict(n, d, "data/sim/models.yaml") for n, d in raw["models"].items()}

    def make_spec(self, name: str, data: dict[str, Any], where: str) -> SimModelSpec:
        """A spec written in a pool (may start from a catalogue model with `base`)."""
        return SimModelSpec.from_dict(name, data, where, self.catalogue)

    @cached_property
    def settings(self) -> dict[str, Any]:
        return json.loads(self._read("settings.json").read_text())

    @cached_property
    def _items(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        import pandas as pd

        df = pd.read_csv(self._read("items.csv.gz"), dtype={"question_id": str, "domain": str})
        diff = dict(zip(df["question_id"], df["difficulty"].astype(float)))
        pools = {d: np.sort(g["difficulty"].to_numpy(float)) for d, g in df.groupby("domain")}
        return diff, pools

    @cached_property
    def wrong(self) -> dict[str, tuple[list[str], np.ndarray]]:
        """question id -> (real wrong answers, how many models gave each)."""
        import gzip

        with gzip.open(self._read("wrong_answers.json.gz"), "rt") as fh:
            raw = json.load(fh)
        return {q: ([a for a, _ in rows], np.array([c for _, c in rows], dtype=float)) for q, rows in raw.items()}

    def difficulty_pool(self, domains: list[str]) -> np.ndarray:
        """Sorted fitted difficulties of the items of these domains (cached per domain list)."""
        key = tuple(domains)
        if key not in self._pools:
            pools = self._items[1]
            got = [pools[d] for d in domains if d in pools]
            self._pools[key] = np.sort(np.concatenate(got)) if got else np.array([])
        return self._pools[key]

    def difficulty(self, qid: str, domain: str, meta: dict[str, Any], task: str = "") -> float:
        """Fitted difficulty of a real item; else derived from its level; else hash-drawn.
        Memoised: a pure function of its inputs, asked once per simulated call."""
        level = meta.get("difficulty")
        if not isinstance(level, (int, float, str, type(None))):  # not a plain value: not memoised
            return self._difficulty_of(qid, domain, meta, task)
        key = (qid, domain, level, task)
        got = self._difficulty.get(key)
        if got is None:
            got = self._difficulty[key] = self._difficulty_of(qid, domain, meta, task)
        return got

    def _difficulty_of(self, qid: str, domain: str, meta: dict[str, Any], task: str) -> float:
        known = self._items[0].get(qid)
        if known is not None:
            return known
        level = meta.get("difficulty")
        u = hash_uniform("difficulty", qid)
        mapped = self.settings.get("synthetic_domains", {}).get(domain)
        by_task = self.settings.get("level_tasks", {}).get(task)
        if mapped and isinstance(level, int):
            # level L of n: the L-th n-quantile band of the mapped real domain's difficulties
            pool = self.difficulty_pool(mapped)
            n_levels = int(self.settings.get("synthetic_levels", 3))
            q = (min(max(level, 1), n_levels) - 1 + u) / n_levels
            return float(np.quantile(pool, q)) if len(pool) else 0.0
        if by_task and isinstance(level, int):
            # a real item of a known level: the pool's distribution shifted per level below the top
            pool = self.difficulty_pool(by_task["pool"])
            shift = (by_task["top_level"] - level) * by_task["shift_per_level"]
            return (float(np.quantile(pool, u)) if len(pool) else 0.0) - shift
        from statistics import NormalDist

        spread = float(self.settings.get("unknown_difficulty_sd", 1.5))
        return NormalDist(0.0, spread).inv_cdf(min(max(u, 1e-6), 1 - 1e-6))

    def strength_pool(self, domain: str) -> np.ndarray:
        """Difficulties used to turn an ability into an expected accuracy (behaviour strength)."""
        mapped = self.settings.get("synthetic_domains", {}).get(domain, [domain])
        return self.difficulty_pool(mapped)
