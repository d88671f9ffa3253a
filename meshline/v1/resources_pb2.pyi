from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectMeta(_message.Message):
    __slots__ = ("name", "labels", "created_at", "updated_at", "generation")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    created_at: str
    updated_at: str
    generation: int
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "datatype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelSignature(_message.Message):
    __slots__ = ("inputs", "outputs")
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    def __init__(self, inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ...) -> None: ...

class ExternalEndpoint(_message.Message):
    __slots__ = ("grpc_address", "http_address", "metrics_address")
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    METRICS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    grpc_address: str
    http_address: str
    metrics_address: str
    def __init__(self, grpc_address: _Optional[str] = ..., http_address: _Optional[str] = ..., metrics_address: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("name", "runtime", "path", "signature", "metadata", "external", "sha256", "size_bytes", "created_at", "framework", "huggingface", "artifact_path", "footprint")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    HUGGINGFACE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_PATH_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    runtime: str
    path: str
    signature: ModelSignature
    metadata: _containers.ScalarMap[str, str]
    external: ExternalEndpoint
    sha256: str
    size_bytes: int
    created_at: str
    framework: str
    huggingface: HuggingFaceSource
    artifact_path: str
    footprint: VersionFootprint
    def __init__(self, name: _Optional[str] = ..., runtime: _Optional[str] = ..., path: _Optional[str] = ..., signature: _Optional[_Union[ModelSignature, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., external: _Optional[_Union[ExternalEndpoint, _Mapping]] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., created_at: _Optional[str] = ..., framework: _Optional[str] = ..., huggingface: _Optional[_Union[HuggingFaceSource, _Mapping]] = ..., artifact_path: _Optional[str] = ..., footprint: _Optional[_Union[VersionFootprint, _Mapping]] = ...) -> None: ...

class VersionFootprint(_message.Message):
    __slots__ = ("memory_bytes", "region", "measured_at")
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MEASURED_AT_FIELD_NUMBER: _ClassVar[int]
    memory_bytes: int
    region: str
    measured_at: str
    def __init__(self, memory_bytes: _Optional[int] = ..., region: _Optional[str] = ..., measured_at: _Optional[str] = ...) -> None: ...

class HuggingFaceSource(_message.Message):
    __slots__ = ("repo_id", "filename", "revision")
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    repo_id: str
    filename: str
    revision: str
    def __init__(self, repo_id: _Optional[str] = ..., filename: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ModelSpec(_message.Message):
    __slots__ = ("description", "versions")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    description: str
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, description: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("metadata", "spec")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: ModelSpec
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[ModelSpec, _Mapping]] = ...) -> None: ...

class LocationSelector(_message.Message):
    __slots__ = ("regions", "countries", "continents")
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    CONTINENTS_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedScalarFieldContainer[str]
    countries: _containers.RepeatedScalarFieldContainer[str]
    continents: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, regions: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ..., continents: _Optional[_Iterable[str]] = ...) -> None: ...

class LocationPolicy(_message.Message):
    __slots__ = ("regions", "countries", "continents", "deny")
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    CONTINENTS_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedScalarFieldContainer[str]
    countries: _containers.RepeatedScalarFieldContainer[str]
    continents: _containers.RepeatedScalarFieldContainer[str]
    deny: LocationSelector
    def __init__(self, regions: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ..., continents: _Optional[_Iterable[str]] = ..., deny: _Optional[_Union[LocationSelector, _Mapping]] = ...) -> None: ...

class FlavorSet(_message.Message):
    __slots__ = ("cpu", "gpu")
    CPU_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    cpu: _containers.RepeatedScalarFieldContainer[str]
    gpu: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cpu: _Optional[_Iterable[str]] = ..., gpu: _Optional[_Iterable[str]] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("attempts", "per_try_timeout_s", "retry_on", "budget_percent", "min_retry_concurrency", "disabled")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PER_TRY_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    RETRY_ON_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MIN_RETRY_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    per_try_timeout_s: float
    retry_on: _containers.RepeatedScalarFieldContainer[str]
    budget_percent: float
    min_retry_concurrency: int
    disabled: bool
    def __init__(self, attempts: _Optional[int] = ..., per_try_timeout_s: _Optional[float] = ..., retry_on: _Optional[_Iterable[str]] = ..., budget_percent: _Optional[float] = ..., min_retry_concurrency: _Optional[int] = ..., disabled: _Optional[bool] = ...) -> None: ...

class RoutingPolicy(_message.Message):
    __slots__ = ("strategy", "hash_header", "timeout_s", "retries", "region_preference", "region_order")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HASH_HEADER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    REGION_PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    REGION_ORDER_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    hash_header: str
    timeout_s: float
    retries: RetryPolicy
    region_preference: str
    region_order: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, strategy: _Optional[str] = ..., hash_header: _Optional[str] = ..., timeout_s: _Optional[float] = ..., retries: _Optional[_Union[RetryPolicy, _Mapping]] = ..., region_preference: _Optional[str] = ..., region_order: _Optional[_Iterable[str]] = ...) -> None: ...

