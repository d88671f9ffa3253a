"""Durable store of models, environments, deployments and regions in one SQLite file.

Resources are kept as their serialized spec plus the columns we look them up by. Every commit
that changes something increments `revision` and notifies the change feed; `epoch` counts the
opens of the file so that versions derived from revisions stay unique across restarts.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from google.protobuf.message import Message

from controlplane.store.changes import (
    CONFIGURED,
    CREATED,
    DELETED,
    UNCHANGED,
    Change,
    ChangeEvent,
    ChangeFeed,
    Listener,
)
from controlplane.store.errors import (
    DependencyError,
    InvalidApplyError,
    NotFoundError,
    StoreError,
)
from controlplane.store.names import dns1123_label_problem
from controlplane.store.resources import (
    DEFAULT_ENVIRONMENT,
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    KIND_MODEL,
    KIND_REGION,
    AnyResource,
    ResourceKey,
    key_of,
    normalized,
    unwrap,
)
from controlplane.store.schema import MIGRATIONS, Migration, migrate
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Deployment, Environment, Model, Region, RegionSpec

log = logging.getLogger(__name__)

M = TypeVar("M", Model, Environment, Deployment, Region)

# Referenced kinds first, so a deployment finds its environment and model version in the same
# transaction; stale model versions are removed only after deployments moved off them.
_APPLY_ORDER = {KIND_REGION: 0, KIND_ENVIRONMENT: 1, KIND_MODEL: 2, KIND_DEPLOYMENT: 3}
# Dependents first: the reverse of apply's order.
DELETE_ORDER = {kind: -rank for kind, rank in _APPLY_ORDER.items()}


@dataclass(frozen=True)
class ApplyResult:
    """What apply did to one document: action is created, configured or unchanged."""

    kind: str
    name: str
    environment: str  # deployments only; "" for the other kinds
    action: str
    generation: int

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.name, self.environment)


@dataclass(frozen=True)
class StoreSnapshot:
    """Every resource at one revision, read in one transaction."""

    epoch: int
    revision: int
    models: tuple[Model, ...]
    environments: tuple[Environment, ...]
    deployments: tuple[Deployment, ...]
    regions: tuple[Region, ...]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _deployment_ref(environment: str, name: str) -> str:
    return f"deployment '{name}' in environment '{environment}'"


class Store:
    """The control plane's durable state. Open with `Store.open(path)`; close when done.

    Meant for one asyncio process: every call is a short synchronous transaction (a lock makes
    calls from worker threads safe too).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, epoch: int, revision: int) -> None:
        self._conn = conn
        self._path = path
        self._epoch = epoch
        self._lock = threading.RLock()
        self._feed = ChangeFeed(revision)

    # ----- life cycle -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | PathLike[str], *, migrations: Sequence[Migration] = MIGRATIONS
    ) -> Store:
        """Open the file (creating it and its directory), migrate it, start a new boot epoch."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(file), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{file}: not a meshline store ({exc})") from exc
            if str(mode).lower() != "wal":
                log.warning("%s: WAL journal not available, using %s", file, mode)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 5000")
            migrate(conn, migrations, str(file))
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'boot_epoch'")
                epoch = _meta(conn, "boot_epoch")
                revision = _meta(conn, "revision")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        return cls(conn, file, epoch, revision)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def epoch(self) -> int:
        """Boot epoch: 1 on the first open of the file, one more on every open after."""
        return self._epoch

    @property
    def revision(self) -> int:
        """Increases by one with every committed change; survives restarts."""
        return self._feed.revision

    # ----- change feed ------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` after every committed change; returns its remover."""
        return self._feed.add_listener(listener)

    async def wait_for_revision(self, after: int) -> int:
        """Wait until the revision is greater than `after`; returns it."""
        return await self._feed.wait_for_revision(after)

    # ----- apply ------------------------------------------------------------------------------

    def apply(self, resources: Sequence[Resource], dry_run: bool = False) -> list[ApplyResult]:
        """Store all `resources` in one transaction, or none of them.

        Results come in document order. With `dry_run` the same work runs and is rolled back,
        so the actions tell what a real apply would do.
        """
        docs = [normalized(r) for r in resources]
        keys = [key_of(d) for d in docs]
        first_seen: dict[ResourceKey, int] = {}
        for index, key in enumerate(keys):
            if key in first_seen:
                raise InvalidApplyError(
                    f"{key} appears twice (documents {first_seen[key] + 1} and {index + 1})"
                )
            first_seen[key] = index
        order = sorted(range(len(docs)), key=lambda i: _APPLY_ORDER[keys[i].kind])
        results: dict[int, ApplyResult] = {}
        revision = 0
        with self._transaction(commit=not dry_run) as conn:
            stale_versions: dict[str, list[str]] = {}
            for i in order:
                results[i] = self._apply_one(conn, unwrap(docs[i]), stale_versions)
            for model, versions in stale_versions.items():
                self._remove_versions(conn, model, versions)
            ordered = [results[i] for i in range(len(docs))]
            changes = tuple(Change(r.key, r.action) for r in ordered if r.action != UNCHANGED)
            if changes and not dry_run:
                revision = _bump_revision(conn)
        if changes and not dry_run:
            self._feed.publish(ChangeEvent(revision, changes))
        return ordered

    def _apply_one(
        self, conn: sqlite3.Connection, obj: AnyResource, stale: dict[str, list[str]]
    ) -> ApplyResult:
        name = obj.metadata.name
        if isinstance(obj, Region):
            country = {"country": obj.spec.country}
            action, gen = _upsert(conn, "regions", {"name": name}, country, obj)
            return ApplyResult(KIND_REGION, name, "", action, gen)
        if isinstance(obj, Environment):
            action, gen = _upsert(conn, "environments", {"name": name}, {}, obj)
            return ApplyResult(KIND_ENVIRONMENT, name, "", action, gen)
        if isinstance(obj, Model):
            action, gen = _upsert(conn, "models", {"name": name}, {}, obj)
            stale_names = _sync_versions(conn, obj)
            if stale_names:
                stale[name] = stale_names
            return ApplyResult(KIND_MODEL, name, "", action, gen)
        spec = obj.spec
        _check_deployment_refs(conn, obj)
        key = {"environment": spec.environment, "name": name}
        refs = {"model": spec.model, "version": spec.version}
        action, gen = _upsert(conn, "deployments", key, refs, obj)
        return ApplyResult(KIND_DEPLOYMENT, name, spec.environment, action, gen)

    def _remove_versions(self, conn: sqlite3.Connection, model: str, versions: list[str]) -> None:
        for version in versions:
            users = conn.execute(
                "SELECT environment, name FROM deployments WHERE model = ? AND version = ? "
                "ORDER BY environment, name",
                (model, version),
            ).fetchall()
            if users:
                raise DependencyError(
                    ResourceKey(KIND_MODEL, model),
                    [_deployment_ref(u["environment"], u["name"]) for u in users],
                    what=f"version '{version}'",
                )
            conn.execute(
                "DELETE FROM model_versions WHERE model = ? AND name = ?", (model, version)
            )

    # ----- regions registered by agents ------------------------------------------------------

    def ensure_region(self, name: str, spec: RegionSpec) -> bool:
        """Create region `name` with `spec` if absent (an agent registering on connect).

        True if created. An existing region is left exactly as it is: what was applied wins
        over what an agent says about itself. The caller validates `spec`.
        """
        with self._transaction() as conn:
            if not add_region_if_absent(conn, name, spec):
                return False
            revision = _bump_revision(conn)
        self._feed.publish(
            ChangeEvent(revision, (Change(ResourceKey(KIND_REGION, name), CREATED),))
        )
        return True

    # ----- reads ------------------------------------------------------------------------------

    def get_model(self, name: str) -> Model:
        return self._get(Model, "models", ResourceKey(KIND_MODEL, name), {"name": name})

    def list_models(self) -> list[Model]:
        return self._list(Model, "models", "", (), "name")

    def get_environment(self, name: str) -> Environment:
        key = ResourceKey(KIND_ENVIRONMENT, name)
        return self._get(Environment, "environments", key, {"name": name})

    def list_environments(self) -> list[Environment]:
        return self._list(Environment, "environments", "", (), "name")

    def get_deployment(self, environment: str, name: str) -> Deployment:
        env = environment or DEFAULT_ENVIRONMENT
        key = ResourceKey(KIND_DEPLOYMENT, name, env)
        return self._get(Deployment, "deployments", key, {"environment": env, "name": name})

    def list_deployments(self, environment: str | None = None) -> list[Deployment]:
        """All deployments, or those of one environment, ordered by environment and name."""
        where, args = ("environment = ?", (environment,)) if environment else ("", ())
        return self._list(Deployment, "deployments", where, args, "environment, name")

    def deployments_page(
        self,
        environment: str | None = None,
        among: Collection[str] | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[Deployment]:
        """Deployments ordered by environment and name: those of `environment` (None: every
        one) and of the environments `among` (None: no such filter), after the key `after`
        (environment, name), at most `limit`. Read by key, one environment of `among` after
        the other: a page costs what it holds (and a look per environment), not the size of
        the table."""
        if among is None:
            scans: Sequence[str | None] = [environment or None]
        else:
            scans = sorted(e for e in among if not environment or e == environment)
        out: list[Deployment] = []
        with self._lock:
            for scan in scans:
                left = None if limit is None else limit - len(out)
                if left is not None and left <= 0:
                    break
                query = deployments_page_query(scan, after, left)
                if query is None:
                    continue
                rows = self._conn.execute(*query).fetchall()
                out.extend(_from_row(Deployment, row) for row in rows)
        return out

    def get_region(self, name: str) -> Region:
        return self._get(Region, "regions", ResourceKey(KIND_REGION, name), {"name": name})

    def list_regions(self) -> list[Region]:
        return self._list(Region, "regions", "", (), "name")

    def artifact_references(self) -> set[str]:
        """The sha256 of every artifact a model version names (what must not be removed)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT sha256 FROM model_versions WHERE sha256 != ''"
            ).fetchall()
        return {row[0] for row in rows}

    def snapshot(self) -> StoreSnapshot:
        """Everything, consistent at one revision (what the policy and IR stages start from)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                snap = StoreSnapshot(
                    epoch=self._epoch,
                    revision=_meta(self._conn, "revision"),
                    models=tuple(self.list_models()),
                    environments=tuple(self.list_environments()),
                    deployments=tuple(self.list_deployments()),
                    regions=tuple(self.list_regions()),
                )
            finally:
                self._conn.execute("COMMIT")
        return snap

    def _get(self, cls: type[M], table: str, key: ResourceKey, where: dict[str, str]) -> M:
        clause = " AND ".join(f"{column} = ?" for column in where)
        with self._lock:
            row = self._conn.execute(
                f"SELECT * FROM {table} WHERE {clause}", tuple(where.values())
            ).fetchone()
        if row is None:
            raise NotFoundError(key)
        return _from_row(cls, row)

    def _list(
        self, cls: type[M], table: str, where: str, args: tuple[str, ...], order: str
    ) -> list[M]:
        clause = f" WHERE {where}" if where else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM {table}{clause} ORDER BY {order}", args
            ).fetchall()
        return [_from_row(cls, row) for row in rows]

    # ----- deletes ----------------------------------------------------------------------------

    def delete_model(self, name: str) -> None:
        """Delete a model and its versions; refused while a deployment uses it."""
        self.delete([ResourceKey(KIND_MODEL, name)])

    def delete_environment(self, name: str) -> None:
        """Delete an environment; refused while it holds deployments."""
        self.delete([ResourceKey(KIND_ENVIRONMENT, name)])

    def delete_deployment(self, environment: str, name: str) -> None:
        self.delete([ResourceKey(KIND_DEPLOYMENT, name, environment or DEFAULT_ENVIRONMENT)])

    def delete_region(self, name: str) -> None:
        """Delete a region. Whether deployments are placed there is policy, checked by the API."""
        self.delete([ResourceKey(KIND_REGION, name)])

    def delete(self, keys: Sequence[ResourceKey]) -> None:
        """Delete every one of `keys` in one transaction, or none of them.

        Dependents go first (deployments, then models and environments, then regions), so a
        model and the deployment that uses it can go together; anything not named that still
        uses one of them rolls the whole transaction back (DependencyError), as does a key that
        does not exist (NotFoundError).
        """
        ordered = sorted(dict.fromkeys(keys), key=lambda k: DELETE_ORDER[k.kind])
        if not ordered:
            return
        with self._transaction() as conn:
            for key in ordered:
                _DELETERS[key.kind](conn, key)
            revision = _bump_revision(conn)
        self._feed.publish(ChangeEvent(revision, tuple(Change(k, DELETED) for k in ordered)))

    @contextmanager
    def companion(self) -> Iterator[sqlite3.Connection]:
        """A write transaction for tables beside the resources (rollout history): no revision
        bump, no change event; see controlplane/store/rollouts.py."""
        with self._transaction() as conn:
            yield conn

    @contextmanager
    def changing(self) -> Iterator[tuple[sqlite3.Connection, list[Change]]]:
        """A write transaction for user configuration kept beside the resources (API keys):
        append what it changed to the list; when that is not empty, the commit bumps the
        revision and the change feed hears it, as after an apply."""
        changes: list[Change] = []
        revision = 0
        with self._transaction() as conn:
            yield conn, changes
            if changes:
                revision = _bump_revision(conn)
        if changes:
            self._feed.publish(ChangeEvent(revision, tuple(changes)))

    # ----- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back on error, or always when `commit` is false."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT" if commit else "ROLLBACK")


