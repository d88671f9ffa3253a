"""A user's own identity provider, for tests: RS256 signing keys, their JWKS, signed tokens,
and a loopback HTTP server that publishes the JWKS (and counts how often Envoy fetched it).

RS256 because it is what most identity providers sign with (jwt_authn also takes ES256/EdDSA).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWKS_PATH = "/.well-known/jwks.json"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """One RSA key of the identity provider, known by `kid`."""

    kid: str
    private: rsa.RSAPrivateKey

    @staticmethod
    def generate(kid: str) -> SigningKey:
        return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }

    def private_markers(self) -> list[str]:
        """Text that would show this key's private half (the JWK `d`, `p`, `q`)."""
        numbers = self.private.private_numbers()
        return [_uint(numbers.d), _uint(numbers.p), _uint(numbers.q)]

    def sign(self, claims: Mapping[str, object]) -> str:
        """A compact RS256 JWS of `claims`."""
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        segments = [_b64url(json.dumps(part).encode()) for part in (header, claims)]
        signing_input = ".".join(segments).encode("ascii")
        signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64url(signature)}"


def jwks(keys: Sequence[SigningKey]) -> str:
    return json.dumps({"keys": [k.jwk() for k in keys]})


class JwksServer:
    """Serves the JWKS it currently holds at JWKS_PATH on loopback; `publish` rotates."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        self._lock = threading.Lock()
        self._body = jwks(keys).encode()
        self._fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                body = server._serve()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _serve(self) -> bytes:
        with self._lock:
            self._fetches += 1
            return self._body

    @property
    def uri(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    @property
    def fetches(self) -> int:
        with self._lock:
            return self._fetches

    def publish(self, keys: Sequence[SigningKey]) -> None:
        with self._lock:
            self._body = jwks(keys).encode()


@contextmanager
def serving_jwks(keys: Sequence[SigningKey]) -> Iterator[JwksServer]:
    """A JwksServer running until the block ends."""
    server = JwksServer(keys)
    server._thread.start()
    try:
        yield server
    finally:
        server._http.shutdown()
        server._http.server_close()
        server._thread.join(timeout=5)
