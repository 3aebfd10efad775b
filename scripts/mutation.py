"""Mutation testing of the core functions with mutmut: each group's listed functions, each mutant
run against the group's covering test files only. See docs/TESTING.md.

    .venv/bin/python scripts/mutation.py list                     # the groups, functions and tests
    .venv/bin/python scripts/mutation.py run [GROUP ...]          # mutate + test (all groups by default)
    .venv/bin/python scripts/mutation.py report [GROUP ...]       # kill rate and survivors per group

A group is run in its own folder `runs/mutation/<group>/` (links to the package, the tests and
the data, and a `pyproject.toml` whose `[tool.mutmut]` names only the group's file and test
files), so mutmut's stats pass (which test calls which function) runs the covering test files
only, never the whole suite, and each group keeps its own cache of results: a rerun only tests
mutants whose function changed. mutmut then runs each mutant against the tests that call it
(`-x`: the first failure kills). `report` counts killed (a test failed; a timeout is listed but not
counted, it may be a hang of the harness) against
all mutants of the listed functions less the equivalent ones written down in `EQUIVALENT` with
their reason; `no tests` and `survived` are not killed. After changing tests, `run --fresh`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "runs" / "mutation"


@dataclass(frozen=True)
class Group:
    """Functions of one module (`Class.method` for methods) and the test files that cover them."""

    module: str
    functions: tuple[str, ...]
    tests: tuple[str, ...]

    @property
    def path(self) -> str:
        return self.module.replace(".", "/") + ".py"

    def globs(self) -> list[str]:
        """mutmut's mutant-name patterns of the listed functions."""
        out = []
        for f in self.functions:
            if "." in f:
                cls, meth = f.split(".")
                out.append(f"{self.module}.x\u01c1{cls}\u01c1{meth}__mutmut_*")
            else:
                out.append(f"{self.module}.x_{f}__mutmut_*")
        return out

    def owns(self, name: str) -> bool:
        for f in self.functions:
            stem = (f"x\u01c1{f.split('.')[0]}\u01c1{f.split('.')[1]}" if "." in f else f"x_{f}")
            if name.startswith(f"{self.module}.{stem}__mutmut_"):
                return True
        return False


GROUPS: dict[str, Group] = {
    "credit": Group("hieramas_gnn.train.credit",
                    ("loss_mask", "reinforce_loss", "MovingAverageBaseline.values", "MovingAverageBaseline.update",
                     "replace_mixture", "counterfactual_jobs", "counterfactual_baseline", "gather_counterfactual"),
                    ("tests/test_credit.py", "tests/test_credit_contract.py", "tests/test_learning.py")),
    "reinforce_step": Group("hieramas_gnn.train.stage1",
                            ("temperature_at", "effective_rewards", "counterfactual_values",
                             "Stage1Trainer.train_step"),
                            ("tests/test_learning.py", "tests/test_counterfactual_draws.py")),
    "rewards": Group("hieramas_gnn.train.rewards",
                     ("shape_reward", "_shaped", "Reward.of_trace", "reward_function", "node_rewards",
                      "system_rewards", "inputs_from_traces"),
                     ("tests/test_rewards.py", "tests/test_reward_contract.py")),
    "sampling": Group("hieramas_gnn.policy.distributions",
                      ("mixture_log_prob", "mixture_entropy", "dag_log_prob"),
                      ("tests/test_policy_sample.py", "tests/test_distribution_reference.py")),  # test_policy_slots.py: minutes per run
    "decision_rules": Group("hieramas_gnn.mas.executor", ("unanimous", "_decide"),
                            ("tests/test_decision_rules.py", "tests/test_mas_executor.py")),
    "cache_key": Group("hieramas_gnn.llm.cache", ("canonical_request", "canonical_json", "request_key"),
                       ("tests/test_cache_key_order.py", "tests/test_llm_cache.py")),
    "paired_stats": Group("hieramas_gnn.stats", ("paired_gap", "unpaired_band", "verdict", "word"),
                          ("tests/test_stats_reference.py",)),
    "replay": Group("hieramas_gnn.backends.replay", ("Replayer.reply", "Replayer.real_reply"),
                    ("tests/test_replay_samples.py", "tests/test_replay_reply.py", "tests/test_outcomes_pool.py")),
    "answers": Group("hieramas_gnn.tasks.answers",
                     ("json_answer", "last_boxed", "numbers_in", "canonical_number", "numbers_equal",
                      "number_from_answer"),
                     ("tests/test_answer_numbers.py", "tests/test_answer_extraction.py",
                      "tests/reliability/test_parsing.py", "tests/test_tasks.py")),
    "splits": Group("hieramas_gnn.tasks.splits",
                    ("stratified_order", "_take", "held_out_domains", "split_questions"),
                    ("tests/test_splits.py", "tests/test_split_draws.py", "tests/test_split_contract.py")),
}