class HealthCheckPolicy(_message.Message):
    __slots__ = ("interval_s", "timeout_s", "unhealthy_threshold", "healthy_threshold")
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    interval_s: float
    timeout_s: float
    unhealthy_threshold: int
    healthy_threshold: int
    def __init__(self, interval_s: _Optional[float] = ..., timeout_s: _Optional[float] = ..., unhealthy_threshold: _Optional[int] = ..., healthy_threshold: _Optional[int] = ...) -> None: ...

class OutlierPolicy(_message.Message):
    __slots__ = ("consecutive_5xx", "consecutive_gateway_failure", "base_ejection_time_s", "max_ejection_percent", "interval_s")
    CONSECUTIVE_5XX_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_GATEWAY_FAILURE_FIELD_NUMBER: _ClassVar[int]
    BASE_EJECTION_TIME_S_FIELD_NUMBER: _ClassVar[int]
    MAX_EJECTION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    consecutive_5xx: int
    consecutive_gateway_failure: int
    base_ejection_time_s: float
    max_ejection_percent: int
    interval_s: float
    def __init__(self, consecutive_5xx: _Optional[int] = ..., consecutive_gateway_failure: _Optional[int] = ..., base_ejection_time_s: _Optional[float] = ..., max_ejection_percent: _Optional[int] = ..., interval_s: _Optional[float] = ...) -> None: ...

class FailoverPolicy(_message.Message):
    __slots__ = ("disabled", "regions", "health_check", "outlier")
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CHECK_FIELD_NUMBER: _ClassVar[int]
    OUTLIER_FIELD_NUMBER: _ClassVar[int]
    disabled: bool
    regions: _containers.RepeatedScalarFieldContainer[str]
    health_check: HealthCheckPolicy
    outlier: OutlierPolicy
    def __init__(self, disabled: _Optional[bool] = ..., regions: _Optional[_Iterable[str]] = ..., health_check: _Optional[_Union[HealthCheckPolicy, _Mapping]] = ..., outlier: _Optional[_Union[OutlierPolicy, _Mapping]] = ...) -> None: ...

class OffloadPolicy(_message.Message):
    __slots__ = ("max_inflight_per_replica", "max_percent", "regions")
    MAX_INFLIGHT_PER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_PERCENT_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    max_inflight_per_replica: int
    max_percent: int
    regions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, max_inflight_per_replica: _Optional[int] = ..., max_percent: _Optional[int] = ..., regions: _Optional[_Iterable[str]] = ...) -> None: ...

