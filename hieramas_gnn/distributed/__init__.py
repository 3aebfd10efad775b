"""Scale-out on Ray: `RayRunner` (the `mas.runner.Runner` protocol over Ray workers) and
`make_runner(executor="local"|"ray", ...)`. Ray is an optional extra (`pip install .[ray]`);
nothing here imports it at import time. Design and trade-offs: docs/DISTRIBUTED.md."""
