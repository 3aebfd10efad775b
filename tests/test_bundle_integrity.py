"""Bundles carry their manifest and checksums; loading refuses anything damaged with a clear
`UserError` (never a traceback from torch), and a bundle from `hieramas train` chooses the same
designs in a fresh process as the in-memory policy that was trained."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from hieramas_gnn.errors import UserError
from hieramas_gnn.bundle import BUNDLE_FILES, CHECKSUMS, EMBEDDINGS, META, WEIGHTS, load_chooser, read_meta
from hieramas_gnn.serve.testing import sim_bundle

ROOT = Path(__file__).resolve().parents[1]


def rewrite_checksums(bundle: Path) -> None:
    """Recompute `checksums.sha256` (to test the checks behind it on a consistent bundle)."""
    lines = [f"{hashlib.sha256((bundle / n).read_bytes()).hexdigest()}  {n}\n" for n in BUNDLE_FILES
             if (bundle / n).exists()]
    (bundle / CHECKSUMS).write_text("".join(lines))


@pytest.fixture
def bundle(tmp_path):
    return sim_bundle(tmp_path / "b")


def test_the_manifest_records_task_roles_pool_embedder_and_route(bundle):
    meta = json.loads((bundle / META).read_text())
    assert meta["format"] == "hieramas-policy" and isinstance(meta["version"], int) and meta["package_version"]
    assert meta["task"] == "synthetic" and meta["family"] == "synthetic" and meta["prompt_version"]
    assert [r["name"] for r in meta["roles"]] == ["planner", "solver", "verifier"]
    assert all(m["litellm_model"].startswith("sim/") and m["input_cost_per_token"] >= 0 for m in meta["pool_models"])
    assert meta["embedder"] == "hashing-32" and meta["embedding_dim"] == 32
    assert meta["choice"]["route"] == "classifier" and meta["hyperparameters"] and meta["training"]
    assert sorted(p.name for p in bundle.iterdir()) == sorted([META, WEIGHTS, EMBEDDINGS, CHECKSUMS])  # nothing executable


@pytest.mark.parametrize("name", [WEIGHTS, META, EMBEDDINGS])
def test_a_flipped_byte_is_reported_as_a_damaged_file(bundle, name):
    data = bytearray((bundle / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / name).write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{name}: file is damaged"):
        load_chooser(bundle)


@pytest.mark.parametrize("name", [WEIGHTS, META, CHECKSUMS])
def test_a_missing_file_is_named(bundle, name):
    (bundle / name).unlink()
    with pytest.raises(UserError, match=rf"(missing file {name}|no {name})"):
        load_chooser(bundle)


def test_a_damaged_checksum_file_is_refused(bundle):
    (bundle / CHECKSUMS).write_text("not a checksum line\n")
    with pytest.raises(UserError, match="damaged checksum line"):
        read_meta(bundle)


def test_nan_weights_are_refused_even_with_matching_checksums(bundle):
    state = load_file(str(bundle / WEIGHTS))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(bundle / WEIGHTS))
    rewrite_checksums(bundle)
    with pytest.raises(UserError, match=rf"weight '{name}' has 1 non-finite"):
        load_chooser(bundle)


def test_a_manifest_field_of_the_wrong_type_is_named(bundle):
    meta = json.loads((bundle / META).read_text())
    meta["embedding_dim"] = "32"
    (bundle / META).write_text(json.dumps(meta))
    rewrite_checksums(bundle)
    with pytest.raises(UserError, match="'embedding_dim' must be int, got str"):
        read_meta(bundle)


def test_the_cli_reports_a_damaged_bundle_with_exit_2_and_no_traceback(bundle):
    data = bytearray((bundle / WEIGHTS).read_bytes())
    data[-3] ^= 0xFF
    (bundle / WEIGHTS).write_bytes(bytes(data))
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "hieramas_gnn.cli", "serve", "--policy", str(bundle), "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "file is damaged" in proc.stderr and "Traceback" not in proc.stderr


def test_a_trained_bundle_chooses_the_same_designs_in_a_fresh_process(tmp_path):
    from hieramas_gnn.commands.train import train_from_config
    from hieramas_gnn.tasks import get_task
    from tests.test_pipeline import ROUTE_ARGS, _client
    from tests.test_train_stage1 import _cfg

    result = train_from_config(_cfg(tmp_path, "topology.method=classifier", *ROUTE_ARGS), client=_client())
    ids = [q.id for q in get_task("synthetic").load(None, "test", limit=6)]
    code = ("import json, sys\nfrom hieramas_gnn.bundle import load_chooser\nfrom hieramas_gnn.tasks import get_task\n"
            "t = get_task('synthetic')\nchooser, _ = load_chooser(sys.argv[1])\n"
            "print(json.dumps([d.to_dict() for d in chooser.designs([t.get(i) for i in sys.argv[2:]])]))\n")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, str(result.bundle), *ids], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    in_memory = result.chooser.designs([get_task("synthetic").get(i) for i in ids])
    assert fresh == [d.to_dict() for d in in_memory]
