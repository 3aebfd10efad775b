"""Role sets: per benchmark family, the roles a Design may use and the prompts that drive them.

Prompt texts live in `hieramas_gnn/prompts/<family>/roles.yaml` (roles: name, description — the
text the policy embeds —, system prompt, gradable flag) and `prompts/common.yaml` (the message
templates every family shares). Each file has a `version`; `RoleSet.prompt_version` joins them
(`mmlu-v1+c1`) and goes into every `LLMRequest.prompt_version`, so editing a prompt without
bumping its version is the only way to reuse stale cache entries — don't.

Families: `mmlu` (MMLU, MMLU-Redux), `math` (MATH-500, level 5), `gsm8k`, `humaneval`
(HumanEval, HumanEval+), `synthetic`, `general` (user tasks).

Custom roles: `get_roleset("path/to/roles.yaml")` (any family ending in `.yaml`/`.yml` or
containing a `/`) reads your own file:

    roles:
      - name: skeptic                       # [A-Za-z0-9_-]+, unique
        description: Doubts every claim ...  # what the policy embeds
        system: You are a skeptic ...        # the role's system prompt
        gradable: true                       # does its output end in a final answer?

Every field is required and checked (errors name the file and `roles[i].field`). Its version is
`custom-<sha256 of the parsed roles, 12 hex>`, so any edit to a name, description, prompt or
flag changes the prompt-set version and with it every cache key: the cache can never serve
replies written for another version of your prompts. An optional `name` labels the file; the
RoleSet's `family` is the path as given (what run folders and policy bundles record).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hieramas_gnn.errors import UserError

FAMILIES = ("mmlu", "math", "gsm8k", "humaneval", "synthetic", "general")
ROLE_KEYS = ("name", "description", "system", "gradable")
_ROLE_NAME = re.compile(r"[A-Za-z0-9_-]+")
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
        raise UserError(f"{where}: expected a mapping with {', '.join(ROLE_KEYS)}")
    unknown = sorted(set(map(str, entry)) - set(ROLE_KEYS))
    if unknown:
        raise UserError(f"{where}.{unknown[0]}: unknown field (fields: {', '.join(ROLE_KEYS)})")
    for key in ROLE_KEYS:
        if key not in entry:
            raise UserError(f"{where}.{key}: missing")
    for key in ("name", "description", "system"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise UserError(f"{where}.{key}: must be a non-empty string")
    if not _ROLE_NAME.fullmatch(entry["name"]):
        raise UserError(f"{where}.name: {entry['name']!r} may only use letters, digits, '_' and '-'")
    if not isinstance(entry["gradable"], bool):
        raise UserError(f"{where}.gradable: expected true/false")
    return Role(str(entry["name"]), " ".join(str(entry["description"]).split()),
                str(entry["system"]).strip(), entry["gradable"])


def parse_roles(entries: Any, where: str) -> tuple[Role, ...]:
    """Validated roles of a `roles:` list; errors name `where` and `roles[i].field`."""
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: roles: must be a non-empty list")
    roles = tuple(_parse_role(e, f"{where}: roles[{i}]") for i, e in enumerate(entries))
    seen: dict[str, int] = {}
    for i, r in enumerate(roles):
        if r.name in seen:
            raise UserError(f"{where}: roles[{i}].name: duplicate role {r.name!r} (also roles[{seen[r.name]}])")
        seen[r.name] = i
    return roles


def content_version(roles: tuple[Role, ...]) -> str:
    """`custom-<12 hex>`: a hash of every field of every role, in order."""
    body = json.dumps([[r.name, r.description, r.system, r.gradable] for r in roles], ensure_ascii=False)
    return "custom-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]


def is_role_file(family: str) -> bool:
    """Whether a `roles.family` value names a file rather than a built-in family."""
    return family.endswith((".yaml", ".yml")) or "/" in family or "\\" in family


def _templates() -> tuple[dict[str, str], str]:
    common = _read_yaml("common.yaml")
    missing = [k for k in TEMPLATE_KEYS if k not in common]
    if missing:
        raise UserError(f"hieramas_gnn/prompts/common.yaml: missing templates {missing}")
    return {k: str(common[k]) for k in TEMPLATE_KEYS}, str(common["version"])


def load_role_file(path: str | Path) -> RoleSet:
    """A RoleSet from your own roles YAML (module docstring); its version is a content hash."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"roles file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"roles file {p}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"roles file {p}: expected a mapping with a 'roles' list")
    unknown = sorted(set(map(str, data)) - {"name", "roles", "version"})
    if unknown:
        raise UserError(f"roles file {p}: unknown field {unknown[0]!r} (fields: name, roles)")
    roles = parse_roles(data.get("roles"), f"roles file {p}")
    templates, templates_version = _templates()
    return RoleSet(str(path), content_version(roles), roles, templates,
                   templates_version)


def roleset_from_entries(family: str, entries: Any, where: str) -> RoleSet:
    """A RoleSet from roles given as data (a bundle's `role_prompts`: the mappings of a roles
    file's `roles:` list), versioned by content like `load_role_file`."""
    roles = parse_roles(entries, where)
    templates, templates_version = _templates()
    return RoleSet(str(family), content_version(roles), roles, templates, templates_version)


def get_roleset(family: str) -> RoleSet:
    """The RoleSet of a family (`Task.family`) or of a roles YAML file; unknown -> UserError."""
    if is_role_file(str(family)):
        return load_role_file(family)  # re-read each time: an edited file gets its new version
    return _builtin_roleset(family)


@lru_cache(maxsize=None)
def _builtin_roleset(family: str) -> RoleSet:
    if family not in FAMILIES:
        raise UserError(f"unknown role family {family!r} (known: {', '.join(FAMILIES)}; or a path "
                        "to your own roles .yaml)")
    templates, templates_version = _templates()
    data = _read_yaml(f"{family}/roles.yaml")
    roles = parse_roles(data.get("roles"), f"hieramas_gnn/prompts/{family}/roles.yaml")
    return RoleSet(family, str(data["version"]), roles, templates, templates_version)
