"""The agent's stream to the control plane's mesh port (mTLS with the region's certificate),
kept open across control-plane restarts; each new connection uses the certificate held then."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from meshline.v1 import agent_pb2, agent_pb2_grpc
from workers.agent.enrollment import IdentityKeeper
from workers.agent.supervisor import Supervisor

log = logging.getLogger(__name__)


class AgentRejectedError(Exception):
    """The control plane refused this agent's hello for good (e.g. an invalid region name, a
    certificate of another region, a deleted region)."""


# Answers to a hello that another try cannot change.
REJECTIONS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


class ControlPlaneSession:
    """Sends hello + reports; applies desired state and releases from the control plane."""

    def __init__(
        self,
        hello: agent_pb2.AgentHello,
        supervisor: Supervisor,
        identity: IdentityKeeper,
        report_interval_s: float,
    ) -> None:
        self.hello = hello
        self.supervisor = supervisor
        self.identity = identity
        self.report_interval_s = report_interval_s
        self.connected = asyncio.Event()
        self._report_due = asyncio.Event()
        # Set when the control plane accepted this stream's hello (reports wait for it).
        self._accepted = asyncio.Event()

    def report_changed(self) -> None:
        self._report_due.set()

    async def _outbound(self) -> AsyncIterator[agent_pb2.ConnectRequest]:
        yield agent_pb2.ConnectRequest(hello=self.hello)
        await self._accepted.wait()
        while True:
            self._report_due.clear()
            yield agent_pb2.ConnectRequest(report=self.supervisor.report())
            try:
                await asyncio.wait_for(self._report_due.wait(), self.report_interval_s)
            except TimeoutError:
                pass
            # Coalesce bursts of changes into one report.
            await asyncio.sleep(0.01)

    async def run(self) -> None:
        backoff = 0.1
        while True:
            target = self.identity.mesh_address
            generation = self.identity.generation
            channel = self.identity.channel()
            self._accepted.clear()
            try:
                stub = agent_pb2_grpc.AgentServiceStub(channel)
                call = stub.Connect(self._outbound())
                async for message in call:
                    if not self.connected.is_set():
                        log.info("connected to control plane %s", target)
                        self.connected.set()
                    backoff = 0.1
                    self._handle(message)
            except grpc.aio.AioRpcError as exc:
                rejected = exc.code() in REJECTIONS
                if rejected and not self._certificate_changing(generation):
                    raise AgentRejectedError(
                        f"the control plane at {target} refused the agent stream: "
                        f"{exc.code().name}: {exc.details()}"
                    ) from None
                # A refusal while the certificate is being replaced (a join again ends this
                # stream before its answer reaches the keeper) is tried again with the new one.
                log.warning(
                    "control plane stream ended: %s %s%s",
                    exc.code().name,
                    exc.details(),
                    " (the certificate is being replaced: trying again)" if rejected else "",
                )
            finally:
                self.connected.clear()
                await channel.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _certificate_changing(self, opened_with: int) -> bool:
        """Whether the identity changed, or is changing, since the stream's channel was made
        with generation `opened_with`."""
        return self.identity.exchanging or self.identity.generation != opened_with

    def _handle(self, message: agent_pb2.ConnectResponse) -> None:
        which = message.WhichOneof("message")
        if which == "accepted":
            self._accepted.set()
        elif which == "desired":
            self.supervisor.take_desired(message.desired)
        elif which == "released":
            self.supervisor.release(list(message.released.worker_ids))
