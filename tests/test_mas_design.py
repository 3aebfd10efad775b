"""Design: validation errors, JSON round-trip, networkx views, topology generators."""

from __future__ import annotations

import json
from dataclasses import replace

import networkx as nx
import numpy as np
import pytest

from hieramas_gnn.errors import UserError
from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.mas.roles import get_roleset
from hieramas_gnn.mas.topologies import (chain, complete, layered, random_dag, random_design,
                                         star, topology)

M3 = Mixture(("a", "b", "c"), "a")
M1 = Mixture(("b",), "b")


def _design(edges=((0, 1), (1, 2)), mixtures=(M3, M1, M3), decision="a", decision_inputs="sinks") -> Design:
    return Design(("solver", "verifier", "generalist"), mixtures, edges, decision, decision_inputs)


def test_cycle_is_rejected_naming_the_roles():
    with pytest.raises(UserError, match="cycle: solver -> verifier -> generalist -> solver"):
        _design(edges=((0, 1), (1, 2), (2, 0)))


def test_edge_out_of_range_is_rejected():
    with pytest.raises(UserError, match=r"edge \(0, 3\) out of range for 3 roles"):
        _design(edges=((0, 3),))


def test_self_loop_is_rejected():
    with pytest.raises(UserError, match="self loop on role 1"):
        _design(edges=((1, 1),))


def test_duplicate_edge_is_rejected():
    with pytest.raises(UserError, match="duplicate edge"):
        _design(edges=((0, 1), (0, 1)))


def test_mixture_with_zero_proposers_is_rejected():
    with pytest.raises(UserError, match="k >= 1"):
        Mixture((), "a")


def test_mixture_count_must_match_roles():
    with pytest.raises(UserError, match="2 mixtures for 3 roles"):
        _design(mixtures=(M3, M1))


def test_unknown_role_is_rejected_against_roleset():
    d = Design(("solver", "astrologer"), (M1, M1), (), "a")
    with pytest.raises(UserError, match="unknown role 'astrologer'"):
        d.validate(roleset=get_roleset("synthetic"))


def test_unknown_model_is_rejected_against_pool():
    with pytest.raises(UserError, match=r"mixtures\[0\] \(solver\): unknown model 'c'"):
        _design().validate(models=["a", "b"])


def test_unknown_decision_model_is_rejected():
    with pytest.raises(UserError, match="design.decision: unknown model 'z'"):
        _design(decision="z").validate(models=["a", "b", "c"])


def test_validate_accepts_known_roles_and_models():
    d = _design()
    assert d.validate(get_roleset("synthetic"), ["a", "b", "c"]) is d  # returns the design itself


def test_json_round_trip_keeps_the_design():
    d = _design(mixtures=(M3, None, M1), edges=((0, 1), (0, 2), (1, 2)))
    assert Design.from_json(d.to_json()) == d


def test_json_carries_schema_version_and_rejects_others():
    data = json.loads(_design().to_json())
    assert data["schema_version"] == 2
    data["schema_version"] = 99
    with pytest.raises(UserError, match="schema_version"):
        Design.from_dict(data)


def test_json_with_bad_mixture_names_the_field():
    data = json.loads(_design().to_json())
    data["mixtures"][1] = {"proposers": "a"}
    with pytest.raises(UserError, match=r"design.mixtures\[1\]"):
        Design.from_dict(data)


def test_skipped_role_is_bridged_in_the_active_dag():
    d = _design(mixtures=(M3, None, M1))
    assert list(d.active_dag().edges) == [(0, 2)]
    assert d.predecessors() == {0: [], 2: [0]}
    assert d.sinks() == [2]


def test_all_skipped_design_has_no_sinks():
    d = _design(mixtures=(None, None, None))
    assert d.sinks() == [] and d.total_calls() == 1


def test_levels_are_topological_generations():
    d = Design(tuple("abcde"), (M1,) * 5, layered(5, [2, 2, 1]), "a")
    assert d.levels() == [[0, 1], [2, 3], [4]]


def test_critical_path_counts_synth_step_and_decision():
    path, length = _design().critical_path(call_ms=50)
    assert path == [0, 1, 2]
    assert length == pytest.approx(50 * (2 + 1 + 2 + 1))


def test_total_calls_counts_proposers_synths_and_decision():
    assert _design().total_calls() == 4 + 1 + 4 + 1


