"""free_ports: every port of one pick differs (a worker's gRPC and HTTP ports must)."""

from __future__ import annotations

import socket

from meshline.process.ports import free_ports


def test_one_pick_never_repeats_a_port_and_each_is_free() -> None:
    for _ in range(200):
        ports = free_ports("127.0.0.1", 3)
        assert len(set(ports)) == 3, ports
        for port in ports:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
