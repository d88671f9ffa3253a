"""The management API's door: a grpc.aio server interceptor that authenticates every call of
the managed services, authorizes it by its method's rule, records changes in the audit log,
and hands the caller to the servicer.

Authentication comes first: nothing is read from the store for a caller it does not know yet
(a key's environment, a deployment before an apply), and a refusal for want of a credential is
recorded one by one only up to a rate per peer host, then summarized (refusal_limiter.py).

Why an interceptor: one place that no servicer can forget, for every RPC there is and every
RPC added later (a managed method with no rule is refused). It wraps each handler rather than
answering for it, so the servicer runs in the same task, under the same context: the caller
reaches it as `current_principal()` (a contextvar), and an error it answers with is seen here
and audited as "failed".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from controlplane.api.authn import AuthenticationError, Authenticator
from controlplane.api.authz import ANONYMOUS, Action, Principal, decide_all
from controlplane.api.concealment import concealed_refusal
from controlplane.api.method_rules import managed, rule_for
from controlplane.api.refusal_limiter import RefusalSummary, UnauthenticatedRefusals, peer_host
from controlplane.api.rule_types import (
    NO_FACTS,
    DeploymentFacts,
    Event,
    KeyFacts,
    MethodRule,
)
from controlplane.request_stream import peek_first
from controlplane.store import NotFoundError, Store
from controlplane.store.audit import (
    ALLOWED,
    DEFAULT_BOUNDS,
    FAILED,
    REFUSED,
    UNAUTHENTICATED,
    AuditBounds,
    AuditRecord,
    append_events,
)
from controlplane.store.keys import get_key
from meshline.times import rfc3339_of_epoch
from meshline.wire import AUTHORIZATION_HEADER

log = logging.getLogger(__name__)

Context = Any  # grpc ships no type stubs for the servicer context
_MAX_DETAIL = 1000

_principal: ContextVar[Principal | None] = ContextVar("meshline_principal", default=None)


def current_principal() -> Principal:
    """The authenticated caller of the management call being served."""
    principal = _principal.get()
    if principal is None:
        raise RuntimeError("a management call reached its servicer without the guard")
    return principal


class StoreFacts:
    """StoredFacts (rule_types) read from the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def key(self, name: str) -> KeyFacts | None:
        if not name:
            return None
        try:
            key = get_key(self._store, name)
        except NotFoundError:
            return None
        return KeyFacts(key.scope.environment, key.scope.roles)

    def deployment(self, environment: str, name: str) -> DeploymentFacts | None:
        try:
            dep = self._store.get_deployment(environment, name)
        except NotFoundError:
            return None
        return DeploymentFacts(dep.spec.version, dep.spec.replicas)


