"""Getting and keeping the agent's mesh identity: Join on the API port (TLS, the join token is
the credential), Renew on the mesh port (mTLS, the current certificate is), and the loop that
renews two thirds into each certificate's lifetime.

A refusal (no such token, another region's, expired, revoked, a deleted region, a region whose
agent is connected) ends the agent with the control plane's own words: trying again cannot
help. An unreachable control plane is tried again; a control plane whose certificate the given
CA does not vouch for is a refusal too (the wrong --ca-file, or the wrong address). A renewal
the control plane answers with "this certificate is not accepted" (expired by its clock,
replaced by a later renewal or join) is followed by joining again with the join token the agent
started with; without one the agent stops, saying so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshline.certs import new_key_and_csr
from meshline.join_token import JOIN_TOKEN_ENV
from meshline.tls_failure import tls_handshake_failed
from meshline.v1 import agent_pb2, agent_pb2_grpc
from workers.agent.identity import (
    Identity,
    IdentityPaths,
    Start,
    decide_start,
    load_identity,
    mesh_target,
    renewal_delay_s,
    save_identity,
)

log = logging.getLogger(__name__)

# Notice a dead control plane in seconds, not when TCP gives up.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]
CALL_TIMEOUT_S = 15.0
# The answers that say "no" for good: asking again cannot change them.
REFUSALS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


# How a TLS 1.3 server that refuses the client's certificate looks from the client: the
# handshake seemed done, then the server closed the connection.
_CLOSED_ON_US = "Socket closed"


class EnrollmentRefusedError(Exception):
    """The control plane will not give this agent a certificate (or will not be trusted)."""


class CertificateNotAcceptedError(EnrollmentRefusedError):
    """The control plane no longer takes the agent's certificate (it expired by the control
    plane's clock, or a later renewal or join replaced it): joining again is the way back."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def refusal(error: grpc.aio.AioRpcError, what: str, target: str) -> EnrollmentRefusedError | None:
    """The refusal an RPC error is (None: a failure worth another try)."""
    details = error.details() or ""
    if error.code() in REFUSALS:
        return EnrollmentRefusedError(f"{what} refused by {target}: {details}")
    if tls_handshake_failed(error.code(), details):
        return EnrollmentRefusedError(
            f"{what}: no TLS connection to {target}: the control plane's certificate is not "
            "signed by the CA the agent trusts (check --ca-file: the control plane's ca.crt), "
            f"or this is not its address ({details})"
        )
    return None


def mesh_credentials(identity: Identity, ca_pem: str) -> grpc.ChannelCredentials:
    """mTLS to the mesh port: the region's certificate, the mesh CA to check the server."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem.encode(),
        private_key=identity.key_pem.encode(),
        certificate_chain=identity.certificate_pem.encode(),
    )


async def join(
    api_address: str, ca_pem: str, region: str, token: str, now: Callable[[], datetime] = utc_now
) -> tuple[Identity, str]:
    """Trade the join token for region `region`'s certificate (a new key, made here); the
    identity and the CA bundle to trust from then on. EnrollmentRefusedError when refused;
    grpc.aio.AioRpcError when the control plane could not be asked."""
    made = new_key_and_csr(f"{region} agent")
    request = agent_pb2.JoinRequest(region=region, join_token=token, csr_pem=made.csr_pem)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem.encode())
    async with grpc.aio.secure_channel(api_address, credentials, CHANNEL_OPTIONS) as channel:
        try:
            reply = await agent_pb2_grpc.JoinServiceStub(channel).Join(
                request, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc, f"joining as region {region}", api_address) or exc from None
    identity = Identity(
        region=region,
        certificate_pem=reply.certificate_pem,
        key_pem=made.key_pem.decode(),
        mesh_address=mesh_target(reply.mesh_address, api_address),
        received_at=now(),
    )
    return identity, reply.ca_pem


def renewal_refusal(
    error: grpc.aio.AioRpcError, serial: str, target: str
) -> EnrollmentRefusedError | None:
    """What a failed Renew means (None: a failure worth another try). UNAUTHENTICATED, or a
    TLS handshake that failed, say the certificate is not accepted any more; the other
    refusals stay refusals."""
    details = error.details() or ""
    code = error.code()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return CertificateNotAcceptedError(
            f"renewing certificate {serial} refused by {target}: {details}"
        )
    if tls_handshake_failed(code, details):
        return CertificateNotAcceptedError(
            f"renewing certificate {serial}: the TLS handshake with {target} failed (the "
            f"control plane no longer accepts the certificate, or no longer has a certificate "
            f"of the CA the agent holds): {details}"
        )
    return refusal(error, "renewing the certificate", target)


def closed_on_us(error: grpc.aio.AioRpcError) -> bool:
    """Whether the server closed the connection right after the handshake: what refusing
    the client's certificate looks like in TLS 1.3 (or a server going away: ask its API)."""
    return error.code() == grpc.StatusCode.UNAVAILABLE and _CLOSED_ON_US in (error.details() or "")


