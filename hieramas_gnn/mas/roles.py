"""Role sets: per benchmark family, the roles a Design may use and the prompts that drive them.

Prompt texts live in `hieramas_gnn/prompts/<family>/roles.yaml` (roles: name, description — the
text the policy embeds —, system prompt, gradable flag) and `prompts/common.yaml` (the message
templates every family shares). Each file has a `version`; `RoleSet.prompt_version` joins them
(`mmlu-v1+c1`) and goes into every `LLMRequest.prompt_version`, so editing a prompt without
bumping its version is the only way to reuse stale cache entries — don't.

Families: `mmlu` (MMLU, MMLU-Redux), `math` (MATH-500, level 5), `gsm8k`, `humaneval`
(HumanEval, HumanEval+), `synthetic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from hieramas_gnn.errors import UserError

FAMILIES = ("mmlu", "math", "gsm8k", "humaneval", "synthetic")
TEMPLATE_KEYS = ("decision_system", "single_system", "upstream_header", "proposer_user",
                 "synthesizer_user", "decision_user", "single_user", "cot_user", "debate_user",
                 "aggregator_user")


@dataclass(frozen=True)
class Role:
    """One role: `name` (id used in Designs), `description` (embedded by the policy),
    `system` (its system prompt), `gradable` (whether its output carries a final answer)."""

    name: str
    description: str
    system: str
    gradable: bool


@dataclass(frozen=True)
class RoleSet:
    """The roles of one family, their versioned prompts, and the shared message templates."""

    family: str
    version: str
    roles: tuple[Role, ...]
    templates: dict[str, str]
    templates_version: str

    @property
    def prompt_version(self) -> str:
        """The prompt-set version that goes into every request (part of the cache key)."""
        return f"{self.version}+{self.templates_version}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.roles)

    def get(self, name: str) -> Role:
        for r in self.roles:
            if r.name == name:
                return r
        raise UserError(f"role set {self.family!r}: unknown role {name!r} (known: {', '.join(self.names)})")

    def render(self, template: str, **fields: str) -> str:
        """Fill a shared template; blank lines left by empty fields are collapsed."""
        text = self.templates[template].format(**fields)
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.strip()


def _read_yaml(rel: str) -> dict[str, Any]:
    path = resources.files("hieramas_gnn").joinpath("prompts", *rel.split("/"))
    if not path.is_file():
        raise UserError(f"prompt file missing: hieramas_gnn/prompts/{rel}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data.get("version"):
        raise UserError(f"hieramas_gnn/prompts/{rel}: needs a top-level 'version'")
    return data


def _parse_role(entry: Any, where: str) -> Role:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping")
    for key in ("name", "description", "system", "gradable"):
        if key not in entry:
            raise UserError(f"{where}.{key}: missing")
    if not isinstance(entry["gradable"], bool):
        raise UserError(f"{where}.gradable: expected true/false")
    return Role(str(entry["name"]), " ".join(str(entry["description"]).split()),
                str(entry["system"]).strip(), entry["gradable"])


@lru_cache(maxsize=None)
def get_roleset(family: str) -> RoleSet:
    """The RoleSet of a family (`Task.family`); unknown family -> UserError naming it."""
    if family not in FAMILIES:
        raise UserError(f"unknown role family {family!r} (known: {', '.join(FAMILIES)})")
    common = _read_yaml("common.yaml")
    missing = [k for k in TEMPLATE_KEYS if k not in common]
    if missing:
        raise UserError(f"hieramas_gnn/prompts/common.yaml: missing templates {missing}")
    data = _read_yaml(f"{family}/roles.yaml")
    roles = tuple(_parse_role(e, f"prompts/{family}/roles.yaml roles[{i}]")
                  for i, e in enumerate(data.get("roles") or []))
    if not roles:
        raise UserError(f"hieramas_gnn/prompts/{family}/roles.yaml: no roles")
    templates = {k: str(common[k]) for k in TEMPLATE_KEYS}
    return RoleSet(family, str(data["version"]), roles, templates, str(common["version"]))