class VersionWeight(_message.Message):
    __slots__ = ("version", "weight")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    version: str
    weight: int
    def __init__(self, version: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class MirrorPolicy(_message.Message):
    __slots__ = ("version", "percent")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    version: str
    percent: float
    def __init__(self, version: _Optional[str] = ..., percent: _Optional[float] = ...) -> None: ...

class TrafficPolicy(_message.Message):
    __slots__ = ("split", "mirror")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    MIRROR_FIELD_NUMBER: _ClassVar[int]
    split: _containers.RepeatedCompositeFieldContainer[VersionWeight]
    mirror: MirrorPolicy
    def __init__(self, split: _Optional[_Iterable[_Union[VersionWeight, _Mapping]]] = ..., mirror: _Optional[_Union[MirrorPolicy, _Mapping]] = ...) -> None: ...

class ClaimMatch(_message.Message):
    __slots__ = ("claim", "values")
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    claim: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, claim: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class JwtRule(_message.Message):
    __slots__ = ("issuer", "audiences", "jwks", "jwks_uri", "claims")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    AUDIENCES_FIELD_NUMBER: _ClassVar[int]
    JWKS_FIELD_NUMBER: _ClassVar[int]
    JWKS_URI_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    audiences: _containers.RepeatedScalarFieldContainer[str]
    jwks: str
    jwks_uri: str
    claims: _containers.RepeatedCompositeFieldContainer[ClaimMatch]
    def __init__(self, issuer: _Optional[str] = ..., audiences: _Optional[_Iterable[str]] = ..., jwks: _Optional[str] = ..., jwks_uri: _Optional[str] = ..., claims: _Optional[_Iterable[_Union[ClaimMatch, _Mapping]]] = ...) -> None: ...

class Firewall(_message.Message):
    __slots__ = ("allow", "deny", "trusted_hops")
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_HOPS_FIELD_NUMBER: _ClassVar[int]
    allow: _containers.RepeatedScalarFieldContainer[str]
    deny: _containers.RepeatedScalarFieldContainer[str]
    trusted_hops: int
    def __init__(self, allow: _Optional[_Iterable[str]] = ..., deny: _Optional[_Iterable[str]] = ..., trusted_hops: _Optional[int] = ...) -> None: ...

class AccessPolicy(_message.Message):
    __slots__ = ("anonymous", "keys", "roles", "jwt", "firewall")
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    JWT_FIELD_NUMBER: _ClassVar[int]
    FIREWALL_FIELD_NUMBER: _ClassVar[int]
    anonymous: bool
    keys: _containers.RepeatedScalarFieldContainer[str]
    roles: _containers.RepeatedScalarFieldContainer[str]
    jwt: _containers.RepeatedCompositeFieldContainer[JwtRule]
    firewall: Firewall
    def __init__(self, anonymous: _Optional[bool] = ..., keys: _Optional[_Iterable[str]] = ..., roles: _Optional[_Iterable[str]] = ..., jwt: _Optional[_Iterable[_Union[JwtRule, _Mapping]]] = ..., firewall: _Optional[_Union[Firewall, _Mapping]] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("requests_per_second", "burst")
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    requests_per_second: float
    burst: int
    def __init__(self, requests_per_second: _Optional[float] = ..., burst: _Optional[int] = ...) -> None: ...

class RatePolicy(_message.Message):
    __slots__ = ("deployment", "principal")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    deployment: RateLimit
    principal: RateLimit
    def __init__(self, deployment: _Optional[_Union[RateLimit, _Mapping]] = ..., principal: _Optional[_Union[RateLimit, _Mapping]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("mode", "location", "flavor", "routing", "failover", "offload", "traffic", "access", "rate")
    MODE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    FAILOVER_FIELD_NUMBER: _ClassVar[int]
    OFFLOAD_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    location: LocationPolicy
    flavor: FlavorSet
    routing: RoutingPolicy
    failover: FailoverPolicy
    offload: OffloadPolicy
    traffic: TrafficPolicy
    access: AccessPolicy
    rate: RatePolicy
    def __init__(self, mode: _Optional[str] = ..., location: _Optional[_Union[LocationPolicy, _Mapping]] = ..., flavor: _Optional[_Union[FlavorSet, _Mapping]] = ..., routing: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., failover: _Optional[_Union[FailoverPolicy, _Mapping]] = ..., offload: _Optional[_Union[OffloadPolicy, _Mapping]] = ..., traffic: _Optional[_Union[TrafficPolicy, _Mapping]] = ..., access: _Optional[_Union[AccessPolicy, _Mapping]] = ..., rate: _Optional[_Union[RatePolicy, _Mapping]] = ...) -> None: ...

class EnvironmentSpec(_message.Message):
    __slots__ = ("description", "policies")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    description: str
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    def __init__(self, description: _Optional[str] = ..., policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("metadata", "spec")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: EnvironmentSpec
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[EnvironmentSpec, _Mapping]] = ...) -> None: ...

class BatchingSpec(_message.Message):
    __slots__ = ("max_batch_size", "max_delay_ms", "preferred_batch_sizes", "priority_levels", "default_priority_level")
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_LEVELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PRIORITY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    max_batch_size: int
    max_delay_ms: float
    preferred_batch_sizes: _containers.RepeatedScalarFieldContainer[int]
    priority_levels: int
    default_priority_level: int
    def __init__(self, max_batch_size: _Optional[int] = ..., max_delay_ms: _Optional[float] = ..., preferred_batch_sizes: _Optional[_Iterable[int]] = ..., priority_levels: _Optional[int] = ..., default_priority_level: _Optional[int] = ...) -> None: ...

class ScalingSpec(_message.Message):
    __slots__ = ("min_replicas", "max_replicas", "target_concurrency", "scale_to_zero_after", "cold_start_timeout", "stable_window", "panic_window", "initial_replicas")
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    TARGET_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    SCALE_TO_ZERO_AFTER_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    STABLE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    PANIC_WINDOW_FIELD_NUMBER: _ClassVar[int]
    INITIAL_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    min_replicas: int
    max_replicas: int
    target_concurrency: float
    scale_to_zero_after: float
    cold_start_timeout: float
    stable_window: float
    panic_window: float
    initial_replicas: int
    def __init__(self, min_replicas: _Optional[int] = ..., max_replicas: _Optional[int] = ..., target_concurrency: _Optional[float] = ..., scale_to_zero_after: _Optional[float] = ..., cold_start_timeout: _Optional[float] = ..., stable_window: _Optional[float] = ..., panic_window: _Optional[float] = ..., initial_replicas: _Optional[int] = ...) -> None: ...

class CanaryStep(_message.Message):
    __slots__ = ("weight", "duration")
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    weight: int
    duration: float
    def __init__(self, weight: _Optional[int] = ..., duration: _Optional[float] = ...) -> None: ...

class RolloutAnalysis(_message.Message):
    __slots__ = ("max_error_rate_increase", "max_latency_ratio", "min_requests")
    MAX_ERROR_RATE_INCREASE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    max_error_rate_increase: float
    max_latency_ratio: float
    min_requests: int
    def __init__(self, max_error_rate_increase: _Optional[float] = ..., max_latency_ratio: _Optional[float] = ..., min_requests: _Optional[int] = ...) -> None: ...

class RolloutSpec(_message.Message):
    __slots__ = ("strategy", "steps", "analysis")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    steps: _containers.RepeatedCompositeFieldContainer[CanaryStep]
    analysis: RolloutAnalysis
    def __init__(self, strategy: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[CanaryStep, _Mapping]]] = ..., analysis: _Optional[_Union[RolloutAnalysis, _Mapping]] = ...) -> None: ...

class DeploymentSpec(_message.Message):
    __slots__ = ("environment", "model", "version", "replicas", "policies", "batching", "instances", "scaling", "deactivated", "rollout", "resources")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    DEACTIVATED_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    environment: str
    model: str
    version: str
    replicas: int
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    batching: BatchingSpec
    instances: int
    scaling: ScalingSpec
    deactivated: bool
    rollout: RolloutSpec
    resources: WorkerResources
    def __init__(self, environment: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., replicas: _Optional[int] = ..., policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ..., batching: _Optional[_Union[BatchingSpec, _Mapping]] = ..., instances: _Optional[int] = ..., scaling: _Optional[_Union[ScalingSpec, _Mapping]] = ..., deactivated: _Optional[bool] = ..., rollout: _Optional[_Union[RolloutSpec, _Mapping]] = ..., resources: _Optional[_Union[WorkerResources, _Mapping]] = ...) -> None: ...

class WorkerResources(_message.Message):
    __slots__ = ("memory", "packing")
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    PACKING_FIELD_NUMBER: _ClassVar[int]
    memory: str
    packing: str
    def __init__(self, memory: _Optional[str] = ..., packing: _Optional[str] = ...) -> None: ...

class RegionDeploymentStatus(_message.Message):
    __slots__ = ("region", "config_acked", "acked_version", "desired_replicas", "healthy_endpoints", "nack_error", "forwarding", "queued_requests", "requests", "batches", "scaled_to_zero", "cold_starts", "last_cold_start_s", "cold_start_seconds_total", "held_requests", "current_replicas", "leaving", "pending_reason", "shared_workers", "last_restart_reason")
    REGION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ACKED_FIELD_NUMBER: _ClassVar[int]
    ACKED_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    NACK_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORWARDING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    SCALED_TO_ZERO_FIELD_NUMBER: _ClassVar[int]
    COLD_STARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_COLD_START_S_FIELD_NUMBER: _ClassVar[int]
    COLD_START_SECONDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    HELD_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LEAVING_FIELD_NUMBER: _ClassVar[int]
    PENDING_REASON_FIELD_NUMBER: _ClassVar[int]
    SHARED_WORKERS_FIELD_NUMBER: _ClassVar[int]
    LAST_RESTART_REASON_FIELD_NUMBER: _ClassVar[int]
    region: str
    config_acked: bool
    acked_version: str
    desired_replicas: int
    healthy_endpoints: int
    nack_error: str
    forwarding: bool
    queued_requests: int
    requests: int
    batches: int
    scaled_to_zero: bool
    cold_starts: int
    last_cold_start_s: float
    cold_start_seconds_total: float
    held_requests: int
    current_replicas: int
    leaving: bool
    pending_reason: str
    shared_workers: _containers.RepeatedScalarFieldContainer[str]
    last_restart_reason: str
    def __init__(self, region: _Optional[str] = ..., config_acked: _Optional[bool] = ..., acked_version: _Optional[str] = ..., desired_replicas: _Optional[int] = ..., healthy_endpoints: _Optional[int] = ..., nack_error: _Optional[str] = ..., forwarding: _Optional[bool] = ..., queued_requests: _Optional[int] = ..., requests: _Optional[int] = ..., batches: _Optional[int] = ..., scaled_to_zero: _Optional[bool] = ..., cold_starts: _Optional[int] = ..., last_cold_start_s: _Optional[float] = ..., cold_start_seconds_total: _Optional[float] = ..., held_requests: _Optional[int] = ..., current_replicas: _Optional[int] = ..., leaving: _Optional[bool] = ..., pending_reason: _Optional[str] = ..., shared_workers: _Optional[_Iterable[str]] = ..., last_restart_reason: _Optional[str] = ...) -> None: ...

class StepAnalysis(_message.Message):
    __slots__ = ("step", "weight", "canary_requests", "canary_errors", "canary_p99_ms", "stable_requests", "stable_errors", "stable_p99_ms", "verdict")
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CANARY_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CANARY_ERRORS_FIELD_NUMBER: _ClassVar[int]
    CANARY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    STABLE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    STABLE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    STABLE_P99_MS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    step: int
    weight: int
    canary_requests: int
    canary_errors: int
    canary_p99_ms: float
    stable_requests: int
    stable_errors: int
    stable_p99_ms: float
    verdict: str
    def __init__(self, step: _Optional[int] = ..., weight: _Optional[int] = ..., canary_requests: _Optional[int] = ..., canary_errors: _Optional[int] = ..., canary_p99_ms: _Optional[float] = ..., stable_requests: _Optional[int] = ..., stable_errors: _Optional[int] = ..., stable_p99_ms: _Optional[float] = ..., verdict: _Optional[str] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("id", "environment", "deployment", "from_version", "to_version", "strategy", "phase", "step", "weight", "reason", "started_at", "updated_at", "analyses", "hold_released", "retry_of")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    HOLD_RELEASED_FIELD_NUMBER: _ClassVar[int]
    RETRY_OF_FIELD_NUMBER: _ClassVar[int]
    id: int
    environment: str
    deployment: str
    from_version: str
    to_version: str
    strategy: str
    phase: str
    step: int
    weight: int
    reason: str
    started_at: str
    updated_at: str
    analyses: _containers.RepeatedCompositeFieldContainer[StepAnalysis]
    hold_released: bool
    retry_of: int
    def __init__(self, id: _Optional[int] = ..., environment: _Optional[str] = ..., deployment: _Optional[str] = ..., from_version: _Optional[str] = ..., to_version: _Optional[str] = ..., strategy: _Optional[str] = ..., phase: _Optional[str] = ..., step: _Optional[int] = ..., weight: _Optional[int] = ..., reason: _Optional[str] = ..., started_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., analyses: _Optional[_Iterable[_Union[StepAnalysis, _Mapping]]] = ..., hold_released: _Optional[bool] = ..., retry_of: _Optional[int] = ...) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("phase", "message", "regions", "placement", "plan", "rollout", "serving_version", "observed_generation")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    phase: str
    message: str
    regions: _containers.RepeatedCompositeFieldContainer[RegionDeploymentStatus]
    placement: _containers.RepeatedScalarFieldContainer[str]
    plan: DeploymentPlan
    rollout: Rollout
    serving_version: str
    observed_generation: int
    def __init__(self, phase: _Optional[str] = ..., message: _Optional[str] = ..., regions: _Optional[_Iterable[_Union[RegionDeploymentStatus, _Mapping]]] = ..., placement: _Optional[_Iterable[str]] = ..., plan: _Optional[_Union[DeploymentPlan, _Mapping]] = ..., rollout: _Optional[_Union[Rollout, _Mapping]] = ..., serving_version: _Optional[str] = ..., observed_generation: _Optional[int] = ...) -> None: ...

class EffectivePolicy(_message.Message):
    __slots__ = ("source", "policy", "overridden_by")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_BY_FIELD_NUMBER: _ClassVar[int]
    source: str
    policy: Policy
    overridden_by: str
    def __init__(self, source: _Optional[str] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., overridden_by: _Optional[str] = ...) -> None: ...

class RegionExclusion(_message.Message):
    __slots__ = ("region", "reason")
    REGION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    region: str
    reason: str
    def __init__(self, region: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RouteTier(_message.Message):
    __slots__ = ("priority", "region", "kind", "weight", "endpoints")
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    priority: int
    region: str
    kind: str
    weight: int
    endpoints: int
    def __init__(self, priority: _Optional[int] = ..., region: _Optional[str] = ..., kind: _Optional[str] = ..., weight: _Optional[int] = ..., endpoints: _Optional[int] = ...) -> None: ...

class VersionRoute(_message.Message):
    __slots__ = ("version", "weight", "mirror_percent", "cluster", "tiers")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIRROR_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    version: str
    weight: int
    mirror_percent: float
    cluster: str
    tiers: _containers.RepeatedCompositeFieldContainer[RouteTier]
    def __init__(self, version: _Optional[str] = ..., weight: _Optional[int] = ..., mirror_percent: _Optional[float] = ..., cluster: _Optional[str] = ..., tiers: _Optional[_Iterable[_Union[RouteTier, _Mapping]]] = ...) -> None: ...

class GatewayPlan(_message.Message):
    __slots__ = ("region", "strategy", "hash_header", "timeout_s", "retries", "per_try_timeout_s", "retry_on", "retry_budget_percent", "versions", "offload_percent")
    REGION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HASH_HEADER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    PER_TRY_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    RETRY_ON_FIELD_NUMBER: _ClassVar[int]
    RETRY_BUDGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    OFFLOAD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    region: str
    strategy: str
    hash_header: str
    timeout_s: float
    retries: int
    per_try_timeout_s: float
    retry_on: _containers.RepeatedScalarFieldContainer[str]
    retry_budget_percent: float
    versions: _containers.RepeatedCompositeFieldContainer[VersionRoute]
    offload_percent: int
    def __init__(self, region: _Optional[str] = ..., strategy: _Optional[str] = ..., hash_header: _Optional[str] = ..., timeout_s: _Optional[float] = ..., retries: _Optional[int] = ..., per_try_timeout_s: _Optional[float] = ..., retry_on: _Optional[_Iterable[str]] = ..., retry_budget_percent: _Optional[float] = ..., versions: _Optional[_Iterable[_Union[VersionRoute, _Mapping]]] = ..., offload_percent: _Optional[int] = ...) -> None: ...

class RegionCapacityPlan(_message.Message):
    __slots__ = ("region", "outcome", "workers", "footprint_bytes", "footprint_source", "memory_known", "memory_free_bytes", "memory_budget_bytes", "stops", "reason")
    REGION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_KNOWN_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    STOPS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    region: str
    outcome: str
    workers: int
    footprint_bytes: int
    footprint_source: str
    memory_known: bool
    memory_free_bytes: int
    memory_budget_bytes: int
    stops: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, region: _Optional[str] = ..., outcome: _Optional[str] = ..., workers: _Optional[int] = ..., footprint_bytes: _Optional[int] = ..., footprint_source: _Optional[str] = ..., memory_known: _Optional[bool] = ..., memory_free_bytes: _Optional[int] = ..., memory_budget_bytes: _Optional[int] = ..., stops: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class DeploymentPlan(_message.Message):
    __slots__ = ("policies", "regions", "excluded", "gateways", "flavor", "capacity")
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    GATEWAYS_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[EffectivePolicy]
    regions: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[RegionExclusion]
    gateways: _containers.RepeatedCompositeFieldContainer[GatewayPlan]
    flavor: str
    capacity: _containers.RepeatedCompositeFieldContainer[RegionCapacityPlan]
    def __init__(self, policies: _Optional[_Iterable[_Union[EffectivePolicy, _Mapping]]] = ..., regions: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[RegionExclusion, _Mapping]]] = ..., gateways: _Optional[_Iterable[_Union[GatewayPlan, _Mapping]]] = ..., flavor: _Optional[str] = ..., capacity: _Optional[_Iterable[_Union[RegionCapacityPlan, _Mapping]]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: DeploymentStatus
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[DeploymentSpec, _Mapping]] = ..., status: _Optional[_Union[DeploymentStatus, _Mapping]] = ...) -> None: ...

class RegionSpec(_message.Message):
    __slots__ = ("country", "description", "continent", "flavors", "max_replicas", "memory_budget")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTINENT_FIELD_NUMBER: _ClassVar[int]
    FLAVORS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    country: str
    description: str
    continent: str
    flavors: FlavorSet
    max_replicas: int
    memory_budget: str
    def __init__(self, country: _Optional[str] = ..., description: _Optional[str] = ..., continent: _Optional[str] = ..., flavors: _Optional[_Union[FlavorSet, _Mapping]] = ..., max_replicas: _Optional[int] = ..., memory_budget: _Optional[str] = ...) -> None: ...

class RegionCapacity(_message.Message):
    __slots__ = ("memory_total_bytes", "memory_available_bytes", "memory_budget_bytes", "memory_used_bytes", "memory_free_bytes", "cpus", "workers", "gpus")
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    memory_total_bytes: int
    memory_available_bytes: int
    memory_budget_bytes: int
    memory_used_bytes: int
    memory_free_bytes: int
    cpus: int
    workers: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuCapacity]
    def __init__(self, memory_total_bytes: _Optional[int] = ..., memory_available_bytes: _Optional[int] = ..., memory_budget_bytes: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., memory_free_bytes: _Optional[int] = ..., cpus: _Optional[int] = ..., workers: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuCapacity, _Mapping]]] = ...) -> None: ...

