"""Test upstream for the translate-stage tests: a stand-in worker, not the real Torch worker.

One process serves what Envoy expects of a worker, on two ports:
- gRPC: `inference.GRPCInferenceService/ModelInfer` echoing model_name and id, and reporting in
  its parameters which instance answered and the headers it received that matter to routing and
  access (ECHOED: the routing key, the principal, the credential); plus the
  grpc.health.v1 service, SERVING.
- REST (aiohttp): `GET /v2/health/ready` and `POST /v2/models/{name}/infer`, answering JSON
  with the same echo (with `--fail-every-second`, every other inference answers 503).

Run: python -m tests.controlplane.translate.translate_upstream --name N --grpc-port P --http-port Q
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc

# Echoed only when received: what the gateway must add, replace or keep from the worker.
ECHOED = (
    "x-meshline-deployment",
    "x-meshline-environment",
    "x-meshline-principal",
    "authorization",
)


class EchoInference(pb_grpc.GRPCInferenceServiceServicer):
    """ModelInfer only; the routing tests need nothing else."""

    def __init__(self, name: str) -> None:
        self._name = name

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
        response.parameters["upstream"].string_param = self._name
        for key, value in context.invocation_metadata() or ():
            if key in ECHOED:
                response.parameters[key].string_param = str(value)
        return response


def rest_app(name: str, fail_every_second: bool = False) -> web.Application:
    answered = [0]

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": True})

    async def infer(request: web.Request) -> web.Response:
        await request.read()
        answered[0] += 1
        if fail_every_second and answered[0] % 2:
            # What a worker that is going away answers: retried by the gateway's policy.
            return web.json_response({"error": "unavailable"}, status=503)
        answer = {"model_name": request.match_info["name"], "upstream": name}
        answer.update({h: request.headers[h] for h in ECHOED if h in request.headers})
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_post("/v2/models/{name}/infer", infer)
    return app


async def serve(
    name: str, host: str, grpc_port: int, http_port: int, fail_every_second: bool = False
) -> None:
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(EchoInference(name), server)
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"{host}:{grpc_port}")
    await server.start()

    runner = web.AppRunner(rest_app(name, fail_every_second))
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await server.stop(grace=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument(
        "--fail-every-second",
        action="store_true",
        help="REST inference answers 503 to every other request (the first, third, ...)",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.name, args.host, args.grpc_port, args.http_port, args.fail_every_second))


if __name__ == "__main__":
    main()
