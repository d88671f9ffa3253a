"""grpc.aio servicers of the management API (meshline.v1).

What a servicer says about deployments of other environments follows what the caller may
view: a version's users and the users that keep a model or version from being deleted are
listed for the caller's environments only (the others counted, not named)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

import grpc

from controlplane.api.apply import apply_request, apply_resources
from controlplane.api.audit_service import AuditServicer, IdentityServicer
from controlplane.api.authz import Principal
from controlplane.api.delete import DeleteRefusedError, delete_resources
from controlplane.api.dependencies import region_dependents
from controlplane.api.errors import FIELD_ERRORS_METADATA_KEY, ApplyError, encode_field_errors
from controlplane.api.guard import current_principal
from controlplane.api.join_tokens import JoinTokens
from controlplane.api.keys import Enforcement, KeyServicer
from controlplane.api.paging import PageTokenError, keyset_page
from controlplane.api.registry import (
    VersionExistsError,
    delete_version,
    find_version,
    push_version,
    remove_unreferenced,
    version_users,
)
from controlplane.api.release import release_deployment
from controlplane.api.status import RegionRooms, StatusProvider, add_certificate, statuses_of
from controlplane.api.upload import UploadError, receive_upload
from controlplane.explain_capacity import RegionRoom
from controlplane.policy import PlacementError, ResolveMemo
from controlplane.rollout import RolloutController, RolloutError
from controlplane.store import (
    DEFAULT_ENVIRONMENT,
    KIND_DEPLOYMENT,
    KIND_REGION,
    KINDS,
    DependencyError,
    InvalidApplyError,
    NotFoundError,
    ResourceKey,
    Store,
    StoreError,
    StoreSnapshot,
)
from controlplane.store.artifacts import ArtifactError, ArtifactStore, digest_problem
from controlplane.store.footprints import load_footprints, version_with_footprint, with_footprints
from controlplane.store.region_certificates import RegionCertificate, region_certificates
from controlplane.store.rollouts import latest_rollouts
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import Deployment, Region, Rollout

T = TypeVar("T")
# grpc ships no type stubs; the servicer context is typed loosely on purpose.
Context = Any


async def _abort(context: Context, exc: Exception) -> NoReturn:
    """Turn a store, policy or validation error into the matching gRPC status."""
    if isinstance(exc, ApplyError):
        trailers = ((FIELD_ERRORS_METADATA_KEY, encode_field_errors(exc.errors)),)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc), trailing_metadata=trailers)
    elif isinstance(exc, NotFoundError):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    elif isinstance(exc, DependencyError):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    elif isinstance(exc, VersionExistsError):
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    elif isinstance(exc, InvalidApplyError | PlacementError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    raise AssertionError("abort returned")


async def _call(context: Context, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (StoreError, ApplyError, PlacementError) as exc:
        await _abort(context, exc)


def seen_by(who: Principal, snapshot: StoreSnapshot) -> StoreSnapshot:
    """`snapshot` with only the deployments of the environments `who` may view."""
    deployments = tuple(
        d for d in snapshot.deployments if who.may_view(d.spec.environment or DEFAULT_ENVIRONMENT)
    )
    return dataclasses.replace(snapshot, deployments=deployments)


def out_of_sight(exc: DependencyError, visible: Sequence[str], what: str = "") -> DependencyError:
    """`exc` naming only the `visible` dependents, the others counted: the refusal of a
    caller who may not view every environment does not name their deployments."""
    hidden = len(exc.dependents) - len(visible)
    if hidden <= 0:
        return exc
    more = f"{hidden} deployment{'s' if hidden > 1 else ''} in environments you may not view"
    return DependencyError(exc.key, [*visible, more], what)


async def _require_name(context: Context, name: str, what: str) -> None:
    if not name:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{what} name is required")


class ApplyServicer(api_pb2_grpc.ApplyServiceServicer):
    """Declarative apply: every document valid and placed, stored in one transaction."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        rooms: Callable[[], Mapping[str, RegionRoom]] | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._rooms = rooms
        # Every Apply resolves the whole network twice (before and after): resolutions of
        # unchanged deployments are remembered between calls.
        self._resolutions = ResolveMemo()

    async def Apply(self, request: api.ApplyRequest, context: Context) -> api.ApplyResponse:
        return await _call(
            context,
            lambda: apply_request(
                self._store,
                request.resources,
                request.dry_run,
                self._artifacts,
                self._rooms,
                self._resolutions,
            ),
        )

    async def Delete(self, request: api.DeleteRequest, context: Context) -> api.DeleteResponse:
        keys = []
        for i, ref in enumerate(request.targets):
            if ref.kind not in KINDS:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"targets[{i}].kind {ref.kind!r} is not one of {', '.join(KINDS)}",
                )
            await _require_name(context, ref.name, f"targets[{i}] {ref.kind.lower()}")
            keys.append(ResourceKey(ref.kind, ref.name, ref.environment))
        try:
            done = delete_resources(
                self._store,
                keys,
                dry_run=request.dry_run,
                ignore_not_found=request.ignore_not_found,
                artifacts=self._artifacts,
            )
        except DeleteRefusedError as exc:
            missing = exc.only_missing
            code = grpc.StatusCode.NOT_FOUND if missing else grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(exc))
        except StoreError as exc:  # changed under us between the check and the transaction
            await _abort(context, exc)
        return api.DeleteResponse(
            results=[
                api.DeleteResult(
                    target=api.ResourceRef(kind=k.kind, name=k.name, environment=k.environment),
                    action=action,
                )
                for k, action in done
            ]
        )


