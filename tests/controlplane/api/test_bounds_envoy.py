"""The bounds against the real Envoy: inside them a document applies and every resource it
becomes passes `envoy --mode validate`; outside them apply refuses it, naming the field.

One document per bounded field (bound_probes.py), all of them in one apply and one Envoy
validation per example: Envoy takes about a second per config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from controlplane.api import ApplyError, DocumentError, FieldError, parse_resource_document
from controlplane.api.apply import plan_apply
from controlplane.api.bounds import BOUNDS
from controlplane.ir.build import GatewayAddress, build_network
from controlplane.policy import ResolvedDeployment
from controlplane.store import StoreSnapshot
from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap
from meshline.v1 import agent_pb2
from meshline.v1.api_pb2 import Resource
from tests.controlplane.api.bound_probes import (
    Probe,
    edges,
    inside,
    is_integer_field,
    one_per_mesh_rounds,
    probes,
)
from tests.controlplane.api.policy_world import world
from tests.controlplane.translate.test_validate import envoy_validate

Key = tuple[str, str]
GATEWAYS = {
    "eu": GatewayAddress("127.0.0.1", 10000, GatewayAddress("127.0.0.1", 11000)),
    "us": GatewayAddress("127.0.0.1", 10001, GatewayAddress("127.0.0.1", 11001)),
}


def _workers(resolved: list[ResolvedDeployment]) -> dict[str, list[agent_pb2.WorkerReport]]:
    """One healthy worker of every track in both regions, so EDS has hosts (and weights)."""
    out: dict[str, list[agent_pb2.WorkerReport]] = {region: [] for region in GATEWAYS}
    for region, reports in out.items():
        for i, dep in enumerate(resolved):
            for j, track in enumerate(dep.tracks):
                reports.append(
                    agent_pb2.WorkerReport(
                        worker_id=f"{region}-{i}-{j}",
                        deployment=dep.name,
                        environment=dep.environment,
                        track=track.name,
                        state=agent_pb2.WorkerState.WORKER_STATE_HEALTHY,
                        grpc_address=f"10.0.{i % 250}.{j + 1}:9000",
                        http_address=f"10.0.{i % 250}.{j + 1}:8000",
                        gateway_routable=True,
                    )
                )
    return out


def check_values(
    values: list[tuple[Key, float]],
    probes_by_key: Mapping[Key, Probe],
    stored: StoreSnapshot,
    tmp: Path,
) -> None:
    """Apply one probe document per (field, value); check who is refused, then validate what
    the accepted ones become with the real Envoy."""
    docs: list[tuple[Key, float, Probe, Resource]] = []
    for i, (key, value) in enumerate(values):
        probe = probes_by_key[key]
        expected = inside(BOUNDS[key], value)
        try:
            resource = parse_resource_document(probe.document(f"p{i}", value), "probes.yaml", i)
        except DocumentError as error:  # NaN, infinity, integer overflow: never leave the CLI
            assert not expected, f"{key} = {value!r} refused: {error}"
            assert error.field == probe.path, f"{key} = {value!r}: {error}"
            continue
        docs.append((key, value, probe, resource))
    try:
        plan_apply([r for *_, r in docs], stored)
        errors: list[FieldError] = []
    except ApplyError as error:
        errors = error.errors
    accepted = []
    for position, (key, value, probe, resource) in enumerate(docs):
        own = [e for e in errors if e.document_index == position]
        if inside(BOUNDS[key], value):
            assert own == [], f"{key} = {value!r} is inside its bound: {[str(e) for e in own]}"
            accepted.append(resource)
        else:
            assert probe.path in [e.field_path for e in own], (
                f"{key} = {value!r} is outside its bound, yet {[str(e) for e in own]}"
            )
    assert [str(e) for e in errors if e.document_index is None] == []
    plan = plan_apply(accepted, stored)
    resolved = list(plan.resolved.values())
    regions = {r.metadata.name: r for r in plan.regions}
    offload = {
        (d.environment, d.name, "eu"): d.offload.max_percent for d in resolved if d.offload.enabled
    }
    network = build_network(resolved, regions, GATEWAYS, _workers(resolved), offload)
    # Envoy's error names a cluster or route, which starts with the document's name.
    names = ", ".join(f"p{i}: {key} = {value!r}" for i, (key, value) in enumerate(values))
    for gateway in network.gateways:
        config = static_bootstrap(translate_gateway(gateway), admin_port=0).SerializeToString()
        result = envoy_validate(config, tmp)
        assert result.returncode == 0, f"{result.stdout[-2000:]}{result.stderr[-3000:]}\n{names}"


def test_every_edge_of_every_bound_with_envoy(tmp_path: Path) -> None:
    """At, just inside and just outside every edge of every field, in one apply."""
    with world(tmp_path) as store:
        values = [(key, value) for key in sorted(BOUNDS) for value in edges(key)]
        for round_values in one_per_mesh_rounds(values):
            check_values(round_values, probes(tmp_path / "model.pt"), store.snapshot(), tmp_path)


def _values(key: Key) -> st.SearchStrategy[float]:
    """Edges, and anything in and a little around the range."""
    bound = BOUNDS[key]
    margin = max(1.0, (bound.high - bound.low) * 0.01)
    if is_integer_field(key):
        around = st.integers(int(bound.low - margin), int(bound.high + margin))
        return st.one_of(st.sampled_from(edges(key)), around)
    near_low = st.floats(bound.low - margin, bound.low + margin)
    near_high = st.floats(bound.high - margin, bound.high + margin)
    return st.one_of(
        st.sampled_from(edges(key)),
        near_low,
        near_high,
        st.floats(bound.low, bound.high),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def test_any_value_applies_and_validates_or_is_refused_by_name(tmp_path: Path) -> None:
    keys = sorted(BOUNDS)
    with world(tmp_path) as store:
        stored = store.snapshot()
        by_key = probes(tmp_path / "model.pt")

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            # A failure names the field and value itself; shrinking dozens of values, each try a
            # second of Envoy, would take minutes.
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.tuples(*(_values(key) for key in keys)))
        def check(drawn: tuple[float, ...]) -> None:
            check_values(list(zip(keys, drawn, strict=True)), by_key, stored, tmp_path)

        check()
