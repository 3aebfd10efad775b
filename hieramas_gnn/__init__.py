"""hieramas_gnn: learn per-query multi-agent LLM designs with a GNN policy.

Nothing happens at import: no keys are read, no network is touched, no model is loaded.
"""

__version__ = "0.1.0"
