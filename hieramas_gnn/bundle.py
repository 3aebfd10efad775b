"""Policy bundles: a trained `HieraPolicy` with everything needed to use it elsewhere.

A bundle is a folder with four files, nothing executable (no pickle):
- `policy.safetensors`: the state dict;
- `embeddings.safetensors`: the embedder's vectors of the fixed texts the policy's graph is built
  from, `role` [N, D] (the role descriptions) and `llm` [M, D] (the pool models' profiles), with
  the embedder's name and the sha256 of those texts (`texts_sha256`) in its metadata: loading a
  MiniLM bundle then never loads MiniLM for them (seconds of CPU). Bundles written before it
  (without the file) still load: their texts are embedded at load, as then;
- `policy.json`, the manifest: `format` ("hieramas-policy"), `version` (BUNDLE_VERSION), the
  `package_version` that wrote it, the `task` and role `family` with the roles (name +
  description) and their `prompt_version`, the pool the policy was trained for twice: `pool`
  (name, profile, prices, hints: the policy's LLM features) and `pool_models` (the litellm model
  strings, prices and settings a client needs to run it), the embedder name and dimension, the
  topology route and its settings (`choice`), the `hyperparameters`, a `training` summary and
  free-form `extra`;
- `checksums.sha256`: `<sha256>  <file>` for the files above (sha256sum format).

Loading verifies before it reads anything: the folder has the manifest, the weights and the
checksums, every file present is covered by a checksum and matches it (an embeddings file the
checksums do not name is refused, not ignored), the stored embeddings have the shapes, embedder
and texts of the manifest and are finite, the format and version are the supported ones, every field has its type, every weight
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
- `PolicyMeta.graph_builder(embedder=None, cache_dir=None, embeddings=None)` rebuilds the
  `GraphBuilder` (resolving the embedder from its name: MiniLM or `hashing-<dim>`), checking the
  dimension; `read_embeddings(dir, meta)` gives the stored `DescriptionEmbeddings` (None for a
  bundle written before them), which `load_chooser` passes to it;
  `bundle_trust.bundle_pool(dir, meta, pool)` gives the `llm.pool.Pool` a bundle runs with: the
  user's pool, or `pool_models` when they choose no endpoint, key, file or code (else refused).
- `bundle_digest(dir)` / `check_digest(dir, sha256)`: the digest a user pins.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from hieramas_gnn.config_io import from_dict
from hieramas_gnn.errors import ConfigError, UserError
from hieramas_gnn.guards import check_apart, is_within, json_safe
from hieramas_gnn.llm.pool import load_pool
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.policy.settings import ArchConfig
from hieramas_gnn.version import __version__

BUNDLE_FORMAT = "hieramas-policy"
BUNDLE_VERSION = 8  # 2: DAG encodings in the graph-score head; 3: `choice`; 4: checksums + full manifest;
# 5: proposer slots draw stop as a Bernoulli before the model (policy/distributions.py), `choice.topologies`;
# 6: `task_questions` and `role_prompts` (a user's task and roles carried in the bundle), `training.split`;
# 7: `cost` (a cost-conditioned policy's λ range and grid, `policy/cost.py`; {} for one fixed λ);
# 8: `embeddings.safetensors` (the role descriptions' and model profiles' embeddings)
READABLE_VERSIONS = (5, 6, 7, 8)
"""Bundle versions this package reads (a version-5 or -6 bundle is a version 7 without the fields
the later versions added: a policy of one fixed cost weight; a version 5-7 bundle has no stored
embeddings: its texts are embedded at load)."""
WEIGHTS, META, CHECKSUMS = "policy.safetensors", "policy.json", "checksums.sha256"
EMBEDDINGS = "embeddings.safetensors"
BUNDLE_FILES = (META, WEIGHTS, EMBEDDINGS)
"""Every file a bundle's checksums may name (an export writes them all)."""
REQUIRED_FILES = (META, WEIGHTS)
"""The files every bundle has (`EMBEDDINGS` is absent from bundles written before it)."""
EMBEDDINGS_FORMAT = "hieramas-description-embeddings"


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
    """Training summary (run folder, seed, stage-1 best validation reward, topology result) and
    `split`: the question ids of the train / val / test parts (`hieramas eval` of the bundle
    evaluates its test part: the questions training held out)."""
    task_questions: list[dict[str, Any]] = field(default_factory=list)
    """The rows of a user's own jsonl task (its question file's contents), so that the bundle
    grades and answers them wherever it is loaded; [] for a built-in or registered task (named by
    `task`) and for a file under the reference-only data folder (never copied)."""
    role_prompts: list[dict[str, Any]] = field(default_factory=list)
    """A roles file's roles in full (name, description, system, gradable), so that the bundle
    runs without the file; [] for a built-in role family."""
    cost: dict[str, Any] = field(default_factory=dict)
    """A cost-conditioned policy's `policy.cost.CostGrid` (λ range, default λ, per grid λ the
    decision model and the measured accuracy and $/query); {}: one fixed cost weight."""
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
        from hieramas_gnn.policy.features import FeatureBuilder  # lazy: loads torch

        emb = embedder if embedder is not None else embedder_from_name(self.embedder, cache_dir)
        if emb.name != self.embedder:
            raise UserError(f"embedder {emb.name!r} is not the one the policy bundle was trained with "
                            f"({self.embedder!r})")
        if emb.dim != self.embedding_dim:
            raise UserError(f"embedder {emb.name!r} has dimension {emb.dim}; the policy bundle was "
                            f"trained with {self.embedder!r} of dimension {self.embedding_dim}")
        grid = self.cost_grid()
        cost = {} if grid is None else {"cost_range": grid.range, "cost_default": grid.default}
        return FeatureBuilder(emb, self.domain_vocab, self.pos_dim, self.hint_dim, self.id_dim,
                              query_features=self.query_features, **cost)

    def cost_grid(self):
        """The `policy.cost.CostGrid` of a cost-conditioned bundle; None for one fixed λ."""
        from hieramas_gnn.policy.cost import CostGrid

        return CostGrid.from_dict(self.cost, "policy.json field 'cost'") if self.cost else None

    def description_texts(self) -> tuple[list[str], list[str]]:
        """(role descriptions, model profiles) in role / pool order: the texts whose embeddings
        a bundle stores."""
        return [r["description"] for r in self.roles], [m.get("profile", "") for m in self.pool]

    def graph_builder(self, embedder: Any = None, cache_dir: str | Path | None = None, embeddings: Any = None):
        """The `GraphBuilder` of the bundle's roles and pool; `embeddings`: their stored
        `DescriptionEmbeddings` (`read_embeddings`), None to embed the texts now."""
        from hieramas_gnn.policy.features import LLMNode  # lazy: loads torch
        from hieramas_gnn.policy.graph import (  # lazy: loads torch
            GraphBuilder,
            RoleNode,
        )  # lazy: loads torch

        roles = [RoleNode(r["name"], r["description"]) for r in self.roles]
        models = [LLMNode(m["name"], m["profile"], m["input_cost_per_token"], m["output_cost_per_token"],
                          tuple(m.get("hints", ()))) for m in self.pool]
        return GraphBuilder(self.feature_builder(embedder, cache_dir), roles, models, embeddings)


