"""A gateway's route tables in wire form, assembled from its deployments' serialized parts.

One table routes every deployment (RDS has one resource per listener), so at 10,000
deployments it is tens of MB. Building it as one message (copying every route into it) and
serializing it again at each change took seconds. Here each deployment's parts are serialized
once (`RouteParts.wire`, already encoded as the repeated fields they become; the translator
keeps only that form, not the messages); a table is the
table's own fields with its deployments' bytes between them, byte for byte what serializing
the message `build_route_configuration` makes would give (deterministic serialization writes
fields in field-number order), and its digest is taken over the parts' digests, not its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from envoy.config.route.v3.route_components_pb2 import VirtualHost
from envoy.config.route.v3.route_pb2 import RouteConfiguration

from controlplane.ir.model import GatewayIR
from controlplane.translate.resources import Serialized
from controlplane.translate.routes import (
    VIRTUAL_HOSTS_FIELD,
    PartsWire,
    TableFrame,
    peer_frame,
    public_frame,
    routes_wire,
)
from controlplane.translate.wire_format import length_delimited


def public_table(gateway: GatewayIR, wires: Sequence[PartsWire]) -> Serialized:
    """The public listener's table: each deployment's `:authority` virtual host, then the
    default one with every deployment's header-form routes, then their path-form routes
    (`wires`: the deployments' parts in wire form, `RouteParts.wire`, in name order)."""
    return _table(
        public_frame(gateway),
        [w.authority_host for w in wires],
        [*(w.header_routes for w in wires), *(w.path_routes for w in wires)],
        [w.digest for w in wires],
    )


def peer_table(gateway: GatewayIR, wires: Sequence[PartsWire]) -> Serialized:
    """The peer listener's table: every deployment's routes for forwarded requests."""
    return _table(peer_frame(gateway), [], [w.hop_routes for w in wires], [w.digest for w in wires])


def _table(
    frame: TableFrame,
    hosts: Sequence[bytes],
    routes: Sequence[bytes],
    digests: Iterable[bytes],
) -> Serialized:
    # The table's fields numbered below `virtual_hosts` (its name), then the virtual hosts,
    # then the fields above (response headers): serialized apart and put around them.
    before = RouteConfiguration(name=frame.config.name).SerializeToString(deterministic=True)
    rest = RouteConfiguration()
    rest.CopyFrom(frame.config)
    rest.ClearField("name")
    after = rest.SerializeToString(deterministic=True)
    # The same around the default virtual host's routes: its name and domains (numbered
    # below `routes`), then the routes, then its other fields (headers, retry policy).
    host = frame.default_host
    host_before = VirtualHost(name=host.name, domains=host.domains).SerializeToString(
        deterministic=True
    )
    host_rest = VirtualHost()
    host_rest.CopyFrom(host)
    host_rest.ClearField("name")
    host_rest.ClearField("domains")
    host_after = host_rest.SerializeToString(deterministic=True)
    default = b"".join(
        [
            host_before,
            routes_wire(frame.first),
            *routes,
            routes_wire(frame.last),
            host_after,
        ]
    )
    data = b"".join([before, *hosts, length_delimited(VIRTUAL_HOSTS_FIELD, default), after])
    digest = hashlib.sha256()
    for fixed in (before, after, frame.default_host.SerializeToString(deterministic=True)):
        digest.update(len(fixed).to_bytes(8, "big"))
        digest.update(fixed)
    digest.update(routes_wire(frame.first))
    digest.update(routes_wire(frame.last))
    for part in digests:
        digest.update(part)
    return Serialized(RouteConfiguration, data, digest.digest())
