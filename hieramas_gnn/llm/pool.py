"""Model pools: the LLMs a policy may choose from, with their litellm model strings and prices.

A pool is a YAML file (`data/pools/<name>.yaml`):

    name: openrouter-example
    models:
      - name: gpt-4o-mini                        # pool name (what Designs refer to)
        litellm_model: openrouter/openai/gpt-4o-mini
        cost_map_key: gpt-4o-mini                # optional: price under another cost-map key
        input_cost_per_token: 1.5e-7             # optional override (USD per token)
        output_cost_per_token: 6.0e-7            # optional override
        profile: "Small, fast OpenAI model ..."  # capability text the policy embeds
        cost: tokens                             # or `recorded` (replay: the table's cost per call)
        tags: [openai, small]
        extra: {api_base: ..., api_key_env: OPENROUTER_API_KEY, rpm: 60}

Any litellm model string works: a paid API (`openai/gpt-4o-mini`, `anthropic/...`,
`openrouter/...`), or a local OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio) as
`openai/<served model name>` with `extra.api_base: http://localhost:8000/v1` (set prices to 0).
`data/pools/local-plus-paid.yaml` is a tested example of such a mixed pool. Per model: prices,
`extra.rpm` (requests per minute, paced by the client) and `extra.api_key_env`; the client's
`per_model_concurrency` bounds calls in flight per model.

Prices come from the YAML when given, else from litellm's cost map (`litellm.model_cost`) under
`cost_map_key` or the model string. A model priced nowhere is an error that names the field.
`cost: recorded` (replay models only) prices each call at the cost the outcome table recorded
for that model on that question (RouterBench's `total_cost_usd`: a per-question cost, not a
per-token price); its per-token prices, 0 unless given, only bound the budget reservation.
Every validation error names the file and the field, e.g.
`pool openrouter-example.yaml: models[2].input_cost_per_token: must be >= 0`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.guards import check_regular_file, load_yaml
from hieramas_gnn.paths import data_dir, ensure_offline_defaults

RESERVED_NAMES = frozenset({"plurality"})  # `mas.design.PLURALITY`: a mixture's synthesizer that is no model

_MODEL_KEYS = {
    "name", "litellm_model", "cost_map_key", "input_cost_per_token", "output_cost_per_token",
    "profile", "tags", "extra", "cost",
}
COST_SOURCES = ("tokens", "recorded")
_PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token")
MAX_PRICE_PER_TOKEN = 1.0
"""Most USD per token a pool may set (the dearest models cost ~1e-4)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of a pool.

    name:                   pool name, unique in the pool; what Designs and requests use.
    litellm_model:          the litellm model string (`openai/gpt-4o-mini`, `sim/qwen-7b`, ...).
    input_cost_per_token:   USD per prompt token.
    output_cost_per_token:  USD per completion token.
    profile:                short capability text (embedded by the policy as the LLM's features).
    tags:                   free labels (`small`, `code`, `offline`, ...).
    extra:                  backend-specific fields. The client reads `api_base`, `api_key_env`
                            (name of the env var holding the key, read at call time) and `rpm`;
                            the offline backends read their own.
    price_source:           `pool` (prices set in the YAML) or `litellm` (from the cost map).
    cost_source:            `tokens` (usage x prices) or `recorded` (a replay model: the cost the
                            outcome table recorded for the question, per call).
    """

    name: str
    litellm_model: str
    input_cost_per_token: float
    output_cost_per_token: float
    profile: str = ""
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    price_source: str = "pool"
    cost_source: str = "tokens"

    @property
    def provider(self) -> str:
        """The litellm provider prefix of the model string (`openai`, `sim`, ...)."""
        return self.litellm_model.split("/", 1)[0] if "/" in self.litellm_model else ""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for a call with this usage at the pool's prices."""
        return prompt_tokens * self.input_cost_per_token + completion_tokens * self.output_cost_per_token


@dataclass(frozen=True)
class Pool:
    """A named, ordered set of models (order is the policy's LLM index, M of them)."""

    name: str
    models: tuple[ModelSpec, ...]

    def get(self, name: str) -> ModelSpec:
        """The model called `name`; UserError naming it (and the known ones) when absent."""
        for spec in self.models:
            if spec.name == name:
                return spec
        known = ", ".join(m.name for m in self.models)
        raise UserError(f"pool {self.name}: unknown model {name!r} (known: {known})")

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self):
        return iter(self.models)


