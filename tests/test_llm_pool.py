"""Model pools: loading by name, prices from litellm or the YAML, validation naming the field."""

from __future__ import annotations

import os

import pytest
import yaml

from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.llm.pool import litellm_prices, load_pool


def _write(tmp_path, models, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"models": models}))
    return path


def _model(**kw):
    base = {"name": "m", "litellm_model": "openai/gpt-4o-mini"}
    base.update(kw)
    return base


def test_bare_name_loads_data_pools_file():
    pool = load_pool("openrouter-example")
    assert pool.name == "openrouter-example"
    assert len(pool) >= 3
    assert all(m.litellm_model.startswith("openrouter/") for m in pool)
    assert all(m.profile for m in pool)


def test_prices_come_from_litellm_cost_map_when_not_given(tmp_path):
    pool = load_pool(_write(tmp_path, [_model()], "ok.yaml"))
    spec = pool.get("m")
    assert (spec.input_cost_per_token, spec.output_cost_per_token) == litellm_prices("gpt-4o-mini")
    assert spec.price_source == "litellm"


def test_cost_map_key_prices_a_model_under_another_key(tmp_path):
    path = _write(tmp_path, [_model(litellm_model="openrouter/openai/gpt-4o-mini",
                                    cost_map_key="gpt-4o-mini")], "ok.yaml")
    spec = load_pool(path).get("m")
    assert spec.input_cost_per_token == litellm_prices("gpt-4o-mini")[0]


def test_yaml_price_overrides_the_cost_map(tmp_path):
    spec = load_pool(_write(tmp_path, [_model(input_cost_per_token=0.5)], "ok.yaml")).get("m")
    assert spec.input_cost_per_token == 0.5
    assert spec.output_cost_per_token == litellm_prices("gpt-4o-mini")[1]
    assert spec.price_source == "pool"


def test_negative_price_error_names_file_and_field(tmp_path):
    models = [_model(name="a"), _model(name="b"), _model(name="c", input_cost_per_token=-1)]
    with pytest.raises(ConfigError) as err:
        load_pool(_write(tmp_path, models))
    assert str(err.value) == "pool bad.yaml: models[2].input_cost_per_token: must be >= 0"


def test_unlisted_model_without_prices_names_the_missing_price(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\]\.input_cost_per_token: 'sim/x' is not in"):
        load_pool(_write(tmp_path, [_model(litellm_model="sim/x")]))


def test_unknown_field_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\]\.price: unknown field"):
        load_pool(_write(tmp_path, [_model(price=1)]))


def test_duplicate_model_names_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[1\]\.name: duplicate"):
        load_pool(_write(tmp_path, [_model(), _model()]))


def test_api_key_in_a_pool_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"extra\.api_key: never put keys"):
        load_pool(_write(tmp_path, [_model(extra={"api_key": "sk-x"})]))


def test_missing_provider_prefix_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\]\.litellm_model"):
        load_pool(_write(tmp_path, [_model(litellm_model="gpt-4o-mini")]))


def test_unknown_pool_name_lists_shipped_pools():
    with pytest.raises(ConfigError, match="openrouter-example"):
        load_pool("no-such-pool")


def test_get_unknown_model_names_it():
    with pytest.raises(UserError, match="'nope'"):
        load_pool("openrouter-example").get("nope")


def test_cost_is_usage_times_prices(tmp_path):
    path = _write(tmp_path, [_model(input_cost_per_token=1e-6, output_cost_per_token=3e-6)], "ok.yaml")
    assert load_pool(path).get("m").cost(100, 10) == pytest.approx(100e-6 + 30e-6)


def test_a_model_named_like_the_plurality_synthesizer_is_refused(tmp_path):
    path = _write(tmp_path, [_model(), _model(name="plurality")])
    with pytest.raises(ConfigError, match=r"models\[1\].name: 'plurality' is reserved"):
        load_pool(str(path))


def test_the_reserved_names_hold_the_plurality_synthesizer():
    from hieramas_gnn.llm.pool import RESERVED_NAMES
    from hieramas_gnn.mas.design import PLURALITY

    assert PLURALITY in RESERVED_NAMES


def test_the_packaged_cost_map_file_prices_every_model_as_litellm_does():
    """Without litellm imported, prices come from litellm's packaged map file: for every entry
    that lists prices, the same (input, output) as `litellm.model_cost`; the file's alias entries
    (no prices of their own) are left to litellm."""
    import litellm

    from hieramas_gnn.llm.pool import _prices_in, _read_packaged_cost_map

    packaged = _read_packaged_cost_map()
    priced = [k for k, v in packaged.items() if isinstance(v, dict) and v.get("input_cost_per_token") is not None]
    assert len(priced) > 1000
    assert {k: _prices_in(packaged, k) for k in priced} == {k: _prices_in(litellm.model_cost, k) for k in priced}


def test_a_model_the_cost_map_file_does_not_name_is_unpriced_without_importing_litellm():
    """litellm's map has no key its packaged file lacks, so a model the file does not name (a
    user's replay model) is unpriced without the seconds of importing litellm."""
    import subprocess
    import sys

    import litellm

    from hieramas_gnn.llm.pool import _read_packaged_cost_map

    assert set(litellm.model_cost) <= set(_read_packaged_cost_map())
    code = ("import sys; from hieramas_gnn.llm.pool import litellm_prices; "
            "print(litellm_prices('geo-small'), litellm_prices('replay/geo-small'), 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}).stdout.split()
    assert out == ["None", "None", "False"]


def test_an_offline_pool_loads_and_answers_without_importing_litellm(tmp_path):
    """Importing litellm costs seconds per command: a pool priced from the cost map (the shipped
    sim pool) loads, registers its providers and answers a call without it, at the prices
    litellm gives."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import asyncio, json, sys\n"
        "from hieramas_gnn.llm.client import LLMClient\n"
        "from hieramas_gnn.llm.pool import load_pool\n"
        "from hieramas_gnn.llm.types import LLMRequest\n"
        "pool = load_pool('sim')\n"
        "client = LLMClient(pool, backend={'sim': {'latency': 'off'}})\n"
        "meta = {'task': 'synthetic', 'question_id': 'synthetic/logic/2/0', 'role': 'Solver',\n"
        "        'position': 'proposer', 'context_answers': []}\n"
        "rec = asyncio.run(client.complete(LLMRequest(model=pool.names[0], messages=({'role': 'user', 'content': 'q'},),\n"
        "                                             metadata=meta)))\n"
        "print(json.dumps({'imported': 'litellm' in sys.modules, 'text': rec.text,\n"
        "                  'prices': [[s.input_cost_per_token, s.output_cost_per_token] for s in pool]}))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["imported"] is False and result["text"]
    import litellm  # noqa: F401 - now the live map: the same prices

    assert result["prices"] == [[s.input_cost_per_token, s.output_cost_per_token] for s in load_pool("sim")]
