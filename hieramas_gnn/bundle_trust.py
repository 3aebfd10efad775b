"""What a policy bundle may decide on its own, and what only the user's configuration decides.

A bundle is data someone else may have written (a download, a colleague's run folder), and its
`checksums.sha256` catches corruption, not tampering: anyone who edits `policy.json` can
regenerate it. So a bundle records *what* it was trained with: model names, prices, profiles,
roles, the task's name and scorer kind, and the names of offline backend models (`sim/...`,
`replay/...` over the shipped outcome tables). It never decides on its own:

- *where* calls go: a real provider model string (`openai/...`, any non-offline prefix), an
  `api_base`, or any other endpoint setting in `extra` / `extra.litellm_params`;
- *which secret* they carry: `extra.api_key_env` (the name of an environment variable);
- *which local file* is read: a pool file (`pool_name` as a path), a replay table, a task's question
  file or a roles file outside the current folder;
- *which code* runs: a `module:function` scorer, a `module:object` task or role set.

Those come from the user: a pool (`--pool` / `Policy.load(pool=...)`) with the bundle's model
names and the user's own model strings, bases and key variables. Or, for a bundle the user trusts,
`--trust-bundle-endpoints` / `trust_bundle_endpoints=True`, which uses the bundle's own settings
and prints every endpoint, key variable, file and code reference they name first.
`--sha256` / `Policy.load(sha256=...)` pins one exact bundle (its `bundle_digest`).

API: `bundle_pool(bundle, meta, pool=None, *, trust=False, say=print_to_stderr) -> Pool`,
`untrusted_settings(models) -> [str]` (what in a pool a bundle may not choose), and
`bundle_local_path(path, what, bundle, trust)` (a file path a bundle names, or an error).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from hieramas_gnn.errors import UserError
from hieramas_gnn.llm.pool import Pool, load_pool, pool_from_dict, resolve_pool_path
from hieramas_gnn.mas.roles import is_role_file

OFFLINE_PROVIDERS = ("sim", "replay")
"""Backends answered in this process from shipped data: no endpoint, no key, no file of the bundle's."""
OFFLINE_PARAMS = {"sim": ("sim_model",), "replay": ()}
"""`extra.litellm_params` keys each offline backend may take from a bundle (data, never a path)."""
SAFE_EXTRA = ("litellm_params", "rpm")
"""`extra` keys a bundle's offline model may carry (`rpm` only slows calls down)."""
TRUST_FLAG = "--trust-bundle-endpoints (trust_bundle_endpoints=True)"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def untrusted_settings(models: list[dict[str, Any]]) -> list[str]:
    """Every setting of `models` (pool entries as a bundle stores them) that would choose where a
    call goes, which key it carries or which file is read: `name: what` lines; [] when none."""
    found: list[str] = []
    for i, m in enumerate(models):
        if not isinstance(m, dict):
            found.append(f"pool_models[{i}]: not a mapping")
            continue
        name = m.get("name", f"pool_models[{i}]")
        model = str(m.get("litellm_model", ""))
        provider = model.split("/", 1)[0] if "/" in model else ""
        extra = m.get("extra") or {}
        if not isinstance(extra, dict):
            found.append(f"{name}: extra is not a mapping")
            continue
        if provider not in OFFLINE_PROVIDERS:
            found.append(f"{name}: calls {model!r} (a provider endpoint)")
        if extra.get("api_base") is not None:
            found.append(f"{name}: api_base {extra['api_base']!r}")
        if extra.get("api_key_env") is not None:
            found.append(f"{name}: sends the key in ${extra['api_key_env']}")
        for key in sorted(set(extra) - set(SAFE_EXTRA) - {"api_base", "api_key_env"}):
            found.append(f"{name}: extra.{key} {extra[key]!r}"[:200])
        params = extra.get("litellm_params") or {}
        if not isinstance(params, dict):
            found.append(f"{name}: extra.litellm_params is not a mapping")
            continue
        allowed = OFFLINE_PARAMS.get(provider, ())
        for key in sorted(set(params) - set(allowed)):
            found.append(f"{name}: extra.litellm_params.{key} {params[key]!r}"[:200])
    return found


