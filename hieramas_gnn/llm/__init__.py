"""The only way to an LLM: `LLMClient` (`client.py`: the one `litellm.acompletion` call site, with
limits, retries, budget and in-process offline providers), the rollout cache (`cache.py`: every
completed call, keyed by the canonical request), pools of models with prices (`pool.py`), and the
plain request / record / error types that cross the boundary (`types.py`). `faults.py` is a test
provider that fails on purpose.
"""
