from meshline.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_STATE_UNSPECIFIED: _ClassVar[WorkerState]
    WORKER_STATE_STARTING: _ClassVar[WorkerState]
    WORKER_STATE_HEALTHY: _ClassVar[WorkerState]
    WORKER_STATE_UNHEALTHY: _ClassVar[WorkerState]
    WORKER_STATE_DRAINING: _ClassVar[WorkerState]
WORKER_STATE_UNSPECIFIED: WorkerState
WORKER_STATE_STARTING: WorkerState
WORKER_STATE_HEALTHY: WorkerState
WORKER_STATE_UNHEALTHY: WorkerState
WORKER_STATE_DRAINING: WorkerState

class JoinRequest(_message.Message):
    __slots__ = ("region", "join_token", "csr_pem")
    REGION_FIELD_NUMBER: _ClassVar[int]
    JOIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    region: str
    join_token: str
    csr_pem: str
    def __init__(self, region: _Optional[str] = ..., join_token: _Optional[str] = ..., csr_pem: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem", "mesh_address", "expires_at")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    MESH_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_pem: str
    mesh_address: str
    expires_at: str
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_pem: _Optional[str] = ..., mesh_address: _Optional[str] = ..., expires_at: _Optional[str] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: str
    def __init__(self, csr_pem: _Optional[str] = ...) -> None: ...

class RenewResponse(_message.Message):
    __slots__ = ("certificate_pem", "ca_pem", "expires_at")
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: str
    ca_pem: str
    expires_at: str
    def __init__(self, certificate_pem: _Optional[str] = ..., ca_pem: _Optional[str] = ..., expires_at: _Optional[str] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "report")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    hello: AgentHello
    report: AgentReport
    def __init__(self, hello: _Optional[_Union[AgentHello, _Mapping]] = ..., report: _Optional[_Union[AgentReport, _Mapping]] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("region", "gateway_address", "admin_address", "agent_id", "country", "continent", "flavors", "max_replicas", "peer_address", "edge_tls")
    REGION_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADMIN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CONTINENT_FIELD_NUMBER: _ClassVar[int]
    FLAVORS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EDGE_TLS_FIELD_NUMBER: _ClassVar[int]
    region: str
    gateway_address: str
    admin_address: str
    agent_id: str
    country: str
    continent: str
    flavors: _resources_pb2.FlavorSet
    max_replicas: int
    peer_address: str
    edge_tls: EdgeTls
    def __init__(self, region: _Optional[str] = ..., gateway_address: _Optional[str] = ..., admin_address: _Optional[str] = ..., agent_id: _Optional[str] = ..., country: _Optional[str] = ..., continent: _Optional[str] = ..., flavors: _Optional[_Union[_resources_pb2.FlavorSet, _Mapping]] = ..., max_replicas: _Optional[int] = ..., peer_address: _Optional[str] = ..., edge_tls: _Optional[_Union[EdgeTls, _Mapping]] = ...) -> None: ...

class EdgeTls(_message.Message):
    __slots__ = ("mode", "sds_path", "names")
    MODE_FIELD_NUMBER: _ClassVar[int]
    SDS_PATH_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    mode: str
    sds_path: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, mode: _Optional[str] = ..., sds_path: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkerReport(_message.Message):
    __slots__ = ("worker_id", "deployment", "environment", "revision", "grpc_address", "http_address", "state", "restarts", "last_error", "consecutive_failures", "gateway_routable", "version", "inflight", "track", "queued", "requests", "batches", "runtime", "memory_bytes", "shared_worker", "last_restart_reason")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ROUTABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INFLIGHT_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHARED_WORKER_FIELD_NUMBER: _ClassVar[int]
    LAST_RESTART_REASON_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    deployment: str
    environment: str
    revision: str
    grpc_address: str
    http_address: str
    state: WorkerState
    restarts: int
    last_error: str
    consecutive_failures: int
    gateway_routable: bool
    version: str
    inflight: int
    track: str
    queued: int
    requests: int
    batches: int
    runtime: str
    memory_bytes: int
    shared_worker: str
    last_restart_reason: str
    def __init__(self, worker_id: _Optional[str] = ..., deployment: _Optional[str] = ..., environment: _Optional[str] = ..., revision: _Optional[str] = ..., grpc_address: _Optional[str] = ..., http_address: _Optional[str] = ..., state: _Optional[_Union[WorkerState, str]] = ..., restarts: _Optional[int] = ..., last_error: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., gateway_routable: _Optional[bool] = ..., version: _Optional[str] = ..., inflight: _Optional[int] = ..., track: _Optional[str] = ..., queued: _Optional[int] = ..., requests: _Optional[int] = ..., batches: _Optional[int] = ..., runtime: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., shared_worker: _Optional[str] = ..., last_restart_reason: _Optional[str] = ...) -> None: ...

class SharedWorkerReport(_message.Message):
    __slots__ = ("shared_worker", "memory_bytes", "model_memory_bytes", "models", "isolated")
    SHARED_WORKER_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    ISOLATED_FIELD_NUMBER: _ClassVar[int]
    shared_worker: str
    memory_bytes: int
    model_memory_bytes: int
    models: int
    isolated: bool
    def __init__(self, shared_worker: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., model_memory_bytes: _Optional[int] = ..., models: _Optional[int] = ..., isolated: _Optional[bool] = ...) -> None: ...

class MachineResources(_message.Message):
    __slots__ = ("memory_total_bytes", "memory_available_bytes", "cpus", "gpus")
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    memory_total_bytes: int
    memory_available_bytes: int
    cpus: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuMemory]
    def __init__(self, memory_total_bytes: _Optional[int] = ..., memory_available_bytes: _Optional[int] = ..., cpus: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuMemory, _Mapping]]] = ...) -> None: ...

