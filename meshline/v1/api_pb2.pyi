from meshline.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceRef(_message.Message):
    __slots__ = ("kind", "name", "environment")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    environment: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("targets", "dry_run", "ignore_not_found")
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    IGNORE_NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[ResourceRef]
    dry_run: bool
    ignore_not_found: bool
    def __init__(self, targets: _Optional[_Iterable[_Union[ResourceRef, _Mapping]]] = ..., dry_run: _Optional[bool] = ..., ignore_not_found: _Optional[bool] = ...) -> None: ...

class DeleteResult(_message.Message):
    __slots__ = ("target", "action")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    target: ResourceRef
    action: str
    def __init__(self, target: _Optional[_Union[ResourceRef, _Mapping]] = ..., action: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DeleteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DeleteResult, _Mapping]]] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("model", "environment", "deployment", "region")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    model: _resources_pb2.Model
    environment: _resources_pb2.Environment
    deployment: _resources_pb2.Deployment
    region: _resources_pb2.Region
    def __init__(self, model: _Optional[_Union[_resources_pb2.Model, _Mapping]] = ..., environment: _Optional[_Union[_resources_pb2.Environment, _Mapping]] = ..., deployment: _Optional[_Union[_resources_pb2.Deployment, _Mapping]] = ..., region: _Optional[_Union[_resources_pb2.Region, _Mapping]] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("resources", "dry_run")
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    dry_run: bool
    def __init__(self, resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ApplyResult(_message.Message):
    __slots__ = ("kind", "name", "action", "placement", "plan")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    action: str
    placement: _containers.RepeatedScalarFieldContainer[str]
    plan: _resources_pb2.DeploymentPlan
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., action: _Optional[str] = ..., placement: _Optional[_Iterable[str]] = ..., plan: _Optional[_Union[_resources_pb2.DeploymentPlan, _Mapping]] = ...) -> None: ...

class ApplyResponse(_message.Message):
    __slots__ = ("results", "effects")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ApplyResult]
    effects: _containers.RepeatedCompositeFieldContainer[DeploymentEffect]
    def __init__(self, results: _Optional[_Iterable[_Union[ApplyResult, _Mapping]]] = ..., effects: _Optional[_Iterable[_Union[DeploymentEffect, _Mapping]]] = ...) -> None: ...