def _meta(conn: sqlite3.Connection, key: str) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


def _bump_revision(conn: sqlite3.Connection) -> int:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
    return _meta(conn, "revision")


def _delete_model(conn: sqlite3.Connection, key: ResourceKey) -> None:
    _require(conn, "models", key, {"name": key.name})
    users = conn.execute(
        "SELECT environment, name FROM deployments WHERE model = ? ORDER BY environment, name",
        (key.name,),
    ).fetchall()
    if users:
        raise DependencyError(key, [_deployment_ref(u[0], u[1]) for u in users])
    conn.execute("DELETE FROM models WHERE name = ?", (key.name,))


def _delete_environment(conn: sqlite3.Connection, key: ResourceKey) -> None:
    _require(conn, "environments", key, {"name": key.name})
    users = conn.execute(
        "SELECT name FROM deployments WHERE environment = ? ORDER BY name", (key.name,)
    ).fetchall()
    if users:
        raise DependencyError(key, [_deployment_ref(key.name, u[0]) for u in users])
    conn.execute("DELETE FROM environments WHERE name = ?", (key.name,))


def _delete_deployment(conn: sqlite3.Connection, key: ResourceKey) -> None:
    env, name = key.environment or DEFAULT_ENVIRONMENT, key.name
    _require(conn, "deployments", key, {"environment": env, "name": name})
    conn.execute("DELETE FROM deployments WHERE environment = ? AND name = ?", (env, name))
    # Its rollout history goes with it: a new deployment of that name starts fresh.
    conn.execute("DELETE FROM rollouts WHERE environment = ? AND deployment = ?", (env, name))