class AuditLog:
    """Appends events to the store's audit log (never a token or a secret)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        bounds: AuditBounds = DEFAULT_BOUNDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._bounds = bounds

    def now(self) -> float:
        return self._clock()

    def record(
        self,
        principal: str,
        method: str,
        items: Sequence[tuple[Action, str]],
        outcome: str,
        code: str = "",
    ) -> None:
        now = self._clock()
        records = [
            AuditRecord(
                time=now,
                principal=principal,
                verb=action.verb,
                kind=action.kind,
                name=action.name,
                environment=action.environment,
                outcome=outcome,
                code=code,
                detail=detail[:_MAX_DETAIL],
                method=method,
            )
            for action, detail in items
        ]
        self._append(records, method)

    def summarize(self, summaries: Sequence[RefusalSummary]) -> None:
        """One event per summary of unauthenticated refusals not recorded one by one."""
        records = [
            AuditRecord(
                time=s.until,
                principal=ANONYMOUS.name,
                verb="call",
                kind="Method",
                name="",
                environment="",
                outcome=REFUSED,
                code=UNAUTHENTICATED,
                detail=f"{s.describe()}, from {rfc3339_of_epoch(s.since, 'milliseconds')} "
                f"to {rfc3339_of_epoch(s.until, 'milliseconds')}",
                method="",
            )
            for s in summaries
        ]
        self._append(records, "summaries of unauthenticated refusals")

    def _append(self, records: Sequence[AuditRecord], what: str) -> None:
        try:
            append_events(self._store, records, self._bounds)
        except Exception:  # the change itself is done; say so loudly, do not fail the call
            log.exception("cannot write %d audit event(s) of %s", len(records), what)


@dataclass
class _Answer:
    """What the servicer answered: the response of a unary answer (None: a stream)."""

    response: Any = None


class _Call:
    """One guarded call: its method, rule, and what it found out so far."""

    def __init__(self, guard: ManagementGuard, method: str, metadata: Sequence[Any]) -> None:
        self.guard = guard
        self.method = method
        self.rule = rule_for(method)
        self.authorization = _header(metadata, AUTHORIZATION_HEADER)
        self.principal: Principal = ANONYMOUS
        self.actions: tuple[Action, ...] = ()
        self.audited = False

    @asynccontextmanager
    async def serving(self, request: Any, context: Context) -> AsyncIterator[_Answer]:
        """The servicer's turn, once the call is admitted: what it raises is audited as
        failed (and raised on), what it answers is trimmed to what the caller may see and
        audited as done. A client stream's request is its first message (None: none)."""
        before = await self.admit(request, context)
        answer = _Answer()
        try:
            yield answer
        except BaseException as exc:
            self.failed(context, exc)
            raise
        self.done(request, answer.response, before)

    async def admit(self, request: Any, context: Context) -> Any:
        """Authenticate, then authorize; abort the call when refused. Returns the facts read
        before the call (for the audit)."""
        guard = self.guard
        rule = self.rule
        if rule is None:
            await self._refuse(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{self.method} has no authorization rule: refused until it has one",
            )
            raise AssertionError("unreachable")
        self.audited = request is not None and rule.changes(request)
        try:
            self.principal = await guard.authenticator.authenticate(self.authorization)
        except AuthenticationError as exc:
            # what the request names, with nothing read from the store for an unknown caller
            self.actions = rule.actions(request, NO_FACTS)
            await self._refuse_unauthenticated(context, str(exc))
        facts = StoreFacts(guard.store)
        self.actions = rule.actions(request, facts)
        if concealed := concealed_refusal(rule, request, self.principal, self.actions):
            code = (
                grpc.StatusCode.NOT_FOUND
                if concealed.not_found
                else grpc.StatusCode.PERMISSION_DENIED
            )
            await self._refuse(context, code, concealed.answer, concealed.reason)
        decision = decide_all(self.principal, self.actions)
        if not decision.allowed:
            await self._refuse(context, grpc.StatusCode.PERMISSION_DENIED, decision.reason)
        _principal.set(self.principal)
        return rule.before(request, facts) if self.audited else {}

    async def _refuse(
        self, context: Context, code: grpc.StatusCode, message: str, recorded: str = ""
    ) -> NoReturn:
        """Abort with `message`; the audit log says `recorded` (default: the message)."""
        if self.audited:
            self._record_refusal(code, recorded or message)
        await context.abort(code, message)
        raise AssertionError("abort returned")

    async def _refuse_unauthenticated(self, context: Context, message: str) -> NoReturn:
        """UNAUTHENTICATED; recorded one by one up to the peer's rate, else counted for its
        summary (refusal_limiter.py)."""
        code = grpc.StatusCode.UNAUTHENTICATED
        if self.audited:
            guard = self.guard
            peer = peer_host(str(context.peer() or ""))
            one_by_one, summary = guard.refusals.refused(peer, guard.audit.now())
            if summary is not None:
                guard.audit.summarize([summary])
            if one_by_one:
                self._record_refusal(code, f"{message} (from {peer})")
        await context.abort(code, message)
        raise AssertionError("abort returned")

    def _record_refusal(self, code: grpc.StatusCode, detail: str) -> None:
        self.guard.audit.record(
            self.principal.name,
            self.method,
            [(a, detail) for a in self.actions] or [(Action("call", "Method"), detail)],
            REFUSED,
            code.name,
        )

    def failed(self, context: Context, exc: BaseException) -> None:
        if not self.audited:
            return
        if isinstance(exc, grpc.aio.AbortError):
            code, detail = context.code() or grpc.StatusCode.UNKNOWN, context.details()
        elif isinstance(exc, asyncio.CancelledError):
            code, detail = grpc.StatusCode.CANCELLED, "the call was cancelled"
        else:
            code, detail = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        self.guard.audit.record(
            self.principal.name,
            self.method,
            [(a, str(detail or "")) for a in self.actions],
            FAILED,
            code.name,
        )

    def done(self, request: Any, response: Any, before: Any) -> None:
        rule = self.rule
        assert rule is not None
        if rule.visible is not None and response is not None:
            rule.visible(response, self.principal)
        if self.audited:
            events: tuple[Event, ...] = rule.events(request, response, self.actions, before)
            self.guard.audit.record(
                self.principal.name,
                self.method,
                [(e.action, e.detail) for e in events],
                ALLOWED,
            )