def resolve_pool_path(name_or_path: str | Path) -> Path:
    """A bare name means `data/pools/<name>.yaml`; anything with a suffix or a slash is a path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        path = Path(text)
    else:
        path = data_dir() / "pools" / f"{text}.yaml"
    if not path.exists():
        pools = sorted(p.stem for p in (data_dir() / "pools").glob("*.yaml"))
        raise ConfigError(f"pool {text}: no such file {path} (shipped pools: {', '.join(pools)})")
    return path


def load_pool(name_or_path: str | Path) -> Pool:
    """Read and validate a pool YAML (see the module docstring for the format)."""
    path = resolve_pool_path(name_or_path)
    where = f"pool {path.name}"
    check_regular_file(path, "pool")
    if path.is_dir():
        raise ConfigError(f"{where}: is a folder, not a pool YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    raw = load_yaml(text, where)
    return pool_from_dict(raw, where=where, default_name=path.stem)


def pool_from_dict(raw: Any, *, where: str, default_name: str) -> Pool:
    """Validate a parsed pool; `where` prefixes every error (e.g. `pool x.yaml`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with 'models'")
    unknown = set(raw) - {"name", "models", "description"}
    if unknown:
        raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{where}: models: must be a non-empty list")
    specs = tuple(_model_from_dict(m, f"{where}: models[{i}]") for i, m in enumerate(models))
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise ConfigError(f"{where}: models[{i}].name: duplicate model name {spec.name!r}")
        if spec.name in RESERVED_NAMES:
            raise ConfigError(f"{where}: models[{i}].name: {spec.name!r} is reserved (the plurality "
                              "synthesizer of a mixture); rename the model")
        seen.add(spec.name)
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: name: must be a non-empty string")
    return Pool(name=name, models=specs)


def _model_from_dict(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown field")
    name = _require_str(raw, "name", where)
    litellm_model = _require_str(raw, "litellm_model", where)
    if "/" not in litellm_model:
        raise ConfigError(f"{where}.litellm_model: {litellm_model!r} needs a provider prefix (e.g. openai/...)")
    cost_source = raw.get("cost", "tokens")
    if cost_source not in COST_SOURCES:
        raise ConfigError(f"{where}.cost: must be one of {', '.join(COST_SOURCES)}, got {cost_source!r}")
    if cost_source == "recorded":
        if not litellm_model.startswith("replay/"):
            raise ConfigError(f"{where}.cost: `recorded` is for replay models (the outcome table's cost), "
                              f"not {litellm_model!r}")
        raw = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, **raw}
    prices, source = _prices(raw, litellm_model, where)
    profile = raw.get("profile", "")
    if not isinstance(profile, str):
        raise ConfigError(f"{where}.profile: must be a string")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{where}.tags: must be a list of strings")
    extra = raw.get("extra", {}) or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"{where}.extra: must be a mapping")
    _check_extra(extra, f"{where}.extra")
    return ModelSpec(name=name, litellm_model=litellm_model, input_cost_per_token=prices[0],
                     output_cost_per_token=prices[1], profile=profile.strip(), tags=tuple(tags),
                     extra=dict(extra), price_source=source, cost_source=cost_source)


def _check_extra(extra: dict, where: str) -> None:
    """The fields the client reads: `api_base` an http(s) URL, `api_key_env` an environment
    variable name (never a key), `rpm` > 0, `litellm_params` a mapping."""
    if "api_key" in extra or "api_key" in (extra.get("litellm_params") or {}):
        raise ConfigError(f"{where}.api_key: never put keys in a pool; use api_key_env")
    base = extra.get("api_base")
    if base is not None and (not isinstance(base, str) or not base.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}.api_base: must be an http(s) URL, e.g. http://localhost:8000/v1")
    env = extra.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env)):
        raise ConfigError(f"{where}.api_key_env: must be the NAME of an environment variable, got {env!r}")
    rpm = extra.get("rpm")
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, (int, float)) or not math.isfinite(rpm)
                            or rpm <= 0):
        raise ConfigError(f"{where}.rpm: must be a finite number > 0 (requests per minute)")
    limit = extra.get("max_input_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{where}.max_input_tokens: must be an integer >= 1 (the model's context, in tokens)")
    if not isinstance(extra.get("litellm_params", {}), dict):
        raise ConfigError(f"{where}.litellm_params: must be a mapping")


