"""Who answered: the worker id and region every response carries (gRPC trailers, HTTP headers).

Lets a client or test behind the gateway see which worker and region served a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshline.wire import REGION_HEADER, WORKER_HEADER


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str
    region: str

    def pairs(self) -> tuple[tuple[str, str], ...]:
        return ((WORKER_HEADER, self.worker_id), (REGION_HEADER, self.region))