def _delete_region(conn: sqlite3.Connection, key: ResourceKey) -> None:
    _require(conn, "regions", key, {"name": key.name})
    conn.execute("DELETE FROM regions WHERE name = ?", (key.name,))
    # Its certificate of record goes too: a region applied again later needs a new join.
    conn.execute("DELETE FROM region_certificates WHERE region = ?", (key.name,))


def add_region_if_absent(conn: sqlite3.Connection, name: str, spec: RegionSpec) -> bool:
    """Insert region `name` with `spec` unless it exists, inside the caller's transaction (the
    caller bumps the revision and tells the change feed); True when inserted. The caller
    validates `spec`; ValueError for a name that is no DNS label."""
    problem = dns1123_label_problem(name)
    if problem:
        raise ValueError(f"region name {problem}")
    if conn.execute("SELECT 1 FROM regions WHERE name = ?", (name,)).fetchone():
        return False
    region = Region()
    region.metadata.name = name
    region.spec.CopyFrom(spec)
    _upsert(conn, "regions", {"name": name}, {"country": spec.country}, region)
    return True


_DELETERS: dict[str, Callable[[sqlite3.Connection, ResourceKey], None]] = {
    KIND_DEPLOYMENT: _delete_deployment,
    KIND_MODEL: _delete_model,
    KIND_ENVIRONMENT: _delete_environment,
    KIND_REGION: _delete_region,
}


