"""Which server and token the CLI uses: the order of --address/--token/--context, the
environment, the credentials file and the admin token `meshline up` leaves; a context's token
never goes to another server, and a directory's address and CA serve its own admin token only;
and the file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cli.client.contexts import (
    ConfigError,
    Context,
    CredentialsFile,
    config_path,
    load,
    parse,
    save,
)
from cli.client.token_lookup import (
    FALLBACK_ADDRESS,
    ApiCredential,
    CredentialFlags,
    CredentialLookupError,
    Lookup,
    TokenSource,
    unauthenticated_hint,
)
from meshline.secret_file import write_secret_file

PROD = Context("prod", "prod.example:7070", "prod-token", "ca/prod.pem")
LOCAL = Context("local", "127.0.0.1:7070", "local-token")
FILE = CredentialsFile("local", (PROD, LOCAL))


def lookup(
    tmp_path: Path,
    *,
    token: str | None = None,
    context: str | None = None,
    environ: dict[str, str] | None = None,
    contexts: CredentialsFile = FILE,
    up_address: str | None = None,
    up_token: str | None = None,
) -> Lookup:
    state = tmp_path / ".meshline"
    if up_address is not None:
        (state / "controlplane").mkdir(parents=True, exist_ok=True)
        (state / "controlplane.addr").write_text(up_address)
    if up_token is not None:  # as the control plane writes it: 0600, this user's
        write_secret_file(state / "controlplane" / "admin-token", up_token + "\n")
    return Lookup(
        CredentialFlags(token, context),
        environ or {},
        contexts,
        tmp_path / "home" / ".meshline" / "config",
        state,
    )


def test_the_current_context_gives_server_and_token(tmp_path: Path) -> None:
    found = lookup(tmp_path)
    assert found.server(None) == "127.0.0.1:7070"
    credential = found.credential("127.0.0.1:7070")
    assert (credential.token, credential.source) == ("local-token", TokenSource.CONTEXT)
    assert credential.describe() == f"context 'local' of {tmp_path}/home/.meshline/config"
    assert credential.certificate_authority is None


def test_precedence_of_the_token(tmp_path: Path) -> None:
    env = {"MESHLINE_TOKEN": " env-token "}
    assert lookup(tmp_path, token="flag", environ=env).credential("x:1").source is (
        TokenSource.OPTION
    )
    from_env = lookup(tmp_path, environ=env).credential("127.0.0.1:7070")
    assert (from_env.token, from_env.source) == ("env-token", TokenSource.ENVIRONMENT)
    # --context beats the current context of the same server
    viewer = Context("local-viewer", "127.0.0.1:7070", "viewer-token")
    two = FILE.with_context(viewer, make_current=False)
    named = lookup(tmp_path, context="local-viewer", contexts=two).credential("127.0.0.1:7070")
    assert (named.token, named.source) == ("viewer-token", TokenSource.CONTEXT)


def test_precedence_of_the_address(tmp_path: Path) -> None:
    env = {"MESHLINE_ADDRESS": "env.example:1"}
    assert lookup(tmp_path, environ=env).server("flag.example:1") == "flag.example:1"
    assert lookup(tmp_path, environ=env).server(None) == "env.example:1"
    assert lookup(tmp_path, context="prod").server(None) == "prod.example:7070"
    empty = CredentialsFile()
    up = lookup(tmp_path, contexts=empty, up_address="127.0.0.1:9999", up_token="admin-secret")
    assert up.server(None) == "127.0.0.1:9999"
    assert lookup(tmp_path / "nowhere", contexts=empty).server(None) == "127.0.0.1:7070"


def test_a_contexts_token_goes_to_its_own_server_only(tmp_path: Path) -> None:
    found = lookup(tmp_path)
    # another server named by --address: the context for that server, not the current one
    other = found.credential("prod.example:7070")
    assert (other.token, other.where.split(" of ")[0]) == ("prod-token", "context 'prod'")
    # relative CA paths are relative to the credentials file
    assert other.certificate_authority == tmp_path / "home" / ".meshline" / "ca" / "prod.pem"
    # a server no context names gets no token
    assert found.credential("stranger.example:1").source is TokenSource.NONE


def test_the_admin_token_of_up_is_used_for_ups_control_plane_only(tmp_path: Path) -> None:
    empty = CredentialsFile()
    found = lookup(tmp_path, contexts=empty, up_address="127.0.0.1:7070", up_token="admin-secret")
    credential = found.credential("127.0.0.1:7070")
    assert (credential.token, credential.source) == ("admin-secret", TokenSource.ADMIN_FILE)
    assert credential.describe().endswith(".meshline/controlplane/admin-token")
    assert found.credential("prod.example:7070").source is TokenSource.NONE


def test_the_ca_of_ups_control_plane_is_trusted_for_it_alone(tmp_path: Path) -> None:
    """The API port speaks TLS: run from the directory of `meshline up`, the CLI trusts the
    mesh CA it made, for that control plane and its admin token only; a context's CA wins."""
    found = lookup(tmp_path, contexts=FILE, up_address="127.0.0.1:7070", up_token="admin")
    assert found.credential("127.0.0.1:7070").certificate_authority is None  # no ca.crt yet
    ca = tmp_path / ".meshline" / "controlplane" / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    empty = lookup(tmp_path, contexts=CredentialsFile())
    admin = empty.credential("127.0.0.1:7070")
    assert (admin.source, admin.certificate_authority) == (TokenSource.ADMIN_FILE, ca.resolve())
    assert empty.credential("stranger.example:1").certificate_authority is None
    prod = found.credential("prod.example:7070").certificate_authority
    assert prod == tmp_path / "home" / ".meshline" / "ca" / "prod.pem"
    # a token from elsewhere never gets the directory's CA, nor its address
    for flagged in (
        lookup(tmp_path, token="t", contexts=CredentialsFile()),
        lookup(tmp_path, environ={"MESHLINE_TOKEN": "t"}, contexts=CredentialsFile()),
    ):
        assert flagged.server(None) == FALLBACK_ADDRESS
        assert flagged.credential("127.0.0.1:7070").certificate_authority is None