class GpuCapacity(_message.Message):
    __slots__ = ("name", "total_bytes", "used_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    total_bytes: int
    used_bytes: int
    def __init__(self, name: _Optional[str] = ..., total_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ...) -> None: ...

class RegionStatus(_message.Message):
    __slots__ = ("agent_connected", "gateway_address", "admin_address", "gateway_healthy", "acked_versions", "nack_error", "last_seen", "certificate_expires_at", "certificate_serial", "peer_address", "edge_tls", "edge_certificate_expires_at", "capacity")
    class AckedVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADMIN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_HEALTHY_FIELD_NUMBER: _ClassVar[int]
    ACKED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NACK_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EDGE_TLS_FIELD_NUMBER: _ClassVar[int]
    EDGE_CERTIFICATE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    agent_connected: bool
    gateway_address: str
    admin_address: str
    gateway_healthy: bool
    acked_versions: _containers.ScalarMap[str, str]
    nack_error: str
    last_seen: str
    certificate_expires_at: str
    certificate_serial: str
    peer_address: str
    edge_tls: str
    edge_certificate_expires_at: str
    capacity: RegionCapacity
    def __init__(self, agent_connected: _Optional[bool] = ..., gateway_address: _Optional[str] = ..., admin_address: _Optional[str] = ..., gateway_healthy: _Optional[bool] = ..., acked_versions: _Optional[_Mapping[str, str]] = ..., nack_error: _Optional[str] = ..., last_seen: _Optional[str] = ..., certificate_expires_at: _Optional[str] = ..., certificate_serial: _Optional[str] = ..., peer_address: _Optional[str] = ..., edge_tls: _Optional[str] = ..., edge_certificate_expires_at: _Optional[str] = ..., capacity: _Optional[_Union[RegionCapacity, _Mapping]] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: RegionSpec
    status: RegionStatus
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[RegionSpec, _Mapping]] = ..., status: _Optional[_Union[RegionStatus, _Mapping]] = ...) -> None: ...

