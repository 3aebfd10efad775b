"""Plain data that crosses the LLM boundary: a request, the record it yields, and the errors.

A request carries call metadata (`task`, `question_id`, `role`, `position`, `context_answers`)
so that the offline backends (`replay/`, `sim/`) know which question they answer and what the
model has read; real providers ignore it. Usage, cost and latency travel in each record: there
are no global counters anywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.paths import data_dir

# Positions a call can have inside a Design (also used by the offline behaviour model).
POSITIONS = ("proposer", "synthesizer", "decision", "single", "debate", "aggregator")


LATENCY_MODES = ("lognormal", "fixed", "off")


@dataclass(frozen=True)
class SimSettings:
    """Settings of the `sim/` backend, sent with every sim call (part of its cache key)."""

    seed: int = 0
    """Seed of the simulated world (not derived from `run.seed`: training seeds share one world)."""
    latency: Literal["lognormal", "fixed", "off"] = "lognormal"
    """Simulated latency: `lognormal` (per-model median and spread, really awaited), `fixed`, `off`."""
    fixed_latency_ms: float = 50.0
    """Latency when `latency` is `fixed`."""
    behaviour: str | None = None
    """Behaviour-model parameters (a JSON file); None: the committed fit `data/sim/behaviour.json`."""

    def __post_init__(self) -> None:
        if self.latency not in LATENCY_MODES:
            raise ConfigError(f"backend.sim.latency must be one of {', '.join(LATENCY_MODES)}, got "
                              f"{self.latency!r} (quote 'off' in YAML, where a bare off is a boolean)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"backend.sim.seed must be an integer, got {self.seed!r}")
        if (isinstance(self.fixed_latency_ms, bool) or not isinstance(self.fixed_latency_ms, (int, float))
                or not 0 <= self.fixed_latency_ms < math.inf):
            raise ConfigError(f"backend.sim.fixed_latency_ms must be a finite number >= 0, got {self.fixed_latency_ms!r}")
        if self.behaviour is not None and not (isinstance(self.behaviour, str) and self.behaviour):
            raise ConfigError(f"backend.sim.behaviour must be a file path or null, got {self.behaviour!r}")


@dataclass(frozen=True)
class ReplaySettings:
    """Settings of the `replay/` backend, sent with every replay call (part of its cache key)."""

    seed: int = 0
    """Seed of the behaviour model's draws for nodes that read other answers."""
    wrong_answers: Literal["distinct", "shared"] = "distinct"
    """Recorded-outcome tasks (RouterDC, RouterBench; no answer text, `backends/recorded.py`): what a
    wrong model answered. `distinct`: a random wrong option (multiple choice), an answer of its own
    (open answers); `shared`: every wrong answer to a question the same (the worst case for votes)."""

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"backend.replay.seed must be an integer, got {self.seed!r}")
        if self.wrong_answers not in ("distinct", "shared"):
            raise ConfigError(f"backend.replay.wrong_answers must be distinct or shared, got {self.wrong_answers!r}")


@dataclass(frozen=True)
class BackendSettings:
    """The offline backends' settings (the run config's `backend` section; a client sends them with
    each sim/replay call); real providers never see them."""

    sim: SimSettings = field(default_factory=SimSettings)
    """The simulator."""
    replay: ReplaySettings = field(default_factory=ReplaySettings)
    """Replay of real outcomes."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackendSettings:
        """From `{"sim": {...}, "replay": {...}}` (either may be left out); unknown fields raise
        a `UserError` naming them."""
        parts = {"sim": SimSettings, "replay": ReplaySettings}
        unknown = sorted(set(data) - set(parts))
        if unknown:
            raise UserError(f"backend: unknown field(s) {', '.join(unknown)} (known: sim, replay)")
        built = {}
        for name, part in parts.items():
            value = data.get(name) or {}
            if isinstance(value, part):
                built[name] = value
                continue
            known = {f.name for f in fields(part)}
            if not isinstance(value, dict) or set(value) - known:
                raise UserError(f"backend.{name}: expected a mapping of {', '.join(sorted(known))}, got {value!r}")
            built[name] = part(**value)
        return cls(**built)

    def for_provider(self, provider: str) -> dict[str, Any] | None:
        """The plain settings one call to `provider` carries (None for a real provider), with
        `model_version`: the offline world's version and a hash of the behaviour parameters in use,
        so a refit or a changed behaviour model never reuses answers cached under the old one."""
        if provider == "sim":
            return {**asdict(self.sim), "model_version": offline_model_version(self.sim.behaviour)}
        if provider == "replay":  # the default wrong_answers is left out: older cache keys stay valid
            fields_ = {k: v for k, v in asdict(self.replay).items() if k != "wrong_answers" or v != "distinct"}
            return {**fields_, "model_version": offline_model_version(None)}
        return None


# Bump when the offline backends' code changes what they answer (the behaviour parameters are
# hashed separately). 2: coupled behaviour draws and the plurality bonus (system-level fit).
OFFLINE_MODEL_VERSION = "2"
_BEHAVIOUR_HASHES: dict[str | None, str] = {}


def offline_model_version(behaviour: str | None) -> str:
    """`<OFFLINE_MODEL_VERSION>:<sha256 of the behaviour file, 12 hex>` (default: the committed fit)."""
    if behaviour not in _BEHAVIOUR_HASHES:
        import hashlib


        path = behaviour or data_dir() / "sim" / "behaviour.json"
        try:
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
        except OSError:
            digest = "missing"
        _BEHAVIOUR_HASHES[behaviour] = f"{OFFLINE_MODEL_VERSION}:{digest}"
    return _BEHAVIOUR_HASHES[behaviour]


def settings_fields(settings: dict[str, Any]) -> dict[str, Any]:
    """A provider's view of the per-call settings: without the cache-only `model_version`."""
    return {k: v for k, v in settings.items() if k != "model_version"}


