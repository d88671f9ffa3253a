"""Free ports, chosen at run time."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(host: str, count: int) -> list[int]:
    """`count` different free ports. Each socket stays bound until all are chosen: two calls of
    free_port in a row may get the same port back from the kernel (a worker given the same
    port for gRPC and HTTP then crashes at every restart)."""
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for s in sockets:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in sockets]