def _require(conn: sqlite3.Connection, table: str, key: ResourceKey, where: dict[str, str]) -> None:
    clause = " AND ".join(f"{column} = ?" for column in where)
    row = conn.execute(f"SELECT 1 FROM {table} WHERE {clause}", tuple(where.values())).fetchone()
    if row is None:
        raise NotFoundError(key)


def _labels_json(obj: AnyResource) -> str:
    return json.dumps(dict(obj.metadata.labels), sort_keys=True)


def _upsert(
    conn: sqlite3.Connection,
    table: str,
    key: dict[str, str],
    indexed: dict[str, str],
    obj: AnyResource,
) -> tuple[str, int]:
    """Insert or update one row; returns (action, generation).

    The generation counts spec changes only; a label change is "configured" at the same
    generation, and an identical document is "unchanged" and not written at all.
    """
    clause = " AND ".join(f"{column} = ?" for column in key)
    row = conn.execute(
        f"SELECT spec, labels, generation FROM {table} WHERE {clause}", tuple(key.values())
    ).fetchone()
    labels = _labels_json(obj)
    spec_bytes = obj.spec.SerializeToString(deterministic=True)
    now = _now()
    if row is None:
        columns = {**key, **indexed, "labels": labels, "spec": spec_bytes}
        columns.update(created_at=now, updated_at=now, generation=1)
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(columns.values()))
        return CREATED, 1
    old_spec: Message = type(obj.spec)()
    old_spec.ParseFromString(row["spec"])
    spec_changed = old_spec != obj.spec
    labels_changed = json.loads(row["labels"]) != dict(obj.metadata.labels)
    generation = int(row["generation"])
    if not spec_changed and not labels_changed:
        return UNCHANGED, generation
    if spec_changed:
        generation += 1
    updates = {**indexed, "labels": labels, "spec": spec_bytes}
    updates.update(updated_at=now, generation=generation)
    assignments = ", ".join(f"{column} = ?" for column in updates)
    conn.execute(
        f"UPDATE {table} SET {assignments} WHERE {clause}",
        (*updates.values(), *key.values()),
    )
    return CONFIGURED, generation