class ModelServicer(api_pb2_grpc.ModelServiceServicer):
    """Models and the registry of their versions (artifacts pushed, listed, deleted)."""

    def __init__(self, store: Store, artifacts: ArtifactStore) -> None:
        self._store = store
        self._artifacts = artifacts

    async def ListModels(
        self, request: api.ListModelsRequest, context: Context
    ) -> api.ListModelsResponse:
        measured = load_footprints(self._store)
        return api.ListModelsResponse(
            models=[with_footprints(m, measured) for m in self._store.list_models()]
        )

    async def GetModel(
        self, request: api.GetModelRequest, context: Context
    ) -> api.GetModelResponse:
        await _require_name(context, request.name, "model")
        model = await _call(context, lambda: self._store.get_model(request.name))
        return api.GetModelResponse(model=with_footprints(model, load_footprints(self._store)))

    async def DeleteModel(
        self, request: api.DeleteModelRequest, context: Context
    ) -> api.DeleteModelResponse:
        await _require_name(context, request.name, "model")
        try:
            self._store.delete_model(request.name)
        except DependencyError as exc:
            seen = seen_by(current_principal(), self._store.snapshot())
            visible = [
                str(ResourceKey(KIND_DEPLOYMENT, d.metadata.name, d.spec.environment))
                for d in seen.deployments
                if d.spec.model == request.name
            ]
            await _abort(context, out_of_sight(exc, visible))
        except (StoreError, ApplyError, PlacementError) as exc:
            await _abort(context, exc)
        remove_unreferenced(self._store, self._artifacts)
        return api.DeleteModelResponse()

    async def PushModelVersion(
        self, request_iterator: AsyncIterator[api.PushModelVersionRequest], context: Context
    ) -> api.PushModelVersionResponse:
        try:
            received = await receive_upload(request_iterator, self._artifacts)
        except UploadError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        with received.upload as upload:
            try:
                upload.commit(received.expected)
            except ArtifactError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            # From the checked file to the committed version: no await, nothing in between.
            version, action = await _call(
                context, lambda: push_version(self._store, self._artifacts, received.header)
            )
        return api.PushModelVersionResponse(version=version, action=action)

    async def ListModelVersions(
        self, request: api.ListModelVersionsRequest, context: Context
    ) -> api.ListModelVersionsResponse:
        await _require_name(context, request.model, "model")
        model = await _call(context, lambda: self._store.get_model(request.model))
        return api.ListModelVersionsResponse(versions=model.spec.versions)

    async def GetModelVersion(
        self, request: api.GetModelVersionRequest, context: Context
    ) -> api.GetModelVersionResponse:
        await _require_name(context, request.model, "model")
        await _require_name(context, request.version, "version")
        version = await _call(
            context, lambda: find_version(self._store, request.model, request.version)
        )
        version = version_with_footprint(version, load_footprints(self._store))
        return api.GetModelVersionResponse(version=version, used_by=self._users(request))

    async def DeleteModelVersion(
        self, request: api.DeleteModelVersionRequest, context: Context
    ) -> api.DeleteModelVersionResponse:
        await _require_name(context, request.model, "model")
        await _require_name(context, request.version, "version")
        try:
            outcome = delete_version(self._store, self._artifacts, request.model, request.version)
        except DependencyError as exc:
            what = f"version '{request.version}'"
            await _abort(context, out_of_sight(exc, self._users(request), what))
        except (StoreError, ApplyError, PlacementError) as exc:
            await _abort(context, exc)
        return api.DeleteModelVersionResponse(
            model_deleted=outcome.model_deleted, artifact_removed=outcome.artifact_removed
        )

    def _users(
        self, request: api.GetModelVersionRequest | api.DeleteModelVersionRequest
    ) -> list[str]:
        """The deployments that run the version, of the environments the caller may view."""
        seen = seen_by(current_principal(), self._store.snapshot())
        return version_users(seen, request.model, request.version, latest_rollouts(self._store))

    async def DownloadArtifact(
        self, request: api.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[api.DownloadArtifactResponse]:
        if problem := digest_problem(request.sha256):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        known = request.sha256 in self._store.artifact_references()
        if not known or not self._artifacts.exists(request.sha256):
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"artifact sha256:{request.sha256} not found"
            )
        size = self._artifacts.path_of(request.sha256).stat().st_size
        first = True
        try:
            for chunk in self._artifacts.read(request.sha256):
                yield api.DownloadArtifactResponse(chunk=chunk, size_bytes=size if first else 0)
                first = False
        except ArtifactError as exc:
            await context.abort(grpc.StatusCode.DATA_LOSS, str(exc))


