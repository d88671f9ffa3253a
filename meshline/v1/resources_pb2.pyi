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

class ModelVersion(_message.Message):
    __slots__ = ("name", "runtime", "path", "signature", "metadata")
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
    name: str
    runtime: str
    path: str
    signature: ModelSignature
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., runtime: _Optional[str] = ..., path: _Optional[str] = ..., signature: _Optional[_Union[ModelSignature, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

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

class LocationPolicy(_message.Message):
    __slots__ = ("regions", "countries")
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedScalarFieldContainer[str]
    countries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, regions: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("mode", "location")
    MODE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    mode: str
    location: LocationPolicy
    def __init__(self, mode: _Optional[str] = ..., location: _Optional[_Union[LocationPolicy, _Mapping]] = ...) -> None: ...

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

class DeploymentSpec(_message.Message):
    __slots__ = ("environment", "model", "version", "replicas", "policies")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    environment: str
    model: str
    version: str
    replicas: int
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    def __init__(self, environment: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., replicas: _Optional[int] = ..., policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ...) -> None: ...

class RegionDeploymentStatus(_message.Message):
    __slots__ = ("region", "config_acked", "acked_version", "desired_replicas", "healthy_endpoints", "nack_error")
    REGION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ACKED_FIELD_NUMBER: _ClassVar[int]
    ACKED_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    NACK_ERROR_FIELD_NUMBER: _ClassVar[int]
    region: str
    config_acked: bool
    acked_version: str
    desired_replicas: int
    healthy_endpoints: int
    nack_error: str
    def __init__(self, region: _Optional[str] = ..., config_acked: _Optional[bool] = ..., acked_version: _Optional[str] = ..., desired_replicas: _Optional[int] = ..., healthy_endpoints: _Optional[int] = ..., nack_error: _Optional[str] = ...) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("phase", "message", "regions", "placement")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    phase: str
    message: str
    regions: _containers.RepeatedCompositeFieldContainer[RegionDeploymentStatus]
    placement: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phase: _Optional[str] = ..., message: _Optional[str] = ..., regions: _Optional[_Iterable[_Union[RegionDeploymentStatus, _Mapping]]] = ..., placement: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("country", "description")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    country: str
    description: str
    def __init__(self, country: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RegionStatus(_message.Message):
    __slots__ = ("agent_connected", "gateway_address", "admin_address", "gateway_healthy", "acked_versions", "nack_error", "last_seen")
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
    agent_connected: bool
    gateway_address: str
    admin_address: str
    gateway_healthy: bool
    acked_versions: _containers.ScalarMap[str, str]
    nack_error: str
    last_seen: str
    def __init__(self, agent_connected: _Optional[bool] = ..., gateway_address: _Optional[str] = ..., admin_address: _Optional[str] = ..., gateway_healthy: _Optional[bool] = ..., acked_versions: _Optional[_Mapping[str, str]] = ..., nack_error: _Optional[str] = ..., last_seen: _Optional[str] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ObjectMeta
    spec: RegionSpec
    status: RegionStatus
    def __init__(self, metadata: _Optional[_Union[ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[RegionSpec, _Mapping]] = ..., status: _Optional[_Union[RegionStatus, _Mapping]] = ...) -> None: ...