def _sync_versions(conn: sqlite3.Connection, model: Model) -> list[str]:
    """Upsert the model's version rows; returns versions no longer in its spec (removed later)."""
    name = model.metadata.name
    seen: set[str] = set()
    for position, version in enumerate(model.spec.versions):
        if version.name in seen:
            raise InvalidApplyError(f"model '{name}' lists version '{version.name}' twice")
        seen.add(version.name)
        conn.execute(
            "INSERT INTO model_versions (model, name, position, runtime, path, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model, name) DO UPDATE SET "
            "position = excluded.position, runtime = excluded.runtime, path = excluded.path, "
            "sha256 = excluded.sha256",
            (name, version.name, position, version.runtime, version.path, version.sha256),
        )
    existing = conn.execute(
        "SELECT name FROM model_versions WHERE model = ? ORDER BY position", (name,)
    ).fetchall()
    return [row[0] for row in existing if row[0] not in seen]


def _check_deployment_refs(conn: sqlite3.Connection, deployment: Deployment) -> None:
    spec = deployment.spec
    subject = _deployment_ref(spec.environment, deployment.metadata.name)
    env = conn.execute("SELECT 1 FROM environments WHERE name = ?", (spec.environment,)).fetchone()
    if env is None:
        raise InvalidApplyError(f"{subject}: environment '{spec.environment}' does not exist")
    version = conn.execute(
        "SELECT 1 FROM model_versions WHERE model = ? AND name = ?", (spec.model, spec.version)
    ).fetchone()
    if version is None:
        raise InvalidApplyError(
            f"{subject}: model '{spec.model}' version '{spec.version}' does not exist"
        )


def deployments_page_query(
    environment: str | None, after: tuple[str, str] | None, limit: int | None
) -> tuple[str, list[str | int]] | None:
    """The query of the deployments of `environment` (None: every one) after the key `after`
    (environment, name), at most `limit`, in key order; None when every one of them comes
    before `after`. Each form seeks the primary key's index to `after` and stops after
    `limit` rows: no scan of what comes before, no sort."""
    where: list[str] = []
    args: list[str | int] = []
    if environment is None:
        if after is not None:
            where.append("(environment, name) > (?, ?)")
            args.extend(after)
    else:
        where.append("environment = ?")
        args.append(environment)
        if after is not None and after[0] > environment:
            return None
        if after is not None and after[0] == environment:
            where.append("name > ?")
            args.append(after[1])
    sql = "SELECT * FROM deployments"
    if where:
        sql += f" WHERE {' AND '.join(where)}"
    sql += " ORDER BY environment, name"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


def _from_row(cls: type[M], row: sqlite3.Row) -> M:
    obj = cls()
    obj.metadata.name = row["name"]
    obj.metadata.labels.update(json.loads(row["labels"]))
    obj.metadata.created_at = row["created_at"]
    obj.metadata.updated_at = row["updated_at"]
    obj.metadata.generation = int(row["generation"])
    obj.spec.ParseFromString(row["spec"])
    return obj
