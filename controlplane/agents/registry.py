"""What each connected agent last told us, and a way to talk back to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from meshline.v1 import agent_pb2


@dataclass
class AgentSession:
    """One open agent stream. `serial`: the certificate of its region that the agent holds,
    as far as the control plane knows (the one that opened the stream, then each one its
    renewals got)."""

    hello: agent_pb2.AgentHello
    serial: str = ""
    outbox: asyncio.Queue[agent_pb2.ConnectResponse] = field(default_factory=asyncio.Queue)
    report: agent_pb2.AgentReport | None = None  # None until the first report arrives
    last_seen: float = field(default_factory=time.time)
    last_desired: agent_pb2.DesiredState | None = None
    # Set (with why) when the control plane ends the stream: the region joined again.
    evicted: asyncio.Event = field(default_factory=asyncio.Event)
    eviction: str = ""

    @property
    def region(self) -> str:
        return self.hello.region

    def send(self, message: agent_pb2.ConnectResponse) -> None:
        self.outbox.put_nowait(message)


class RegionTakenError(Exception):
    """Another live agent already serves this region."""


# An agent reports at least this often (5 s) while alive; an older session is presumed dead.
LIVE_SESSION_S = 15.0


class AgentRegistry:
    """Regions with a connected agent; the newest stream per region wins."""

    def __init__(self) -> None:
        self._sessions: dict[str, AgentSession] = {}
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, callback: Callable[[str], None]) -> None:
        self._listeners.append(callback)

    def _notify(self, region: str) -> None:
        for callback in self._listeners:
            callback(region)

    def connect(self, hello: agent_pb2.AgentHello, serial: str = "") -> AgentSession:
        """Register a new stream opened with certificate `serial`; refuse a second live agent
        for one region."""
        current = self.live_session(hello.region)
        if current is not None and current.hello.agent_id != hello.agent_id:
            raise RegionTakenError(
                f"region {hello.region!r} already has a connected agent "
                f"({current.hello.agent_id}, gateway {current.hello.gateway_address}); "
                "stop it first or use another region name"
            )
        session = AgentSession(hello=hello, serial=serial)
        self._sessions[hello.region] = session
        self._notify(hello.region)
        return session

    def live_session(self, region: str) -> AgentSession | None:
        """The region's stream while its agent still reports (a dead one is presumed gone
        after LIVE_SESSION_S, even before its connection is noticed closed)."""
        current = self._sessions.get(region)
        if current is None or time.time() - current.last_seen >= LIVE_SESSION_S:
            return None
        return current

    def follow_renewal(self, region: str, renewed: tuple[str, ...], serial: str) -> None:
        """The region's agent renewed one of the certificates `renewed` into `serial`: its
        stream (opened with an earlier one) now stands for the new one."""
        current = self._sessions.get(region)
        if current is not None and current.serial in renewed:
            current.serial = serial

    def evict(self, region: str, why: str) -> AgentSession | None:
        """End the region's stream (its service closes it, saying `why`); the evicted
        session, if there was one."""
        current = self._sessions.pop(region, None)
        if current is None:
            return None
        current.eviction = why
        current.evicted.set()
        self._notify(region)
        return current

    def disconnect(self, session: AgentSession) -> None:
        if self._sessions.get(session.region) is session:
            del self._sessions[session.region]
            self._notify(session.region)

    def update_report(self, session: AgentSession, report: agent_pb2.AgentReport) -> None:
        session.report = report
        session.last_seen = time.time()
        if self._sessions.get(session.region) is session:
            self._notify(session.region)

    def session(self, region: str) -> AgentSession | None:
        return self._sessions.get(region)

    def sessions(self) -> list[AgentSession]:
        return [self._sessions[r] for r in sorted(self._sessions)]

    def reported_regions(self) -> list[str]:
        """Regions whose agent has sent at least one full report (safe to configure)."""
        return [r for r, s in sorted(self._sessions.items()) if s.report is not None]