# Mutants that cannot change behaviour, with the reason (checked by reading each one with
# `mutmut show NAME`; names hold for the source they were read on: re-read after a change).
EQUIVALENT: dict[str, str] = {
    # sampling (policy/distributions.py): the tests run on CPU, where a tensor made without
    # `device=` (or with None) is on the device it would be on; GPU runs are not part of the suite
    **{f"hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_{i}": "device=None or left out: the same CPU tensor"
       for i in (11, 14, 30, 36, 39, 44, 46, 51, 53)},
    **{f"hieramas_gnn.policy.distributions.x_mixture_log_prob__mutmut_{i}": "device=None or left out: the same CPU tensor" for i in (22, 26)},
    **{f"hieramas_gnn.policy.distributions.x_mixture_entropy__mutmut_{i}": "device=None or left out: the same CPU tensor" for i in (17, 21, 31, 34)},
    **{f"hieramas_gnn.policy.distributions.x_mixture_log_prob__mutmut_{i}": 'float("-INF") is float("-inf")' for i in (45, 128, 138)},
    "hieramas_gnn.policy.distributions.x_mixture_entropy__mutmut_96": 'float("-INF") is float("-inf")',
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_126": 'float("-INF") is float("-inf")',
    **{f"hieramas_gnn.policy.distributions.x_mixture_log_prob__mutmut_{i}": "dim=+1 instead of -1 on a 2-d tensor: the same axis" for i in (46, 80, 92)},
    **{f"hieramas_gnn.policy.distributions.x_mixture_entropy__mutmut_{i}": "dim=+1 (or argsort's default, -1) on a 2-d tensor: the same axis"
       for i in (8, 10, 65)},
    **{f"hieramas_gnn.policy.distributions.x_mixture_log_prob__mutmut_{i}": "chosen of shape [M]: OR-ed with an [N, M] one-hot it broadcasts "
       "to the same [N, M] mask at the first step, and is all False before it" for i in (23,)},
    "hieramas_gnn.policy.distributions.x_mixture_entropy__mutmut_18": ("chosen of shape [M]: OR-ed with an [N, M] one-hot it broadcasts to "
                                     "the same [N, M] mask at the first step, and is all False before it"),
    "hieramas_gnn.policy.distributions.x_mixture_log_prob__mutmut_5": ("slots > 1 instead of > 0: with one slot the slot sequence is one "
                                     "model and no stop step, the same log-prob as one Plackett-Luce pick "
                                     "(the k check stays off: it reads the unmutated condition)"),
    **{f"hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_{i}": "an upper-case einsum equation: the same contraction" for i in (93, 102)},
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_12": ("the off-diagonal mask in float32 instead of the edge dtype: 0 and 1 "
                                  "are exact, and the product is promoted to the edge dtype"),
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_15": ("the off-diagonal mask in float32 instead of the edge dtype: 0 and 1 "
                                  "are exact, and the product is promoted to the edge dtype"),
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_41": "a position table twice as long: the extra entries are never read",
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_59": "F(empty set) with two columns: only column 0 (the empty set's position) is read",
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_76": "a fill of -1e9 - 1 instead of -1e9: exp of either is 0 beside any logit",
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_113": ("the source index of a node outside T: its term is masked to -inf "
                                   "(~in_t) whatever it reads"),
    "hieramas_gnn.policy.distributions.x_dag_log_prob__mutmut_5": ("n == 1 returns 0 at once: one role has one order and no pair, log-prob 0, "
                                 "what the recursion gives too"),
    **{f"hieramas_gnn.stats.x_paired_gap__mutmut_{i}": (
        "one of the two vectors left without dtype=float: a - b of a float array and any numeric or "
        "bool array is float, the same as with both converted") for i in (3, 5, 7, 9)},
    "hieramas_gnn.stats.x_paired_gap__mutmut_35": 'float("INF") is float("inf")',
    "hieramas_gnn.stats.x_paired_gap__mutmut_38": 'float("NAN") is a NaN as float("nan") is',
    "hieramas_gnn.mas.executor.x__decide__mutmut_1": "the default of `final`: the one caller always passes it",
    **{f"hieramas_gnn.mas.executor.x__decide__mutmut_{i}": (
        "the rest of the decision call's order key: it is the only call whose key starts with "
        "design.n (node indices are below it), so the rest never decides a comparison") for i in (55, 56)},
    "hieramas_gnn.llm.cache.x_canonical_json__mutmut_4": "ensure_ascii=None is falsy: the same as False",
    **{f"hieramas_gnn.llm.cache.x_canonical_request__mutmut_{i}": (
        'split("/") or split("/", 2) instead of split("/", 1): the first part, the provider, is the '
        "same") for i in (23, 26)},
    "hieramas_gnn.tasks.answers.x_canonical_number__mutmut_29": (
        'rstrip("XX.XX") strips X too: a string that reaches it and ends in X is no number either way'),
    "hieramas_gnn.tasks.answers.x_json_answer__mutmut_13": (
        "obj = '' instead of None after a decode error: neither is a dict, the same branch follows"),
    **{f"hieramas_gnn.tasks.answers.x_last_boxed__mutmut_{i}": why for i, why in {
        11: "the scan starts 2 characters before the first \\boxed{ content instead of 1: that character is "
            "the 'd'/'x' of \\boxed/\\fbox or a space, never a brace",
        15: "the scan starts at 0 instead of at the first \\boxed{: braces before it never hold a boxed "
            "start (the skip is a speed-up)",
        20: "max(1, first) instead of max(0, first): first is the index of a \\boxed{ brace (>= 6) or "
            "len(text) - 1 when there is none",
        28: "-2 instead of -1 as the not-a-boxed marker: only `start >= 0` reads it",
        31: "start > 0 instead of >= 0: a boxed content start is at least 7",
        32: "start >= 1 instead of >= 0: a boxed content start is at least 7",
        35: "start >= best[0] instead of >: each brace is popped once, starts never repeat",
        36: "start > best[1] instead of > best[0]: braces nest, so a boxed starting inside the best one "
            "also closes inside it and is never compared after it",
    }.items()},
    **{f"hieramas_gnn.tasks.answers.x_number_from_answer__mutmut_{i}": why for i, why in {
        3: "always rsplit on '=': without one it gives [answer], the same tail",
        7: "rsplit('=') without maxsplit: the last part is the same",
        10: "rsplit('=', 2): the last part is the same",
        11: "[+1] instead of [-1] after rsplit('=', 1) of a string holding '=': two parts, the same one",
    }.items()},
    "hieramas_gnn.train.credit.x_counterfactual_baseline__mutmut_2": (
        "the validity weights left bool: a bool tensor multiplies and sums as its float conversion does, "
        "and the mean divides by the clamped count either way"),
    "hieramas_gnn.train.credit.x_reinforce_loss__mutmut_38": (
        "the kept-episode flags left bool: multiplying by a bool tensor is multiplying by its float conversion"),
    "hieramas_gnn.train.rewards.x__shaped__mutmut_38": "correct >= 0.5 instead of > 0.5: grades are 0 or 1",
    "hieramas_gnn.train.rewards.x_inputs_from_traces__mutmut_9": 'float("NAN") is a NaN as float("nan") is',
    "hieramas_gnn.train.rewards.x_inputs_from_traces__mutmut_56": (
        "getattr(node, 'skipped', None): bool(None) is False, as the default False"),
    "hieramas_gnn.train.rewards.x_inputs_from_traces__mutmut_71": (
        "getattr(None, 'correct', None) instead of None for a missing node: also None"),
    **{f"hieramas_gnn.train.rewards.x_node_rewards__mutmut_{i}": why for i, why in {
        22: "nan_to_num(nan=None) replaces NaN with 0.0, the default",
        24: "nan_to_num without nan= replaces NaN with 0.0, the default",
        25: "NaN (ungraded) node grades read as 1 instead of 0: their weight alpha is 0 there, 0 * a finite "
            "reward is 0",
    }.items()},
    **{f"hieramas_gnn.train.rewards.x_shape_reward__mutmut_{i}": (
        "an array left in its own dtype before torch.as_tensor: the tensor path converts it to float32 "
        "(the same rounding as numpy's float32)") for i in (27, 29, 32, 34)},
    **{f"hieramas_gnn.backends.replay.x\u01c1Replayer\u01c1reply__mutmut_{i}": (
        "the strength's default: reply() reaches it only after table.get(model, qid) found the model, "
        "so the model is in table.accuracy") for i in (66, 68, 69)},
    "hieramas_gnn.tasks.splits.x_held_out_domains__mutmut_38": (
        "rng.choice(replace=None): numpy reads None as false, a draw without replacement as with False"),
    "hieramas_gnn.tasks.splits.x_stratified_order__mutmut_19": (
        "one jitter per domain instead of one per question: the same proportional interleaving (every "
        "prefix within one question of each domain's share, the first question from each domain with "
        "the same probability); the within-domain order is still the seeded permutation"),
    **{f"hieramas_gnn.tasks.splits.x_stratified_order__mutmut_{i}": (
        "argsort without kind='stable' (or 'STABLE', which numpy accepts): the keys are continuous "
        "random draws, so ties, the only thing stability orders, have probability 0") for i in (21, 23, 25)},
    # reinforce_step (train/stage1.py): the DAG reaches the mixture head twice, through the batch's
    # stored DAG edges and through `sample(dags=...)`, which re-encodes with the DAG it is given;
    # either alone gives the same draws
    **{f"hieramas_gnn.train.stage1.x_counterfactual_values__mutmut_{i}": why for i, why in {
        4: "the batch built without its DAGs: sample(dags=...) re-encodes with the episode's DAGs",
        16: "sample(dags=None) in mode 'mixture' takes the batch's stored DAG edges, built from the same DAGs",
        23: "sample() without dags= in mode 'mixture' takes the batch's stored DAG edges, built from the same DAGs",
        22: "mode 'joint' with the DAGs given scores them without drawing (the generator is not used) and "
            "draws the same mixtures; only the draws' mixtures are read",
        26: "the draws' decision model is never read: a counterfactual design keeps its episode's decision "
            "(credit.replace_mixture)",
    }.items()},
    **{f"hieramas_gnn.train.stage1.x_effective_rewards__mutmut_{i}": (
        "torch.tensor of Python floats without dtype= (or dtype=None) is float32, torch's default dtype")
       for i in (13, 15)},
    **{f"hieramas_gnn.train.stage1.x\u01c1Stage1Trainer\u01c1train_step__mutmut_{i}": why for i, why in {
        113: "warm_start_bc >= 0: at a weight of 0 the pull adds 0 x the clone loss, which is finite (the "
             "searched design is made of pool models the policy scores), so nothing changes",
        14: "the batch built without its DAGs: sample(dags=...) re-encodes with the episode's DAGs",
        24: "sample(dags=None) in mode 'mixture' takes the batch's stored DAG edges, built from the same DAGs",
        31: "sample() without dags= in mode 'mixture' takes the batch's stored DAG edges, built from the same DAGs",
    }.items()},
}

