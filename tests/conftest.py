"""Test-wide settings: offline environment, temp folders, and the `shared_data` fixture.

Tests that read ../shared/data use the `shared_data` fixture (or `require_shared(...)`): they skip
with a clear reason when it is absent, and fail when CI=true (so CI can never silently skip them).

Each pytest process (and each xdist worker, nested inside its controller's) makes one temp folder,
`hieramas-tests-*`, holding TMPDIR (so pytest's `tmp_path` roots too) and the wandb folders; it is
removed when the process ends (`HIERAMAS_KEEP_TEST_TMP=1` keeps it for debugging).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Before anything imports litellm / HF / wandb / PyG.
_TMP = Path(tempfile.mkdtemp(prefix="hieramas-tests-"))
_OWNER = os.getpid()  # forked children (mutmut's workers) share the folder and leave it to the owner
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
# One torch / OpenMP thread per test process (and the subprocesses tests start): the policies in
# the tests are tiny, and `make test` runs 2 xdist workers on 2 cores, where a second intra-op
# thread per worker only spins (measured: tests/test_policy_slots.py + tests/test_learning.py took
# 14x the CPU with 2 threads as with 1 on the loaded 2-core machine). Training and serving set
# their own thread count (`run.threads`, `--torch-threads`), as they do outside the tests.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
_TMP_VARS = ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "TMPDIR")
_BEFORE = {var: os.environ.get(var) for var in _TMP_VARS}


def _make_temp_folders() -> None:
    """Point TMPDIR and the wandb folders into `_TMP` and create them (again, for a second pytest
    session in the same process, as mutmut runs them)."""
    for var in _TMP_VARS:
        os.environ[var] = str(_TMP / ("tmp" if var == "TMPDIR" else var.lower()))
        os.makedirs(os.environ[var], exist_ok=True)
    tempfile.tempdir = None  # re-read TMPDIR


_make_temp_folders()

import pytest  # noqa: E402

from hieramas_gnn.paths import shared_data_dir  # noqa: E402


def require_shared(*relpaths: str) -> Path:
    """Path to ../shared/data; skip when it (or a named file) is absent, fail under CI=true."""
    root = shared_data_dir()
    missing = [p for p in relpaths if not (root / p).exists()] if root.exists() else [str(root)]
    if missing:
        reason = f"../shared/data not available here (missing: {', '.join(missing)})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}: shared-data tests may not skip in CI")
        pytest.skip(reason)
    return root


def pytest_configure(config) -> None:
    _make_temp_folders()
    torch = sys.modules.get("torch")  # imported before the variables above were read (a plugin,
    if torch is not None:             # an earlier pytest session in this process): same rule
        torch.set_num_threads(1)


def _remove_temp_folder() -> None:
    if os.getpid() != _OWNER or os.environ.get("HIERAMAS_KEEP_TEST_TMP", "") not in ("", "0"):
        return
    shutil.rmtree(_TMP, ignore_errors=True)
    for var, value in _BEFORE.items():  # a later session in this process starts from the real temp dir
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    tempfile.tempdir = None


atexit.register(_remove_temp_folder)


def pytest_unconfigure(config) -> None:
    """Remove this process's temp folder: no pytest run leaves a `hieramas-tests-*` folder behind."""
    _remove_temp_folder()


@pytest.fixture(autouse=True)
def _fresh_answer_memo() -> None:
    """Every test starts with an empty memo of extracted answers and grades (`mas.supernode.ANSWERS`,
    process-wide): a test that replaces a task's `score` or `extract` sees its own calls, whatever
    ran before it on the same worker."""
    memo = sys.modules.get("hieramas_gnn.mas.supernode")
    if memo is not None:
        memo.ANSWERS.clear()


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder (skips when absent; fails when CI=true)."""
    return require_shared()



@pytest.hookimpl(trylast=True)  # after xdist's own hook
def pytest_collection_modifyitems(config, items) -> None:
    """`--dist loadgroup` (`make test`): tests of one `xdist_group` run on one xdist worker.

    Every test that uses a module-scoped fixture of its own module (a trained bundle, a demo
    run, a fitted report) joins that module's group, so the fixture is built once per run, not
    once per worker. xdist 3.8 marks a group by appending `@name` to `item._nodeid`, which
    pytest 9 no longer reads (the node id lives in `item._id`), so groups were silently
    ignored; the suffix is set here where xdist's did not take."""
    if not getattr(config.option, "loadgroup", False):  # set in xdist workers under --dist loadgroup
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # another pytest: xdist's own suffix works there
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.nodeid.split("::", 1)[0]
            info = getattr(item, "_fixtureinfo", None)
            if info is not None and any(d.scope in ("module", "package") and d.baseid == module
                                        for name in info.names_closure
                                        for d in info.name2fixturedefs.get(name, ())):
                item.add_marker(pytest.mark.xdist_group(module))
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")
