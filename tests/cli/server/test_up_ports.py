"""`meshline up` keeps its ports across restarts: TIME-WAIT leftovers do not count as taken."""

from __future__ import annotations

import socket

from cli.server.up import port_free


def _port_with_time_wait_connection() -> int:
    """A port whose listener is closed but whose server side of a connection sits in TIME-WAIT.

    The side that closes first keeps TIME-WAIT, so the accepted socket closes before the client,
    as a gateway closing its connections on Ctrl-C does. The listener sets SO_REUSEADDR as Envoy's
    and gRPC's do (Linux lets a new bind past a TIME-WAIT socket only when both sides set it).
    """
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = int(listener.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()
    client.recv(1)  # the FIN arrived: the client's close completes the handshake at once
    client.close()
    listener.close()
    return port


def test_a_port_left_in_time_wait_is_free_for_the_next_up() -> None:
    port = _port_with_time_wait_connection()
    with socket.socket() as plain:  # what the probe used to do
        try:
            plain.bind(("127.0.0.1", port))
            time_wait_blocks_plain_bind = False
        except OSError:
            time_wait_blocks_plain_bind = True
    assert time_wait_blocks_plain_bind, "the test did not produce a TIME-WAIT socket"
    assert port_free(port)


def test_a_port_someone_listens_on_is_taken() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_free(int(listener.getsockname()[1]))
