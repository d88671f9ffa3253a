"""What the gateway's client listener serves: the agent's own TLS handshake with it, the way a
client makes one, read for the certificate Envoy presents (its expiry goes into the agent's
report, so `meshline get regions` shows what clients get, also for the user's own files, which
the control plane never sees).

No trust is checked here (the agent only reads which certificate comes back), and nothing is
sent after the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from cryptography import x509

from meshline.certs import CertificateFacts, certificate_facts
from meshline.times import rfc3339

log = logging.getLogger(__name__)

# While the listener answers no TLS (Envoy is starting, the config is on its way) the probes
# start quick and slow down to the steady interval; a rotation shows in status within seconds.
FAST_PROBE_S = 0.25
PROBE_INTERVAL_S = 2.0
HANDSHAKE_TIMEOUT_S = 2.0


def probe_context() -> ssl.SSLContext:
    """A client context that accepts any certificate: it is read, not trusted."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


async def served_certificate(
    host: str, port: int, timeout_s: float = HANDSHAKE_TIMEOUT_S
) -> CertificateFacts | None:
    """The certificate the listener at host:port presents; None when it answers no TLS
    handshake (not listening yet, plain text, refused)."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=probe_context()), timeout_s
        )
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return certificate_facts(x509.load_der_x509_certificate(der)) if der else None
    except ValueError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout_s)


def expires_text(facts: CertificateFacts | None) -> str:
    """What the agent reports of a served certificate ("" for none)."""
    return rfc3339(facts.not_after) if facts is not None else ""


class EdgeCertificateWatch:
    """Probes the client listener for ever; calls `on_change` with the certificate it serves
    whenever that changes (a rotation, the user's new files, TLS gone)."""

    def __init__(
        self, host: str, port: int, on_change: Callable[[CertificateFacts | None], None]
    ) -> None:
        self.host = host
        self.port = port
        self.on_change = on_change
        self.served: CertificateFacts | None = None

    async def run(self) -> None:
        delay = FAST_PROBE_S / 2
        while True:
            facts = await served_certificate(self.host, self.port)
            if facts != self.served:
                if facts is not None:
                    log.info(
                        "the gateway serves edge certificate %s to clients, expires %s",
                        facts.serial,
                        rfc3339(facts.not_after),
                    )
                self.served = facts
                self.on_change(facts)
            # Quick while nothing is served yet, slowing down to the steady interval.
            delay = PROBE_INTERVAL_S if facts is not None else min(delay * 2, PROBE_INTERVAL_S)
            await asyncio.sleep(delay)
