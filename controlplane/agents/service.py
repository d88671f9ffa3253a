"""gRPC AgentService: one bidirectional stream per region agent, on the mesh port.

The hello must name the region of the caller's client certificate (a certificate of region A
never opens region B's stream), that certificate must be the region's certificate of record,
and the region must be registered: it was at Join, from the join token's facts or an applied
Region. A Join of the region ends the stream (the region's identity changed hands). The
hello's own fact fields (country, flavors, ...) are ignored: an agent never decides where
deployments may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc

from controlplane.agents.peers import MeshPeers, PeerRefusal, refuse
from controlplane.agents.registry import AgentRegistry, AgentSession, RegionTakenError
from meshline.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    def __init__(
        self,
        registry: AgentRegistry,
        on_hello: Callable[[agent_pb2.AgentHello], PeerRefusal | None],
        peers: MeshPeers,
    ) -> None:
        """`on_hello` checks an authenticated hello (None: accepted) and may warn about it."""
        self.registry = registry
        self.on_hello = on_hello
        self.peers = peers

    async def Connect(
        self,
        request_iterator: AsyncIterator[agent_pb2.ConnectRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[agent_pb2.ConnectResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("message") != "hello" or not first.hello.region:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first message on the agent stream must be a hello naming the region",
            )
            return
        what = f"opening the agent stream of region '{first.hello.region}'"
        peer = await self.peers.require(context, first.hello.region, what)
        if refusal := self.on_hello(first.hello):
            await refuse(context, refusal, what)
        try:
            session = self.registry.connect(first.hello, peer.serial)
        except RegionTakenError as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
            return
        log.info(
            "agent %s of region %s connected (gateway %s)",
            first.hello.agent_id,
            first.hello.region,
            first.hello.gateway_address,
        )
        yield agent_pb2.ConnectResponse(accepted=agent_pb2.HelloAccepted())
        reader = asyncio.create_task(self._read(request_iterator, session))
        evicted = asyncio.create_task(session.evicted.wait())
        try:
            while not reader.done() and not evicted.done():
                getter = asyncio.ensure_future(session.outbox.get())
                done, _ = await asyncio.wait(
                    {getter, reader, evicted}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
        finally:
            for task in (reader, evicted):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.registry.disconnect(session)
            log.info("agent of region %s disconnected", session.region)
        if session.eviction:
            # Not a refusal: the agent that joined reconnects with its new certificate; one
            # whose certificate was replaced is refused then, for good.
            await context.abort(grpc.StatusCode.UNAVAILABLE, session.eviction)

    async def _read(
        self, request_iterator: AsyncIterator[agent_pb2.ConnectRequest], session: AgentSession
    ) -> None:
        async for message in request_iterator:
            if message.WhichOneof("message") == "report":
                self.registry.update_report(session, message.report)
