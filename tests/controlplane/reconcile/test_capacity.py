"""A region's memory from its agent's report: budget, used (unmeasured workers count their
version's footprint), free (never beyond what the machine has available less a reserve); and
which measurements become a version's footprint."""

from __future__ import annotations

from controlplane.reconcile.capacity import (
    BASE_FOOTPRINT_BYTES,
    SHARED_BASE_FOOTPRINT_BYTES,
    declared_memory,
    estimated_footprint,
    memory_reserve,
    new_measurements,
    region_memory,
    track_footprints,
    version_footprint,
)
from controlplane.store.footprints import Footprint
from meshline.keys import DeploymentKey, TrackKey
from meshline.v1 import agent_pb2, resources_pb2

GIB = 2**30
MIB = 2**20
State = agent_pb2.WorkerState
TRACK = TrackKey("production", "fraud", "")


def worker(
    memory: int, state: int = State.WORKER_STATE_HEALTHY, name: str = "fraud", routable: bool = True
) -> agent_pb2.WorkerReport:
    return agent_pb2.WorkerReport(
        worker_id=f"{name}-{memory}",
        deployment=name,
        environment="production",
        memory_bytes=memory,
        state=state,
        runtime="torch",
        gateway_routable=routable,
    )


def report(
    *workers: agent_pb2.WorkerReport, total: int = 16 * GIB, available: int = 12 * GIB
) -> agent_pb2.AgentReport:
    return agent_pb2.AgentReport(
        workers=workers,
        machine=agent_pb2.MachineResources(
            memory_total_bytes=total, memory_available_bytes=available, cpus=2
        ),
    )


def test_no_machine_reported_yet_is_unknown() -> None:
    assert region_memory(resources_pb2.RegionSpec(), None, {}) is None
    assert region_memory(resources_pb2.RegionSpec(), agent_pb2.AgentReport(), {}) is None
    unreadable = report(total=0, available=0)  # an agent that could not read /proc/meminfo
    assert region_memory(resources_pb2.RegionSpec(), unreadable, {}) is None


