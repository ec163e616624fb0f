"""The operator console: a Starlette app served by `partnersync console` (own port; `run`
starts it). Server-rendered pages over the engine's indexes; login required."""
