"""What each connected agent last told us, and a way to talk back to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from meshline.v1 import agent_pb2


@dataclass
class AgentSession:
    """One open agent stream."""

    hello: agent_pb2.AgentHello
    outbox: asyncio.Queue[agent_pb2.ConnectResponse] = field(default_factory=asyncio.Queue)
    report: agent_pb2.AgentReport | None = None  # None until the first report arrives
    last_seen: float = field(default_factory=time.time)
    last_desired: agent_pb2.DesiredState | None = None

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

    def connect(self, hello: agent_pb2.AgentHello) -> AgentSession:
        """Register a new stream; refuse a second live agent for one region."""
        current = self._sessions.get(hello.region)
        if (
            current is not None
            and current.hello.agent_id != hello.agent_id
            and time.time() - current.last_seen < LIVE_SESSION_S
        ):
            raise RegionTakenError(
                f"region {hello.region!r} already has a connected agent "
                f"({current.hello.agent_id}, gateway {current.hello.gateway_address}); "
                "stop it first or use another region name"
            )
        session = AgentSession(hello=hello)
        self._sessions[hello.region] = session
        self._notify(hello.region)
        return session

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
