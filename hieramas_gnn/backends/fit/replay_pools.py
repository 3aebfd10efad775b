"""Write the replay pools (`data/pools/replay-*.yaml`) from the outcome tables' model lists.

Prices: litellm's cost map where the model is listed (matched on its name, see `price_key`),
else a documented stand-in: Google's list price for Gemini 1.5 Pro / Flash (not in the map),
otherwise a size class read from the name (<= 10B: USD 0.10 / 0.10 per million tokens in/out;
20-40B: 0.50 / 0.50; anything else: 1.00 / 3.00). Profiles: `model_cards.model_card` (provider,
size class, release, public strengths; never benchmark accuracy).
"""

from __future__ import annotations

import re
from pathlib import Path

from hieramas_gnn.backends.fit.model_cards import model_card

POOLS = {
    "replay-mmlu-redux": ("mmlu_redux", "outcomes/mmlu_redux_helm14.csv.gz",
                          "HELM MMLU run (5-shot, one-letter answers) on MMLU-Redux"),
    "replay-gsm8k": ("gsm8k", "outcomes/gsm8k_zeroeval.csv.gz", "ZeroEval GSM8K run (zero-shot CoT, JSON)"),
    "replay-math-l5": ("math_l5", "outcomes/math_l5_zeroeval.csv.gz", "ZeroEval MATH level-5 run (zero-shot CoT)"),
}
# Outcome-table model names whose cost-map key the name matcher cannot find.
KNOWN_KEYS = {
    "anthropic_claude-3-5-sonnet-20240620": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "claude-3-5-sonnet-20240620": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic_claude-3-opus-20240229": "anthropic.claude-3-opus-20240229-v1:0",
    "claude-3-opus-20240229": "anthropic.claude-3-opus-20240229-v1:0",
    "claude-3-haiku-20240307": "vertex_ai/claude-3-haiku@20240307",
    "meta_llama-3.1-70b-instruct-turbo": "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
    "meta_llama-3.2-90b-vision-instruct-turbo": "oci/meta.llama-3.2-90b-vision-instruct",
    "mistralai_mistral-large-2407": "mistral.mistral-large-2407-v1:0",
    "Mistral-Large-2": "mistral.mistral-large-2407-v1:0",
    "qwen_qwen2-72b-instruct": "fireworks_ai/accounts/fireworks/models/qwen2-72b-instruct",
    "Qwen2-72B-Instruct": "fireworks_ai/accounts/fireworks/models/qwen2-72b-instruct",
    "qwen_qwen2.5-72b-instruct-turbo": "together_ai/Qwen/Qwen2.5-72B-Instruct-Turbo",
    "writer_palmyra-x-004": "writer.palmyra-x4-v1:0",
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini-2024-07-18",
    "Meta-Llama-3.1-70B-Instruct": "deepinfra/meta-llama/Meta-Llama-3.1-70B-Instruct",
    "Meta-Llama-3.1-8B-Instruct": "deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct",
    "Meta-Llama-3-70B-Instruct": "deepinfra/meta-llama/Meta-Llama-3-70B-Instruct",
    "Meta-Llama-3-8B-Instruct": "deepinfra/meta-llama/Meta-Llama-3-8B-Instruct",
    "Mixtral-8x7B-Instruct-v0.1": "anyscale/mistralai/Mixtral-8x7B-Instruct-v0.1",
    "Mistral-Nemo-Instruct-2407": "deepinfra/mistralai/Mistral-Nemo-Instruct-2407",
    "gemma-2-9b-it": "gemini/gemini-gemma-2-9b-it",
    "gemma-2-27b-it": "gemini/gemini-gemma-2-27b-it",
    "gemma-2-27b-it@together": "gemini/gemini-gemma-2-27b-it",
    "Qwen2.5-7B-Instruct": "deepinfra/Qwen/Qwen2.5-7B-Instruct",
    "Qwen2.5-32B-Instruct": "nebius/Qwen/Qwen2.5-32B-Instruct",
    "Qwen2.5-72B-Instruct": "deepinfra/Qwen/Qwen2.5-72B-Instruct",
    "Qwen2-7B-Instruct": "fireworks_ai/accounts/fireworks/models/qwen2-7b-instruct",
    "deepseek-chat": "deepseek/deepseek-chat",
    "deepseek-coder": "deepseek/deepseek-coder",
    "o1-mini-2024-09-12": "azure/o1-mini-2024-09-12",
    "yi-large": "fireworks_ai/accounts/fireworks/models/yi-large",
}
GEMINI_LIST_PRICES = {"pro": (1.25e-6, 5.0e-6), "flash": (7.5e-8, 3.0e-7)}


def stand_in_price(model: str) -> tuple[float, float, str]:
    """(input, output, why) for a model litellm does not price."""
    low = model.lower()
    if "gemini" in low:
        kind = "flash" if "flash" in low else "pro"
        return (*GEMINI_LIST_PRICES[kind], f"stand-in: Google list price of Gemini 1.5 {kind.title()}")
    sizes = [float(s) for s in re.findall(r"(\d+(?:\.\d+)?)b\b", low.replace("x", " "))]
    if sizes and max(sizes) <= 10 or "mini" in low:
        return 1e-7, 1e-7, "stand-in: small model (<= 10B) class price"
    if sizes and max(sizes) <= 40:
        return 5e-7, 5e-7, "stand-in: 20-40B model class price"
    return 1e-6, 3e-6, "stand-in: large / unknown-size model class price"


def price_key(model: str, cost_map: dict) -> str | None:
    """The litellm cost-map key for a model name (hand table, then exact name match)."""
    if model in KNOWN_KEYS and KNOWN_KEYS[model] in cost_map:
        return KNOWN_KEYS[model]
    base = model.split("@")[0]
    for cand in (base, base.lower(), base.split("_", 1)[-1]):
        entry = cost_map.get(cand)
        if entry and entry.get("input_cost_per_token") is not None:
            return cand
    return None


def pool_yaml(pool: str, shared: Path) -> str:
    """The YAML text of one replay pool."""
    import litellm
    import pandas as pd
    import yaml

    task, table, run = POOLS[pool]
    models = sorted(pd.read_csv(shared / table, usecols=["model"])["model"].unique())
    entries, notes = [], []
    for m in models:
        entry = {"name": m, "litellm_model": f"replay/{m}"}
        key = price_key(m, litellm.model_cost)
        if key:
            entry["cost_map_key"] = key
        else:
            i, o, why = stand_in_price(m)
            entry.update(input_cost_per_token=i, output_cost_per_token=o)
            notes.append(f"#   {m}: {why}")
        entry.update(profile=f"{model_card(m)} Real answers replayed from the {run}.", tags=["replay", task])
        entries.append(entry)
    head = [f"# Replay pool over {table} (task {task}); written by scripts/fit_sim.py.",
            "# Prices: litellm's cost map (cost_map_key) where listed; stand-ins otherwise:", *notes]
    body = yaml.safe_dump({"name": pool, "description": f"Real {task} answers of {len(models)} models",
                           "models": entries}, sort_keys=False, width=110)
    return "\n".join(head) + "\n" + body


def write_replay_pools(shared: Path, out: Path) -> list[Path]:
    paths = []
    for pool in POOLS:
        path = out / f"{pool}.yaml"
        path.write_text(pool_yaml(pool, shared))
        paths.append(path)
    return paths
