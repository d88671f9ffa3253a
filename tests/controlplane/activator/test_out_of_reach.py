"""The control plane warns when a gateway may not reach the activator (it listens on loopback)."""

from __future__ import annotations

import pytest

from controlplane.activator import activator_out_of_reach
from meshline.v1 import agent_pb2


@pytest.mark.parametrize(
    ("activator_host", "gateway_address", "warned"),
    [
        ("127.0.0.1", "127.0.0.1:8080", False),  # one machine: the default
        ("127.0.0.1", "10.77.0.2:8080", True),  # a gateway elsewhere, activator on loopback
        ("10.77.0.1", "10.77.0.2:8080", False),  # exposed with --activator-host
        ("10.77.0.1", "127.0.0.1:8080", False),
    ],
)
def test_a_remote_gateway_with_a_loopback_activator_is_named(
    activator_host: str, gateway_address: str, warned: bool
) -> None:
    hello = agent_pb2.AgentHello(region="edge", gateway_address=gateway_address)
    warning = activator_out_of_reach(activator_host, hello)
    if not warned:
        assert warning is None
    else:
        assert warning is not None
        assert "edge" in warning and gateway_address in warning
        assert "--activator-host" in warning
