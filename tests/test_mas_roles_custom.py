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


# The shipped prompt files keep a hand-written `version` (existing caches stay valid); this lock
# of their content makes an edit without a version bump fail here instead of silently reusing
# cached replies written for the old text. After bumping `version`, update the pair below.
SHIPPED_PROMPTS = {
    "common.yaml": ("c1", "83f1ae9d2e0c"),
    "mmlu/roles.yaml": ("mmlu-v1", "e12e84e990cc"),
    "math/roles.yaml": ("math-v1", "366ad3efdd82"),
    "gsm8k/roles.yaml": ("gsm8k-v1", "882f0165582a"),
    "humaneval/roles.yaml": ("humaneval-v1", "496bf4502aef"),
    "synthetic/roles.yaml": ("synthetic-v1", "742339648370"),
    "general/roles.yaml": ("general-v1", "2ac4feb4d73e"),
}


@pytest.mark.parametrize("rel", sorted(SHIPPED_PROMPTS))
def test_shipped_prompt_files_bump_their_version_when_their_text_changes(rel):
    import hashlib
    import json
    from importlib import resources

    data = yaml.safe_load(resources.files("hieramas_gnn").joinpath("prompts", *rel.split("/")).read_text())
    version = data.pop("version")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    expected_version, expected_digest = SHIPPED_PROMPTS[rel]
    assert (version, digest) == (expected_version, expected_digest), (
        f"prompts/{rel} changed: bump its `version` (it is part of every cache key), then set "
        f"SHIPPED_PROMPTS[{rel!r}] = ({version!r}, {digest!r})")


def test_every_shipped_prompt_file_is_locked():
    from hieramas_gnn.mas.roles import FAMILIES

    assert set(SHIPPED_PROMPTS) == {"common.yaml"} | {f"{f}/roles.yaml" for f in FAMILIES}
