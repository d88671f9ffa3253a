"""A Supervisor driven directly (no control plane), with real worker processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.workers.agent.helpers import agent_config
from workers.agent.supervisor import Supervisor


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    sup = Supervisor(agent_config(tmp_path), on_change=lambda: None)
    task = asyncio.create_task(sup.run())
    try:
        yield sup
    finally:
        await sup.stop()
        task.cancel()
