"""Training the policy: `pipeline.py` runs the whole method (resumable from its run folder):
the design search warm start (`warm_start.py`), stage 1 (`stage1.py`: REINFORCE on the mixtures
with the credit baseline of `credit.py` and the rewards of `rewards.py`), then the topology route
(`topology_classifier.py`: graph classification over candidate DAGs, or `edges.py`: the edge head
with REINFORCE), then the bundle export.
"""
