"""Model cards for the replay pools' profiles: provider, size class, release, public strengths.

`model_card(name)` gives the profile text the policy embeds as an LLM node's features, so that
replay models differ by more than their names. Only public facts about each model family are
used (vendor announcements and model cards: provider, open or closed weights, parameter count
where published, release month, the strengths the vendor claims). Nothing is read from the
outcome tables: a profile carrying benchmark accuracy would leak the test questions' answers
into the features (per-domain accuracy on the *training* split is `policy.features.accuracy_hints`).

Names are matched case-insensitively after dropping a provider prefix (`openai_`, `meta_`, ...)
and a hosting suffix (`@together`); an unknown name gets a card with what its name says (size).
"""

from __future__ import annotations

import re

# (pattern on the normalised name, provider, card). First match wins: specific before general.
CARDS: tuple[tuple[str, str, str], ...] = (
    (r"^o1-preview", "OpenAI", "reasoning model (Sep 2024), closed weights, undisclosed size; thinks in a long "
     "hidden chain of thought before answering; strongest at competition math, science and code; slow, expensive"),
    (r"^o1-mini", "OpenAI", "small reasoning model (Sep 2024), closed weights; long hidden chain of thought; "
     "strong at math and code, weaker on broad world knowledge"),
    (r"gpt-4o-mini", "OpenAI", "small low-cost model (Jul 2024), closed weights; good math and code for its price"),
    (r"chatgpt-4o|gpt-4o", "OpenAI", "flagship multimodal model (2024), closed weights, large; strong general "
     "knowledge, reasoning and code"),
    (r"gpt-4-turbo", "OpenAI", "large model (Apr 2024), closed weights; strong knowledge and reasoning"),
    (r"gpt-4-0", "OpenAI", "original GPT-4 (2023 snapshot), closed weights, large; strong knowledge, dear"),
    (r"gpt-3\.5", "OpenAI", "older low-cost chat model (2023-24), closed weights; weak at multi-step math"),
    (r"claude-3-5-sonnet", "Anthropic", "frontier model (Jun 2024), closed weights; strong at code, "
     "reasoning and knowledge"),
    (r"claude-3-opus", "Anthropic", "largest Claude 3 model (Mar 2024), closed weights; strong knowledge, dear"),
    (r"claude-3-sonnet", "Anthropic", "mid-size Claude 3 model (Mar 2024), closed weights"),
    (r"claude-3-haiku", "Anthropic", "smallest, fastest Claude 3 model (Mar 2024), closed weights; cheap, "
     "weaker at hard reasoning"),
    (r"gemini-1\.5-pro", "Google", "large multimodal model (2024), closed weights, long context; strong "
     "reasoning and knowledge"),
    (r"gemini-1\.5-flash", "Google", "small fast low-cost multimodal model (2024), closed weights"),
    (r"gemma-2", "Google", "open-weights model (mid 2024) from Gemini research"),
    (r"llama-3\.2-90b-vision", "Meta", "open-weights multimodal model (Sep 2024) built on Llama 3.1 70B"),
    (r"llama-3\.1-405b", "Meta", "largest open-weights model of 2024 (Jul 2024), 405B dense; near-frontier "
     "knowledge and reasoning"),
    (r"llama-3\.1", "Meta", "open-weights instruction model (Jul 2024)"),
    (r"llama-3-", "Meta", "open-weights instruction model (Apr 2024)"),
    (r"athene-70b", "Nexusflow", "chat fine-tune (Jul 2024) of Llama 3 70B with RLHF, open weights"),
    (r"qwen2\.5", "Alibaba", "open-weights Qwen2.5 model (Sep 2024) trained on 18T tokens; strong math and "
     "code for its size"),
    (r"qwen2-", "Alibaba", "open-weights Qwen2 model (Jun 2024)"),
    (r"phi-3\.5-mini", "Microsoft", "small open-weights model (Aug 2024), 3.8B, trained largely on synthetic "
     "textbook-style data; reasoning good for its size, little world knowledge"),
    (r"phi-3-mini", "Microsoft", "small open-weights model (Apr 2024), 3.8B, trained largely on synthetic "
     "textbook-style data; reasoning good for its size, little world knowledge"),
    (r"mistral-large", "Mistral AI", "flagship model Mistral Large 2 (Jul 2024), 123B; strong code and math"),
    (r"mixtral-8x7b", "Mistral AI", "open-weights mixture of experts (Dec 2023), 47B total / 13B active"),
    (r"mistral-nemo", "Mistral AI", "open-weights 12B model (Jul 2024) built with NVIDIA"),
    (r"deepseek-coder-v2", "DeepSeek", "open-weights code mixture of experts (2024), 236B total / 21B "
     "active; strong code and math"),
    (r"deepseek-v2\.5", "DeepSeek", "open-weights mixture of experts (Sep 2024), 236B total / 21B active, "
     "merging chat and coder; strong code and math, cheap API"),
    (r"deepseek-coder", "DeepSeek", "code model served by the DeepSeek API (2024), mixture of experts; strong "
     "code and math, cheap"),
    (r"deepseek-chat", "DeepSeek", "chat model served by the DeepSeek API (2024), mixture of experts; cheap"),
    (r"yi-1\.5", "01.AI", "open-weights model (May 2024)"),
    (r"yi-large", "01.AI", "large closed-weights model (2024)"),
    (r"command-r-plus", "Cohere", "104B open-weights model (Apr 2024) for retrieval and tool use"),
    (r"command-r", "Cohere", "35B open-weights model (Mar 2024) for retrieval and tool use"),
    (r"reka-core", "Reka AI", "largest Reka multimodal model (Apr 2024), closed weights"),
    (r"reka-flash", "Reka AI", "fast mid-size Reka multimodal model (Feb 2024), closed weights"),
    (r"palmyra-x-004", "Writer", "enterprise model Palmyra X 004 (2024), closed weights"),
)
PREFIXES = ("openai_", "anthropic_", "google_", "meta_", "mistralai_", "qwen_", "writer_")


def normalise(name: str) -> str:
    low = name.lower().split("@")[0]
    for p in PREFIXES:
        if low.startswith(p):
            return low[len(p):]
    return low


def size_class(name: str) -> str | None:
    """'small (<= 10B)', 'mid-size (11-40B)' or 'large (> 40B)' from a parameter count in the name."""
    sizes = [float(s) for s in re.findall(r"(?<![\d.])(\d+(?:\.\d+)?)b\b", normalise(name).replace("x", " "))]
    if not sizes:
        return None
    n = max(sizes)
    return "small (<= 10B)" if n <= 10 else "mid-size (11-40B)" if n <= 40 else "large (> 40B)"


def model_card(name: str) -> str:
    """One profile sentence for a pool model (module docstring)."""
    low = normalise(name)
    size = size_class(name)
    exp = "; an experimental update snapshot" if "-exp-" in low else ""
    for pattern, provider, card in CARDS:
        if re.search(pattern, low):
            # a card that states its parameter count (405B dense, 47B total / 13B active) needs no class
            tail = f"; size class {size}" if size and not re.search(r"\d(\.\d+)?B\b", card) else ""
            return f"{name}: {provider} {card}{exp}{tail}."
    return f"{name}: provider not known to this project" + (f"; size class {size}." if size else ".")
