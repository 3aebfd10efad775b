"""Calibration of the offline backends on real outcomes: `irt` (per-model ability per domain,
item difficulty), `behaviour_fit` (how a reader treats other agents' answers), `simfit` (the
simulator's catalogue and validation), `replay_pools` (pool YAMLs from outcome tables)."""