def _header(metadata: Sequence[Any] | None, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


class ManagementGuard(grpc.aio.ServerInterceptor):
    """Authenticates, authorizes and audits the calls of the managed meshline.v1 services;
    every other call (health, reflection, ADS, the agents' services) passes untouched."""

    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        audit: AuditLog,
        refusals: UnauthenticatedRefusals | None = None,
    ) -> None:
        self.store = store
        self.authenticator = authenticator
        self.audit = audit
        self.refusals = refusals or UnauthenticatedRefusals()

    def summarize_refusals(self, *, all_pending: bool = False) -> int:
        """Write the summaries of unauthenticated refusals that are due (every pending one
        with `all_pending`, at shutdown); how many were written."""
        summaries = self.refusals.flush() if all_pending else self.refusals.due(self.audit.now())
        if summaries:
            self.audit.summarize(summaries)
        return len(summaries)

    async def run(self) -> None:
        """Write due summaries until cancelled, then the ones still pending."""
        try:
            while True:
                await asyncio.sleep(self.refusals.limits.summary_interval_s / 2)
                self.summarize_refusals()
        finally:
            self.summarize_refusals(all_pending=True)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not managed(method):
            return handler
        metadata = handler_call_details.invocation_metadata
        return self._wrap(handler, lambda: _Call(self, method, metadata))

    def _wrap(
        self, handler: grpc.RpcMethodHandler, new_call: Callable[[], _Call]
    ) -> grpc.RpcMethodHandler:
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary_unary(handler.unary_unary, new_call), **kwargs
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _unary_stream(handler.unary_stream, new_call), **kwargs
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _stream_unary(handler.stream_unary, new_call), **kwargs
            )
        return grpc.stream_stream_rpc_method_handler(
            _stream_stream(handler.stream_stream, new_call), **kwargs
        )


def _unary_unary(inner: Any, new_call: Callable[[], _Call]) -> Any:
    async def behavior(request: Any, context: Context) -> Any:
        async with new_call().serving(request, context) as answer:
            answer.response = await inner(request, context)
        return answer.response

    return behavior


def _unary_stream(inner: Any, new_call: Callable[[], _Call]) -> Any:
    async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
        async with new_call().serving(request, context):
            async for response in inner(request, context):
                yield response

    return behavior


def _stream_unary(inner: Any, new_call: Callable[[], _Call]) -> Any:
    async def behavior(requests: AsyncIterator[Any], context: Context) -> Any:
        call = new_call()
        first, requests = await peek_first(requests)
        async with call.serving(first, context) as answer:
            answer.response = await inner(requests, context)
        return answer.response

    return behavior


def _stream_stream(inner: Any, new_call: Callable[[], _Call]) -> Any:
    async def behavior(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        call = new_call()
        first, requests = await peek_first(requests)
        async with call.serving(first, context):
            async for response in inner(requests, context):
                yield response

    return behavior


__all__ = [
    "AuditLog",
    "ManagementGuard",
    "MethodRule",
    "StoreFacts",
    "current_principal",
]
