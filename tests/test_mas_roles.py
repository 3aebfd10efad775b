"""Role sets: every family loads, has its roles, descriptions and a versioned prompt set."""

from __future__ import annotations

import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.roles import FAMILIES, get_roleset


def test_mmlu_has_the_eight_experts():
    assert get_roleset("mmlu").names == (
        "knowledgeable_expert", "critic", "mathematician", "psychologist", "historian", "doctor",
        "lawyer", "economist")


def test_math_and_gsm8k_have_analyst_solver_inspector():
    for fam in ("math", "gsm8k"):
        assert get_roleset(fam).names == ("math_analyst", "math_solver", "math_inspector")


def test_humaneval_has_the_five_roles_and_only_code_writers_are_gradable():
    rs = get_roleset("humaneval")
    assert rs.names == ("project_manager", "algorithm_designer", "programming_expert",
                        "test_analyst", "bug_fixer")
    assert [r.name for r in rs.roles if r.gradable] == ["programming_expert", "bug_fixer"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_role_has_description_and_system_prompt(family):
    for role in get_roleset(family).roles:
        assert len(role.description) > 20 and len(role.system) > 20


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_version_joins_family_and_template_versions(family):
    rs = get_roleset(family)
    assert rs.prompt_version == f"{rs.version}+{rs.templates_version}"


def test_unknown_family_is_a_user_error():
    with pytest.raises(UserError, match="unknown role family 'poetry'"):
        get_roleset("poetry")


def test_unknown_role_is_a_user_error():
    with pytest.raises(UserError, match="unknown role 'bard'"):
        get_roleset("mmlu").get("bard")
