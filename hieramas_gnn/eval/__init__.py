"""Measuring designs and policies on held-out questions.

`baselines.py` (what a user would otherwise deploy: single models, CoT, self-consistency, vote,
MoA, debate, fixed DAGs, the oracle), `routers.py` (fitted best single model, query router and
cascade, chosen on train + val), `evaluate.py` (run designs, one results row per method;
every comparison judged by the paired test of `hieramas_gnn.stats`), `experiment.py` (train per seed + evaluate +
baselines + report: `hieramas demo`), `frontier.py` (`hieramas report`: cost-accuracy frontiers),
`report.py` (report.md, results.json, plots).
"""
