"""Policy bundles: a trained `HieraPolicy` with everything needed to use it elsewhere.

A bundle is a folder with three files, nothing executable (no pickle):
- `policy.safetensors`: the state dict;
- `policy.json`, the manifest: `format` ("hieramas-policy"), `version` (BUNDLE_VERSION), the
  `package_version` that wrote it, the `task` and role `family` with the roles (name +
  description) and their `prompt_version`, the pool the policy was trained for twice: `pool`
  (name, profile, prices, hints: the policy's LLM features) and `pool_models` (the litellm model
  strings, prices and settings a client needs to run it), the embedder name and dimension, the
  topology route and its settings (`choice`), the `hyperparameters`, a `training` summary and
  free-form `extra`;
- `checksums.sha256`: `<sha256>  <file>` for the two files above (sha256sum format).

Loading verifies before it reads anything: the folder has all three files, every checksum
matches, the format and version are the supported ones, every field has its type, every weight
is finite. Any failure is one `UserError` naming the bundle and the problem (a missing file, a
damaged file, a version mismatch, NaN weights), never a traceback from inside torch.
A different `package_version` is allowed: the bundle `version` is the compatibility contract.

API:
- `export_policy(policy, out_dir, *, builder, decision=None, pool_name=None, extra=None,
  choice=None, family=None, task=None, pool=None, hyperparameters=None, training=None) -> Path`
  (`builder` is the `GraphBuilder` the policy was trained with: it knows roles, pool, features).
- `verify_bundle(dir)`: the checksum and file checks alone (raises `UserError`).
- `read_meta(dir) -> PolicyMeta`: verified manifest, no weights.
- `load_policy(dir, *, pool=None, roles=None) -> (HieraPolicy, PolicyMeta)`; also refuses a `pool`
  / `roles` that are not the ones the bundle was trained for (the message lists the differences).
- `load_chooser(dir, *, pool=None, embed_cache=None) -> (DesignChooser, PolicyMeta)`.
- `PolicyMeta.graph_builder(embedder=None, cache_dir=None)` rebuilds the `GraphBuilder`
  (resolving the embedder from its name: MiniLM or `hashing-<dim>`), checking the dimension;
  `PolicyMeta.litellm_pool()` rebuilds the `llm.pool.Pool` from `pool_models`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hieramas_gnn.version import __version__
from hieramas_gnn.errors import UserError

BUNDLE_FORMAT = "hieramas-policy"
BUNDLE_VERSION = 5  # 2: DAG encodings in the graph-score head; 3: `choice`; 4: checksums + full manifest;
# 5: proposer slots draw stop as a Bernoulli before the model (policy/distributions.py), `choice.topologies`
WEIGHTS, META, CHECKSUMS = "policy.safetensors", "policy.json", "checksums.sha256"
BUNDLE_FILES = (META, WEIGHTS)


@dataclass
class PolicyMeta:
    """The contents of `policy.json` (see module docstring)."""

    policy_config: dict[str, Any]
    input_dims: dict[str, int]
    embedder: str
    embedding_dim: int
    domain_vocab: list[str]
    pos_dim: int
    hint_dim: int
    roles: list[dict[str, str]]
    pool: list[dict[str, Any]]
    decision: str | None = None
    pool_name: str | None = None
    id_dim: int = 0  # LLM identity-feature width
    query_features: bool = True
    """False: the policy was trained query-blind (`policy.query_features`): every query's features are zeros."""
    choice: dict[str, Any] = field(default_factory=dict)
    """`policy.choose.ChoiceSettings`: the topology route that was trained, K, densities, seed."""
    family: str | None = None
    """Role-set family the roles come from (their prompts)."""
    task: str | None = None
    """The task the policy was trained on (what `Policy` grades and what the sim backend answers)."""
    prompt_version: str | None = None
    """`RoleSet.prompt_version` of `family` at export (the prompts the policy was trained with)."""
    pool_models: list[dict[str, Any]] = field(default_factory=list)
    """The pool as `llm.pool` reads it: name, litellm_model, prices, profile, tags, extra."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    """Training summary (run folder, seed, stage-1 best validation reward, topology result)."""
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = BUNDLE_FORMAT
    version: int = BUNDLE_VERSION
    package_version: str = __version__

    @property
    def role_names(self) -> list[str]:
        return [r["name"] for r in self.roles]

    @property
    def model_names(self) -> list[str]:
        return [m["name"] for m in self.pool]

    def feature_builder(self, embedder: Any = None, cache_dir: str | Path | None = None):
        from hieramas_gnn.policy.features import FeatureBuilder

        emb = embedder if embedder is not None else embedder_from_name(self.embedder, cache_dir)
        if emb.name != self.embedder:
            raise UserError(f"embedder {emb.name!r} is not the one the policy bundle was trained with "
                            f"({self.embedder!r})")
        if emb.dim != self.embedding_dim:
            raise UserError(f"embedder {emb.name!r} has dimension {emb.dim}; the policy bundle was "
                            f"trained with {self.embedder!r} of dimension {self.embedding_dim}")
        return FeatureBuilder(emb, self.domain_vocab, self.pos_dim, self.hint_dim, self.id_dim,
                              query_features=self.query_features)

    def graph_builder(self, embedder: Any = None, cache_dir: str | Path | None = None):
        from hieramas_gnn.policy.features import LLMNode
        from hieramas_gnn.policy.graph import GraphBuilder, RoleNode

        roles = [RoleNode(r["name"], r["description"]) for r in self.roles]
        models = [LLMNode(m["name"], m["profile"], m["input_cost_per_token"], m["output_cost_per_token"],
                          tuple(m.get("hints", ()))) for m in self.pool]
        return GraphBuilder(self.feature_builder(embedder, cache_dir), roles, models)

    def litellm_pool(self):
        """The `llm.pool.Pool` recorded in `pool_models` (model strings and prices of training)."""
        from hieramas_gnn.llm.pool import pool_from_dict

        if not self.pool_models:
            raise UserError("the policy bundle records no pool model strings (`pool_models`); pass a pool")
        return pool_from_dict({"name": self.pool_name or "bundle", "models": self.pool_models},
                              where="policy bundle pool_models", default_name="bundle")


_TYPES: dict[str, tuple[type, ...]] = {
    "policy_config": (dict,), "input_dims": (dict,), "embedder": (str,), "embedding_dim": (int,),
    "domain_vocab": (list,), "pos_dim": (int,), "hint_dim": (int,), "query_features": (bool,), "roles": (list,), "pool": (list,),
    "decision": (str, type(None)), "pool_name": (str, type(None)), "id_dim": (int,), "choice": (dict,),
    "family": (str, type(None)), "task": (str, type(None)), "prompt_version": (str, type(None)),
    "pool_models": (list,), "hyperparameters": (dict,), "training": (dict,), "extra": (dict,),
    "format": (str,), "version": (int,), "package_version": (str,),
}


def embedder_from_name(name: str, cache_dir: str | Path | None = None):
    """The embedder a bundle names: MiniLM (cached on disk in `cache_dir`) or `hashing-<dim>`."""
    from hieramas_gnn.policy.features import MINILM_NAME, CachedEmbedder, HashingEmbedder, default_embedder

    if name == MINILM_NAME:
        return default_embedder(cache_dir)
    if name.startswith("hashing-") and name.removeprefix("hashing-").isdigit():
        return CachedEmbedder(HashingEmbedder(int(name.removeprefix("hashing-"))), cache_dir)
    raise UserError(f"policy bundle names an unknown embedder {name!r} (known: {MINILM_NAME}, hashing-<dim>)")


def _pool_models(pool: Any, pool_name: str | None) -> list[dict[str, Any]]:
    """The pool's models as `llm.pool` YAML entries (prices resolved); [] when unknown."""
    if pool is None and pool_name:
        from hieramas_gnn.llm.pool import load_pool

        try:
            pool = load_pool(pool_name)
        except UserError:
            return []
    if pool is None:
        return []
    return [{"name": m.name, "litellm_model": m.litellm_model, "input_cost_per_token": m.input_cost_per_token,
             "output_cost_per_token": m.output_cost_per_token, "profile": m.profile, "tags": list(m.tags),
             "extra": dict(m.extra)} for m in pool]


