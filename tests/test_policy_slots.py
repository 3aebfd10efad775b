"""Proposer slots (a learned number of proposers, HieraMAS's "model or skip" per worker slot) and
the policy's decision inputs: exact log-probs, re-scoring equal to sampling, reachability."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch

from hieramas_gnn.mas.design import Design, Mixture
from hieramas_gnn.policy.sample import sample
from hieramas_gnn.policy.testing import toy_builder, toy_policy, toy_queries


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _all_mixtures(names, slots):
    out = [None]
    for k in range(1, slots + 1):
        for props in itertools.permutations(names, k):
            out += [Mixture(props, s) for s in names] if k > 1 else [Mixture(props, props[0])]
    return out


def _total_probability(builder, policy, mixtures) -> float:
    """Σ π(mixture) over `mixtures` for the one role of a one-query batch."""
    batch, total = builder.batch(toy_queries(1)), 0.0
    for mx in mixtures:
        d = Design(tuple(builder.role_names), (mx,), (), "model0")
        with torch.no_grad():
            total += float(sample(policy, batch, decision="model0", mode="mixture", designs=[d]).log_prob.exp())
    return total


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_slot_mixture_probabilities_sum_to_one_over_all_choices(slots):
    builder = toy_builder(n_roles=1, n_models=3)
    policy = toy_policy(builder, proposer_slots=slots).eval()
    assert _total_probability(builder, policy, _all_mixtures(builder.llm_names, slots)) == pytest.approx(1.0, abs=1e-5)


def test_more_proposers_than_slots_has_zero_probability():
    builder = toy_builder(n_roles=1, n_models=3)
    policy, batch = toy_policy(builder, proposer_slots=2).eval(), builder.batch(toy_queries(1))
    d = Design(tuple(builder.role_names), (Mixture(("model0", "model1", "model2"), "model0"),), (), "model0")
    with torch.no_grad():
        lp = sample(policy, batch, decision="model0", mode="mixture", designs=[d]).log_prob
    assert float(lp) == float("-inf")


@pytest.mark.parametrize("mode", ["joint", "mixture"])
def test_slot_rescoring_equals_sampling_log_prob(mode):
    builder = toy_builder(n_roles=4, n_models=4)
    policy, batch = toy_policy(builder, proposer_slots=3).eval(), builder.batch(toy_queries(6))
    kw = {"dags": [[(0, 1)], [], [(1, 3)], [], [(2, 1)], []]} if mode == "mixture" else {}
    out = sample(policy, batch, decision="model0", mode=mode, generator=gen(4), temperature=0.8, **kw)
    again = sample(policy, batch, decision="model0", mode=mode, designs=out.designs, temperature=0.8)
    assert torch.allclose(out.log_prob, again.log_prob, atol=1e-6)
    assert torch.allclose(out.entropy, again.entropy, atol=1e-6)
    assert again.designs == out.designs


def test_slot_sample_frequencies_match_log_probs():
    builder = toy_builder(n_roles=1, n_models=3)
    policy = toy_policy(builder, proposer_slots=2, allow_skip=False).eval()
    batch = builder.batch([toy_queries(1)[0]] * 3000)
    out = sample(policy, batch, decision="model0", mode="mixture", dags=[()] * 3000, generator=gen(2))
    keys = [d.mixtures for d in out.designs]
    counts = Counter(keys)
    for key, c in counts.items():
        i = keys.index(key)
        assert c / len(keys) == pytest.approx(float(out.log_prob[i].detach().exp()), abs=0.03)


def test_slots_reach_every_number_of_proposers():
    builder = toy_builder(n_roles=3, n_models=4)
    policy = toy_policy(builder, proposer_slots=3, allow_skip=False).eval()
    out = sample(policy, builder.batch(toy_queries(40)), decision="model0", generator=gen(0), temperature=3.0)
    ks = {mx.k for d in out.designs for mx in d.mixtures}
    assert ks == {1, 2, 3}
    assert all(mx.synthesizer == mx.proposers[0] for d in out.designs for mx in d.mixtures if mx.k == 1)


def test_stop_head_gets_a_gradient_from_the_log_prob():
    builder = toy_builder(n_roles=2, n_models=3)
    policy = toy_policy(builder, proposer_slots=2)
    out = sample(policy, builder.batch(toy_queries(8)), decision="model0", generator=gen(1), temperature=2.0)
    out.log_prob.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.mixture_head.stop.parameters())


def test_without_slots_there_is_no_stop_head_and_k_is_fixed():
    builder = toy_builder(n_roles=2, n_models=3)
    policy = toy_policy(builder, k_proposers=2, allow_skip=False)
    assert policy.mixture_head.stop is None
    out = sample(policy, builder.batch(toy_queries(5)), decision="model0", generator=gen(0))
    assert all(mx.k == 2 for d in out.designs for mx in d.mixtures)


def test_policy_decision_inputs_go_into_the_sampled_designs():
    builder = toy_builder(n_roles=2, n_models=3)
    policy = toy_policy(builder, decision_inputs="all")
    out = sample(policy, builder.batch(toy_queries(3)), decision="model0", generator=gen(0))
    assert {d.decision_inputs for d in out.designs} == {"all"}


def test_unknown_decision_inputs_option_is_rejected():
    with pytest.raises(ValueError, match="decision_inputs"):
        toy_policy(toy_builder(n_roles=1, n_models=2), decision_inputs="everything")


def test_stop_is_a_bernoulli_of_its_own_whatever_the_pool_size():
    """With a zero stop logit a later slot stops half the time, for 3 or 30 models (a stop
    that were one category among M + 1 would stop 1/(M + 1) of the time)."""
    import torch

    from hieramas_gnn.policy.distributions import sample_mixtures

    for m in (3, 30):
        n = 4000
        prop, synth, skip, stop = torch.zeros(n, m), torch.zeros(n, m), torch.zeros(n), torch.zeros(n)
        gen = torch.Generator().manual_seed(0)
        choice = sample_mixtures(prop, synth, skip, 1, False, gen, greedy=False, stop=stop, slots=3)
        k = (choice.proposers >= 0).sum(-1).float()
        assert abs(float((k == 1).float().mean()) - 0.5) < 0.03
        assert abs(float((k == 3).float().mean()) - 0.25) < 0.03


# ---------------------------------------------------------------- the plurality synthesizer


@pytest.mark.parametrize("slots", [2, 3])
def test_with_plurality_the_mixture_probabilities_still_sum_to_one(slots):
    """The plurality synthesizer is one more synthesizer choice: every mixture, votes included."""
    from hieramas_gnn.mas.design import PLURALITY

    builder = toy_builder(n_roles=1, n_models=3)
    policy = toy_policy(builder, proposer_slots=slots, plurality=True).eval()
    mixtures = _all_mixtures(builder.llm_names, slots)
    mixtures += list(dict.fromkeys(Mixture(mx.proposers, PLURALITY) for mx in mixtures if mx is not None and mx.k > 1))
    assert _total_probability(builder, policy, mixtures) == pytest.approx(1.0, abs=1e-5)


def test_plurality_is_sampled_and_rescored_with_the_same_log_prob():
    from hieramas_gnn.mas.design import PLURALITY

    builder = toy_builder(n_roles=3, n_models=4)
    policy = toy_policy(builder, proposer_slots=4, plurality=True).eval()
    batch = builder.batch(toy_queries(64))
    out = sample(policy, batch, decision="model0", mode="mixture", dags=[()] * 64, generator=gen(1), temperature=2.0)
    voted = [mx for d in out.designs for mx in d.mixtures if mx is not None and mx.plurality]
    assert voted and all(mx.synthesizer == PLURALITY and mx.k > 1 for mx in voted)
    again = sample(policy, batch, decision="model0", mode="mixture", designs=out.designs, temperature=2.0)
    assert torch.allclose(out.log_prob, again.log_prob, atol=1e-6)


def test_a_policy_without_plurality_refuses_a_plurality_design_and_loads_old_weights():
    from hieramas_gnn.mas.design import PLURALITY

    builder = toy_builder(n_roles=1, n_models=3)
    old, new = toy_policy(builder, proposer_slots=3), toy_policy(builder, proposer_slots=3, plurality=True)
    assert old.mixture_head.vote is None and new.mixture_head.vote is not None
    assert set(old.state_dict()) < set(new.state_dict())  # one head more; an old checkpoint has none of it
    d = Design(tuple(builder.role_names), (Mixture(("model0", "model1", "model2"), PLURALITY),), (), "model0")
    with pytest.raises(ValueError, match="plurality"):
        sample(old, builder.batch(toy_queries(1)), decision="model0", mode="mixture", designs=[d])


@pytest.mark.parametrize("slots", [2, 4])
def test_per_slot_stop_probabilities_sum_to_one(slots):
    builder = toy_builder(n_roles=1, n_models=4)
    policy = toy_policy(builder, proposer_slots=slots, stop_per_slot=True).eval()
    enc = policy.encode(builder.batch(toy_queries(1)), torch.zeros(2, 0, dtype=torch.long))
    assert policy.mixture_head.stop_logit(enc).shape == (1, slots)
    assert _total_probability(builder, policy, _all_mixtures(builder.llm_names, slots)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("per_slot, reached", [(True, True), (False, False)])
def test_only_a_per_slot_stop_makes_a_vote_of_5_of_7_the_greedy_design(per_slot, reached):
    """Cloning "5 of 7 models" into one shared stop probability gives p = 1/5: at the 6th slot the
    best of the 2 models left (log-prob >= log 1/2) beats stopping, so greedy decoding takes all 7;
    a stop logit per slot can put the stop exactly after the 5th."""
    from hieramas_gnn.mas.design import PLURALITY
    from hieramas_gnn.train.warm_start import clone

    builder = toy_builder(n_roles=1, n_models=7)
    policy = toy_policy(builder, proposer_slots=7, plurality=True, stop_per_slot=per_slot)
    design = Design(tuple(builder.role_names), (Mixture(tuple(builder.llm_names[:5]), PLURALITY),), (), "model0", "all")
    out = clone(policy, builder, design, toy_queries(8), [()], steps=300)
    assert (out["match"] >= 0.95) is reached
