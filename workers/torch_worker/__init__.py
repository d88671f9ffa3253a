"""Torch worker: an Open Inference Protocol v2 server (gRPC + REST) for one TorchScript model.

Layout (each module one job): config (flags) -> runtime (TorchScript on CPU) -> dataplane
(protocol-neutral OIP operations, numpy in/out) <- grpc_adapter / rest_adapter (wire formats,
sharing workers.oip's codec and datatypes); health (grpc.health.v1), metrics (Prometheus), main
(process). Signature, errors and the tensor codec live in workers.oip (the Triton worker uses them).
"""