class EnvironmentServicer(api_pb2_grpc.EnvironmentServiceServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    async def ListEnvironments(
        self, request: api.ListEnvironmentsRequest, context: Context
    ) -> api.ListEnvironmentsResponse:
        return api.ListEnvironmentsResponse(environments=self._store.list_environments())

    async def GetEnvironment(
        self, request: api.GetEnvironmentRequest, context: Context
    ) -> api.GetEnvironmentResponse:
        await _require_name(context, request.name, "environment")
        env = await _call(context, lambda: self._store.get_environment(request.name))
        return api.GetEnvironmentResponse(environment=env)

    async def DeleteEnvironment(
        self, request: api.DeleteEnvironmentRequest, context: Context
    ) -> api.DeleteEnvironmentResponse:
        await _require_name(context, request.name, "environment")
        await _call(context, lambda: self._store.delete_environment(request.name))
        return api.DeleteEnvironmentResponse()


class DeploymentServicer(api_pb2_grpc.DeploymentServiceServicer):
    """Deployments with live status from the StatusProvider."""

    def __init__(self, store: Store, status: StatusProvider, artifacts: ArtifactStore) -> None:
        self._store = store
        self._status = status
        self._artifacts = artifacts

    def _with_status(self, dep: Deployment) -> Deployment:
        dep.status.CopyFrom(self._status.deployment_status(dep))
        return dep

    async def ListDeployments(
        self, request: api.ListDeploymentsRequest, context: Context
    ) -> api.ListDeploymentsResponse:
        # Only what the caller may view is paged: a page token names the last item listed,
        # and must never name (or skip over) a deployment the caller may not see. The store
        # reads one page by key, filtered to the caller's environments in the query.
        who = current_principal()
        environment = request.environment or None
        among = who.viewable_environments()

        def fetch(after: tuple[str, ...] | None, limit: int | None) -> list[Deployment]:
            key = (after[0], after[1]) if after is not None else None
            return self._store.deployments_page(environment, among, key, limit)

        try:
            page = keyset_page(
                fetch,
                lambda d: (d.spec.environment, d.metadata.name),
                request.page_size,
                request.page_token,
                request.environment,
                key_length=2,
            )
        except PageTokenError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        for dep, status in zip(page.items, statuses_of(self._status, page.items), strict=True):
            dep.status.CopyFrom(status)
        return api.ListDeploymentsResponse(deployments=page.items, next_page_token=page.next_token)

    async def GetDeployment(
        self, request: api.GetDeploymentRequest, context: Context
    ) -> api.GetDeploymentResponse:
        await _require_name(context, request.name, "deployment")
        env = request.environment or DEFAULT_ENVIRONMENT
        dep = await _call(context, lambda: self._store.get_deployment(env, request.name))
        return api.GetDeploymentResponse(deployment=self._with_status(dep))

    async def SetDeploymentActive(
        self, request: api.SetDeploymentActiveRequest, context: Context
    ) -> api.SetDeploymentActiveResponse:
        await _require_name(context, request.name, "deployment")
        env = request.environment or DEFAULT_ENVIRONMENT
        return await _call(context, lambda: self._set_active(env, request.name, request.active))

    def _set_active(
        self, environment: str, name: str, active: bool
    ) -> api.SetDeploymentActiveResponse:
        # Read, check and store with no await between them (one transaction, all or nothing):
        # the rest of the configuration is kept exactly as stored.
        dep = self._store.get_deployment(environment, name)
        if dep.spec.deactivated != active:
            return api.SetDeploymentActiveResponse(deployment=self._with_status(dep))
        dep.spec.deactivated = not active
        document = Deployment(metadata=dep.metadata, spec=dep.spec)
        apply_resources(self._store, [api.Resource(deployment=document)])
        stored = self._store.get_deployment(environment, name)
        return api.SetDeploymentActiveResponse(deployment=self._with_status(stored), changed=True)

    async def DeleteDeployment(
        self, request: api.DeleteDeploymentRequest, context: Context
    ) -> api.DeleteDeploymentResponse:
        await _require_name(context, request.name, "deployment")
        env = request.environment or DEFAULT_ENVIRONMENT
        await _call(context, lambda: self._store.delete_deployment(env, request.name))
        return api.DeleteDeploymentResponse()

    async def ReleaseDeployment(
        self, request: api.ReleaseDeploymentRequest, context: Context
    ) -> api.ReleaseDeploymentResponse:
        await _require_name(context, request.name, "deployment")
        source = request.source_environment or DEFAULT_ENVIRONMENT
        target = request.target_environment
        try:
            result = release_deployment(
                self._store, request.name, source, target, request.dry_run, self._artifacts
            )
        except ApplyError as exc:
            trailers = ((FIELD_ERRORS_METADATA_KEY, encode_field_errors(exc.errors)),)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"cannot release deployment '{request.name}' from '{source}' to '{target}', "
                f"nothing changed:\n{exc}",
                trailing_metadata=trailers,
            )
        except (StoreError, PlacementError) as exc:
            await _abort(context, exc)
        return api.ReleaseDeploymentResponse(result=result)