@dataclass(frozen=True)
class LLMRequest:
    """One chat completion request.

    model:          pool model name (resolved to a litellm model string by the pool).
    messages:       chat messages, each {"role": ..., "content": ...}.
    temperature:    sampling temperature.
    max_tokens:     completion cap (None: provider default).
    sample_index:   distinguishes repeated samples of the same request; part of the cache key,
                    stripped before the network call.
    prompt_version: version of the prompt set that produced the messages; part of the cache key.
    metadata:       call metadata: task, question_id, role, position, context_answers (the
                    extracted answers of the upstream texts quoted in the prompt, in order).
                    Part of the cache key only for the offline providers (`replay/`, `sim/`).
    params:         other sampling params passed to litellm as they are (top_p, stop, seed,
                    ...); part of the cache key.
    """

    model: str
    messages: tuple[dict[str, str], ...]
    temperature: float = 0.0
    max_tokens: int | None = None
    sample_index: int = 0
    prompt_version: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class LLMRecord:
    """The result of one call (from the provider or from the cache).

    key:            the cache key of the request (sha256 hex).
    model:          the pool model name that was asked; `litellm_model` is the model string.
    cost_usd:       the provider cost of the call. On a cache hit it is the cost of the original
                    call (so cost-aware rewards are the same over cached rollouts), but a hit
                    spends nothing: money spent = sum of cost_usd over records with cache_hit False.
    latency_ms:     the provider latency of the original call (kept on a cache hit too).
    created_at:     unix time when the provider answered.
    """

    key: str
    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    cache_hit: bool
    created_at: float
    litellm_model: str = ""

    def __post_init__(self) -> None:
        """Usage and cost must be real: a provider reporting negative tokens or cost (or NaN) is
        refused here, so spend can never go down and rewards never see a made-up number."""
        for name in ("prompt_tokens", "completion_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidUsage(f"{self.model or self.litellm_model}: {name} must be an integer >= 0, got {v!r}")
        for name in ("cost_usd", "latency_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InvalidUsage(f"{self.model or self.litellm_model}: {name} must be a finite number >= 0, got {v!r}")

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LLMCallError(RuntimeError):
    """A call failed after its retries (never cached, never turned into a reward of 0)."""


class InvalidUsage(LLMCallError):
    """The provider reported negative or non-finite usage, cost or latency; the call is refused."""


class BudgetExceeded(LLMCallError):
    """The call would take total spend past the configured budget cap; it was not made."""


class CacheMiss(LLMCallError):
    """Replay-only mode and the request is not in the cache."""


class ProviderInputError(UserError):
    """An offline provider (`replay/`, `sim/`) cannot answer this input: unknown model, unknown
    question id, missing call metadata, missing outcome table. Never retried: the client raises
    it at the first attempt, naming the pool model and the provider's message (which names the
    question id). A `UserError`, not an `LLMCallError`: the executor does not turn it into a
    failed episode, it stops the run (the CLI prints it and exits 2).

    The provider raises it wrapped in a `litellm.BadRequestError` (litellm passes its own
    exception types through unchanged, while any other exception becomes a retryable
    `APIConnectionError`) carrying the message under the attribute named by `MARK`; see
    `providers.input_error`."""

    MARK = "hieramas_input_error"
