"""What a management method's rule is made of (method_rules.py holds one per RPC): the facts a
rule may read from the store, the events it writes to the audit log, and `MethodRule` itself
with its defaults.

Pure: what a rule needs from the store (a key's environment, a deployment's version before an
apply) comes through `StoredFacts`, read by the guard (guard.StoreFacts), or `NO_FACTS` for a
caller not authenticated yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.api.authz import Action, Principal
from controlplane.store import ResourceKey


@dataclass(frozen=True)
class KeyFacts:
    environment: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class DeploymentFacts:
    version: str
    replicas: int


class StoredFacts(Protocol):
    """What rules read from the store (None: there is no such object)."""

    def key(self, name: str) -> KeyFacts | None: ...

    def deployment(self, environment: str, name: str) -> DeploymentFacts | None: ...


class _NoFacts:
    """Facts of a caller not authenticated (yet): nothing is read from the store for it."""

    def key(self, name: str) -> KeyFacts | None:
        return None

    def deployment(self, environment: str, name: str) -> DeploymentFacts | None:
        return None


NO_FACTS: StoredFacts = _NoFacts()


@dataclass(frozen=True)
class Event:
    """What one allowed change did, for the audit log."""

    action: Action
    detail: str


Request = Any  # a request message (for a client stream: its first message, or None)
Response = Any
ActionsOf = Callable[[Request, StoredFacts], tuple[Action, ...]]
Before = Mapping[tuple[str, str], DeploymentFacts]
EventsOf = Callable[[Request, Response, tuple[Action, ...], Before], tuple[Event, ...]]


def no_change(request: Request) -> bool:
    return False


def changes(request: Request) -> bool:
    return True


def unless_dry_run(request: Request) -> bool:
    return not request.dry_run


def _done(
    request: Request, response: Response, actions: tuple[Action, ...], before: Before
) -> tuple[Event, ...]:
    return tuple(Event(a, a.verb) for a in actions)


def _nothing_before(request: Request, facts: StoredFacts) -> Before:
    return {}


@dataclass(frozen=True)
class MethodRule:
    """How one RPC is authorized and audited.

    `actions`: what the request does, each checked by authz.decide; `changes`: whether this
    request changes something (recorded in the audit log; reads and plans are not);
    `events`: what an allowed change did; `before`: store facts to read before the call, for
    `events`; `visible`: removes from an answer what the caller may not see; `looked_up`: the
    stored object the request names when the first action's environment is read from it
    (see concealment.concealed_refusal). A client-streaming call's request is its first
    message (None when there is none). Every call needs a credential: no rule lets an
    anonymous one in."""

    actions: ActionsOf
    changes: Callable[[Request], bool] = no_change
    events: EventsOf = _done
    before: Callable[[Request, StoredFacts], Before] = _nothing_before
    visible: Callable[[Response, Principal], None] | None = None
    looked_up: Callable[[Request], ResourceKey] | None = None