_TYPES: dict[str, tuple[type, ...]] = {
    "policy_config": (dict,), "input_dims": (dict,), "embedder": (str,), "embedding_dim": (int,),
    "domain_vocab": (list,), "pos_dim": (int,), "hint_dim": (int,), "query_features": (bool,), "roles": (list,), "pool": (list,),
    "decision": (str, type(None)), "pool_name": (str, type(None)), "id_dim": (int,), "choice": (dict,),
    "family": (str, type(None)), "task": (str, type(None)), "prompt_version": (str, type(None)),
    "pool_models": (list,), "hyperparameters": (dict,), "training": (dict,), "extra": (dict,),
    "task_questions": (list,), "role_prompts": (list,), "cost": (dict,),
    "format": (str,), "version": (int,), "package_version": (str,),
}


def embedder_from_name(name: str, cache_dir: str | Path | None = None):
    """The embedder a bundle names: MiniLM (cached on disk in `cache_dir`) or `hashing-<dim>`."""
    from hieramas_gnn.policy.features import (
        MINILM_NAME,
        CachedEmbedder,
        HashingEmbedder,
        default_embedder,
    )  # lazy: loads torch

    if name == MINILM_NAME:
        return default_embedder(cache_dir)
    if name.startswith("hashing-") and name.removeprefix("hashing-").isdigit():
        if not 1 <= int(name.removeprefix("hashing-")) <= MAX_BUNDLE_DIM:
            raise UserError(f"policy bundle names the embedder {name!r}: its width must be in 1..{MAX_BUNDLE_DIM:,}")
        return CachedEmbedder(HashingEmbedder(int(name.removeprefix("hashing-"))), cache_dir)
    raise UserError(f"policy bundle names an unknown embedder {name!r} (known: {MINILM_NAME}, hashing-<dim>)")


