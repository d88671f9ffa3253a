"""Client commands: they talk to the management API or to a region's gateway (apply, get, infer,
models, rollout, ...); they run no server."""
