"""The agent's stream to the control plane's mesh port (mTLS with the region's certificate),
kept open across control-plane restarts; each new connection uses the certificate held then."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from meshline.v1 import agent_pb2, agent_pb2_grpc
from workers.agent.enrollment import CALL_TIMEOUT_S, CHANNEL_OPTIONS, IdentityKeeper
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


@dataclass(frozen=True)
class StreamEnding:
    """How a stream to the control plane ended, as the client saw it."""

    code: grpc.StatusCode
    details: str
    debug: str = ""


def status_lost(ending: StreamEnding) -> bool:
    """Whether grpc.aio replaced the control plane's status with its own INTERNAL: a write of
    ours (the hello, a report) that Core completed only after the server had ended the stream
    makes grpc.aio overwrite the status the server sent (grpc/grpc#36066), so a refusal for
    good can read 'INTERNAL: Internal error from Core' (debug: 'Failed "execute_batch"')."""
    return ending.code == grpc.StatusCode.INTERNAL and "execute_batch" in ending.debug


def refused_for_good(ending: StreamEnding, certificate_changing: bool) -> bool:
    """A refusal another try cannot change; one seen while the certificate is being replaced
    (a join again ends this stream before its answer reaches the keeper) may be the old
    certificate's and is tried again with the new one."""
    return ending.code in REJECTIONS and not certificate_changing


def ask_once(
    target: str, credentials: grpc.ChannelCredentials, hello: agent_pb2.AgentHello
) -> StreamEnding | None:
    """The control plane's answer to `hello` on a stream of its own, read with the synchronous
    client, which reports the server's status whatever became of its writes (blocking: run it
    in a thread). None: accepted (the stream is closed again at once)."""
    with grpc.secure_channel(target, credentials, CHANNEL_OPTIONS) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
            iter([agent_pb2.ConnectRequest(hello=hello)]), timeout=CALL_TIMEOUT_S
        )
        try:
            answer = next(call, None)
        except grpc.RpcError as exc:
            return StreamEnding(exc.code(), exc.details() or "", exc.debug_error_string() or "")
        call.cancel()
        if answer is None:
            return StreamEnding(grpc.StatusCode.OK, "the stream ended without an answer")
        return None


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
                ending = StreamEnding(
                    exc.code(), exc.details() or "", exc.debug_error_string() or ""
                )
                await self._settle(ending, target, generation)
            finally:
                self.connected.clear()
                await channel.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _settle(self, ending: StreamEnding, target: str, generation: int) -> None:
        """Raises AgentRejectedError for a refusal for good; otherwise logs why the stream
        ended (run() then tries again after its backoff).

        A status grpc.aio lost (see status_lost) may hide a refusal for good: retrying the
        stream would show it only if the next try does not lose the race too, and an agent
        refused for good must stop with the control plane's reason. So the hello is asked
        once more with the synchronous client, whose answer is the control plane's own; an
        accepted hello (the ending was something else: a restart...) is retried as usual."""
        if status_lost(ending):
            log.warning(
                "control plane stream ended %s %s, which may be a refusal whose status grpc.aio "
                "replaced: asking %s once more",
                ending.code.name,
                ending.details,
                target,
            )
            answer = await asyncio.to_thread(
                ask_once, target, self.identity.credentials(), self.hello
            )
            if answer is None:
                log.warning("asked once more, the control plane accepts the hello: reconnecting")
                return
            ending = answer
        changing = self._certificate_changing(generation)
        if refused_for_good(ending, changing):
            raise AgentRejectedError(
                f"the control plane at {target} refused the agent stream: "
                f"{ending.code.name}: {ending.details}"
            ) from None
        log.warning(
            "control plane stream ended: %s %s%s",
            ending.code.name,
            ending.details,
            " (the certificate is being replaced: trying again)"
            if ending.code in REJECTIONS
            else "",
        )

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