KILLED = {"killed"}  # a timeout is listed, not counted: it may be a hang of the harness, not a failure


def _stage(name: str, group: Group) -> Path:
    """The group's run folder: links to the code and data, and its own mutmut config."""
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    for entry in ("hieramas_gnn", "tests", "data", "experiments", "README.md"):
        link = folder / entry
        if not link.exists():
            link.symlink_to(REPO / entry)
    tests = ", ".join(f'"{t}"' for t in group.tests)
    (folder / "pyproject.toml").write_text(
        (REPO / "pyproject.toml").read_text().split("[tool.mutmut]")[0]
        + "\n[tool.mutmut]\n"
        + 'source_paths = ["hieramas_gnn"]\n'
        + f'only_mutate = ["{group.path}"]\n'
        + 'also_copy = ["data", "experiments", "README.md"]\n'
        + f"pytest_add_cli_args_test_selection = [{tests}]\n"
        + 'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        + "use_git_change_detection = false\n"
        # workers fork from a server that never ran a test: torch's thread pools are not fork-safe
        + 'process_isolation = "forkserver"\n')
    return folder


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HIERAMAS_DATA=str(REPO / "data"), HIERAMAS_SHARED_DATA=str(REPO.parent / "shared" / "data"),
               LITELLM_LOCAL_MODEL_COST_MAP="True", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)  # mutmut puts its mutated copy first on the path itself
    return env