class DeploymentEffect(_message.Message):
    __slots__ = ("name", "environment", "placement_before", "placement_after", "changed", "details")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_AFTER_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    placement_before: _containers.RepeatedScalarFieldContainer[str]
    placement_after: _containers.RepeatedScalarFieldContainer[str]
    changed: _containers.RepeatedScalarFieldContainer[str]
    details: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ..., placement_before: _Optional[_Iterable[str]] = ..., placement_after: _Optional[_Iterable[str]] = ..., changed: _Optional[_Iterable[str]] = ..., details: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Model]
    def __init__(self, models: _Optional[_Iterable[_Union[_resources_pb2.Model, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _resources_pb2.Model
    def __init__(self, model: _Optional[_Union[_resources_pb2.Model, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PushModelVersionHeader(_message.Message):
    __slots__ = ("model", "version", "sha256", "size_bytes")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: _resources_pb2.ModelVersion
    sha256: str
    size_bytes: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[_Union[_resources_pb2.ModelVersion, _Mapping]] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class PushModelVersionRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: PushModelVersionHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[PushModelVersionHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class PushModelVersionResponse(_message.Message):
    __slots__ = ("version", "action")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    version: _resources_pb2.ModelVersion
    action: str
    def __init__(self, version: _Optional[_Union[_resources_pb2.ModelVersion, _Mapping]] = ..., action: _Optional[str] = ...) -> None: ...

class ListModelVersionsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ListModelVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[_resources_pb2.ModelVersion, _Mapping]]] = ...) -> None: ...

class GetModelVersionRequest(_message.Message):
    __slots__ = ("model", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GetModelVersionResponse(_message.Message):
    __slots__ = ("version", "used_by")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    USED_BY_FIELD_NUMBER: _ClassVar[int]
    version: _resources_pb2.ModelVersion
    used_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[_Union[_resources_pb2.ModelVersion, _Mapping]] = ..., used_by: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteModelVersionRequest(_message.Message):
    __slots__ = ("model", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DeleteModelVersionResponse(_message.Message):
    __slots__ = ("model_deleted", "artifact_removed")
    MODEL_DELETED_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_REMOVED_FIELD_NUMBER: _ClassVar[int]
    model_deleted: bool
    artifact_removed: bool
    def __init__(self, model_deleted: _Optional[bool] = ..., artifact_removed: _Optional[bool] = ...) -> None: ...

class DownloadArtifactRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class DownloadArtifactResponse(_message.Message):
    __slots__ = ("chunk", "size_bytes")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    size_bytes: int
    def __init__(self, chunk: _Optional[bytes] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ListEnvironmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEnvironmentsResponse(_message.Message):
    __slots__ = ("environments",)
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    environments: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Environment]
    def __init__(self, environments: _Optional[_Iterable[_Union[_resources_pb2.Environment, _Mapping]]] = ...) -> None: ...

class GetEnvironmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetEnvironmentResponse(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: _resources_pb2.Environment
    def __init__(self, environment: _Optional[_Union[_resources_pb2.Environment, _Mapping]] = ...) -> None: ...

class DeleteEnvironmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteEnvironmentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetDeploymentActiveRequest(_message.Message):
    __slots__ = ("name", "environment", "active")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    active: bool
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class SetDeploymentActiveResponse(_message.Message):
    __slots__ = ("deployment", "changed")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    deployment: _resources_pb2.Deployment
    changed: bool
    def __init__(self, deployment: _Optional[_Union[_resources_pb2.Deployment, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("environment", "page_size", "page_token")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    environment: str
    page_size: int
    page_token: str
    def __init__(self, environment: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "next_page_token")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Deployment]
    next_page_token: str
    def __init__(self, deployments: _Optional[_Iterable[_Union[_resources_pb2.Deployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("name", "environment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class GetDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: _resources_pb2.Deployment
    def __init__(self, deployment: _Optional[_Union[_resources_pb2.Deployment, _Mapping]] = ...) -> None: ...

class DeleteDeploymentRequest(_message.Message):
    __slots__ = ("name", "environment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class DeleteDeploymentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReleaseDeploymentRequest(_message.Message):
    __slots__ = ("name", "source_environment", "target_environment", "dry_run")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    name: str
    source_environment: str
    target_environment: str
    dry_run: bool
    def __init__(self, name: _Optional[str] = ..., source_environment: _Optional[str] = ..., target_environment: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ReleaseDeploymentResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ApplyResult
    def __init__(self, result: _Optional[_Union[ApplyResult, _Mapping]] = ...) -> None: ...

class CreateJoinTokenRequest(_message.Message):
    __slots__ = ("spec", "expires_in_s")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    spec: _resources_pb2.JoinTokenSpec
    expires_in_s: float
    def __init__(self, spec: _Optional[_Union[_resources_pb2.JoinTokenSpec, _Mapping]] = ..., expires_in_s: _Optional[float] = ...) -> None: ...

class CreateJoinTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: _resources_pb2.JoinToken
    secret: str
    def __init__(self, token: _Optional[_Union[_resources_pb2.JoinToken, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListJoinTokensRequest(_message.Message):
    __slots__ = ("region",)
    REGION_FIELD_NUMBER: _ClassVar[int]
    region: str
    def __init__(self, region: _Optional[str] = ...) -> None: ...

class ListJoinTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[_resources_pb2.JoinToken]
    def __init__(self, tokens: _Optional[_Iterable[_Union[_resources_pb2.JoinToken, _Mapping]]] = ...) -> None: ...

class RevokeJoinTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeJoinTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: _resources_pb2.JoinToken
    def __init__(self, token: _Optional[_Union[_resources_pb2.JoinToken, _Mapping]] = ...) -> None: ...

class ListRegionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRegionsResponse(_message.Message):
    __slots__ = ("regions",)
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Region]
    def __init__(self, regions: _Optional[_Iterable[_Union[_resources_pb2.Region, _Mapping]]] = ...) -> None: ...

class GetRegionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetRegionResponse(_message.Message):
    __slots__ = ("region",)
    REGION_FIELD_NUMBER: _ClassVar[int]
    region: _resources_pb2.Region
    def __init__(self, region: _Optional[_Union[_resources_pb2.Region, _Mapping]] = ...) -> None: ...

class DeleteRegionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRegionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("name", "environment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts",)
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Rollout]
    def __init__(self, rollouts: _Optional[_Iterable[_Union[_resources_pb2.Rollout, _Mapping]]] = ...) -> None: ...

class ControlRolloutRequest(_message.Message):
    __slots__ = ("name", "environment", "action")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    action: str
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class ControlRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: _resources_pb2.Rollout
    def __init__(self, rollout: _Optional[_Union[_resources_pb2.Rollout, _Mapping]] = ...) -> None: ...

class RetryRolloutRequest(_message.Message):
    __slots__ = ("name", "environment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class RetryRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: _resources_pb2.Rollout
    def __init__(self, rollout: _Optional[_Union[_resources_pb2.Rollout, _Mapping]] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("name", "spec", "expires_in_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: _resources_pb2.ApiKeySpec
    expires_in_s: float
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[_resources_pb2.ApiKeySpec, _Mapping]] = ..., expires_in_s: _Optional[float] = ...) -> None: ...

class CreateKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: _resources_pb2.ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[_resources_pb2.ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: str
    def __init__(self, environment: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[_resources_pb2.ApiKey, _Mapping]]] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _resources_pb2.ApiKey
    def __init__(self, key: _Optional[_Union[_resources_pb2.ApiKey, _Mapping]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _resources_pb2.ApiKey
    def __init__(self, key: _Optional[_Union[_resources_pb2.ApiKey, _Mapping]] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("name", "grace_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    grace_s: float
    def __init__(self, name: _Optional[str] = ..., grace_s: _Optional[float] = ...) -> None: ...

class RotateKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: _resources_pb2.ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[_resources_pb2.ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("since", "kind", "environment", "principal", "after_sequence", "limit")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since: str
    kind: str
    environment: str
    principal: str
    after_sequence: int
    limit: int
    def __init__(self, since: _Optional[str] = ..., kind: _Optional[str] = ..., environment: _Optional[str] = ..., principal: _Optional[str] = ..., after_sequence: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_resources_pb2.AuditEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_resources_pb2.AuditEvent, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoleGrant(_message.Message):
    __slots__ = ("role", "environment")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    environment: str
    def __init__(self, role: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("principal", "kind", "grants", "expires_at")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    principal: str
    kind: str
    grants: _containers.RepeatedCompositeFieldContainer[RoleGrant]
    expires_at: str
    def __init__(self, principal: _Optional[str] = ..., kind: _Optional[str] = ..., grants: _Optional[_Iterable[_Union[RoleGrant, _Mapping]]] = ..., expires_at: _Optional[str] = ...) -> None: ...
