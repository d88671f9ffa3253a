"""A refusal never tells a caller what it may not view.

For a request naming a stored object whose environment the rule reads from the store
(`MethodRule.looked_up`: an API key by name), a caller who may not view that environment is
answered as if the object did not exist, the same for a key of another environment as for no
key at all. Pure; the guard answers with what `concealed_refusal` says.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.api.authz import Action, Principal, decide, plain_verb
from controlplane.api.rule_types import MethodRule, Request
from controlplane.store import NotFoundError


@dataclass(frozen=True)
class Concealed:
    """A refusal that does not say whether the object exists: `answer` to the caller,
    `reason` (the real one) to the audit log; NOT_FOUND when `not_found`, else
    PERMISSION_DENIED."""

    answer: str
    reason: str
    not_found: bool


def concealed_refusal(
    rule: MethodRule, request: Request, who: Principal, actions: tuple[Action, ...]
) -> Concealed | None:
    """The refusal of a caller who may not view the environment of the stored object its
    request names (a missing object's environment is "", which only a grant of every
    environment views): a caller with some role is told the object is not found, in the very
    words the servicer uses for a missing one; a caller with no role at all, that it holds
    none. None when the caller may view it (authz.decide answers then)."""
    if rule.looked_up is None or not actions or who.may_view(actions[0].environment):
        return None
    action = actions[0]
    reason = decide(who, action).reason or f"{who.describe()} may not {action.describe()}"
    if who.grants:
        return Concealed(str(NotFoundError(rule.looked_up(request))), reason, True)
    answer = (
        f"{who.describe()} may not {plain_verb(action.verb)} {action.kind} '{action.name}': "
        "it holds no management role"
    )
    return Concealed(answer, reason, False)
