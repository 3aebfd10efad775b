"""Offline LLM backends, registered as litellm custom providers: `replay/` (real answers of real
models from outcome tables), `sim/` (the calibrated simulator) and the behaviour model they share
for nodes that read other agents' answers. `fit/` holds the calibration code (IRT abilities,
behaviour fit, replay-pool writing) that produced the committed figures in `data/sim/`.

Depends on `llm` (types, pool), `tasks` and `errors`; nothing in `llm` imports it at module level
(the client registers the providers lazily)."""
