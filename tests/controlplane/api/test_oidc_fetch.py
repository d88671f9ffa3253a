"""The control plane fetches its identity provider's JWKS over https (http from loopback only)
and follows no redirect from https to http: real loopback servers, one of them TLS with a
certificate of a test CA, the fetcher trusting that CA."""

from __future__ import annotations

import logging
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from controlplane.api.jwks_checks import oidc_jwks_uri_problem, redirect_problem
from controlplane.api.oidc import OidcProvider, OidcSettings, fetch_jwks
from tests.controlplane.translate.identity_provider import (
    JWKS_PATH,
    SigningKey,
    jwks,
    serving_jwks,
)
from tests.harness.peer_tls import control_plane_identity, new_ca


class Provider:
    """An https server on loopback: JWKS at JWKS_PATH, a redirect at /moved (to `moved_to`)."""

    def __init__(self, files: Path, body: str) -> None:
        self.moved_to = ""
        self.fetches = 0
        ca = new_ca()
        identity = control_plane_identity(ca)  # a server certificate for 127.0.0.1
        cert, key = files / "server.crt", files / "server.key"
        cert.write_text(identity.chain_pem)
        key.write_text(identity.key_pem)
        key.chmod(0o600)
        self.client = ssl.create_default_context(cadata=ca.bundle_pem.decode())
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("location", provider.moved_to)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                provider.fetches += 1
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert, key)
        self.http.socket = server_tls.wrap_socket(self.http.socket, server_side=True)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.http.server_address[1]}{path}"

    def fetch(self, uri: str) -> str:
        return fetch_jwks(uri, self.client)


@contextmanager
def https_provider(files: Path, body: str) -> Iterator[Provider]:
    provider = Provider(files, body)
    provider.thread.start()
    try:
        yield provider
    finally:
        provider.http.shutdown()
        provider.http.server_close()
        provider.thread.join(timeout=5)


KEY = SigningKey.generate("k1")


def test_https_is_fetched_and_a_redirect_to_https_followed(tmp_path: Path) -> None:
    with https_provider(tmp_path, jwks([KEY])) as idp:
        assert '"kid": "k1"' in idp.fetch(idp.url(JWKS_PATH))
        idp.moved_to = idp.url(JWKS_PATH)
        assert '"kid": "k1"' in idp.fetch(idp.url("/moved"))
        assert idp.fetches == 2


async def test_no_redirect_from_https_to_http_even_on_loopback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with https_provider(tmp_path, jwks([KEY])) as idp, serving_jwks([KEY]) as plain:
        idp.moved_to = plain.uri  # http://127.0.0.1:PORT/...: fine as a URL of its own
        assert oidc_jwks_uri_problem(plain.uri) is None
        with pytest.raises(urllib.error.HTTPError, match="from https to plain http"):
            idp.fetch(idp.url("/moved"))
        # the provider keeps no keys from it, says why, and the http server was never asked
        settings = OidcSettings("https://idp", "api", jwks_uri=idp.url("/moved"))
        provider = OidcProvider(settings, fetch=idp.fetch)
        with caplog.at_level(logging.WARNING):
            await provider.refresh()
        assert provider.keys == ()
        assert "from https to plain http" in caplog.text
        assert plain.fetches == 0


def test_a_redirect_off_loopback_to_http_is_refused_before_connecting() -> None:
    with serving_jwks([KEY]) as plain:
        assert '"kid": "k1"' in fetch_jwks(plain.uri)  # http on loopback: allowed
    with pytest.raises(urllib.error.URLError, match="is not https"):
        fetch_jwks("http://idp.example.test/jwks")  # no connection is tried: no such host


@pytest.mark.parametrize(
    ("from_uri", "to_uri", "problem"),
    [
        ("https://idp.example/jwks", "https://cdn.example/jwks", None),
        ("https://idp.example/jwks", "http://cdn.example/jwks", "from https to plain http"),
        ("https://127.0.0.1/jwks", "http://127.0.0.1/jwks", "from https to plain http"),
        ("http://127.0.0.1:8/jwks", "http://localhost:9/jwks", None),
        ("http://127.0.0.1:8/jwks", "http://idp.example/jwks", "is not https"),
        ("http://127.0.0.1:8/jwks", "file:///etc/passwd", "is not an http or https URL"),
    ],
)
def test_which_redirects_are_followed(from_uri: str, to_uri: str, problem: str | None) -> None:
    found = redirect_problem(from_uri, to_uri)
    assert (found is None) if problem is None else (problem in str(found)), found


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://sso.example.com/.well-known/jwks.json", True),
        ("http://sso.example.com/.well-known/jwks.json", False),
        ("http://10.0.0.5:8080/keys", False),
        ("http://127.0.0.1:8080/keys", True),
        ("http://127.9.9.9/keys", True),
        ("http://localhost:8080/keys", True),
        ("http://[::1]:8080/keys", True),
        ("http://localhost.evil.example/keys", False),
    ],
)
def test_an_oidc_jwks_uri_is_https_unless_on_loopback(uri: str, ok: bool) -> None:
    assert (oidc_jwks_uri_problem(uri) is None) is ok


def test_the_default_fetch_checks_the_server_against_the_systems_roots(tmp_path: Path) -> None:
    """A provider whose certificate no trusted root signed is refused (no TLS shortcut)."""
    with https_provider(tmp_path, jwks([KEY])) as idp:
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_jwks(idp.url(JWKS_PATH))
        assert idp.fetches == 0
