"""Using a trained policy bundle: `Policy` (Python API, `policy.py`), the litellm provider
`hieramas/<bundle-name>` (`provider.py`), the OpenAI-compatible HTTP server (`app.py`, `server.py`,
behind `hieramas serve`) and its load test (`loadtest.py`). See docs/SERVING.md.

Nothing is imported here: `from hieramas_gnn.serve.policy import Policy` loads torch when asked.
"""
