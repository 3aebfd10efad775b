"""Train / val / test splits of a task's questions: seeded, stratified by domain, or by held-out domain.

`split_questions(questions, sizes=(train, val, test), split_by=..., seed=...)` returns a `Split`:

- `random` (default): a seeded random permutation **stratified by domain** (`meta["domain"]`).
  Each question gets the key `(rank within its domain's own permutation + u) / domain size`,
  u ~ U[0, 1); sorting by that key interleaves the domains in proportion to their sizes, so
  every part (and every prefix of a part) holds each domain in its share of the whole split,
  whatever order the task file is sorted in. The first `train` questions are train, the next
  `val` val, the next `test` test.
- `domain`: held-out-category generalisation. The test part is drawn (stratified, as above) only
  from `test_domains` (or, when none are named, from a seeded `test_domain_fraction` of the
  domains, at least one); train and val only from the other domains.
- `source`: the task's own train / test files (tasks with a `train` split, e.g. the RouterDC and
  RouterBench slices and their mixes): train and val drawn (stratified, as above) from the
  `train` split, test from the `test` split (all of it when `test` is its size, else a
  stratified subset); `task.split` is not used (`split_by_source`).
- `consecutive`: the first `train` questions of the file, then `val`, then `test` (the behaviour
  before seeded splits; only for reproducing old runs — sorted files give skewed parts).

`Split.to_dict()` is what the run folder's `split.json` holds: the question ids of each part.
All randomness comes from `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieramas_gnn.errors import ConfigError
from hieramas_gnn.paths import atomic_write_text
from hieramas_gnn.tasks.base import Question

SPLIT_BY = ("random", "domain", "source", "consecutive")
NO_DOMAIN = "(none)"


@dataclass
class Split:
    """The three parts, plus how they were drawn (`test_domains`: the held-out domains, if any)."""

    train: list[Question]
    val: list[Question]
    test: list[Question]
    split_by: str
    seed: int
    test_domains: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"split_by": self.split_by, "seed": self.seed, "test_domains": list(self.test_domains),
                "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
                "train": [q.id for q in self.train], "val": [q.id for q in self.val],
                "test": [q.id for q in self.test]}

    def write(self, run_dir: str | Path) -> Path:
        """Write `split.json` into `run_dir` (created if needed); returns its path."""
        path = Path(run_dir) / "split.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path


def domain_of(q: Question) -> str:
    return str(q.meta.get("domain") or NO_DOMAIN)


def stratified_order(questions: Sequence[Question], rng: np.random.Generator) -> list[Question]:
    """A random order in which every domain is spread evenly (module docstring)."""
    by_domain: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        by_domain.setdefault(domain_of(q), []).append(i)
    keys = np.empty(len(questions))
    for d in sorted(by_domain):  # sorted: the draw does not depend on dict order
        idx = np.asarray(by_domain[d])
        rank = rng.permutation(len(idx))
        keys[idx] = (rank + rng.random(len(idx))) / len(idx)
    return [questions[i] for i in np.argsort(keys, kind="stable")]


def _take(pool: list[Question], sizes: Sequence[int], what: str) -> list[list[Question]]:
    need = sum(sizes)
    if len(pool) < need:
        raise ConfigError(f"{what}: need {need} questions, only {len(pool)} available")
    bounds = np.cumsum([0, *sizes]).tolist()
    return [pool[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def held_out_domains(domains: Sequence[str], test_domains: Sequence[str], fraction: float,
                     rng: np.random.Generator) -> list[str]:
    """The named test domains (checked), or a seeded `fraction` of `domains` (at least one, not all)."""
    known = sorted(set(domains))
    if test_domains:
        unknown = sorted(set(test_domains) - set(known))
        if unknown:
            raise ConfigError(f"task.test_domains: unknown domains {unknown} (the split has: {known})")
        if set(test_domains) == set(known):
            raise ConfigError("task.test_domains: holds out every domain; none is left to train on")
        return sorted(set(test_domains))
    if len(known) < 2:
        raise ConfigError(f"task.split_by=domain needs at least 2 domains, the split has {known}")
    n = min(max(1, round(fraction * len(known))), len(known) - 1)
    return sorted(rng.choice(known, size=n, replace=False).tolist())


def split_by_source(train_pool: Sequence[Question], test_pool: Sequence[Question], sizes: tuple[int, int, int],
                    seed: int = 0) -> Split:
    """Train and val from `train_pool`, test from `test_pool` (the task's own files), each part
    a seeded stratified draw of its size (see the module docstring)."""
    ids = [q.id for q in [*train_pool, *test_pool]]
    if len(set(ids)) != len(ids):
        raise ConfigError("task: the train and test files share question ids; a split cannot be written by id")
    rng = np.random.default_rng(seed)
    train, val = _take(stratified_order(train_pool, rng), sizes[:2],
                       f"task.train_size + val_size = {sizes[0] + sizes[1]} from the task's train split")
    (test,) = _take(stratified_order(test_pool, rng), sizes[2:], f"task.test_size = {sizes[2]} from the task's test split")
    return Split(train, val, test, split_by="source", seed=seed)


def split_questions(questions: Sequence[Question], sizes: tuple[int, int, int], *, split_by: str = "random",
                    seed: int = 0, test_domains: Sequence[str] = (),
                    test_domain_fraction: float = 0.25) -> Split:
    """Split `questions` into (train, val, test) of exactly `sizes`; see the module docstring."""
    if split_by not in SPLIT_BY:
        raise ConfigError(f"task.split_by: must be one of {SPLIT_BY}, got {split_by!r}")
    if split_by == "source":
        raise ConfigError("task.split_by=source draws from the task's train and test files: use split_by_source")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ConfigError("task: question ids are not unique; a split cannot be written by id")
    rng = np.random.default_rng(seed)
    what = f"task.train_size + val_size + test_size = {sum(sizes)}"
    if split_by == "consecutive":
        return Split(*_take(list(questions), sizes, what), split_by=split_by, seed=seed)
    if split_by == "random":
        return Split(*_take(stratified_order(questions, rng), sizes, what), split_by=split_by, seed=seed)
    held = held_out_domains([domain_of(q) for q in questions], test_domains, test_domain_fraction, rng)
    seen = [q for q in questions if domain_of(q) not in held]
    unseen = [q for q in questions if domain_of(q) in held]
    train, val = _take(stratified_order(seen, rng), sizes[:2],
                       f"task.train_size + val_size = {sizes[0] + sizes[1]} from the training domains")
    (test,) = _take(stratified_order(unseen, rng), sizes[2:],
                    f"task.test_size = {sizes[2]} from the held-out domains {held}")
    return Split(train, val, test, split_by=split_by, seed=seed, test_domains=held)