@pytest.mark.parametrize("seed", range(20))
def test_random_dag_is_acyclic_connected_with_target_density(seed):
    rng = np.random.default_rng(seed)
    n, density = 6, 0.4
    edges = random_dag(n, density, rng)
    g = nx.DiGraph(list(edges))
    g.add_nodes_from(range(n))
    assert nx.is_directed_acyclic_graph(g) and nx.is_weakly_connected(g)
    assert len(edges) == max(n - 1, round(density * n * (n - 1) / 2))


def test_random_dag_is_reproducible_from_the_seed():
    a = random_dag(7, 0.5, np.random.default_rng(3))
    b = random_dag(7, 0.5, np.random.default_rng(3))
    assert a == b


def test_fixed_topologies_have_their_shapes():
    assert chain(3) == ((0, 1), (1, 2))
    assert star(3) == ((0, 1), (0, 2))
    assert len(complete(5)) == 10
    assert layered(4, [1, 3]) == ((0, 1), (0, 2), (0, 3))


def test_unknown_topology_names_the_known_ones():
    with pytest.raises(UserError, match="unknown topology 'ring'"):
        topology("ring", 4)


def test_random_design_is_valid_against_roleset_and_models():
    rs = get_roleset("mmlu")
    d = random_design(rs.names, ["a", "b", "c"], np.random.default_rng(0), p_skip=0.3)
    assert d.validate(rs, ["a", "b", "c"]) is d
    assert d.roles == tuple(rs.names) and len(d.mixtures) == len(rs.names)
    used = {m for mix in d.mixtures if mix is not None for m in (*mix.proposers, mix.synthesizer)}
    assert used and used <= {"a", "b", "c"} and d.decision in {"a", "b", "c"}
    assert len(d.edges) >= d.n - 1 and sorted(d.topological_order()) == list(range(d.n))  # connected DAG


def test_draw_design_writes_png(tmp_path):
    from hieramas_gnn.mas.draw import draw_design

    out = draw_design(_design(mixtures=(M3, None, M1)), tmp_path / "d.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_with_missing_field_names_it():
    data = json.loads(_design().to_json())
    del data["decision"]
    with pytest.raises(UserError, match="design.decision: missing"):
        Design.from_dict(data)


def test_invalid_json_text_is_a_user_error():
    with pytest.raises(UserError, match="not valid JSON"):
        Design.from_json("{roles: ")


def test_decision_inputs_round_trip_through_json():
    d = _design(mixtures=(M3, None, M1), edges=((0, 2),), decision_inputs="all")
    back = Design.from_json(d.to_json())
    assert back == d and back.decision_inputs == "all"


def test_a_version_1_design_loads_with_the_decision_reading_the_sinks():
    data = json.loads(_design().to_json())
    data["schema_version"] = 1
    del data["decision_inputs"]
    assert Design.from_dict(data).decision_inputs == "sinks"


def test_unknown_decision_inputs_is_named():
    with pytest.raises(UserError, match=r"design.decision_inputs: must be one of"):
        _design(decision_inputs="some")


def test_decision_reads_all_active_roles_or_only_the_sinks():
    d = _design(mixtures=(M3, None, M1), edges=((0, 2),))
    assert d.decision_reads() == [2]
    assert replace(d, decision_inputs="all").decision_reads() == [0, 2]


# ---------------------------------------------------------------- the plurality synthesizer


def test_plurality_mixture_makes_no_synthesis_call_and_round_trips():
    from hieramas_gnn.mas.design import PLURALITY

    vote = Mixture(("a", "b", "c"), PLURALITY)
    assert vote.plurality and vote.calls() == 3 and not Mixture(("a",), PLURALITY).plurality
    d = _design(mixtures=(vote, None, None), edges=(), decision_inputs="all")
    assert Design.from_json(d.to_json()) == d
    d.validate(get_roleset("synthetic"), ["a", "b", "c"])  # `plurality` is not a pool model to check
    assert d.lone() == 0 and d.summary() == "plurality vote of 3 [a, b, c]"
    assert _design(mixtures=(vote, None, None), edges=()).lone() is None  # decision reads the sinks


def test_plurality_is_no_proposer():
    with pytest.raises(UserError, match="plurality synthesizer, not a model"):
        Mixture(("a", "plurality"), "a")
