"""The behaviour model: which answer an LLM gives after reading other agents' answers.

Neither replayed outcome tables nor the simulator's IRT fit say what a model does when its
prompt quotes other answers (a synthesizer reading proposals, a node reading its predecessors,
a debater reading its peers). This module is the one small, documented model both offline
backends use for that; its parameters live in `BehaviourConfig` and were calibrated on real
logs of LLMs re-answering after reading peers (`../shared/data/aggregation/`, see
`docs/BACKENDS.md` and `scripts/fit_sim.py`).

The model. The options are the distinct answers among the quoted answers (`context`) and the
model's own independent answer (`own`). Each option `a` gets a utility

    u_a = support_weight * support_a + [a is correct] * (correct_bonus + strength_slope * logit(s))

plus `plurality_bonus` for the option with the unique largest support (the consensus a reader
perceives), with `support_a = own_weight * [own == a] + #(context answers equal to a)`, and `s` the model's
strength (its accuracy on the task/domain). The answer is drawn from softmax(u). So: answers
held by more agents win more often (a correct minority is mostly lost), a correct answer is
recognised at equal support (W->C far above C->W), and a stronger model recognises it more
(resists wrong peers, adopts right ones). With `allow_new=True` (debaters re-solving from
scratch, as in the logs) there is one more option, "the correct answer nobody holds", of utility
`resolve_base + resolve_slope * logit(s)`, present only when no option is correct. Synthesizers
and downstream nodes never use it: they only output an answer that a quoted answer or their own
answer contains.

Randomness is a numpy Generator derived by hashing (seed, model, question, sample index), so the
same call always gives the same answer, and one model's readings of one question are coupled
(see `choose`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from hieramas_gnn.errors import ConfigError
from hieramas_gnn.paths import data_dir

NEW_CORRECT = "<new-correct>"  # key of the "re-solved to the unseen correct answer" option
_EPS = 1e-4


@dataclass(frozen=True)
class BehaviourConfig:
    """Parameters of the behaviour model (defaults: the fit in data/sim/behaviour.json).

    support_weight: utility per unit of support (how strongly agents follow the crowd).
    own_weight:     how many peers the model's own answer counts as.
    correct_bonus:  extra utility of the correct answer for a model of strength 0.5.
    strength_slope: change of that bonus per unit of logit(strength).
    resolve_base:   utility of re-solving to the correct answer nobody proposed (debaters only).
    resolve_slope:  change of that utility per unit of logit(strength).
    plurality_bonus: extra utility of the option with the unique largest support (the answer a
                    reader perceives as the consensus; matters when it reads many distinct answers).
    seed:           base seed of the hash-derived generators.
    """

    support_weight: float = 1.6
    own_weight: float = 1.0
    correct_bonus: float = 1.4
    strength_slope: float = 0.3
    resolve_base: float = -1.5
    resolve_slope: float = 0.3
    plurality_bonus: float = 0.0
    seed: int = 0

    def with_params(self, values: Sequence[float], names: Sequence[str] | None = None) -> BehaviourConfig:
        """A copy with the parameters `names` (default: all of `PARAM_NAMES`) set to `values`."""
        return replace(self, **dict(zip(names or PARAM_NAMES, values)))

    def params(self, names: Sequence[str] | None = None) -> list[float]:
        return [getattr(self, n) for n in names or PARAM_NAMES]

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BehaviourConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"behaviour config: unknown field(s) {sorted(unknown)}")
        return cls(**data)


def load_behaviour(path: str | None = None, seed: int = 0) -> BehaviourConfig:
    """The behaviour config from a JSON file (`{"config": {...}}` or the fields themselves).

    Default: the committed fit `data/sim/behaviour.json` (a client sets another file per call
    with `ClientConfig.backend.sim.behaviour`).
    """
    from pathlib import Path


    src = Path(path or data_dir() / "sim" / "behaviour.json")
    try:
        data = json.loads(src.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"behaviour config {src}: cannot be read ({exc})") from exc
    fields_ = data.get("config", data) if isinstance(data, dict) else None
    if not isinstance(fields_, dict):
        raise ConfigError(f"behaviour config {src}: expected a JSON object of BehaviourConfig fields")
    return BehaviourConfig.from_dict({**fields_, "seed": seed})


PARAM_NAMES = ("support_weight", "own_weight", "correct_bonus", "strength_slope",
               "resolve_base", "resolve_slope", "plurality_bonus")
FIT_PARAMS = PARAM_NAMES  # all fitted by `fit_behaviour` (see docs/BACKENDS.md)


def logit(p: np.ndarray | float) -> np.ndarray | float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def option_utilities(
    support: np.ndarray, correct: np.ndarray, strength: np.ndarray, cfg: BehaviourConfig,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Utilities of the options. Shapes: support, correct, mask [R, K]; strength [R] -> [R, K]."""
    bonus = cfg.correct_bonus + cfg.strength_slope * logit(strength)  # [R]
    u = cfg.support_weight * support + correct * bonus[:, None]
    if cfg.plurality_bonus:
        live = support if mask is None else np.where(mask, support, -np.inf)
        top = live.max(axis=1, keepdims=True)  # [R, 1]
        unique = (live == top).sum(axis=1, keepdims=True) == 1
        u = u + cfg.plurality_bonus * ((live == top) & unique)
    return u