class ApiKeySpec(_message.Message):
    __slots__ = ("environment", "deployments", "roles", "expires_at")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    environment: str
    deployments: _containers.RepeatedScalarFieldContainer[str]
    roles: _containers.RepeatedScalarFieldContainer[str]
    expires_at: str
    def __init__(self, environment: _Optional[str] = ..., deployments: _Optional[_Iterable[str]] = ..., roles: _Optional[_Iterable[str]] = ..., expires_at: _Optional[str] = ...) -> None: ...

class ApiKeyStatus(_message.Message):
    __slots__ = ("phase", "key_id", "created_at", "revoked_at", "previous_key_id", "previous_valid_until", "rotated_at", "enforced_in", "pending_in")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_IN_FIELD_NUMBER: _ClassVar[int]
    PENDING_IN_FIELD_NUMBER: _ClassVar[int]
    phase: str
    key_id: str
    created_at: str
    revoked_at: str
    previous_key_id: str
    previous_valid_until: str
    rotated_at: str
    enforced_in: _containers.RepeatedScalarFieldContainer[str]
    pending_in: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phase: _Optional[str] = ..., key_id: _Optional[str] = ..., created_at: _Optional[str] = ..., revoked_at: _Optional[str] = ..., previous_key_id: _Optional[str] = ..., previous_valid_until: _Optional[str] = ..., rotated_at: _Optional[str] = ..., enforced_in: _Optional[_Iterable[str]] = ..., pending_in: _Optional[_Iterable[str]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: ApiKeySpec
    status: ApiKeyStatus
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[ApiKeySpec, _Mapping]] = ..., status: _Optional[_Union[ApiKeyStatus, _Mapping]] = ...) -> None: ...