class RegionServicer(api_pb2_grpc.RegionServiceServicer):
    """Regions with live status; a region still serving deployments cannot be deleted.
    Join tokens for regions' agents are answered by JoinTokens (controlplane/api/join_tokens.py)."""

    def __init__(self, store: Store, status: StatusProvider) -> None:
        self._store = store
        self._status = status
        self._tokens = JoinTokens(store)

    def _with_status(
        self, region: Region, certificates: dict[str, RegionCertificate] | None = None
    ) -> Region:
        region.status.CopyFrom(self._status.region_status(region))
        known = region_certificates(self._store) if certificates is None else certificates
        add_certificate(region.status, known.get(region.metadata.name))
        return region

    async def ListRegions(
        self, request: api.ListRegionsRequest, context: Context
    ) -> api.ListRegionsResponse:
        regions = self._store.list_regions()
        certificates = region_certificates(self._store)
        return api.ListRegionsResponse(
            regions=[self._with_status(r, certificates) for r in regions]
        )

    async def GetRegion(
        self, request: api.GetRegionRequest, context: Context
    ) -> api.GetRegionResponse:
        await _require_name(context, request.name, "region")
        region = await _call(context, lambda: self._store.get_region(request.name))
        return api.GetRegionResponse(region=self._with_status(region))

    async def DeleteRegion(
        self, request: api.DeleteRegionRequest, context: Context
    ) -> api.DeleteRegionResponse:
        await _require_name(context, request.name, "region")
        await _call(context, lambda: self._delete_region(request.name))
        return api.DeleteRegionResponse()

    def _delete_region(self, name: str) -> None:
        # Check and delete with no await between them, so nothing changes in between.
        self._store.get_region(name)
        reasons = region_dependents(name, self._store.snapshot())
        if reasons:
            raise DependencyError(ResourceKey(KIND_REGION, name), reasons)
        self._store.delete_region(name)

    async def CreateJoinToken(
        self, request: api.CreateJoinTokenRequest, context: Context
    ) -> api.CreateJoinTokenResponse:
        return await self._tokens.CreateJoinToken(request, context)

    async def ListJoinTokens(
        self, request: api.ListJoinTokensRequest, context: Context
    ) -> api.ListJoinTokensResponse:
        return await self._tokens.ListJoinTokens(request, context)

    async def RevokeJoinToken(
        self, request: api.RevokeJoinTokenRequest, context: Context
    ) -> api.RevokeJoinTokenResponse:
        return await self._tokens.RevokeJoinToken(request, context)


