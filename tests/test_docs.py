"""The docs stay true: generated references are current, and the tutorials run as written.

Convention: a page opts in with a first line `<!-- doc-test: clone -->` or
`<!-- doc-test: empty -->`. Every fenced block of such a page whose info string is exactly
`bash` is a command a reader types; the page's `bash` blocks are joined, in order, into one
script run by `bash -euo pipefail` (one shell, as a reader would use). `sh`, `console`, `text`
and `yaml` blocks are shown, never run (installation steps, outputs, file contents). Pages
without the marker (reference pages whose `bash` blocks need a real key or data) are not run.

A page may also state what its commands must print: each `<!-- doc-test: expect TEXT -->` line
is a TEXT the run's stdout or stderr must contain (e.g. that `eval` took the held-out questions).

Where a page runs: `clone` in a temporary stand-in for a fresh clone (links to the repository's
tracked top-level entries; `runs/` and every output are new), `empty` in an empty temporary
folder. `hieramas` on PATH runs this checkout's package and `python` is the interpreter running
the tests (as in an activated virtual environment); `PORT` is a free port for pages that start
a server.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"\A<!-- doc-test: (clone|empty) -->")
RUNNABLE = sorted(p.name for p in DOCS.glob("*.md") if MARKER.match(p.read_text(encoding="utf-8")))
EXPECT = re.compile(r"^<!-- doc-test: expect (.+?) -->[ \t]*$", re.M)


def bash_blocks(text: str) -> list[str]:
    """The `bash` blocks of a page, in order."""
    return [m.group(1) for m in BLOCK.finditer(text)]


def test_block_extraction_takes_only_bash_blocks():
    page = "```sh\npip install x\n```\n```bash\necho one\n```\n```console\n$ nope\n```\n```bash\necho two\n```\n"
    assert bash_blocks(page) == ["echo one\n", "echo two\n"]


def test_the_tutorials_are_run_and_have_commands():
    assert {"QUICKSTART.md", "TUTORIAL_OWN_TASK.md"} <= set(RUNNABLE)
    assert all(bash_blocks((DOCS / page).read_text(encoding="utf-8")) for page in RUNNABLE)


PROSE_PAGES = sorted({*RUNNABLE, "SERVING.md"})
INLINE_COMMAND = re.compile(r"`(hieramas [^`]*--[^`]*)`")


def prose_commands(text: str) -> list[str]:
    """The `hieramas ... --flag ...` commands a page names in running text (inline code spans
    with at least one flag; a `...` placeholder is left out), outside of fenced blocks."""
    outside = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.M | re.S)
    return [c for c in INLINE_COMMAND.findall(outside) if "..." not in c and "…" not in c]


@pytest.mark.parametrize("page", PROSE_PAGES)
def test_commands_named_in_prose_parse(page):
    """A command the prose names (like `hieramas demo --quick`) is one the CLI takes as written:
    its subcommand and flags exist and take the values shown (what runs them: the page's blocks,
    or tests/test_demo.py for `hieramas demo --quick`)."""
    import shlex

    from hieramas_gnn.cli import build_parser

    named = prose_commands((DOCS / page).read_text(encoding="utf-8"))
    parser = build_parser()
    for command in named:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"{page}: `{command}` is not a command the CLI takes")


def test_prose_commands_are_found():
    text = "Run `hieramas demo --quick` (or `hieramas demo`).\n```bash\nhieramas x --y\n```\n`hieramas a --b ...`"
    assert prose_commands(text) == ["hieramas demo --quick"]
    assert "hieramas demo --quick" in prose_commands((DOCS / "QUICKSTART.md").read_text(encoding="utf-8"))


def test_generated_references_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr + "\nrun: python scripts/gen_docs.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clone_standin(where: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for top in sorted({line.split("/", 1)[0] for line in tracked.splitlines() if line}):
        if (ROOT / top).exists():
            (where / top).symlink_to(ROOT / top)


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE)
def test_page_runs_as_written(page, tmp_path):
    text = (DOCS / page).read_text(encoding="utf-8")
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    if MARKER.match(text).group(1) == "clone":
        _clone_standin(work)
    shim = bin_dir / "hieramas"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hieramas_gnn.cli "$@"\n')
    shim.chmod(0o755)
    script = "\n".join(f"echo '>>> block {i + 1}'\n{b}" for i, b in enumerate(bash_blocks(text)))
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])  # `python` too
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT),
           "PORT": str(_free_port()), "WANDB_MODE": "offline"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{page} failed:\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    printed = proc.stdout + proc.stderr
    missing = [text for text in EXPECT.findall(text) if text not in printed]
    assert not missing, f"{page}: the run did not print {missing}:\n{printed[-6000:]}"


def test_the_readme_stays_a_short_product_page():
    """The README is the product page (results live in docs/): at most 150 lines, the two
    commands, and a link to the results."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "make demo" in text and "make test" in text and "docs/RESULTS.md" in text