def option_probs_batch(
    support: np.ndarray,
    correct: np.ndarray,
    mask: np.ndarray,
    strength: np.ndarray,
    cfg: BehaviourConfig,
    allow_new: np.ndarray | bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Choice probabilities of R calls with up to K options each.

    Shapes: support, correct, mask [R, K] (mask: the option exists); strength [R];
    allow_new scalar or [R]. Returns (p_options [R, K], p_new_correct [R]).
    """
    u = option_utilities(support, correct, strength, cfg, mask)  # [R, K]
    u = np.where(mask, u, -np.inf)
    any_correct = (correct * mask).sum(axis=1) > 0  # [R]
    u_new = cfg.resolve_base + cfg.resolve_slope * logit(strength)  # [R]
    new_ok = np.broadcast_to(np.asarray(allow_new, dtype=bool), any_correct.shape) & ~any_correct
    u_new = np.where(new_ok, u_new, -np.inf)
    top = np.maximum(np.max(u, axis=1), u_new)  # [R]
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(u - top[:, None])  # [R, K]
    e_new = np.exp(u_new - top)  # [R]
    z = e.sum(axis=1) + e_new
    z = np.where(z > 0, z, 1.0)
    return e / z[:, None], e_new / z


def _options(own: str | None, context: Sequence[str | None], own_weight: float):
    """Distinct answers (own first, then context order) with their support (floats)."""
    support: dict[str, float] = {}
    if own is not None:
        support[own] = own_weight
    for a in context:
        if a is not None:
            support[a] = support.get(a, 0.0) + 1.0
    return list(support), tuple(float(v) for v in support.values())


def choice_distribution(
    own: str | None,
    context: Sequence[str | None],
    is_correct: Callable[[str], bool],
    strength: float,
    cfg: BehaviourConfig,
    allow_new: bool = False,
) -> dict[str, float]:
    """P(output = answer) over the options; key `NEW_CORRECT` for the re-solve route.

    `own` is the model's own independent answer (None when it has none), `context` the
    extracted answers it read (None for unparseable ones, which carry no support).
    """
    answers, support = _options(own, context, cfg.own_weight)
    if not answers and not allow_new:
        return {}
    correct = tuple(float(is_correct(a)) for a in answers)
    p, p_new = _option_probs_one(support, correct, float(strength), cfg, bool(allow_new))
    out = dict(zip(answers, p))
    if p_new > 0:
        out[NEW_CORRECT] = p_new
    return out


@functools.lru_cache(maxsize=1 << 12)
def _option_probs_one(support: tuple[float, ...], correct: tuple[float, ...], strength: float,
                      cfg: BehaviourConfig, allow_new: bool) -> tuple[tuple[float, ...], float]:
    """`option_probs_batch` of one call (R = 1), as Python floats; memoised: a pure function of
    its (immutable) arguments, and the simulator asks the same few support patterns and strengths
    over and over."""
    k = max(len(support), 1)
    sup = np.zeros((1, k))
    cor = np.zeros((1, k))
    mask = np.zeros((1, k), dtype=bool)
    sup[0, : len(support)] = support
    cor[0, : len(support)] = correct
    mask[0, : len(support)] = True
    p, p_new = option_probs_batch(sup, cor, mask, np.array([strength]), cfg, allow_new)
    return tuple(float(p[0, j]) for j in range(len(support))), float(p_new[0])


def choose(
    own: str | None,
    context: Sequence[str | None],
    is_correct: Callable[[str], bool],
    strength: float,
    cfg: BehaviourConfig,
    rng: np.random.Generator,
) -> str | None:
    """Draw the answer a synthesizer / downstream node gives (None when it has no option).

    Only an answer that `own` or one of `context` contains can come out. The draw is one uniform
    number u of `rng` against the cumulative probabilities with the right answer first, so calls
    that share a generator seed are coupled: the backends seed it by (seed, model, question,
    sample index) only, so one model judging one question several times (a synthesizer in every
    role of a fixed topology, then the decision) recognises the right answer either in all the
    readings where it is likely enough or in none, instead of getting an independent chance
    at every layer (which drove deep topologies towards the oracle).
    """
    dist = choice_distribution(own, context, is_correct, strength, cfg, allow_new=False)
    if not dist:
        return None
    answers = sorted(dist, key=lambda a: not is_correct(a))  # stable: right answer(s) first
    cum = np.cumsum([dist[a] for a in answers])
    return answers[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(answers) - 1)]


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded by a sha256 of `parts` (seed, model, question, sample index...).

    The same generator, state for state, as `np.random.default_rng(<the sha256 as an int>)`; the
    seeding (hash, `SeedSequence`, the words PCG64 draws from it) is memoised per `parts`, so a
    generator asked for again (the simulator asks one per call) costs only its construction. Its
    `bit_generator.seed_seq` is a `_SeedWords` (not spawnable: `Generator.spawn` raises)."""
    return np.random.Generator(np.random.PCG64(_SeedWords(tuple(str(p) for p in parts))))


@functools.lru_cache(maxsize=1 << 14)
def _seed_state(key: tuple[str, ...], n_words: int, dtype: str) -> np.ndarray:
    """`SeedSequence(sha256 of key).generate_state(n_words, dtype)`, read-only (pure, memoised)."""
    blob = json.dumps(list(key), separators=(",", ":")).encode()
    entropy = int.from_bytes(hashlib.sha256(blob).digest()[:16], "little")
    out = np.random.SeedSequence(entropy).generate_state(n_words, dtype)
    out.flags.writeable = False
    return out


class _SeedWords(ISeedSequence):
    """The seed sequence of `rng_for(*parts)`: the state words of `SeedSequence(<sha256 of parts>)`."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        return _seed_state(self.key, int(n_words), np.dtype(dtype).str).copy()
