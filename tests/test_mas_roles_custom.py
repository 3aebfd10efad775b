"""Custom roles from a YAML file: validation errors name the field; the version is a content hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.roles import get_roleset

ROLES = [
    {"name": "skeptic", "description": "Doubts every claim.", "system": "You are a skeptic.", "gradable": True},
    {"name": "scribe", "description": "Writes notes.", "system": "You take notes.", "gradable": False},
]


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_roles_file_is_a_roleset(tmp_path):
    rs = get_roleset(str(_write(tmp_path / "roles.yaml", {"roles": ROLES})))
    assert rs.names == ("skeptic", "scribe")
    assert rs.get("scribe").gradable is False
    assert rs.prompt_version.startswith("custom-")


def test_editing_any_prompt_changes_the_prompt_version(tmp_path):
    path = _write(tmp_path / "roles.yaml", {"roles": ROLES})
    before = get_roleset(str(path)).prompt_version
    _write(path, {"roles": [{**ROLES[0], "system": "You are a very skeptical reviewer."}, ROLES[1]]})
    assert get_roleset(str(path)).prompt_version != before


def test_same_content_elsewhere_has_the_same_version(tmp_path):
    a = get_roleset(str(_write(tmp_path / "a.yaml", {"roles": ROLES})))
    b = get_roleset(str(_write(tmp_path / "b.yml", {"name": "mine", "roles": ROLES})))
    assert a.prompt_version == b.prompt_version


@pytest.mark.parametrize("roles, message", [
    ([{k: v for k, v in ROLES[0].items() if k != "system"}], r"roles\[0\]\.system: missing"),
    ([{**ROLES[0], "gradable": "yes"}], r"roles\[0\]\.gradable: expected true/false"),
    ([{**ROLES[0], "description": ""}], r"roles\[0\]\.description: must be a non-empty string"),
    ([{**ROLES[0], "name": "two words"}], r"roles\[0\]\.name: 'two words' may only use"),
    ([{**ROLES[0], "temperature": 0.2}], r"roles\[0\]\.temperature: unknown field"),
    ([ROLES[0], ROLES[0]], r"roles\[1\]\.name: duplicate role 'skeptic' \(also roles\[0\]\)"),
    ([], r"roles: must be a non-empty list"),
])
def test_invalid_roles_name_the_file_and_field(tmp_path, roles, message):
    path = _write(tmp_path / "bad.yaml", {"roles": roles})
    with pytest.raises(UserError, match=message) as err:
        get_roleset(str(path))
    assert "bad.yaml" in str(err.value)


def test_missing_roles_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="roles file .*nope.yaml does not exist"):
        get_roleset(str(tmp_path / "nope.yaml"))


def test_builtin_general_family_exists_for_user_tasks():
    assert get_roleset("general").names == ("analyst", "solver", "critic")