def _prompt_version(family: str | None) -> str | None:
    if not family:
        return None
    from hieramas_gnn.mas.roles import get_roleset

    try:
        return get_roleset(family).prompt_version
    except UserError:
        return None


def export_policy(policy: Any, out_dir: str | Path, *, builder: Any, decision: str | None = None,
                  pool_name: str | None = None, extra: dict[str, Any] | None = None,
                  choice: Any = None, family: str | None = None, task: str | None = None,
                  pool: Any = None, hyperparameters: dict[str, Any] | None = None,
                  training: dict[str, Any] | None = None) -> Path:
    """Write `policy.safetensors`, `policy.json` and `checksums.sha256` into `out_dir` (replaced
    atomically: a kill mid-export leaves the previous bundle or none); returns the folder.
    `choice` is the `ChoiceSettings` the design-choice function uses with this bundle; `pool` (a
    `Pool`) or `pool_name` give the model strings recorded in `pool_models`."""
    import shutil

    fb = builder.features
    extra = dict(extra or {})
    choice_d = choice.to_dict() if choice is not None else {}
    meta = PolicyMeta(
        policy_config=policy.cfg.to_dict(), input_dims=asdict(policy.dims),
        embedder=fb.embedder.name, embedding_dim=int(fb.embedder.dim),
        domain_vocab=list(fb.domain_vocab), pos_dim=fb.pos_dim, hint_dim=fb.hint_dim, id_dim=fb.id_dim,
        query_features=bool(getattr(fb, "sees_query", True)),
        roles=[{"name": r.name, "description": r.description} for r in builder.roles],
        pool=[{**asdict(m), "hints": list(m.hints)} for m in builder.models],
        decision=decision, pool_name=pool_name if pool_name else getattr(pool, "name", None), extra=extra,
        choice=choice_d, family=family, task=task or extra.get("task"),
        prompt_version=extra.get("prompt_version") or _prompt_version(family),
        pool_models=_pool_models(pool, pool_name),
        hyperparameters=dict(hyperparameters) if hyperparameters else {"policy": policy.cfg.to_dict(),
                                                                        "choice": choice_d},
        training=dict(training) if training else {k: v for k, v in extra.items() if k not in ("task", "prompt_version")},
    )
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    (tmp / WEIGHTS).write_bytes(safetensors_bytes(state, {"format": BUNDLE_FORMAT, "version": str(BUNDLE_VERSION)}))
    text = json.dumps(asdict(meta), indent=2, sort_keys=True, default=str) + "\n"
    (tmp / META).write_text(text, encoding="utf-8")
    sums = "".join(f"{_sha256(tmp / name)}  {name}\n" for name in BUNDLE_FILES)
    (tmp / CHECKSUMS).write_text(sums, encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def safetensors_bytes(state: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """`state` in the safetensors format, byte-identical for identical inputs in every process.

    The safetensors writer keeps `__metadata__` in a Rust HashMap, whose order is drawn afresh in
    each process: the same weights gave different files (and bundle checksums) run to run. The
    header is re-written with the metadata keys sorted; it keeps its length, so every offset holds.
    """
    from safetensors.torch import save

    data = save(state, metadata=metadata)
    n = int.from_bytes(data[:8], "little")  # header length; the header is JSON padded with spaces
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > n:  # cannot happen (same keys and values, reordered); keep the writer's bytes
        return data
    return data[:8] + text.ljust(n, b" ") + data[8 + n:]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_bundle(bundle_dir: str | Path) -> None:
    """Check that the bundle has its files and that each matches its checksum (UserError if not)."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise UserError(f"{bundle_dir}: no such policy bundle folder (create one with `hieramas train`)")
    if not (root / META).is_file():
        raise UserError(f"{bundle_dir}: not a policy bundle (no {META}; create one with `hieramas train`)")
    sums_path = root / CHECKSUMS
    if not sums_path.is_file():
        raise UserError(f"{bundle_dir}: policy bundle is incomplete: missing file {CHECKSUMS} "
                        "(written by this version of `hieramas train`/`export`; re-export the policy)")
    expected: dict[str, str] = {}
    try:
        lines = sums_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        lines = ["?"]
    for lineno, line in enumerate(lines, 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or name not in BUNDLE_FILES:
            raise UserError(f"{sums_path}:{lineno}: damaged checksum line {line[:80]!r}")
        expected[name] = digest
    for name in BUNDLE_FILES:
        path = root / name
        if name not in expected:
            raise UserError(f"{sums_path}: no checksum for {name}; the bundle is damaged, re-export it")
        if not path.is_file():
            raise UserError(f"{bundle_dir}: policy bundle is incomplete: missing file {name}")
        got = _sha256(path)
        if got != expected[name]:
            raise UserError(f"{path}: file is damaged (sha256 {got[:12]}… does not match the bundle's "
                            f"checksum {expected[name][:12]}…); re-export or re-copy the bundle")


def read_meta(bundle_dir: str | Path) -> PolicyMeta:
    """Verify the bundle (`verify_bundle`) and read `policy.json` (format, version, field types)
    without loading weights."""
    verify_bundle(bundle_dir)
    path = Path(bundle_dir) / META
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    if data.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path}: format is {data.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    if data.get("version") != BUNDLE_VERSION:
        raise UserError(f"{path}: bundle version {data.get('version')!r} is not supported by this "
                        f"hieramas_gnn {__version__} (reads version {BUNDLE_VERSION}); re-export the policy")
    known = {f.name for f in fields(PolicyMeta)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown field(s) {unknown}")
    for name, value in data.items():
        types = _TYPES[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise UserError(f"{path}: field {name!r} must be {' or '.join(t.__name__ for t in types)}, "
                            f"got {type(value).__name__}")
    try:
        return PolicyMeta(**data)
    except TypeError as exc:
        raise UserError(f"{path}: missing fields ({exc})") from None


def _names(items: Any) -> list[str]:
    items = getattr(items, "models", None) or getattr(items, "roles", None) or items
    return [x if isinstance(x, str) else (x[0] if isinstance(x, tuple | list) else x.name) for x in items]


def check_same(kind: str, expected: Sequence[str], given: Sequence[str]) -> None:
    """Raise a `UserError` listing the differences when `given` is not `expected` (order included)."""
    if list(expected) == list(given):
        return
    missing = [x for x in expected if x not in given]
    extra = [x for x in given if x not in expected]
    detail = f"missing {missing}, extra {extra}" if missing or extra else "same names in another order"
    raise UserError(f"policy bundle was trained for {kind} {list(expected)}, got {list(given)} ({detail})")


def _load_weights(path: Path, map_location: str) -> dict[str, Any]:
    """The state dict of a verified weights file; damaged or non-finite weights -> UserError."""
    import torch
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device=map_location)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on bad files
        raise UserError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise UserError(f"{path}: weight {name!r} has {bad} non-finite value(s) (NaN/inf); "
                            "the policy is unusable, re-train or re-export it")
    return state


def load_policy(bundle_dir: str | Path, *, pool: Any = None, roles: Any = None, map_location: str = "cpu"):
    """Load a bundle -> (HieraPolicy in eval mode, PolicyMeta). See module docstring."""
    from hieramas_gnn.policy.features import InputDims
    from hieramas_gnn.policy.gnn import HieraPolicy, PolicyConfig

    meta = read_meta(bundle_dir)
    if pool is not None:
        check_same("pool models", meta.model_names, _names(pool))
    if roles is not None:
        check_same("roles", meta.role_names, _names(roles))
    try:
        policy = HieraPolicy(PolicyConfig(**meta.policy_config), InputDims(**meta.input_dims))
    except (TypeError, ValueError, UserError) as exc:
        raise UserError(f"{bundle_dir}: bad policy_config/input_dims in {META}: {exc}") from None
    weights = Path(bundle_dir) / WEIGHTS
    try:
        policy.load_state_dict(_load_weights(weights, map_location))
    except RuntimeError as exc:
        raise UserError(f"{weights}: weights do not match the bundle's config ({exc})") from None
    policy.eval()
    return policy, meta


def load_chooser(bundle_dir: str | Path, *, pool: Any = None, embed_cache: str | Path | None = None,
                 embedder: Any = None):
    """Load a bundle -> (`policy.choose.DesignChooser`, PolicyMeta): the one design-choice rule,
    with the route the bundle recorded as trained. A bundle without a recorded route is refused."""
    from hieramas_gnn.policy.choose import ChoiceSettings, DesignChooser

    policy, meta = load_policy(bundle_dir, pool=pool)
    if not meta.choice:
        raise UserError(f"{bundle_dir}: the policy bundle records no design-choice route; re-export it "
                        "with `hieramas train`")
    try:
        settings = ChoiceSettings.from_dict(meta.choice)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{bundle_dir}: bad `choice` in {META}: {exc}") from None
    return DesignChooser(policy, meta.graph_builder(embedder=embedder, cache_dir=embed_cache), settings), meta