async def renew(
    identity: Identity, ca_pem: str, now: Callable[[], datetime] = utc_now
) -> tuple[Identity, str]:
    """A new certificate (for a new key) from the mesh port, asked with the current one.
    CertificateNotAcceptedError when the control plane says it does not take that one."""
    made = new_key_and_csr(f"{identity.region} agent")
    target = identity.mesh_address
    credentials = mesh_credentials(identity, ca_pem)
    async with grpc.aio.secure_channel(target, credentials, CHANNEL_OPTIONS) as channel:
        try:
            reply = await agent_pb2_grpc.JoinServiceStub(channel).Renew(
                agent_pb2.RenewRequest(csr_pem=made.csr_pem), timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            refused = renewal_refusal(exc, identity.facts.serial, target)
            raise refused or exc from None
    renewed = Identity(
        region=identity.region,
        certificate_pem=reply.certificate_pem,
        key_pem=made.key_pem.decode(),
        mesh_address=identity.mesh_address,
        received_at=now(),
    )
    return renewed, reply.ca_pem or ca_pem


async def join_until_answered(
    api_address: str, ca_pem: str, region: str, token: str, max_backoff_s: float = 5.0
) -> tuple[Identity, str]:
    """`join`, tried again while the control plane cannot be reached (it may be starting)."""
    backoff = 0.2
    while True:
        try:
            return await join(api_address, ca_pem, region, token)
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "cannot join through %s yet (%s: %s); trying again in %.1fs",
                api_address,
                exc.code().name,
                exc.details(),
                backoff,
            )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)


@dataclass(frozen=True)
class ApiAccess:
    """The control plane's API port and the join token the agent started with ("" when it
    started from its stored certificate; kept in memory only): what lets it join again when
    its certificate expired before a renewal worked (the control plane was away for the
    certificate's last third)."""

    address: str
    join_token: str = field(default="", repr=False)


