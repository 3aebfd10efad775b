"""The `hieramas` entry point: help works, nothing heavy happens at import."""

import subprocess
import sys


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "hieramas_gnn.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: hieramas" in out.stdout


def test_import_has_no_side_effects():
    code = "import sys, hieramas_gnn, hieramas_gnn.cli; print(sorted(m for m in ('litellm','torch','wandb') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