def retest_not_killed(name: str) -> int:
    """Forget the verdicts of the group's mutants that no test killed (survived, timeout, no
    tests), so the next `run` tests just those again, against the group's current tests (mutmut
    itself re-tests only the mutants of changed functions); returns how many."""
    count = 0
    for meta in (WORK / name / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        alive = [k for k, code in codes.items() if GROUPS[name].owns(k) and code is not None and code not in (1, 3)]
        for key in alive:
            codes[key] = None
        if alive:
            meta.write_text(json.dumps(data, indent=4))
            count += len(alive)
    return count


def run(names: list[str], max_children: int, fresh: bool = False, retest: bool = False) -> int:
    rc = 0
    for name in names:
        group = GROUPS[name]
        if fresh:
            shutil.rmtree(WORK / name / "mutants", ignore_errors=True)
        elif retest:
            print(f"== {name}: {retest_not_killed(name)} mutants not killed before are tested again", flush=True)
        folder = _stage(name, group)
        print(f"== {name}: {group.module} ({', '.join(group.functions)}) against {', '.join(group.tests)}", flush=True)
        cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *group.globs()]
        # mutmut's forked test runs end without the test session's clean-up: their temp folders
        # go to one folder of this run, removed after it
        with tempfile.TemporaryDirectory(prefix="hieramas-mutation-") as tmp:
            rc |= subprocess.call(cmd, cwd=folder, env={**_env(), "TMPDIR": tmp})
    return rc