class GpuMemory(_message.Message):
    __slots__ = ("name", "total_bytes", "used_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    total_bytes: int
    used_bytes: int
    def __init__(self, name: _Optional[str] = ..., total_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ...) -> None: ...

class ClusterHealth(_message.Message):
    __slots__ = ("cluster", "routable_hosts", "inflight", "requests", "routable_hostnames")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ROUTABLE_HOSTS_FIELD_NUMBER: _ClassVar[int]
    INFLIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ROUTABLE_HOSTNAMES_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    routable_hosts: int
    inflight: int
    requests: int
    routable_hostnames: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster: _Optional[str] = ..., routable_hosts: _Optional[int] = ..., inflight: _Optional[int] = ..., requests: _Optional[int] = ..., routable_hostnames: _Optional[_Iterable[str]] = ...) -> None: ...

class LatencyBucket(_message.Message):
    __slots__ = ("upper_ms", "count")
    UPPER_MS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_ms: float
    count: int
    def __init__(self, upper_ms: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class ClusterTraffic(_message.Message):
    __slots__ = ("cluster", "requests", "errors", "latency")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    requests: int
    errors: int
    latency: _containers.RepeatedCompositeFieldContainer[LatencyBucket]
    def __init__(self, cluster: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., latency: _Optional[_Iterable[_Union[LatencyBucket, _Mapping]]] = ...) -> None: ...

class AgentReport(_message.Message):
    __slots__ = ("workers", "clusters", "traffic", "edge_certificate_expires_at", "machine", "shared_workers")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    EDGE_CERTIFICATE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    SHARED_WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerReport]
    clusters: _containers.RepeatedCompositeFieldContainer[ClusterHealth]
    traffic: _containers.RepeatedCompositeFieldContainer[ClusterTraffic]
    edge_certificate_expires_at: str
    machine: MachineResources
    shared_workers: _containers.RepeatedCompositeFieldContainer[SharedWorkerReport]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerReport, _Mapping]]] = ..., clusters: _Optional[_Iterable[_Union[ClusterHealth, _Mapping]]] = ..., traffic: _Optional[_Iterable[_Union[ClusterTraffic, _Mapping]]] = ..., edge_certificate_expires_at: _Optional[str] = ..., machine: _Optional[_Union[MachineResources, _Mapping]] = ..., shared_workers: _Optional[_Iterable[_Union[SharedWorkerReport, _Mapping]]] = ...) -> None: ...

class Workload(_message.Message):
    __slots__ = ("deployment", "environment", "revision", "runtime", "model_path", "signature", "replicas", "model_version", "flavor", "track", "batching", "instances", "external", "artifact_sha256", "local_clusters", "packed")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_SHA256_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    environment: str
    revision: str
    runtime: str
    model_path: str
    signature: _resources_pb2.ModelSignature
    replicas: int
    model_version: str
    flavor: str
    track: str
    batching: _resources_pb2.BatchingSpec
    instances: int
    external: _resources_pb2.ExternalEndpoint
    artifact_sha256: str
    local_clusters: _containers.RepeatedScalarFieldContainer[str]
    packed: bool
    def __init__(self, deployment: _Optional[str] = ..., environment: _Optional[str] = ..., revision: _Optional[str] = ..., runtime: _Optional[str] = ..., model_path: _Optional[str] = ..., signature: _Optional[_Union[_resources_pb2.ModelSignature, _Mapping]] = ..., replicas: _Optional[int] = ..., model_version: _Optional[str] = ..., flavor: _Optional[str] = ..., track: _Optional[str] = ..., batching: _Optional[_Union[_resources_pb2.BatchingSpec, _Mapping]] = ..., instances: _Optional[int] = ..., external: _Optional[_Union[_resources_pb2.ExternalEndpoint, _Mapping]] = ..., artifact_sha256: _Optional[str] = ..., local_clusters: _Optional[_Iterable[str]] = ..., packed: _Optional[bool] = ...) -> None: ...

class DesiredState(_message.Message):
    __slots__ = ("workloads", "remote_hostnames", "holding_hostnames")
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_HOSTNAMES_FIELD_NUMBER: _ClassVar[int]
    HOLDING_HOSTNAMES_FIELD_NUMBER: _ClassVar[int]
    workloads: _containers.RepeatedCompositeFieldContainer[Workload]
    remote_hostnames: _containers.RepeatedScalarFieldContainer[str]
    holding_hostnames: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workloads: _Optional[_Iterable[_Union[Workload, _Mapping]]] = ..., remote_hostnames: _Optional[_Iterable[str]] = ..., holding_hostnames: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleasedWorkers(_message.Message):
    __slots__ = ("worker_ids",)
    WORKER_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HelloAccepted(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("desired", "released", "accepted")
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    desired: DesiredState
    released: ReleasedWorkers
    accepted: HelloAccepted
    def __init__(self, desired: _Optional[_Union[DesiredState, _Mapping]] = ..., released: _Optional[_Union[ReleasedWorkers, _Mapping]] = ..., accepted: _Optional[_Union[HelloAccepted, _Mapping]] = ...) -> None: ...