def _pool_models(pool: Any, pool_name: str | None) -> list[dict[str, Any]]:
    """The pool's models as `llm.pool` YAML entries (prices resolved); [] when unknown."""
    if pool is None and pool_name:
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

    try:
        return get_roleset(family).prompt_version
    except UserError:
        return None


def portable_task(task: Any) -> list[dict[str, Any]]:
    """The rows a bundle carries for `task`: a user's jsonl task (`tasks.generic.GenericTask`) in
    full, so the bundle runs anywhere; [] for a built-in or registered task (the bundle names
    it) and for a file under the reference-only data folder (`paths.shared_data_dir()`: never
    copied into a bundle; the user names the task at load time)."""
    from hieramas_gnn.paths import shared_data_dir
    from hieramas_gnn.tasks.generic import GenericTask

    if not isinstance(task, GenericTask):
        return []
    if task.rows is None and is_within(shared_data_dir().resolve(), Path(task.path).resolve()):
        return []
    return task.raw_rows()


def portable_roles(roleset: Any) -> list[dict[str, Any]]:
    """A roles file's roles in full (a bundle carries them); [] for a built-in family."""
    from hieramas_gnn.mas.roles import is_role_file

    if not is_role_file(str(roleset.family)):
        return []
    return [asdict(r) for r in roleset.roles]


