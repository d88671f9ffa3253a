"""Reads a worker's own metrics (queue, batches, answered requests) over HTTP: I/O only."""

from __future__ import annotations

import logging

import aiohttp

from workers.agent.worker import Worker
from workers.agent.worker_load import WorkerLoad, parse_worker_load

log = logging.getLogger(__name__)


class LoadScraper:
    """One HTTP session for every worker's `/metrics`; opened at the first read."""

    def __init__(self, timeout_s: float = 1.0) -> None:
        self._timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None

    async def read(self, worker: Worker) -> WorkerLoad | None:
        """The worker's figures now; None when it has no metrics or they cannot be read."""
        url = worker.metrics_url
        if not url:
            return None
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        try:
            async with self._http.get(url) as reply:
                text = await reply.text()
            return parse_worker_load(text, worker.runtime, worker.workload.deployment)
        except (aiohttp.ClientError, TimeoutError, ValueError, RuntimeError) as exc:
            log.debug("cannot read the metrics of %s at %s: %s", worker.worker_id, url, exc)
            return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