class JoinTokenSpec(_message.Message):
    __slots__ = ("region", "expires_at", "facts")
    REGION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    region: str
    expires_at: str
    facts: RegionSpec
    def __init__(self, region: _Optional[str] = ..., expires_at: _Optional[str] = ..., facts: _Optional[_Union[RegionSpec, _Mapping]] = ...) -> None: ...

class JoinTokenStatus(_message.Message):
    __slots__ = ("phase", "created_at", "revoked_at", "last_used_at", "uses")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    phase: str
    created_at: str
    revoked_at: str
    last_used_at: str
    uses: int
    def __init__(self, phase: _Optional[str] = ..., created_at: _Optional[str] = ..., revoked_at: _Optional[str] = ..., last_used_at: _Optional[str] = ..., uses: _Optional[int] = ...) -> None: ...

class JoinToken(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: JoinTokenSpec
    status: JoinTokenStatus
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[JoinTokenSpec, _Mapping]] = ..., status: _Optional[_Union[JoinTokenStatus, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("sequence", "time", "principal", "verb", "kind", "name", "environment", "outcome", "code", "detail", "method")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    VERB_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: str
    principal: str
    verb: str
    kind: str
    name: str
    environment: str
    outcome: str
    code: str
    detail: str
    method: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[str] = ..., principal: _Optional[str] = ..., verb: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., environment: _Optional[str] = ..., outcome: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., method: _Optional[str] = ...) -> None: ...
