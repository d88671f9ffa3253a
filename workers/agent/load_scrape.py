"""Reads a worker's own metrics (queue, batches, answered requests) over HTTP: I/O only."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from workers.agent.worker import Worker
from workers.agent.worker_load import WorkerLoad, parse_shared_loads, parse_worker_load

log = logging.getLogger(__name__)


class LoadScraper:
    """One HTTP session for every worker's `/metrics`; opened at the first read."""

    def __init__(self, timeout_s: float = 1.0, shared_max_age_s: float = 1.0) -> None:
        self._timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None
        # A shared worker's page holds all its models: read and parsed once for all of them
        # (per model it would be read as many times per pass as it has models, and rendering
        # it that often starves the process's event loop, health checks included).
        self._shared_max_age_s = shared_max_age_s
        self._shared: dict[str, tuple[float, asyncio.Task[dict[str, WorkerLoad] | None]]] = {}

    async def read(self, worker: Worker) -> WorkerLoad | None:
        """The worker's figures now; None when it has no metrics or they cannot be read."""
        url = worker.metrics_url
        if not url:
            return None
        if worker.packed:
            loads = await self._shared_loads(url)
            if loads is None:
                return None
            return loads.get(worker.workload.deployment, WorkerLoad(0, 0, 0))
        text = await self._page(url, worker.worker_id)
        if text is None:
            return None
        try:
            return parse_worker_load(text, worker.runtime, worker.workload.deployment)
        except (ValueError, RuntimeError) as exc:
            log.debug("cannot parse the metrics of %s at %s: %s", worker.worker_id, url, exc)
            return None

    async def _shared_loads(self, url: str) -> dict[str, WorkerLoad] | None:
        now = time.monotonic()
        cached = self._shared.get(url)
        if cached is None or now - cached[0] > self._shared_max_age_s:
            task = asyncio.create_task(self._read_shared(url))
            self._shared = {
                u: c for u, c in self._shared.items() if now - c[0] <= self._shared_max_age_s
            }
            self._shared[url] = cached = (now, task)
        return await asyncio.shield(cached[1])

    async def _read_shared(self, url: str) -> dict[str, WorkerLoad] | None:
        text = await self._page(url, url)
        if text is None:
            return None
        try:
            return parse_shared_loads(text)
        except (ValueError, RuntimeError) as exc:
            log.debug("cannot parse the shared worker metrics at %s: %s", url, exc)
            return None

    async def _page(self, url: str, who: str) -> str | None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        try:
            async with self._http.get(url) as reply:
                return await reply.text()
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            log.debug("cannot read the metrics of %s at %s: %s", who, url, exc)
            return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