def test_a_cloned_directory_cannot_redirect_a_token(tmp_path: Path) -> None:
    """A repository may carry `.meshline/controlplane.addr`, a `ca.crt`, even an
    `admin-token`: without this user's own 0600 admin token beside them, the CLI takes
    neither the address nor the CA, whatever token it sends."""
    state = tmp_path / ".meshline"
    (state / "controlplane").mkdir(parents=True)
    (state / "controlplane.addr").write_text("evil.example:443\n")
    (state / "controlplane" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    planted = state / "controlplane" / "admin-token"
    planted.write_text("attackers-own-token\n")
    planted.chmod(0o644)  # as git checks files out
    empty = CredentialsFile()
    for found in (
        lookup(tmp_path, contexts=empty),
        lookup(tmp_path, token="ci-token", contexts=empty),
        lookup(tmp_path, environ={"MESHLINE_TOKEN": "ci-token"}, contexts=empty),
    ):
        assert found.server(None) == FALLBACK_ADDRESS
        for address in (FALLBACK_ADDRESS, "evil.example:443"):
            assert found.credential(address).certificate_authority is None
    assert lookup(tmp_path, contexts=empty).credential("evil.example:443").token == ""
    # the same files, written as the control plane writes them, are `meshline up`'s
    write_secret_file(planted, "admin-secret\n")
    up = lookup(tmp_path, contexts=empty)
    assert up.server(None) == "evil.example:443"
    assert up.credential("evil.example:443").source is TokenSource.ADMIN_FILE


def test_a_contexts_token_is_never_sent_to_another_address(tmp_path: Path) -> None:
    """`--context prod --address evil` is refused, not answered with prod's token; so is a
    context that is not in the file."""
    named = lookup(tmp_path, context="prod")
    assert named.credential("prod.example:7070").token == "prod-token"
    for address in ("evil.example:1", "127.0.0.1:7070"):
        with pytest.raises(CredentialLookupError) as caught:
            named.credential(address)
        message = str(caught.value)
        assert f"context 'prod' is for server prod.example:7070, not {address}" in message
        assert "prod-token" not in message
    # $MESHLINE_ADDRESS is as explicit as --address
    env = lookup(tmp_path, context="prod", environ={"MESHLINE_ADDRESS": "evil.example:1"})
    with pytest.raises(CredentialLookupError):
        env.credential(env.server(None))
    # even with --token: the context and the address disagree, the user meant one of them
    with pytest.raises(CredentialLookupError):
        lookup(tmp_path, context="prod", token="t").credential("evil.example:1")
    missing = lookup(tmp_path, context="staging")
    for ask in (lambda: missing.server(None), lambda: missing.credential("a:1")):
        with pytest.raises(CredentialLookupError, match=r"no context 'staging' in .*local, prod"):
            ask()


def test_hints_say_where_the_token_came_from(tmp_path: Path) -> None:
    none = ApiCredential("", TokenSource.NONE)
    assert unauthenticated_hint(none, "a:1") == (
        "no token for a:1: pass --token, set $MESHLINE_TOKEN, or run "
        "`meshline login --address a:1` (it saves a context for that server)"
    )
    refused = lookup(tmp_path).credential("127.0.0.1:7070")
    hint = unauthenticated_hint(refused, "127.0.0.1:7070")
    assert "the token from context 'local' of" in hint and "meshline login" in hint
    assert "local-token" not in hint and "local-token" not in repr(refused)


# --- the credentials file ----------------------------------------------------------------


def test_the_file_round_trips_and_is_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config"
    save(path, FILE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(path) == FILE
    assert load(tmp_path / "missing") == CredentialsFile()


def test_changing_contexts() -> None:
    added = FILE.with_context(Context("ci", "ci:1", "t"), make_current=False)
    assert added.current_context == "local" and added.get("ci") is not None
    replaced = added.with_context(Context("ci", "ci:2", "t2"))
    assert replaced.current_context == "ci" and replaced.get("ci") == Context("ci", "ci:2", "t2")
    assert [c.name for c in replaced.contexts].count("ci") == 1
    removed = replaced.without("ci")
    assert removed.current_context == "" and removed.get("ci") is None
    assert FILE.using("prod").current == PROD
    assert FILE.for_server("127.0.0.1:7070") == LOCAL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "is not valid YAML"),
        ("- 1\n", "expected a mapping"),
        ("contexts: {a: 1}\n", "contexts must be a list"),
        ("contexts: [{server: x}]\n", "contexts[0].name is required"),
        ("contexts: [{name: a, token: 5}]\n", "contexts[0].token must be a string"),
    ],
)
def test_a_broken_file_is_named(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse(text, tmp_path / "config")


def test_where_the_file_is(tmp_path: Path) -> None:
    assert config_path({"MESHLINE_CONFIG": str(tmp_path / "c")}) == tmp_path / "c"
    assert config_path({}, home=tmp_path) == tmp_path / ".meshline" / "config"