def _require_str(raw: dict, key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: required, a non-empty string")
    return value.strip()


def _prices(raw: dict, litellm_model: str, where: str) -> tuple[tuple[float, float], str]:
    """(input, output) USD per token and where they came from (`pool` or `litellm`)."""
    given = {k: raw[k] for k in _PRICE_FIELDS if raw.get(k) is not None}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}.{key}: must be a number (USD per token)")
        if not math.isfinite(value):  # NaN would make every cost NaN: paid, never cached, no budget
            raise ConfigError(f"{where}.{key}: must be a finite number (USD per token), got {value!r}")
        if value < 0:
            raise ConfigError(f"{where}.{key}: must be >= 0")
        if value > MAX_PRICE_PER_TOKEN:
            raise ConfigError(f"{where}.{key}: {value} USD per token is more than {MAX_PRICE_PER_TOKEN:g} (a typo? "
                              "prices are per token, not per million tokens)")
    if len(given) == 2:
        return (float(given["input_cost_per_token"]), float(given["output_cost_per_token"])), "pool"
    cost_key = raw.get("cost_map_key") or litellm_model
    listed = litellm_prices(cost_key)
    if listed is None:
        missing = next(k for k in _PRICE_FIELDS if k not in given)
        raise ConfigError(f"{where}.{missing}: {cost_key!r} is not in litellm's cost map; "
                          f"set {missing} (USD per token) or cost_map_key")
    prices = (float(given.get("input_cost_per_token", listed[0])),
              float(given.get("output_cost_per_token", listed[1])))
    if not all(math.isfinite(p) and p >= 0 for p in prices):
        raise ConfigError(f"{where}: litellm's cost map prices {cost_key!r} at {prices}, not finite numbers >= 0; "
                          "set input_cost_per_token and output_cost_per_token")
    return prices, ("pool" if given else "litellm")


def litellm_prices(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's cost map, or None when it is not listed."""
    ensure_offline_defaults()
    packaged = _packaged_cost_map()
    if packaged is not None:  # litellm not imported and its own packaged map in use: read that file
        prices = _prices_in(packaged, model)
        if prices is not None:
            return prices
        if not any(key in packaged for key in (model, model.split("/", 1)[-1])):
            return None  # litellm's map has no key the file lacks: it does not list the model either
    import litellm  # entries the file only names (aliases litellm resolves), or the live map

    return _prices_in(litellm.model_cost, model)


def _prices_in(model_cost: dict, model: str) -> tuple[float, float] | None:
    info = model_cost.get(model)
    if info is None and "/" in model:
        # litellm keys some models without their provider prefix (`gpt-4o-mini`).
        provider, rest = model.split("/", 1)
        info = model_cost.get(rest)
        if info is not None and info.get("litellm_provider") not in (provider, None):
            info = None
    if not isinstance(info, dict) or info.get("input_cost_per_token") is None:
        return None
    return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)


def _packaged_cost_map() -> dict | None:
    """litellm's packaged cost map file, read without importing litellm (seconds of imports in
    every command that loads a pool) when that file is what `litellm.model_cost` holds: litellm not
    imported yet and `LITELLM_LOCAL_MODEL_COST_MAP` set (the offline default). Else None (a user's
    process that imported litellm may have changed the map, e.g. with `litellm.register_model`).
    An entry with prices reads the same in both (tests/test_llm_pool.py)."""
    if "litellm" in sys.modules or os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP", "").lower() != "true":
        return None
    return _read_packaged_cost_map()


@functools.cache
def _read_packaged_cost_map() -> dict:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(spec.submodule_search_locations[0]) / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # litellm then answers from its own loading
        return {}
