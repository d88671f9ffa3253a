"""grpc.health.v1 status of the worker: SERVING for "" and the model name once the model is loaded,
NOT_SERVING from the moment shutdown starts (gateways stop routing here).

A shared worker starts with "" alone; each model's name is SERVING while that model is loaded
and ready, NOT_SERVING otherwise (loading, unloading, evicted, failed).
"""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2


class HealthState:
    """Owns the aio HealthServicer and the service names it reports."""

    def __init__(self, model_name: str = "") -> None:
        self.servicer = health.aio.HealthServicer()
        self.services = ("", model_name) if model_name else ("",)

    async def set_serving(self) -> None:
        for name in self.services:
            await self.servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def set_not_serving(self) -> None:
        for name in self.services:
            await self.servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def set_model_ready(self, model_name: str, ready: bool) -> None:
        """One model's status in a shared worker (the service name is the model's name)."""
        status = health_pb2.HealthCheckResponse
        await self.servicer.set(model_name, status.SERVING if ready else status.NOT_SERVING)

    async def shutdown(self) -> None:
        """NOT_SERVING for every service, and ignore any later set()."""
        await self.servicer.enter_graceful_shutdown()