class RolloutServicer(api_pb2_grpc.RolloutServiceServicer):
    """History and steering of version changes (`meshline rollout ...`)."""

    def __init__(self, store: Store, rollouts: RolloutController) -> None:
        self._store = store
        self._rollouts = rollouts

    async def ListRollouts(
        self, request: api.ListRolloutsRequest, context: Context
    ) -> api.ListRolloutsResponse:
        await _require_name(context, request.name, "deployment")
        env = request.environment or DEFAULT_ENVIRONMENT
        await _call(context, lambda: self._store.get_deployment(env, request.name))
        return api.ListRolloutsResponse(rollouts=self._rollouts.history(env, request.name))

    async def ControlRollout(
        self, request: api.ControlRolloutRequest, context: Context
    ) -> api.ControlRolloutResponse:
        await _require_name(context, request.name, "deployment")
        env = request.environment or DEFAULT_ENVIRONMENT
        try:
            rollout = await _call(context, lambda: self._control(env, request.name, request.action))
        except RolloutError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return api.ControlRolloutResponse(rollout=rollout)

    async def RetryRollout(
        self, request: api.RetryRolloutRequest, context: Context
    ) -> api.RetryRolloutResponse:
        await _require_name(context, request.name, "deployment")
        env = request.environment or DEFAULT_ENVIRONMENT
        dep = await _call(context, lambda: self._store.get_deployment(env, request.name))
        try:
            rollout = self._rollouts.retry(dep)
        except RolloutError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return api.RetryRolloutResponse(rollout=rollout)

    def _control(self, environment: str, name: str, action: str) -> Rollout:
        dep = self._store.get_deployment(environment, name)
        if action != "undo":
            return self._rollouts.control(dep, action)
        # Undo changes the deployment itself (validated like an apply): a new rollout follows.
        previous = self._rollouts.undo_target(dep)
        dep.spec.version = previous
        document = Deployment(metadata=dep.metadata, spec=dep.spec)
        apply_resources(self._store, [api.Resource(deployment=document)])
        self._rollouts.undone(dep)  # re-applying the refused version now rolls it out
        history = self._rollouts.history(environment, name)
        return history[0] if history else Rollout()


def add_api_to_server(
    server: Any,
    store: Store,
    status: StatusProvider,
    rollouts: RolloutController | None = None,
    artifacts: ArtifactStore | None = None,
    key_enforcement: Enforcement | None = None,
) -> None:
    """Register every management service on a grpc.aio server. The server must run its
    calls through the management guard (auth_setup.management_auth): the servicers trust it
    to have authenticated and authorized each call.

    `artifacts` defaults to the artifact store of the database's state directory;
    `key_enforcement` fills the regions that enforce each API key (KeyServicer)."""
    artifacts = artifacts or ArtifactStore.beside(store.path)
    rooms = status.region_rooms if isinstance(status, RegionRooms) else None
    api_pb2_grpc.add_ApplyServiceServicer_to_server(ApplyServicer(store, artifacts, rooms), server)
    api_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(store, artifacts), server)
    api_pb2_grpc.add_EnvironmentServiceServicer_to_server(EnvironmentServicer(store), server)
    api_pb2_grpc.add_DeploymentServiceServicer_to_server(
        DeploymentServicer(store, status, artifacts), server
    )
    api_pb2_grpc.add_RegionServiceServicer_to_server(RegionServicer(store, status), server)
    api_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(store, key_enforcement), server)
    api_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(store), server)
    api_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(), server)
    if rollouts is not None:
        api_pb2_grpc.add_RolloutServiceServicer_to_server(RolloutServicer(store, rollouts), server)
