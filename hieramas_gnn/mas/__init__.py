"""Multi-agent systems as data and their execution.

A `Design` (`design.py`) is a DAG of role supernodes, each a `Mixture` (proposers + synthesizer)
or skipped, plus a decision model. `roles.py` holds the role sets and prompts, `supernode.py` the
requests of one node, `executor.py` runs designs over the DAG (concurrently, through an LLM
client) into `Trace`s (`trace.py`), `runner.py` the `Runner` protocol the trainers use,
`topologies.py` the candidate and fixed DAGs (settings in `settings.py`), `single.py` the one-model
degenerate designs, `draw.py` a picture of a design.
"""
