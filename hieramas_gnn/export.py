"""Policy bundles: a trained `HieraPolicy` with everything needed to use it elsewhere.

A bundle is a folder with two files:
- `policy.safetensors`: the state dict (no pickle);
- `policy.json`: `format` ("hieramas-policy"), `version` (BUNDLE_VERSION), the package version,
  the `PolicyConfig`, the input dims, the feature settings (embedder name and dimension, domain
  vocabulary, position-encoding and hint widths), the roles (name + description) and the pool
  (name, profile, prices, hints) it was trained for, the decision model, and free-form `extra`.

API:
- `export_policy(policy, out_dir, *, builder, decision=None, pool_name=None, extra=None) -> Path`
  (`builder` is the `GraphBuilder` the policy was trained with: it knows roles, pool, features).
- `load_policy(dir, *, pool=None, roles=None) -> (HieraPolicy, PolicyMeta)`; raises `UserError`
  for a missing folder, a foreign or newer/older bundle version, or a `pool` / `roles` that are
  not the ones the bundle was trained for (the message lists missing and extra names).
- `PolicyMeta.graph_builder(embedder=None, cache_dir=None)` rebuilds the `GraphBuilder`
  (resolving the embedder from its name: MiniLM or `hashing-<dim>`), checking the dimension.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hieramas_gnn import __version__
from hieramas_gnn.errors import UserError

BUNDLE_FORMAT = "hieramas-policy"
BUNDLE_VERSION = 3  # 2: the graph-score head reads structural DAG encodings; 3: `choice` (the trained route)
WEIGHTS, META = "policy.safetensors", "policy.json"


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
    id_dim: int = 0  # LLM identity-feature width; absent in bundles written before it existed
    choice: dict[str, Any] = field(default_factory=dict)
    """`policy.choose.ChoiceSettings`: the topology route that was trained, K, densities, seed."""
    family: str | None = None
    """Role-set family the roles come from (their prompts)."""
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
        return FeatureBuilder(emb, self.domain_vocab, self.pos_dim, self.hint_dim, self.id_dim)

    def graph_builder(self, embedder: Any = None, cache_dir: str | Path | None = None):
        from hieramas_gnn.policy.features import LLMNode
        from hieramas_gnn.policy.graph import GraphBuilder, RoleNode

        roles = [RoleNode(r["name"], r["description"]) for r in self.roles]
        models = [LLMNode(m["name"], m["profile"], m["input_cost_per_token"], m["output_cost_per_token"],
                          tuple(m.get("hints", ()))) for m in self.pool]
        return GraphBuilder(self.feature_builder(embedder, cache_dir), roles, models)


def embedder_from_name(name: str, cache_dir: str | Path | None = None):
    """The embedder a bundle names: MiniLM (cached on disk in `cache_dir`) or `hashing-<dim>`."""
    from hieramas_gnn.policy.features import MINILM_NAME, CachedEmbedder, HashingEmbedder, default_embedder

    if name == MINILM_NAME:
        return default_embedder(cache_dir)
    if name.startswith("hashing-") and name.removeprefix("hashing-").isdigit():
        return CachedEmbedder(HashingEmbedder(int(name.removeprefix("hashing-"))), cache_dir)
    raise UserError(f"policy bundle names an unknown embedder {name!r} (known: {MINILM_NAME}, hashing-<dim>)")


def export_policy(policy: Any, out_dir: str | Path, *, builder: Any, decision: str | None = None,
                  pool_name: str | None = None, extra: dict[str, Any] | None = None,
                  choice: Any = None, family: str | None = None) -> Path:
    """Write `policy.safetensors` + `policy.json` into `out_dir` (replaced atomically: a kill
    mid-export leaves the previous bundle or none); returns the folder. `choice` is the
    `ChoiceSettings` the design-choice function uses with this bundle."""
    import shutil

    from safetensors.torch import save_file

    fb = builder.features
    meta = PolicyMeta(
        policy_config=policy.cfg.to_dict(), input_dims=asdict(policy.dims),
        embedder=fb.embedder.name, embedding_dim=int(fb.embedder.dim),
        domain_vocab=list(fb.domain_vocab), pos_dim=fb.pos_dim, hint_dim=fb.hint_dim, id_dim=fb.id_dim,
        roles=[{"name": r.name, "description": r.description} for r in builder.roles],
        pool=[{**asdict(m), "hints": list(m.hints)} for m in builder.models],
        decision=decision, pool_name=pool_name, extra=dict(extra or {}),
        choice=choice.to_dict() if choice is not None else {}, family=family,
    )
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS), metadata={"format": BUNDLE_FORMAT, "version": str(BUNDLE_VERSION)})
    (tmp / META).write_text(json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def read_meta(bundle_dir: str | Path) -> PolicyMeta:
    """Read and check `policy.json` (format and version) without loading weights."""
    path = Path(bundle_dir) / META
    if not path.is_file():
        raise UserError(f"{bundle_dir}: not a policy bundle (no {META}; create one with `hieramas export`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc})") from None
    if data.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path}: format is {data.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    if data.get("version") != BUNDLE_VERSION:
        raise UserError(f"{path}: bundle version {data.get('version')!r} is not supported by this "
                        f"hieramas_gnn (reads version {BUNDLE_VERSION}); re-export the policy")
    try:
        return PolicyMeta(**data)
    except TypeError as exc:
        raise UserError(f"{path}: unexpected fields ({exc})") from None


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


def load_policy(bundle_dir: str | Path, *, pool: Any = None, roles: Any = None, map_location: str = "cpu"):
    """Load a bundle -> (HieraPolicy in eval mode, PolicyMeta). See module docstring."""
    from safetensors.torch import load_file

    from hieramas_gnn.policy.features import InputDims
    from hieramas_gnn.policy.gnn import HieraPolicy, PolicyConfig

    meta = read_meta(bundle_dir)
    if pool is not None:
        check_same("pool models", meta.model_names, _names(pool))
    if roles is not None:
        check_same("roles", meta.role_names, _names(roles))
    policy = HieraPolicy(PolicyConfig(**meta.policy_config), InputDims(**meta.input_dims))
    weights = Path(bundle_dir) / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{bundle_dir}: policy bundle has no {WEIGHTS}")
    try:
        policy.load_state_dict(load_file(str(weights), device=map_location))
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