def bundle_pool(bundle: str | Path, meta: Any, pool: Any = None, *, trust: bool = False,
                say: Callable[[str], None] = _say) -> Any:
    """The `llm.pool.Pool` a bundle runs with.

    `pool` (a `Pool`, a pool name or a YAML path) is the user's and is used as given (its model
    names are checked against the bundle's by the loader). Without one, the bundle's recorded
    `pool_models` (or, for older bundles, a shipped pool named by `pool_name`), refused when any
    model would call an endpoint, carry a key or read a file the bundle chose, unless `trust`
    (then those settings are printed through `say` first)."""
    if pool is not None:
        return pool if isinstance(pool, Pool) else load_pool(pool)
    if meta.pool_models:
        models, where = meta.pool_models, "its recorded pool (pool_models)"
    else:
        name = meta.pool_name or "sim"
        if _is_path(name) and not trust:
            raise UserError(f"policy bundle {bundle} names the pool file {name!r}; a bundle never picks a file to "
                            f"read: pass your pool (--pool FILE) or {TRUST_FLAG}")
        import yaml

        path = resolve_pool_path(name)
        models, where = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or [], f"pool {name}"
        if not isinstance(models, list):
            models = []
    found = untrusted_settings(models)
    if found and not trust:
        shown = "; ".join(found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")
        raise UserError(f"policy bundle {bundle}: {where} chooses where calls go or which key they carry ({shown}). "
                        "A bundle never decides that: pass your own pool with the same model names "
                        f"(--pool FILE / Policy.load(bundle, pool=...)), or {TRUST_FLAG} if you trust this bundle")
    if found:
        say(f"hieramas: trusting policy bundle {bundle}'s endpoints ({TRUST_FLAG}):")
        for line in found:
            say(f"  {line}")
    if meta.pool_models:
        return pool_from_dict({"name": meta.pool_name or "bundle", "models": meta.pool_models},
                              where=f"policy bundle {bundle} pool_models", default_name="bundle")
    return load_pool(meta.pool_name or "sim")


def _is_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def bundle_local_path(path: str | None, what: str, bundle: str | Path, trust: bool) -> str | None:
    """A file path a bundle names (a task's questions, a roles file): honoured when `trust`, or when
    it is relative and stays inside the current folder (the user's own project files); else refused."""
    if path is None or trust:
        return path
    p = Path(path)
    if p.is_absolute() or ".." in p.parts or "\x00" in str(path):
        raise UserError(f"policy bundle {bundle} names the file {path!r} as its {what}; a bundle only names files "
                        f"inside the current folder: run from your project folder, pass the {what} yourself, or "
                        f"{TRUST_FLAG}")
    return path


def bundle_code_ref(spec: str | None, what: str, bundle: str | Path, trust: bool) -> None:
    """Refuse a `module:object` reference (code to import) that a bundle names, unless `trust`."""
    if spec and ":" in spec and not trust and not spec.startswith("regex:"):
        raise UserError(f"policy bundle {bundle} names Python code as its {what} ({spec!r}); a bundle never "
                        f"chooses code to run: pass the {what} yourself (e.g. task=...), or {TRUST_FLAG}")


def check_family(family: str | None, bundle: str | Path, trust: bool) -> None:
    """The role set a bundle names: a built-in family, or a roles file inside the current folder."""
    if not family:
        return

    bundle_code_ref(family, "role set", bundle, trust)
    if is_role_file(family):
        bundle_local_path(family, "roles file", bundle, trust)


def bundle_roleset(bundle: str | Path, meta: Any, trust: bool, fallback: str | None = None) -> Any:
    """The role set a bundle runs with: the roles it carries (`role_prompts`, a roles file's
    contents: no file is read), else its built-in family (or a roles file inside the current
    folder, `check_family`), else `fallback` (the task's family)."""
    from hieramas_gnn.mas.roles import get_roleset, roleset_from_entries

    if getattr(meta, "role_prompts", None):
        return roleset_from_entries(meta.family or "bundle", meta.role_prompts, f"policy bundle {bundle} role_prompts")
    check_family(meta.family, bundle, trust)
    family = meta.family or fallback
    if not family:
        raise UserError(f"policy bundle {bundle} records no role family; pass the task it was trained on")
    return get_roleset(family)


def recorded_backend(meta: Any) -> Any:
    """The offline backends' settings the bundle was trained with (its `hyperparameters.backend`:
    sim seed and latency, replay seed and wrong-answer rule), so that a bundle's questions hit the rollout cache its
    training filled and the sim answers as it did then; defaults when none is recorded. A
    behaviour file it names is left out (a bundle never picks a file to read)."""
    from hieramas_gnn.llm.types import BackendSettings

    raw = (getattr(meta, "hyperparameters", None) or {}).get("backend")
    if not isinstance(raw, dict):
        return BackendSettings()
    sim = raw.get("sim") if isinstance(raw.get("sim"), dict) else {}
    replay = raw.get("replay") if isinstance(raw.get("replay"), dict) else {}
    try:
        return BackendSettings.from_dict({"sim": {k: sim[k] for k in ("seed", "latency", "fixed_latency_ms") if k in sim},
                                          "replay": {k: replay[k] for k in ("seed", "wrong_answers") if k in replay}})
    except (UserError, TypeError, ValueError):
        return BackendSettings()


def add_trust_args(parser: Any) -> None:
    """`--trust-bundle-endpoints` and `--sha256` for the commands that load a bundle."""
    parser.add_argument("--trust-bundle-endpoints", action="store_true",
                        help="use the endpoints, key variables, files and code the bundle itself names (printed "
                             "first); default: a bundle that names any needs --pool with your own model strings")
    parser.add_argument("--sha256", default=None, metavar="DIGEST",
                        help="refuse the bundle unless its digest is DIGEST (printed by `hieramas export`)")
