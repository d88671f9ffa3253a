"""The agent's stream to the control plane when grpc.aio loses the control plane's status.

A write of the agent's (its hello) that Core completes only after the control plane refused the
stream makes grpc.aio replace the refusal with INTERNAL "Internal error from Core" (debug:
'Failed "execute_batch"', grpc/grpc#36066). The race is seen about once in 40 refusals and
cannot be provoked on demand, so the decision is tested as pure functions, and what the agent
does with such an ending is tested against the real AgentService (grpc.aio, SQLite, the mesh
CA): it asks once more with the synchronous client and stops with the control plane's reason."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from meshline.v1 import agent_pb2
from tests.workers.agent.helpers import agent_config, until
from tests.workers.agent.test_enrollment import ControlPlane, control_plane
from workers.agent.enrollment import IdentityKeeper, start_identity
from workers.agent.session import (
    AgentRejectedError,
    ControlPlaneSession,
    StreamEnding,
    ask_once,
    refused_for_good,
    status_lost,
)
from workers.agent.supervisor import Supervisor

LOST = StreamEnding(
    grpc.StatusCode.INTERNAL,
    "Internal error from Core",
    'Failed "execute_batch": (<grpc._cython.cygrpc.SendMessageOperation object at 0x7f>,)',
)


@pytest.mark.parametrize(
    ("ending", "lost"),
    [
        (LOST, True),
        # The control plane's own INTERNAL (a bug of the server) is its answer.
        (StreamEnding(grpc.StatusCode.INTERNAL, "boom", "INTERNAL:boom"), False),
        (StreamEnding(grpc.StatusCode.PERMISSION_DENIED, "region 'eu' was deleted"), False),
        (StreamEnding(grpc.StatusCode.UNAVAILABLE, "Connection refused", "Connection"), False),
    ],
)
def test_which_endings_may_hide_the_control_planes_status(ending: StreamEnding, lost: bool) -> None:
    assert status_lost(ending) is lost


@pytest.mark.parametrize(
    ("code", "changing", "for_good"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, False, True),
        (grpc.StatusCode.PERMISSION_DENIED, False, True),
        (grpc.StatusCode.UNAUTHENTICATED, False, True),
        # The old certificate's refusal while the keeper replaces it: tried again.
        (grpc.StatusCode.UNAUTHENTICATED, True, False),
        (grpc.StatusCode.ALREADY_EXISTS, False, False),
        (grpc.StatusCode.UNAVAILABLE, False, False),
        # Never taken for a refusal: the status grpc.aio put in place of the server's.
        (grpc.StatusCode.INTERNAL, False, False),
    ],
)
def test_which_endings_stop_the_agent(
    code: grpc.StatusCode, changing: bool, for_good: bool
) -> None:
    assert refused_for_good(StreamEnding(code, "why"), changing) is for_good


@pytest.fixture
async def cp(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with control_plane(tmp_path / "cp", timedelta(hours=1)) as plane:
        yield plane


@pytest.fixture
async def keeper(cp: ControlPlane, tmp_path: Path) -> IdentityKeeper:
    """Region eu's certificate, joined with a token."""
    return await start_identity(tmp_path / "agent", "eu", cp.api_address, cp.ca_file, cp.token())


def _session(keeper: IdentityKeeper, tmp_path: Path, region: str) -> ControlPlaneSession:
    supervisor = Supervisor(agent_config(tmp_path), on_change=lambda: None, mesh=keeper)
    hello = agent_pb2.AgentHello(region=region, agent_id="a1", gateway_address="127.0.0.1:1")
    return ControlPlaneSession(hello, supervisor, keeper, report_interval_s=5)


async def test_asking_once_reads_the_control_planes_refusal(
    cp: ControlPlane, keeper: IdentityKeeper
) -> None:
    hello = agent_pb2.AgentHello(region="us", agent_id="a1")
    # In a thread: the control plane is served by this test's event loop.
    refused = await asyncio.to_thread(ask_once, cp.mesh_address, keeper.credentials(), hello)
    assert refused is not None
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert "region 'us'" in refused.details and "region 'eu'" in refused.details


async def test_asking_once_with_an_accepted_hello_leaves_no_session(
    cp: ControlPlane, keeper: IdentityKeeper
) -> None:
    hello = agent_pb2.AgentHello(region="eu", agent_id="a1")
    assert await asyncio.to_thread(ask_once, cp.mesh_address, keeper.credentials(), hello) is None
    await until(lambda: cp.registry.session("eu") is None, "the asking stream's end")


async def test_a_lost_status_of_a_refused_hello_stops_the_agent_with_the_reason(
    cp: ControlPlane, keeper: IdentityKeeper, tmp_path: Path
) -> None:
    """Region eu's certificate saying hello as region us: the stream's ending read INTERNAL,
    and the agent stops with the control plane's words, not a retry."""
    session = _session(keeper, tmp_path, "us")
    with pytest.raises(AgentRejectedError) as stopped:
        await session._settle(LOST, cp.mesh_address, keeper.generation)
    message = str(stopped.value)
    assert "PERMISSION_DENIED" in message and "the client certificate is region 'eu'" in message
    assert cp.registry.session("us") is None


async def test_a_lost_status_of_an_accepted_hello_is_tried_again(
    cp: ControlPlane, keeper: IdentityKeeper, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ending was not a refusal (the control plane accepts the hello when asked): the agent
    reconnects, saying what it saw."""
    caplog.set_level(logging.WARNING, logger="workers.agent.session")
    session = _session(keeper, tmp_path, "eu")
    await session._settle(LOST, cp.mesh_address, keeper.generation)
    said = [r.getMessage() for r in caplog.records]
    assert any("may be a refusal" in line for line in said)
    assert any("accepts the hello: reconnecting" in line for line in said)
    await until(lambda: cp.registry.session("eu") is None, "the asking stream's end")
