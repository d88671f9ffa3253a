"""Pages of a listing: table tests of page_of, and ListDeployments paging through the real
server (generated stubs): every deployment exactly once, in order, tokens refused when they
are not this listing's."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from controlplane.api import add_api_to_server
from controlplane.api.paging import MAX_PAGE_SIZE, PageTokenError, encode_token, page_of
from controlplane.store import Store
from controlplane.store.store import deployments_page_query
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import Deployment, DeploymentStatus
from tests.controlplane.api.test_authn import make_key
from tests.controlplane.api.test_servicers import Api, StaticStatusProvider, _apply, client
from tests.controlplane.store.builders import deployment, environment, model, model_file, region
from tests.harness.credentials import admin_aio_channel, guarded_server

__all__ = ["client"]  # the fixture, used by name

ITEMS = [("a", str(i)) for i in range(10)]


def _key(item: tuple[str, str]) -> tuple[str, str]:
    return item


@pytest.mark.parametrize(
    ("size", "pages"),
    [
        (0, [10]),  # 0: everything in one answer
        (3, [3, 3, 3, 1]),
        (5, [5, 5]),
        (10, [10]),
        (11, [10]),
    ],
)
def test_pages_cover_everything_once_in_order(size: int, pages: list[int]) -> None:
    seen: list[tuple[str, str]] = []
    token, sizes = "", []
    while True:
        page = page_of(ITEMS, _key, size, token)
        seen += page.items
        sizes.append(len(page.items))
        token = page.next_token
        if not token:
            break
    assert seen == ITEMS and sizes == pages


def test_a_page_is_at_most_the_largest_page() -> None:
    many = [("a", f"{i:05d}") for i in range(MAX_PAGE_SIZE + 5)]
    page = page_of(many, _key, MAX_PAGE_SIZE * 10, "")
    assert len(page.items) == MAX_PAGE_SIZE and page.next_token


def test_a_token_names_a_key_not_a_position() -> None:
    """An item gone or added before the next page neither shifts nor repeats the rest."""
    first = page_of(ITEMS, _key, 3, "")
    fewer = [i for i in ITEMS if i != ("a", "1")]
    assert page_of(fewer, _key, 3, first.next_token).items == ITEMS[3:6]
    assert page_of(ITEMS, _key, 3, encode_token(("a", "25"))).items == ITEMS[3:6]
    assert page_of(ITEMS, _key, 3, encode_token(("b",))).items == []


@pytest.mark.parametrize(
    ("token", "scope", "message"),
    [
        ("not base64 !", "", "is not one this listing gave out"),
        (encode_token(("a", "1"), "staging"), "", "environment 'staging', not ''"),
        ("eyJ4IjoxfQ", "", "is not one this listing gave out"),  # {"x":1}
        (encode_token(("a", "1")), "production", "environment '', not 'production'"),
    ],
)
def test_foreign_tokens_are_refused_saying_why(token: str, scope: str, message: str) -> None:
    with pytest.raises(PageTokenError, match=message):
        page_of(ITEMS, _key, 3, token, scope)


def test_a_negative_page_size_is_refused() -> None:
    with pytest.raises(PageTokenError, match="page_size must not be negative"):
        page_of(ITEMS, _key, -1, "")


async def test_list_deployments_pages_through_the_real_server(client: Api, tmp_path: Path) -> None:
    artifact = model_file(tmp_path)
    names = [f"d{i:02d}" for i in range(7)]
    docs = [
        region("eu", "DE"),
        environment("production"),
        environment("staging"),
        model("m", [("v1", artifact)]),
        *(deployment(n, "m", "v1") for n in names),
        deployment("s0", "m", "v1", environment_name="staging"),
    ]
    await _apply(client, docs)
    listed: list[tuple[str, str]] = []
    token = ""
    answers = 0
    while True:
        reply = await client.deployments.ListDeployments(
            api.ListDeploymentsRequest(page_size=3, page_token=token)
        )
        answers += 1
        assert all(d.status.phase == "Ready" for d in reply.deployments)  # with status
        listed += [(d.spec.environment, d.metadata.name) for d in reply.deployments]
        token = reply.next_page_token
        if not token:
            break
    assert listed == [*(("production", n) for n in names), ("staging", "s0")]
    assert answers == 3
    everything = await client.deployments.ListDeployments(api.ListDeploymentsRequest())
    assert len(everything.deployments) == 8 and not everything.next_page_token
    staging = await client.deployments.ListDeployments(
        api.ListDeploymentsRequest(environment="staging", page_size=1)
    )
    assert [d.metadata.name for d in staging.deployments] == ["s0"]
    assert not staging.next_page_token

    first = await client.deployments.ListDeployments(api.ListDeploymentsRequest(page_size=2))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.deployments.ListDeployments(
            api.ListDeploymentsRequest(
                environment="staging", page_size=2, page_token=first.next_page_token
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ask with the same environment" in str(refused.value.details())


async def test_a_scoped_caller_pages_only_through_what_it_may_view(tmp_path: Path) -> None:
    """A viewer of staging, one deployment a page: every page holds one of its deployments,
    and no token names (or skips over) a production one."""
    store = Store.open(tmp_path / "store.db")
    server, admin = guarded_server(store, tmp_path)
    add_api_to_server(server, store, StaticStatusProvider())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    artifact = model_file(tmp_path)
    docs = [
        region("eu", "DE"),
        environment("production"),
        environment("staging"),
        model("m", [("v1", artifact)]),
        *(deployment(f"p{i}", "m", "v1") for i in range(3)),
        deployment("s0", "m", "v1", environment_name="staging"),
        deployment("s1", "m", "v1", environment_name="staging"),
    ]
    viewer = make_key(store, "staging-viewer", environment="staging", roles=("viewer",))
    async with admin_aio_channel(f"127.0.0.1:{port}", admin) as channel:
        await api_pb2_grpc.ApplyServiceStub(channel).Apply(api.ApplyRequest(resources=docs))
    try:
        async with admin_aio_channel(f"127.0.0.1:{port}", viewer) as channel:
            stub = api_pb2_grpc.DeploymentServiceStub(channel)
            token, pages = "", []
            while True:
                reply = await stub.ListDeployments(
                    api.ListDeploymentsRequest(page_size=1, page_token=token)
                )
                pages.append([(d.spec.environment, d.metadata.name) for d in reply.deployments])
                token = reply.next_page_token
                assert "production" not in base64.urlsafe_b64decode(token + "==").decode()
                if not token:
                    break
        assert pages == [[("staging", "s0")], [("staging", "s1")]]
    finally:
        await server.stop(None)
        store.close()


class CountingStatuses(StaticStatusProvider):
    """Static status that records how many deployments each listing asked about at once."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def deployment_statuses(self, deps: Sequence[Deployment]) -> list[DeploymentStatus]:
        self.asked.append(len(deps))
        return [self.deployment_status(d) for d in deps]


