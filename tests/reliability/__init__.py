"""The reliability suite: hostile programs, bad inputs, integrity, secrets, parsing, kill trials.

`python -m tests.reliability.report --json OUT` re-measures the figures of docs/RELIABILITY.md.
"""
