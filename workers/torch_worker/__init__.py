"""Torch worker: an Open Inference Protocol v2 server (gRPC + REST) for TorchScript models.

Layout (each module one job): config (flags) -> runtime (TorchScript on CPU) -> dataplane
(protocol-neutral OIP operations, numpy in/out) <- grpc_adapter / rest_adapter (wire formats,
sharing workers.oip's codec and datatypes); health (grpc.health.v1), metrics (Prometheus), main
(process). Signature, errors and the tensor codec live in workers.oip (the Triton worker uses them).

`--shared` serves many models in one process (shared_server): repository (catalog, loaded
DataPlanes, LRU; behind the same adapters, see backend) with model_config (a load's config),
eviction (which idle models make room, or which busy ones to wait for: pure), activity (the
crash-blame file), deployment_scope (a caller of one deployment reaches its model only), and the
model repository extension's adapters (grpc_repository, rest_repository: the control port only).
"""