def test_budget_used_and_free() -> None:
    got = region_memory(
        resources_pb2.RegionSpec(memory_budget="4Gi"),
        report(
            worker(GIB),
            worker(0),  # starting, not measured yet: its footprint holds its room
            worker(GIB // 2, state=State.WORKER_STATE_DRAINING),
        ),
        {TRACK: 300 * MIB},
    )
    assert got is not None
    assert got.budget_bytes == 4 * GIB
    assert got.used_bytes == GIB + 300 * MIB + GIB // 2
    assert got.draining_bytes == GIB // 2
    assert got.free_bytes == 4 * GIB - got.used_bytes
    assert got.workers == 2
    assert got.cpus == 2


def test_default_budget_is_a_share_of_the_machine() -> None:
    got = region_memory(resources_pb2.RegionSpec(), report(total=10 * GIB, available=10 * GIB), {})
    assert got is not None and got.budget_bytes == 6 * GIB and got.free_bytes == 6 * GIB


def test_free_never_exceeds_what_the_machine_has_available() -> None:
    got = region_memory(
        resources_pb2.RegionSpec(memory_budget="100%"),
        report(total=16 * GIB, available=2 * GIB),
        {},
    )
    assert got is not None
    assert got.free_bytes == 2 * GIB - memory_reserve(16 * GIB)
    squeezed = region_memory(resources_pb2.RegionSpec(), report(available=100 * MIB), {})
    assert squeezed is not None and squeezed.free_bytes == 0


def test_a_version_is_planned_by_its_measurement_else_an_estimate() -> None:
    version = resources_pb2.ModelVersion(name="v1", runtime="torch", sha256="ab", size_bytes=MIB)
    assert estimated_footprint(version) == BASE_FOOTPRINT_BYTES["torch"] + 2 * MIB
    measured = {("ab", "torch"): Footprint("ab", "torch", 123 * MIB, "eu", "t")}
    assert version_footprint(version, measured) == 123 * MIB
    assert version_footprint(version, {}) == estimated_footprint(version)
    triton = resources_pb2.ModelVersion(runtime="triton", sha256="ab")
    assert version_footprint(triton, measured) == BASE_FOOTPRINT_BYTES["triton"]


def test_footprints_are_the_largest_serving_worker_of_each_artifact() -> None:
    version = resources_pb2.ModelVersion(name="v1", runtime="torch", sha256="ab")
    other = resources_pb2.ModelVersion(name="v2", runtime="torch", sha256="cd")
    grown = resources_pb2.ModelVersion(name="v3", runtime="torch", sha256="ef")
    versions = {
        TRACK: version,
        TrackKey("production", "known", ""): other,
        TrackKey("production", "grown", ""): grown,
    }
    reports = {
        # A starting worker (not routable) and an unmeasured one do not count.
        "eu": report(worker(200 * MIB), worker(0), worker(500 * MIB, routable=False)),
        "us": report(
            worker(210 * MIB), worker(85 * MIB, name="known"), worker(200 * MIB, name="grown")
        ),
    }
    known = {
        ("cd", "torch"): Footprint("cd", "torch", 80 * MIB, "us", "t"),  # within 10%: kept
        ("ef", "torch"): Footprint("ef", "torch", 100 * MIB, "us", "t"),  # clearly larger now
    }
    got = new_measurements(reports, versions, known, "now")
    assert sorted(got, key=lambda f: f.sha256) == [
        Footprint("ab", "torch", 200 * MIB, "eu", "now"),  # 210 in us: within 10%
        Footprint("ef", "torch", 200 * MIB, "us", "now"),
    ]


def test_a_track_is_planned_at_the_larger_of_its_declared_memory_and_its_footprint() -> None:
    small = resources_pb2.Deployment(
        metadata=resources_pb2.ObjectMeta(name="fraud"),
        spec=resources_pb2.DeploymentSpec(
            environment="production", resources=resources_pb2.WorkerResources(memory="512Mi")
        ),
    )
    declared = declared_memory([small])
    assert declared == {DeploymentKey("production", "fraud"): 512 * MIB}
    version = resources_pb2.ModelVersion(name="v1", runtime="torch", sha256="ab")
    other = TrackKey("production", "other", "")
    measured = {("ab", "torch"): Footprint("ab", "torch", 700 * MIB, "eu", "t")}
    assert track_footprints({TRACK: version, other: version}, {}, declared) == {
        TRACK: 512 * MIB,  # declared, above the estimate
        other: estimated_footprint(version),
    }
    assert track_footprints({TRACK: version}, measured, declared) == {TRACK: 700 * MIB}


def test_a_packed_model_is_planned_by_what_it_adds_to_a_shared_worker() -> None:
    version = resources_pb2.ModelVersion(name="v1", runtime="torch", sha256="ab", size_bytes=MIB)
    assert estimated_footprint(version, packed=True) == SHARED_BASE_FOOTPRINT_BYTES + 2 * MIB
    # The same artifact measured as a process of its own says nothing about it packed.
    measured = {("ab", "torch"): Footprint("ab", "torch", 150 * MIB, "eu", "t")}
    assert version_footprint(version, measured, packed=True) == estimated_footprint(version, True)
    measured[("ab", "torch-shared")] = Footprint("ab", "torch-shared", 3 * MIB, "eu", "t")
    assert version_footprint(version, measured, packed=True) == 3 * MIB
    assert version_footprint(version, measured) == 150 * MIB
    packed = TrackKey("production", "packed", "")
    got = track_footprints({TRACK: version, packed: version}, measured, {}, packed={packed})
    assert got == {TRACK: 150 * MIB, packed: 3 * MIB}


def _packed(name: str, memory: int, shared: str) -> agent_pb2.WorkerReport:
    w = worker(memory, name=name)
    w.shared_worker = shared
    return w


def test_a_shared_workers_own_cost_is_counted_once_and_its_models_each() -> None:
    got = region_memory(
        resources_pb2.RegionSpec(memory_budget="4Gi"),
        agent_pb2.AgentReport(
            workers=[_packed("a", 2 * MIB, "s1"), _packed("b", 3 * MIB, "s1"), worker(GIB)],
            shared_workers=[
                agent_pb2.SharedWorkerReport(
                    shared_worker="s1",
                    memory_bytes=150 * MIB,
                    model_memory_bytes=5 * MIB,
                    models=2,
                )
            ],
            machine=agent_pb2.MachineResources(
                memory_total_bytes=16 * GIB, memory_available_bytes=12 * GIB, cpus=2
            ),
        ),
        {},
    )
    assert got is not None
    assert got.used_bytes == 150 * MIB + GIB  # the process (models included) and the dedicated
    assert got.workers == 2  # processes: the shared one and the dedicated one


def test_a_packed_models_footprint_is_recorded_apart() -> None:
    version = resources_pb2.ModelVersion(name="v1", runtime="torch", sha256="ab")
    reports = {"eu": report(_packed("fraud", 4 * MIB, "s1"))}
    got = new_measurements(reports, {TRACK: version}, {}, "now")
    assert got == [Footprint("ab", "torch-shared", 4 * MIB, "eu", "now")]
