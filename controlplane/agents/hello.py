"""Whether an authenticated agent's hello may open its region's stream."""

from __future__ import annotations

import grpc

from controlplane.agents.edge_hello import claimed_controlplane_names, edge_tls_problem
from controlplane.agents.peers import PeerRefusal
from controlplane.store import NotFoundError, Store
from meshline.v1 import agent_pb2


def hello_refusal(
    store: Store, hello: agent_pb2.AgentHello, controlplane_names: frozenset[str] = frozenset()
) -> PeerRefusal | None:
    """The region must be registered: at Join (from the token's facts) or applied by an
    admin. A region deleted since its agent joined needs a new join. The hello's own facts
    (country, flavors, ...) are never read. The edge TLS it asks for must be one that can be
    configured, for none of `controlplane_names` (edge_hello.controlplane_names)."""
    if problem := edge_tls_problem(hello.edge_tls):
        return PeerRefusal(grpc.StatusCode.INVALID_ARGUMENT, problem)
    if problem := claimed_controlplane_names(hello.edge_tls, controlplane_names):
        return PeerRefusal(grpc.StatusCode.PERMISSION_DENIED, problem)
    try:
        store.get_region(hello.region)
    except NotFoundError:
        return PeerRefusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"region '{hello.region}' is not registered (was it deleted?): its agent must join "
            "again with a join token",
        )
    return None