async def _page_through(
    stub: api_pb2_grpc.DeploymentServiceStub, size: int, environment: str = ""
) -> list[tuple[str, str]]:
    listed: list[tuple[str, str]] = []
    token = ""
    while True:
        reply = await stub.ListDeployments(
            api.ListDeploymentsRequest(environment=environment, page_size=size, page_token=token)
        )
        assert len(reply.deployments) <= size
        for dep in reply.deployments:
            assert dep.status.message == f"static status of {dep.metadata.name}"
        listed += [(d.spec.environment, d.metadata.name) for d in reply.deployments]
        token = reply.next_page_token
        if not token:
            return listed


SIZES = {"dev": 400, "production": 1800, "staging": 800}
EVERYTHING = sorted((env, f"d{i:04d}") for env, n in SIZES.items() for i in range(n))


def _of(*environments: str) -> list[tuple[str, str]]:
    return [k for k in EVERYTHING if k[0] in environments]


async def test_thousands_of_deployments_page_by_key_in_a_real_store_file(tmp_path: Path) -> None:
    """3,000 deployments in three environments, in a real SQLite file: an admin and a viewer
    of one environment page through them, every deployment exactly once and in order, and
    status is asked for the page's deployments only. Then the store's pages for a caller of
    two environments (what an identity provider's grants give), by key."""
    store = Store.open(tmp_path / "store.db")
    server, admin = guarded_server(store, tmp_path)
    statuses = CountingStatuses()
    add_api_to_server(server, store, statuses)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    artifact = model_file(tmp_path)
    viewer = make_key(store, "viewer", environment="staging", roles=("viewer",))
    try:
        async with admin_aio_channel(f"127.0.0.1:{port}", admin) as channel:
            apply = api_pb2_grpc.ApplyServiceStub(channel)
            base = [region("eu", "DE"), *(environment(env) for env in SIZES)]
            await apply.Apply(api.ApplyRequest(resources=[*base, model("m", [("v1", artifact)])]))
            docs = [deployment(name, "m", "v1", environment_name=env) for env, name in EVERYTHING]
            for start in range(0, len(docs), 500):
                batch = docs[start : start + 500]
                await apply.Apply(api.ApplyRequest(resources=batch), timeout=120)
            stub = api_pb2_grpc.DeploymentServiceStub(channel)
            assert await _page_through(stub, 97) == EVERYTHING
            assert statuses.asked and max(statuses.asked) == 97
            assert await _page_through(stub, MAX_PAGE_SIZE) == EVERYTHING
            assert await _page_through(stub, 333, "staging") == _of("staging")
            for forged in (encode_token(("production",)), encode_token(("a", "b", "c"))):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.ListDeployments(
                        api.ListDeploymentsRequest(page_size=5, page_token=forged)
                    )
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "is not one this listing gave out" in str(refused.value.details())
        async with admin_aio_channel(f"127.0.0.1:{port}", viewer) as channel:
            stub = api_pb2_grpc.DeploymentServiceStub(channel)
            statuses.asked.clear()
            assert await _page_through(stub, 64) == _of("staging")
            assert len(statuses.asked) == -(-SIZES["staging"] // 64)  # one look per page
            assert max(statuses.asked) == 64
    finally:
        await server.stop(None)
    try:
        among = {"dev", "staging", "nowhere"}
        seen: list[tuple[str, str]] = []
        after: tuple[str, str] | None = None
        while page := store.deployments_page(among=among, after=after, limit=150):
            seen += [(d.spec.environment, d.metadata.name) for d in page]
            after = seen[-1]
        assert seen == _of("dev", "staging")
        assert store.deployments_page("production", among, limit=5) == []
        last_dev = ("dev", f"d{SIZES['dev'] - 1:04d}")
        page = store.deployments_page(among=among, after=last_dev, limit=2)
        assert [d.metadata.name for d in page] == ["d0000", "d0001"]
        assert store.deployments_page("dev", after=last_dev) == []
    finally:
        store.close()


@pytest.mark.parametrize(
    ("environment", "after", "seek"),
    [
        (None, None, "SCAN deployments USING INDEX"),  # the first page: the index from its start
        (None, ("production", "d1"), "(environment,name)>(?,?)"),
        ("production", None, "(environment=?)"),
        ("production", ("production", "d1"), "(environment=? AND name>?)"),
        ("staging", ("production", "d1"), "(environment=?)"),  # every one comes after
    ],
)
def test_a_page_query_seeks_the_key_index_and_sorts_nothing(
    tmp_path: Path, environment: str | None, after: tuple[str, str] | None, seek: str
) -> None:
    """What SQLite plans for each form of the page query: a walk of the primary key's index
    from `after` that stops at the limit, never a sort of the table (O(page), not O(N))."""
    Store.open(tmp_path / "store.db").close()
    query = deployments_page_query(environment, after, 10)
    assert query is not None
    sql, args = query
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as conn:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    assert "sqlite_autoindex_deployments_1" in plan and seek in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert sql.endswith("LIMIT ?") and args[-1] == 10


def test_a_page_wholly_before_the_key_is_not_asked_for() -> None:
    assert deployments_page_query("dev", ("production", "d1"), 10) is None