def results(name: str) -> dict[str, str]:
    """{mutant name: status} of the group's listed functions (from its last run)."""
    folder = WORK / name
    if not (folder / "mutants").exists():
        return {}
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=folder, env=_env(),
                         capture_output=True, text=True).stdout
    statuses = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if m and GROUPS[name].owns(m.group(1)):
            statuses[m.group(1)] = m.group(2).strip()
    return statuses


def report(names: list[str]) -> int:
    total = {"mutants": 0, "equivalent": 0, "killed": 0}
    print(f"{'group':<16} {'mutants':>7} {'equiv':>5} {'killed':>6} {'rate':>6}  not killed")
    for name in names:
        res = results(name)
        if not res:
            print(f"{name:<16} (not run)")
            continue
        equivalent = [m for m in res if m in EQUIVALENT]
        killed = [m for m, s in res.items() if s in KILLED and m not in EQUIVALENT]
        alive = sorted((m, s) for m, s in res.items() if s not in KILLED and m not in EQUIVALENT)
        n = len(res) - len(equivalent)
        total["mutants"] += len(res)
        total["equivalent"] += len(equivalent)
        total["killed"] += len(killed)
        rate = f"{100 * len(killed) / n:.0f}%" if n else "-"
        unchecked = [m for m, s in alive if s == "not checked"]
        shown = [f"{m.rsplit('.', 1)[-1]} ({s})" for m, s in alive if s != "not checked"]
        if unchecked:
            shown.append(f"{len(unchecked)} not checked (the run stopped: see its log)")
        print(f"{name:<16} {len(res):>7} {len(equivalent):>5} {len(killed):>6} {rate:>6}  " + ", ".join(shown))
    n = total["mutants"] - total["equivalent"]
    if n:
        print(f"{'all':<16} {total['mutants']:>7} {total['equivalent']:>5} {total['killed']:>6} "
              f"{100 * total['killed'] / n:>5.1f}%")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("list", "run", "report"))
    p.add_argument("groups", nargs="*", help=f"groups (default: all): {', '.join(GROUPS)}")
    p.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    p.add_argument("--fresh", action="store_true",
                   help="forget the groups' cached results (after changing tests: mutmut re-tests only "
                        "mutants of changed functions)")
    p.add_argument("--retest-not-killed", action="store_true",
                   help="test again only the mutants no test killed in the last run (after adding tests "
                        "for them; cheaper than --fresh)")
    args = p.parse_intermixed_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        p.error(f"unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
    names = args.groups or list(GROUPS)
    if args.command == "list":
        for name in names:
            g = GROUPS[name]
            print(f"{name}: {g.module}: {', '.join(g.functions)}\n    tests: {', '.join(g.tests)}")
        return 0
    if args.command == "run":
        rc = run(names, args.max_children, args.fresh, args.retest_not_killed)
        report(names)
        return rc
    return report(names)


if __name__ == "__main__":
    sys.exit(main())
