"""The control plane's own TLS certificate on its API and mesh ports, renewed while it runs.

It is made at every start (a fresh key, in memory only). grpc asks for the certificate to serve
before each TLS handshake (`grpc.dynamic_ssl_server_credentials`); the first handshake past two
thirds of the certificate's lifetime gets a new certificate and key, so a control plane that
runs for longer than a certificate lives keeps serving. Connections already open keep theirs.
No certificate outlives the CA that signs it: one that ends within `EXPIRY_WARNING` at start
(the CA ends soon) is said at start, as a warning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import grpc

from controlplane.pki import MeshCA, ServerCertificate, issue_server_certificate, renew_at
from controlplane.pki.issue import SERVER_CERT_LIFETIME

log = logging.getLogger(__name__)

# A certificate (or the CA behind it) ending sooner than this at start is worth a warning.
EXPIRY_WARNING = timedelta(days=30)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def expiry_warning(certificate: ServerCertificate, now: datetime) -> str | None:
    """What to tell the operator when the certificate ends within EXPIRY_WARNING of `now`
    (it was cut to the CA's end: renewing cannot go past it), else None."""
    not_after = certificate.facts.not_after
    if not_after - now >= EXPIRY_WARNING:
        return None
    return (
        f"the control plane's certificate expires at {not_after.isoformat()}, with the mesh CA "
        "that signs it: agents, Envoys and clients will be refused after that. Replace the CA "
        "(docs/security.md: rotating the mesh CA) before then"
    )


def _configuration(
    certificate: ServerCertificate, client_ca: bytes | None
) -> grpc.ServerCertificateConfiguration:
    pairs = [(certificate.key_pem, certificate.certificate_pem)]
    return grpc.ssl_server_certificate_configuration(pairs, root_certificates=client_ca)


class ServerIdentity:
    """The certificate the control plane's ports serve, renewed at two thirds of its life on
    the first TLS handshake past that (called from grpc's threads: a lock guards it).
    `clock`: the time now (tests pass their own)."""

    def __init__(
        self,
        ca: MeshCA,
        hosts: Sequence[str],
        clock: Callable[[], datetime] = _utc_now,
        lifetime: timedelta = SERVER_CERT_LIFETIME,
    ) -> None:
        """ValueError naming a host that cannot be in a certificate."""
        self._ca = ca
        self._hosts = tuple(hosts)
        self._clock = clock
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._at_ca_end = False
        self._issued_at = clock()
        self._current = issue_server_certificate(ca, self._hosts, self._issued_at, lifetime)

    @property
    def current(self) -> ServerCertificate:
        with self._lock:
            return self._current

    @property
    def hosts(self) -> tuple[str, ...]:
        return self._hosts

    def due_at(self) -> datetime:
        """When the current certificate is renewed (two thirds into its life, counted from
        when it was made: certificates are backdated for clock skew)."""
        facts = self._current.facts
        return renew_at(min(self._issued_at, facts.not_after), facts.not_after)

    def refreshed(self) -> ServerCertificate:
        """The certificate to serve now: a new one once the current one is due (unless a new
        one would end no later: the CA's end is reached, and the current one is kept)."""
        with self._lock:
            now = self._clock()
            old = self._current
            if self._at_ca_end or now < self.due_at():
                return old
            fresh = issue_server_certificate(self._ca, self._hosts, now, self._lifetime)
            if fresh.facts.not_after <= old.facts.not_after:
                # Cut to the CA's end, as the current one: renewing gains nothing, ever.
                self._at_ca_end = True
                log.warning("%s", expiry_warning(old, now) or "the mesh CA ends soon")
                return old
            self._current, self._issued_at = fresh, now
        log.info(
            "control plane certificate renewed: %s -> %s, expires %s",
            old.facts.serial,
            fresh.facts.serial,
            fresh.facts.not_after.isoformat(),
        )
        return fresh

    def credentials(self, client_ca: bytes | None = None) -> grpc.ServerCredentials:
        """TLS serving the current certificate, renewed as it comes due. With `client_ca`
        every client must show a certificate that chains to it (the mesh port's mTLS)."""
        lock = threading.Lock()
        first = self.current
        served = [first.facts.serial]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            certificate = self.refreshed()
            with lock:
                if certificate.facts.serial == served[0]:
                    return None
                served[0] = certificate.facts.serial
            return _configuration(certificate, client_ca)

        return grpc.dynamic_ssl_server_credentials(
            _configuration(first, client_ca),
            fetch,
            require_client_authentication=client_ca is not None,
        )
