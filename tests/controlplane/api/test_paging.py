"""Pages of a listing: table tests of page_of, and ListDeployments paging through the real
server (generated stubs): every deployment exactly once, in order, tokens refused when they
are not this listing's."""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import pytest

from controlplane.api import add_api_to_server
from controlplane.api.paging import MAX_PAGE_SIZE, PageTokenError, encode_token, page_of
from controlplane.store import Store
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
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
