"""Fixtures of the reliability suite."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.reliability.hostile import make_target


@pytest.fixture
def host(tmp_path: Path) -> tuple[Path, Path, str]:
    """(a real rollout cache outside the sandbox, its folder, a unique file name)."""
    outside = tmp_path / "outside"
    return make_target(outside), outside, "hx-" + uuid.uuid4().hex[:10]