def run_split(run_dir: str | Path) -> dict[str, Any] | None:
    """The run folder's `split.json` (question ids of train / val / test), or None."""
    path = Path(run_dir) / "split.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def export_policy(policy: Any, out_dir: str | Path, *, builder: Any, decision: str | None = None,
                  pool_name: str | None = None, extra: dict[str, Any] | None = None,
                  choice: Any = None, family: str | None = None, task: str | None = None,
                  pool: Any = None, hyperparameters: dict[str, Any] | None = None,
                  training: dict[str, Any] | None = None, task_questions: Sequence[dict] = (),
                  role_prompts: Sequence[dict] = (), prompt_version: str | None = None,
                  cost: dict[str, Any] | None = None) -> Path:
    """Write `policy.safetensors`, `policy.json` and `checksums.sha256` into `out_dir` (replaced
    atomically: a kill mid-export leaves the previous bundle or none); returns the folder.
    `choice` is the `ChoiceSettings` the design-choice function uses with this bundle; `pool` (a
    `Pool`) or `pool_name` give the model strings recorded in `pool_models`; `task_questions` /
    `role_prompts`: a user's task rows and roles carried in the bundle (`PolicyMeta`);
    `prompt_version`: the roles' prompt version (default: `extra["prompt_version"]`, else the
    role family's current one)."""
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
        prompt_version=prompt_version or extra.get("prompt_version") or _prompt_version(family),
        pool_models=_pool_models(pool, pool_name),
        hyperparameters=dict(hyperparameters) if hyperparameters else {"policy": policy.cfg.to_dict(),
                                                                        "choice": choice_d},
        training=dict(training) if training else {k: v for k, v in extra.items() if k not in ("task", "prompt_version")},
        task_questions=[dict(r) for r in task_questions], role_prompts=[dict(r) for r in role_prompts],
        cost=dict(cost or {}),
    )
    if bool(meta.cost) != (getattr(fb, "cost_range", None) is not None):
        raise ValueError("export_policy: a cost grid goes with a cost-conditioned policy (and only with one)")
    import tempfile


    out = Path(out_dir)
    check_bundle_out(out)  # never replaces a file, the current folder or a folder of other files
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    _check_finite(state)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))  # a new folder: ours
    try:
        (tmp / WEIGHTS).write_bytes(safetensors_bytes(state, {"format": BUNDLE_FORMAT, "version": str(BUNDLE_VERSION)}))
        text = json.dumps(json_safe(asdict(meta)), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
        (tmp / META).write_text(text, encoding="utf-8")
        (tmp / EMBEDDINGS).write_bytes(_embeddings_bytes(builder, meta))
        sums = "".join(f"{_sha256(tmp / name)}  {name}\n" for name in BUNDLE_FILES)
        (tmp / CHECKSUMS).write_text(sums, encoding="utf-8")
        _replace_bundle(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only the folder made above (gone after a replace)
    return out


def texts_digest(roles: Sequence[str], profiles: Sequence[str]) -> str:
    """sha256 of the texts a bundle's stored embeddings embed (role descriptions, model profiles)."""
    text = json.dumps({"roles": list(roles), "llms": list(profiles)}, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _embeddings_bytes(builder: Any, meta: PolicyMeta) -> bytes:
    """`EMBEDDINGS` of an export: the builder's `DescriptionEmbeddings` (what its role and LLM
    features were built from), computed with its embedder when it holds none."""
    emb = getattr(builder, "embeddings", None)
    roles, profiles = meta.description_texts()
    if emb is None:
        emb_role, emb_llm = builder.features.embed_texts(roles), builder.features.embed_texts(profiles)
    else:
        emb_role, emb_llm = emb.role, emb.llm
    state = {"role": emb_role.detach().float().cpu().contiguous(), "llm": emb_llm.detach().float().cpu().contiguous()}
    _check_finite(state)
    return safetensors_bytes(state, {"format": EMBEDDINGS_FORMAT, "embedder": meta.embedder,
                                     "texts_sha256": texts_digest(roles, profiles)})


def read_embeddings(bundle_dir: str | Path, meta: PolicyMeta):
    """The bundle's stored `policy.graph.DescriptionEmbeddings` (verified: call after
    `read_meta`), or None for a bundle written before them. A file whose shapes, embedder or
    texts are not the manifest's, or whose values are not finite, is refused (UserError)."""
    import torch
    from safetensors import safe_open

    from hieramas_gnn.policy.graph import DescriptionEmbeddings  # lazy: loads torch

    path = Path(bundle_dir) / EMBEDDINGS
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            info = dict(fh.metadata() or {})
            names = list(fh.keys())
            tensors = {k: fh.get_tensor(k) for k in names}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on bad files
        raise UserError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    roles, profiles = meta.description_texts()
    problems = []
    if info.get("format") != EMBEDDINGS_FORMAT:
        problems.append(f"format is {info.get('format')!r}, expected {EMBEDDINGS_FORMAT!r}")
    if info.get("embedder") != meta.embedder:
        problems.append(f"embedder is {info.get('embedder')!r}, the manifest's is {meta.embedder!r}")
    if info.get("texts_sha256") != texts_digest(roles, profiles):
        problems.append("its texts are not the manifest's role descriptions and model profiles")
    if sorted(tensors) != ["llm", "role"]:
        problems.append(f"tensors are {sorted(tensors)}, expected llm and role")
    else:
        for name, rows in (("role", len(roles)), ("llm", len(profiles))):
            t = tensors[name]
            if t.dtype != torch.float32 or tuple(t.shape) != (rows, meta.embedding_dim):
                problems.append(f"{name} is {str(t.dtype).removeprefix('torch.')} {list(t.shape)}, expected "
                                f"float32 [{rows}, {meta.embedding_dim}]")
            elif not bool(t.isfinite().all()):
                problems.append(f"{name} has non-finite values (NaN/inf)")
    if problems:
        raise UserError(f"{path}: stored embeddings do not fit the bundle ({'; '.join(problems[:3])}); "
                        "re-export the policy")
    return DescriptionEmbeddings(tensors["role"], tensors["llm"])


def _remove_stale_tmp(out: Path) -> None:
    """Remove what an export killed midway left beside `out`: `.<name>.*.tmp` / `.old` folders
    holding nothing but bundle files (anything else in them is left alone)."""
    import os

    for stale in out.parent.glob(f".{out.name}.*"):
        if stale.suffix not in (".tmp", ".old") or not stale.is_dir() or stale.is_symlink():
            continue
        if all(p.name in (*BUNDLE_FILES, CHECKSUMS) and p.is_file() for p in stale.iterdir()):
            for p in stale.iterdir():
                p.unlink()
            os.rmdir(stale)


def _check_finite(state: dict[str, Any]) -> None:
    """Refuse to write a bundle whose weights hold NaN / inf (it would load as unusable)."""
    import torch

    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"the policy's weight {name!r} has non-finite values (NaN/inf; a learning rate "
                            "too large?); no bundle written")


def _replace_bundle(tmp: Path, out: Path) -> None:
    """Move the finished bundle `tmp` to `out`. An existing `out` (checked: empty, or only a
    bundle's files) is moved aside first and its bundle files removed after."""
    import os
    import uuid

    if not out.exists():
        tmp.replace(out)
        return
    old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    out.replace(old)
    tmp.replace(out)
    for name in (*BUNDLE_FILES, CHECKSUMS):
        (old / name).unlink(missing_ok=True)
    os.rmdir(old)  # empty now; a file that appeared meanwhile keeps it (nothing of the user's deleted)


def bundle_digest(bundle_dir: str | Path) -> str:
    """The sha256 a user can pin (`Policy.load(..., sha256=...)`, `--sha256`): of the bundle's
    `checksums.sha256`, which holds the sha256 of each of its files."""
    return _sha256(Path(bundle_dir) / CHECKSUMS)


def check_digest(bundle_dir: str | Path, sha256: str | None) -> None:
    """UserError unless the bundle's digest (`bundle_digest`) is `sha256` (None: no pin)."""
    if sha256 is None:
        return
    verify_bundle(bundle_dir)
    got = bundle_digest(bundle_dir)
    if got != str(sha256).strip().lower():
        raise UserError(f"{bundle_dir}: policy bundle digest is sha256 {got}, not the pinned {sha256}; "
                        "it is not the bundle you pinned (refusing to load it)")


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
        if name not in expected and name not in REQUIRED_FILES:  # a bundle from before the file
            if path.exists():
                raise UserError(f"{path}: the bundle's {CHECKSUMS} has no checksum for this file; the bundle is "
                                "damaged, re-export it")
            continue
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
    if data.get("version") not in READABLE_VERSIONS or isinstance(data.get("version"), bool):
        raise UserError(f"{path}: bundle version {data.get('version')!r} is not supported by this "
                        f"hieramas_gnn {__version__} (reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
                        "re-export the policy from its run folder with `hieramas export --run RUN_DIR --out NEW_DIR`")
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
        meta = PolicyMeta(**data)
    except TypeError as exc:
        raise UserError(f"{path}: missing fields ({exc})") from None
    check_meta_bounds(meta, path)
    if meta.cost:
        meta.cost_grid()  # a malformed grid is refused here, naming the field
    return meta


MAX_BUNDLE_DIM = 100_000
"""Widest input feature / embedding a bundle may declare."""
MAX_BUNDLE_ITEMS = 10_000
"""Most roles, pool models or domain names a bundle may list."""


def check_meta_bounds(meta: PolicyMeta, path: Path) -> None:
    """Every size a manifest declares is an integer in range and every list holds what it should,
    before anything is allocated from them (`hidden: 65536` would ask for gigabytes)."""
    try:
        arch = from_dict(ArchConfig, meta.policy_config, "policy_config")
        problems = [f"policy_config.{name}: {message}" for name, message in arch.check()]
    except ConfigError as exc:
        problems = [str(exc)]
    dims = {"embedding_dim": meta.embedding_dim, "pos_dim": meta.pos_dim, "hint_dim": meta.hint_dim, "id_dim": meta.id_dim}
    if set(meta.input_dims) != {"role", "llm", "query"}:
        problems.append(f"input_dims: must have exactly role, llm, query; got {sorted(meta.input_dims)}")
    dims.update({f"input_dims.{k}": v for k, v in meta.input_dims.items()})
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BUNDLE_DIM:
            problems.append(f"{name}: must be an integer in 0..{MAX_BUNDLE_DIM:,}, got {value!r}"[:160])
    for name in ("roles", "pool", "domain_vocab", "pool_models", "role_prompts"):
        if len(getattr(meta, name)) > MAX_BUNDLE_ITEMS:
            problems.append(f"{name}: more than {MAX_BUNDLE_ITEMS:,} entries")
    if not all(isinstance(r, dict) for r in meta.task_questions):
        problems.append("task_questions: every question must be an object (a row of the task's jsonl file)")
    if not all(isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("description"), str)
               for r in meta.roles):
        problems.append("roles: every role must be an object with a name and a description (strings)")
    if not all(isinstance(m, dict) and isinstance(m.get("name"), str) for m in meta.pool):
        problems.append("pool: every model must be an object with a name (a string)")
    else:
        for i, m in enumerate(meta.pool):
            for key in ("input_cost_per_token", "output_cost_per_token"):
                v = m.get(key)
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                    problems.append(f"pool[{i}].{key}: must be a finite number >= 0, got {v!r}"[:160])
            if not isinstance(m.get("profile", ""), str):
                problems.append(f"pool[{i}].profile: must be a string")
    if not all(isinstance(d, str) for d in meta.domain_vocab):
        problems.append("domain_vocab: must be a list of strings")
    if problems:
        raise UserError(f"{path}: {'; '.join(problems[:3])}{f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''}")


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
    from hieramas_gnn.policy.features import InputDims  # lazy: loads torch
    from hieramas_gnn.policy.gnn import ArchConfig, HieraPolicy  # lazy: loads torch

    meta = read_meta(bundle_dir)
    if pool is not None:
        check_same("pool models", meta.model_names, _names(pool))
    if roles is not None:
        check_same("roles", meta.role_names, _names(roles))
    try:
        policy = HieraPolicy(ArchConfig(**meta.policy_config), InputDims(**meta.input_dims))
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
    from hieramas_gnn.policy.choose import (  # lazy: loads torch
        ChoiceSettings,
        DesignChooser,
    )  # lazy: loads torch

    policy, meta = load_policy(bundle_dir, pool=pool)
    if not meta.choice:
        raise UserError(f"{bundle_dir}: the policy bundle records no design-choice route; re-export it "
                        "with `hieramas train`")
    try:
        settings = ChoiceSettings.from_dict(meta.choice)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{bundle_dir}: bad `choice` in {META}: {exc}") from None
    builder = meta.graph_builder(embedder=embedder, cache_dir=embed_cache,
                                 embeddings=read_embeddings(bundle_dir, meta))
    return DesignChooser(policy, builder, settings, meta.cost_grid()), meta


def check_bundle_out(out: str | Path, others: Mapping[str, str | Path | None] = {}) -> Path:
    """The folder a policy bundle is written to: new, empty, or a bundle (only bundle files).

    Never a file, the current folder or one above it, a folder of other files, nor a folder that
    is (or holds) one of `others`. Returns the absolute path."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {out}: is a file; give a folder for the policy bundle")
    absolute = Path(path).expanduser().resolve()
    if is_within(Path.cwd(), absolute):
        raise UserError(f"--out {out}: is the current folder (or holds it); give a new folder for the bundle")
    check_apart(absolute, "--out", others)
    if path.is_dir():
        theirs = sorted(p.name for p in path.iterdir() if p.name not in (*BUNDLE_FILES, CHECKSUMS))
        if theirs:
            shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
            raise UserError(f"--out {out}: folder holds files that are not a policy bundle's ({shown}); "
                            "give a new or empty folder, or an existing bundle to replace")
    for parent in absolute.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out {out}: {parent} is a file, not a folder")
            break
    return absolute
