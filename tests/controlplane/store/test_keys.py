"""API keys in a real SQLite store: create, rotate with grace, revoke, expire; which secrets
work at a given time; the change feed; and no secret or private key in the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from controlplane.api.key_tokens import KeyClaims, b64url, mint_key
from controlplane.store import (
    CONFIGURED,
    CREATED,
    KIND_API_KEY,
    ChangeEvent,
    NotFoundError,
    ResourceKey,
    Store,
)
from controlplane.store.keys import (
    KeyCredential,
    KeyExistsError,
    KeyScope,
    KeyStateError,
    active_credentials,
    create_key,
    get_key,
    list_keys,
    revoke_key,
    rotate_key,
    to_api_key,
)
from meshline.phases import ApiKeyPhase

T0 = 1_000_000.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meshline.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as s:
        yield s


def _create(
    store: Store,
    name: str,
    kid: str,
    scope: KeyScope = KeyScope(),  # noqa: B008 (frozen)
    expires_at: float | None = None,
) -> None:
    create_key(store, name, scope, expires_at, kid, f"pub-{kid}", T0)


@dataclass(frozen=True)
class Case:
    id: str
    steps: tuple[tuple[str, ...], ...]  # ("create", name, kid[, expires_at]), ("rotate", ...)
    at: float
    working: tuple[tuple[str, str, float | None], ...]  # (key_id, name, valid_until)


CASES = (
    Case("a new key works, without end", (("create", "a", "k1"),), T0, (("k1", "a", None),)),
    Case(
        "an expiring key works until its expiry",
        (("create", "a", "k1", str(T0 + 100)),),
        T0 + 99,
        (("k1", "a", T0 + 100),),
    ),
    Case("and not at it", (("create", "a", "k1", str(T0 + 100)),), T0 + 100, ()),
    Case(
        "rotate with grace: both work within it",
        (("create", "a", "k1"), ("rotate", "a", "k2", "60", str(T0 + 10))),
        T0 + 69,
        (("k1", "a", T0 + 70), ("k2", "a", None)),
    ),
    Case(
        "after the grace only the new one",
        (("create", "a", "k1"), ("rotate", "a", "k2", "60", str(T0 + 10))),
        T0 + 70,
        (("k2", "a", None),),
    ),
    Case(
        "grace 0 stops the old secret at once",
        (("create", "a", "k1"), ("rotate", "a", "k2", "0", str(T0 + 10))),
        T0 + 10,
        (("k2", "a", None),),
    ),
    Case(
        "rotating twice within a grace ends the older secret",
        (
            ("create", "a", "k1"),
            ("rotate", "a", "k2", "600", str(T0 + 10)),
            ("rotate", "a", "k3", "600", str(T0 + 20)),
        ),
        T0 + 30,
        (("k2", "a", T0 + 620), ("k3", "a", None)),
    ),
    Case(
        "a grace never outlives the key's expiry",
        (("create", "a", "k1", str(T0 + 100)), ("rotate", "a", "k2", "600", str(T0 + 10))),
        T0 + 50,
        (("k1", "a", T0 + 100), ("k2", "a", T0 + 100)),
    ),
    Case(
        "revoke stops every secret, the one in its grace too",
        (("create", "a", "k1"), ("rotate", "a", "k2", "600", str(T0 + 10)), ("revoke", "a")),
        T0 + 20,
        (),
    ),
    Case(
        "other keys are not touched; sorted by key id",
        (("create", "b", "kb"), ("create", "a", "kz"), ("revoke", "b"), ("create", "c", "ka")),
        T0,
        (("ka", "c", None), ("kz", "a", None)),
    ),
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_active_credentials(store: Store, case: Case) -> None:
    for step in case.steps:
        if step[0] == "create":
            expires = float(step[3]) if len(step) > 3 else None
            _create(store, step[1], step[2], expires_at=expires)
        elif step[0] == "rotate":
            rotate_key(store, step[1], step[2], f"pub-{step[2]}", float(step[3]), float(step[4]))
        else:
            revoke_key(store, step[1], T0 + 15)
    assert active_credentials(store, case.at) == tuple(
        KeyCredential(kid, name, f"pub-{kid}", until) for kid, name, until in case.working
    )


def test_phases_and_status(store: Store) -> None:
    _create(store, "a", "k1", KeyScope("prod", ("d1",), ("r",)))
    _create(store, "e", "k9", expires_at=T0 + 100)
    key = rotate_key(store, "a", "k2", "pub-k2", 30, T0 + 10)
    assert key.phase(T0 + 10) is ApiKeyPhase.ACTIVE
    assert (key.key_id, key.previous_key_id, key.previous_valid_until) == ("k2", "k1", T0 + 40)
    assert key.scope == KeyScope("prod", ("d1",), ("r",))  # rotation keeps the scope

    assert get_key(store, "e").phase(T0 + 99.5) is ApiKeyPhase.ACTIVE
    assert get_key(store, "e").phase(T0 + 100) is ApiKeyPhase.EXPIRED
    revoked = revoke_key(store, "e", T0 + 200)
    assert revoked.phase(T0 + 200) is ApiKeyPhase.REVOKED  # revoked wins over expired
    assert revoke_key(store, "e", T0 + 300).revoked_at == T0 + 200  # once, at first

    message = to_api_key(get_key(store, "a"), T0 + 11)
    assert message.metadata.name == "a"
    assert (message.spec.environment, list(message.spec.deployments)) == ("prod", ["d1"])
    assert message.status.phase == "Active" and message.status.key_id == "k2"
    assert message.status.previous_key_id == "k1"
    assert message.status.previous_valid_until == "1970-01-12T13:47:20Z"  # T0 + 40
    assert to_api_key(get_key(store, "e"), T0).spec.expires_at == "1970-01-12T13:48:20Z"


def test_names_are_unique_even_after_revoke(store: Store) -> None:
    _create(store, "a", "k1")
    with pytest.raises(KeyExistsError, match=r"API key 'a' already exists$"):
        _create(store, "a", "k2")
    revoke_key(store, "a", T0)
    with pytest.raises(KeyExistsError, match="revoked keys keep their name: pick another name"):
        _create(store, "a", "k3")
    assert active_credentials(store, T0) == ()  # the refused creates stored nothing


def test_unknown_and_unusable_keys(store: Store) -> None:
    with pytest.raises(NotFoundError, match="API key 'nope' not found"):
        get_key(store, "nope")
    with pytest.raises(NotFoundError):
        revoke_key(store, "nope", T0)
    with pytest.raises(NotFoundError):
        rotate_key(store, "nope", "k", "p", 0, T0)
    _create(store, "old", "k1", expires_at=T0 + 5)
    with pytest.raises(KeyStateError, match="API key 'old' is expired: it cannot be rotated"):
        rotate_key(store, "old", "k2", "p", 0, T0 + 5)
    _create(store, "gone", "k3")
    revoke_key(store, "gone", T0)
    with pytest.raises(KeyStateError, match="is revoked"):
        rotate_key(store, "gone", "k4", "p", 0, T0)
    assert [k.key_id for k in list_keys(store)] == ["k3", "k1"]  # nothing rotated


def test_list_filters_by_environment(store: Store) -> None:
    _create(store, "b-prod", "k1", KeyScope("production"))
    _create(store, "a-any", "k2")
    _create(store, "c-dev", "k3", KeyScope("development"))
    assert [k.name for k in list_keys(store)] == ["a-any", "b-prod", "c-dev"]
    assert [k.name for k in list_keys(store, "production")] == ["a-any", "b-prod"]


def test_every_change_is_one_revision_on_the_change_feed(store: Store) -> None:
    events: list[ChangeEvent] = []
    store.add_listener(events.append)
    start = store.revision
    _create(store, "a", "k1")
    rotate_key(store, "a", "k2", "p2", 0, T0 + 1)
    revoke_key(store, "a", T0 + 2)
    revoke_key(store, "a", T0 + 3)  # no change: no event
    with pytest.raises(KeyExistsError):
        _create(store, "a", "k3")
    key = ResourceKey(KIND_API_KEY, "a")
    assert [(e.revision, [(c.key, c.action) for c in e.changes]) for e in events] == [
        (start + 1, [(key, CREATED)]),
        (start + 2, [(key, CONFIGURED)]),
        (start + 3, [(key, CONFIGURED)]),
    ]
    assert store.revision == start + 3


def test_keys_survive_a_restart(db_path: Path) -> None:
    with Store.open(db_path) as store:
        _create(store, "a", "k1", KeyScope(roles=("r",)))
        rotate_key(store, "a", "k2", "pub-k2", 60, T0 + 1)
    with Store.open(db_path) as store:
        assert [c.key_id for c in active_credentials(store, T0 + 2)] == ["k1", "k2"]
        assert get_key(store, "a").scope.roles == ("r",)


def test_the_file_never_holds_a_secret_or_a_private_key(store: Store, db_path: Path) -> None:
    """Real minted secrets go through the store; the file's bytes (with its WAL) never contain
    a secret, its payload or signature, nor the private key that signed it."""
    claims = KeyClaims("a", int(T0), roles=("r",))
    privates = [Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()]
    first = mint_key(claims, private_key=privates[0])
    create_key(store, "a", KeyScope(roles=("r",)), None, first.key_id, first.public_key, T0)
    second = mint_key(claims, private_key=privates[1])
    rotate_key(store, "a", second.key_id, second.public_key, 60, T0 + 1)
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    data = b"".join(p.read_bytes() for p in files)
    assert first.public_key.encode() in data and second.public_key.encode() in data
    for minted, private in zip((first, second), privates, strict=True):
        _header, payload, signature = minted.secret.split(".")
        assert minted.secret.encode() not in data
        assert signature.encode() not in data
        assert payload.encode() not in data
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        assert raw not in data
        assert b64url(raw).encode() not in data