async def api_serving(address: str, ca_pem: str) -> bool:
    """Whether the control plane's API port answers (TLS; health needs no credential)."""
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem.encode())
    async with grpc.aio.secure_channel(address, credentials) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class IdentityKeeper:
    """The agent's current identity: what each new connection to the mesh port uses, renewed
    in `run()` (the files, Envoy's SDS file among them, are rewritten at each renewal).
    `generation` counts the identities it held; `exchanging` is true while it asks for a new
    one (a stream refused meanwhile may have shown the certificate being replaced)."""

    def __init__(
        self,
        paths: IdentityPaths,
        identity: Identity,
        ca_pem: str,
        api: ApiAccess,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.paths = paths
        self.current = identity
        self.ca_pem = ca_pem
        self.renewals = 0
        self.generation = 0
        self.exchanging = False
        self._api = api
        self._now = now

    @property
    def mesh_address(self) -> str:
        return self.current.mesh_address

    def credentials(self) -> grpc.ChannelCredentials:
        """For a new connection to the mesh port: the certificate held now."""
        return mesh_credentials(self.current, self.ca_pem)

    def channel(self) -> grpc.aio.Channel:
        """A new channel to the mesh port with the certificate held now (the caller closes
        it); connections already open keep the certificate they started with."""
        return grpc.aio.secure_channel(self.mesh_address, self.credentials(), CHANNEL_OPTIONS)

    def expired(self) -> bool:
        return not self.current.valid_at(self._now())

    async def run(self) -> None:
        """Renew at two thirds of each lifetime, for ever. A control plane that cannot be
        reached is tried again (every few seconds) while the agent keeps serving; a refusal
        ends the agent. A certificate the control plane no longer accepts (expired by its
        clock, replaced) or that expired meanwhile is replaced by joining again with the
        start's join token, when the agent has one; without, the agent ends (for an expired
        one: once the control plane answers again, as it refuses an expired certificate)."""
        while True:
            await asyncio.sleep(renewal_delay_s(self.current, self._now()))
            await self._renew_once()

    async def _exchange(self, old: Identity) -> tuple[Identity, str, str] | None:
        """A new identity for `old`'s region and how it came; None while the control plane
        cannot be asked."""
        api = self._api
        if not self.expired():
            try:
                identity, ca_pem = await renew(old, self.ca_pem, self._now)
                return identity, ca_pem, "renewed"
            except CertificateNotAcceptedError as exc:
                not_accepted = str(exc)
            except grpc.aio.AioRpcError as exc:
                # Closed on us: our certificate refused, or the control plane going away.
                if not closed_on_us(exc) or not await api_serving(api.address, self.ca_pem):
                    raise
                not_accepted = (
                    f"renewing certificate {old.facts.serial}: {old.mesh_address} closes the "
                    f"connection while the control plane's API answers: it no longer accepts "
                    f"the certificate ({exc.details()})"
                )
            return await self._join_again(old, not_accepted)
        if api.join_token:
            return await self._join_again(old, "it expired unrenewed")
        # The mesh port closes on an expired certificate as on a control plane going away:
        # the API port tells the two apart.
        if await api_serving(api.address, self.ca_pem):
            raise EnrollmentRefusedError(
                f"the certificate of region {old.region} expired at "
                f"{old.expires_at.isoformat()} before it could be renewed (the control plane "
                "was out of reach): restart the agent with a new join token"
            )
        return None

    async def _join_again(self, old: Identity, why: str) -> tuple[Identity, str, str]:
        """Join with the start's token, as the way back for a certificate that is not
        accepted (or expired); EnrollmentRefusedError naming `why` when there is none or
        the join is refused."""
        api = self._api
        if not api.join_token:
            raise EnrollmentRefusedError(
                f"{why}; the agent has no join token to join again with: restart it with a "
                f"new one (`meshline regions token create {old.region}`, in ${JOIN_TOKEN_ENV} "
                "or --join-token-file)"
            )
        log.warning("%s: joining again with the join token", why)
        try:
            identity, ca_pem = await join(
                api.address, self.ca_pem, old.region, api.join_token, self._now
            )
        except EnrollmentRefusedError as exc:
            raise EnrollmentRefusedError(f"{why}; joining again: {exc}") from None
        return identity, ca_pem, f"replaced by joining again ({why})"

    async def _renew_once(self) -> None:
        retry = 0.2
        while True:
            old = self.current
            self.exchanging = True
            try:
                exchanged = await self._exchange(old)
                why = "the control plane's API does not answer"
            except grpc.aio.AioRpcError as exc:
                exchanged, why = None, f"{exc.code().name}: {exc.details()}"
            finally:
                self.exchanging = False
            if exchanged is None:
                left = (old.expires_at - self._now()).total_seconds()
                log.warning(
                    "cannot renew the certificate yet (%s); %s, trying again in %.1fs",
                    why,
                    f"{left:.0f}s left" if left > 0 else "it has expired",
                    retry,
                )
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
                continue
            identity, ca_pem, how = exchanged
            save_identity(self.paths, identity, ca_pem)
            self.current, self.ca_pem = identity, ca_pem
            self.generation += 1
            self.renewals += 1
            log.info(
                "certificate of region %s %s: %s -> %s, expires %s",
                identity.region,
                how,
                old.facts.serial,
                identity.facts.serial,
                identity.expires_at.isoformat(),
            )
            return


def _read_ca(path: Path, flag: str) -> str:
    try:
        text = path.read_text()
    except OSError as exc:
        raise EnrollmentRefusedError(f"{flag} {path}: {exc.strerror}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise EnrollmentRefusedError(f"{flag} {path}: not a PEM certificate")
    return text


async def start_identity(
    state_dir: Path, region: str, api_address: str, ca_file: Path | None, join_token: str
) -> IdentityKeeper:
    """The identity the agent starts with: the stored certificate while it is valid for
    `region` (no token needed), else a join with `join_token`, trusting `ca_file` (or the CA
    stored by an earlier join). EnrollmentRefusedError says why the agent cannot start."""
    paths = IdentityPaths.of(state_dir)
    stored = load_identity(paths)
    api = ApiAccess(api_address, join_token)
    decision = decide_start(stored, region, utc_now(), bool(join_token))
    if decision.start is Start.USE_STORED and stored is not None:
        log.info("starting with the stored identity: %s", decision.reason)
        keeper = IdentityKeeper(paths, stored, _read_ca(paths.ca, "the stored CA"), api)
        save_identity(paths, stored, keeper.ca_pem)  # Envoy's SDS file as well
        return keeper
    if decision.start is Start.NO_TOKEN:
        raise EnrollmentRefusedError(
            f"cannot join the mesh as region {region}: {decision.reason}, and no join token: "
            f"create one (`meshline regions token create {region}`) and give it in "
            f"${JOIN_TOKEN_ENV} or --join-token-file"
        )
    if ca_file is not None:
        ca_pem = _read_ca(ca_file, "--ca-file")
    elif paths.ca.exists():
        ca_pem = _read_ca(paths.ca, "the stored CA")
    else:
        raise EnrollmentRefusedError(
            "--ca-file: the mesh CA to trust is needed for the first join (the control "
            "plane's <state-dir>/ca.crt: copy it to this machine)"
        )
    log.info("joining the mesh at %s: %s", api_address, decision.reason)
    identity, ca_pem = await join_until_answered(api_address, ca_pem, region, join_token)
    save_identity(paths, identity, ca_pem)
    log.info(
        "joined as region %s (certificate %s, expires %s; mesh port %s)",
        region,
        identity.facts.serial,
        identity.expires_at.isoformat(),
        identity.mesh_address,
    )
    return IdentityKeeper(paths, identity, ca_pem, api)
