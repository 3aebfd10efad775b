"""hieramas_gnn: learn per-query multi-agent LLM designs with a GNN policy.

Nothing happens at import: no keys are read, no network is touched, no model is loaded.
`from hieramas_gnn import Policy` loads the serving API (and torch) only when it is asked for.
"""

from typing import Any

from hieramas_gnn.serve.policy import Policy
from hieramas_gnn.version import __version__

__all__ = ["Policy", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Policy":
        return Policy
    raise AttributeError(f"module 'hieramas_gnn' has no attribute {name!r}")
