"""Print resources as a table, JSON or YAML (like `kubectl get -o`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from rich.table import Table

from meshline.phases import DeploymentPhase
from meshline.quantity import gib
from meshline.v1 import api_pb2, resources_pb2


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


_INT64_TYPES = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}

_PHASE_COLORS: dict[str, str] = {
    DeploymentPhase.READY: "green",
    DeploymentPhase.FAILED: "red",
    DeploymentPhase.DEACTIVATED: "blue",
}


def _unquote_int64(message: Message, body: dict[str, Any]) -> None:
    """Proto JSON quotes 64-bit integers; YAML users (and `apply`) expect numbers."""
    for field in message.DESCRIPTOR.fields:
        if field.name not in body:
            continue
        value = body[field.name]
        if field.type in _INT64_TYPES:
            body[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            children = getattr(message, field.name)
            if isinstance(value, list):
                for child, child_body in zip(children, value, strict=True):
                    _unquote_int64(child, child_body)
            else:
                _unquote_int64(children, value)


def to_document(item: Message) -> dict[str, object]:
    """A resource as a YAML/JSON document that `meshline apply` accepts back."""
    body = json_format.MessageToDict(item, preserving_proto_field_name=True)
    _unquote_int64(item, body)
    return {"kind": item.DESCRIPTOR.name, **body}


def print_structured(items: Sequence[Message], fmt: OutputFormat, single: bool = False) -> None:
    """JSON: one object (single) or a list; YAML: one document per resource.

    Written straight to stdout: rich would wrap long lines and break the YAML.
    """
    docs = [to_document(i) for i in items]
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(docs[0] if single else docs, indent=2) + "\n")
    elif docs:
        sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True))


def _regions_cell(dep: resources_pb2.Deployment) -> str:
    parts = []
    for r in dep.status.regions:
        if r.forwarding:
            reachable = r.healthy_endpoints
            cell = f"{r.region}: forwards ({reachable} {_plural(reachable, 'region')} reachable)"
        elif r.scaled_to_zero:
            cell = f"{r.region}: scaled to zero"
        else:
            cell = f"{r.region}: {r.healthy_endpoints}/{r.desired_replicas} healthy"
            if r.queued_requests:
                cell += f", {r.queued_requests} queued"
            if r.held_requests:
                cell += f", {r.held_requests} held (cold start)"
            if r.leaving:  # a placement change: it serves until the new regions do
                cell += ", moving away"
            if r.pending_reason:  # wanted workers that have no room (memory, max_replicas)
                cell += f", pending: {r.pending_reason}"
        if r.cold_starts:
            starts = _plural(r.cold_starts, "cold start")
            cell += f", {r.cold_starts} {starts} (last {r.last_cold_start_s:.1f}s)"
        if r.nack_error:
            cell += ", NACK"
        elif not r.config_acked:
            cell += ", not ACKed"
        parts.append(cell)
    return ", ".join(parts) or "-"


def _replicas_cell(dep: resources_pb2.Deployment) -> str:
    """Fixed replicas, or the autoscaler's bounds and what the regions run now."""
    if not dep.spec.HasField("scaling"):
        return str(dep.spec.replicas)
    s = dep.spec.scaling
    now = sum(r.current_replicas for r in dep.status.regions if not r.forwarding)
    return f"{now} ({s.min_replicas}-{max(s.max_replicas, s.min_replicas, 1)})"


def deployments_table(items: Sequence[resources_pb2.Deployment]) -> Table:
    table = Table(
        "NAME",
        "ENVIRONMENT",
        "MODEL",
        "VERSION",
        "REPLICAS",
        "STATUS",
        "REGIONS",
        "MESSAGE",
        box=None,
        header_style="bold",
    )
    for d in items:
        phase = d.status.phase or "Unknown"
        color = _PHASE_COLORS.get(phase, "yellow")
        table.add_row(
            d.metadata.name,
            d.spec.environment,
            d.spec.model,
            d.spec.version,
            _replicas_cell(d),
            f"[{color}]{phase}[/]",
            _regions_cell(d),
            d.status.message,
        )
    return table


def models_table(items: Sequence[resources_pb2.Model]) -> Table:
    table = Table("NAME", "VERSIONS", "RUNTIME", "CREATED", box=None, header_style="bold")
    for m in items:
        versions = ", ".join(v.name for v in m.spec.versions)
        runtimes = ", ".join(sorted({v.runtime for v in m.spec.versions}))
        table.add_row(m.metadata.name, versions, runtimes, m.metadata.created_at)
    return table


def environments_table(items: Sequence[resources_pb2.Environment]) -> Table:
    table = Table("NAME", "POLICIES", "CREATED", box=None, header_style="bold")
    for e in items:
        policies = ", ".join(
            f"{p.WhichOneof('rule')}({p.mode or 'optional'})" for p in e.spec.policies
        )
        table.add_row(e.metadata.name, policies or "-", e.metadata.created_at)
    return table


def regions_table(items: Sequence[resources_pb2.Region]) -> Table:
    table = Table(
        "NAME",
        "COUNTRY",
        "GATEWAY",
        "ADMIN",
        "AGENT",
        "GATEWAY HEALTH",
        "MEMORY (USED/BUDGET, FREE)",
        "CPUS",
        "WORKERS",
        "CERT EXPIRES",
        "EDGE TLS",
        "ERROR",
        box=None,
        header_style="bold",
    )
    for r in items:
        s = r.status
        health = "[green]healthy[/]" if s.gateway_healthy else "[red]unhealthy[/]"
        agent = "connected" if s.agent_connected else "[red]disconnected[/]"
        table.add_row(
            r.metadata.name,
            r.spec.country or "-",
            s.gateway_address or "-",
            s.admin_address or "-",
            agent,
            health,
            memory_cell(s),
            str(s.capacity.cpus) if s.HasField("capacity") else "-",
            str(s.capacity.workers) if s.HasField("capacity") else "-",
            s.certificate_expires_at or "-",  # the region's mesh certificate (none: not joined)
            edge_tls_cell(s),
            s.nack_error,
        )
    return table


def memory_cell(status: resources_pb2.RegionStatus) -> str:
    """What the region's workers use of their budget, and what a new worker may still take
    (`-` before its agent reported its machine)."""
    if not status.HasField("capacity"):
        return "-"
    c = status.capacity
    return (
        f"{gib(c.memory_used_bytes)}/{gib(c.memory_budget_bytes)}, {gib(c.memory_free_bytes)} free"
    )


def edge_tls_cell(status: resources_pb2.RegionStatus) -> str:
    """What clients of the region's gateway get: `-` (plain text), or the edge TLS mode and
    when the certificate it serves expires."""
    if not status.edge_tls:
        return "-"
    return f"{status.edge_tls} until {status.edge_certificate_expires_at or '?'}"


def _callers(access: resources_pb2.AccessPolicy) -> str:
    """Who an access rule lets in, in words (a rule that names nobody is not "nobody")."""
    named = bool(access.keys or access.roles or access.jwt)
    who = "the callers named" if named else "any API key whose scope covers the deployment"
    return f"{who}{', and callers without a credential' if access.anonymous else ''}"


def plan_lines(name: str, environment: str, plan: resources_pb2.DeploymentPlan) -> list[str]:
    """`meshline plan`: merged policies, placement and exclusions, and every gateway's routes.

    A plan is made from policy alone: it has no worker endpoints yet (and offloads nothing),
    so endpoint counts are left out; `get deployment -o yaml` shows the live ones.
    """
    from controlplane.policy import compact

    lines = [f"deployment/{name} ({environment}) → {', '.join(plan.regions) or 'nowhere'}"]
    lines.append("  effective policies:")
    if not plan.policies:
        lines.append("    (none: defaults everywhere)")
    for p in plan.policies:
        rule = p.policy.WhichOneof("rule") or "?"
        text = f"    {p.source}: {rule} {compact(getattr(p.policy, rule))}"
        if rule == "access":
            text += f"  ({_callers(p.policy.access)})"
        if p.overridden_by:
            text += f"  [overridden by {p.overridden_by}]"
        lines.append(text)
    for ex in plan.excluded:
        lines.append(f"  excluded {ex.region}: {ex.reason}")
    if plan.flavor:
        lines.append(f"  flavors: {plan.flavor}")
    for gw in plan.gateways:
        if gw.retries or gw.retry_on:
            retry = (
                f"retries {gw.retries} on {','.join(gw.retry_on) or '-'}"
                + (f", per try {gw.per_try_timeout_s:g}s" if gw.per_try_timeout_s else "")
                + (f", budget {gw.retry_budget_percent:g}%" if gw.retry_budget_percent else "")
            )
        else:
            retry = "no retries"
        sticky = f" on header {gw.hash_header}" if gw.hash_header else ""
        offload = f", offloading {gw.offload_percent}%" if gw.offload_percent else ""
        # A region the deployment is not placed in still routes it: to other regions only.
        role = "" if gw.region in plan.regions else " (forwards only)"
        lines.append(
            f"  gateway {gw.region}{role}: {gw.strategy}{sticky}, timeout {gw.timeout_s:g}s, "
            f"{retry}{offload}"
        )
        for v in gw.versions:
            share = f"{v.weight}%" if v.weight else "pinned only"
            if v.mirror_percent:
                share += f", mirror {v.mirror_percent:g}%"
            tiers = " → ".join(
                f"P{t.priority} {t.region} {t.kind}" + (f" {t.weight}%" if t.weight < 100 else "")
                for t in v.tiers
            )
            lines.append(f"    version {v.version} [{share}] {v.cluster}: {tiers or 'no route'}")
    lines.extend(capacity_line(c) for c in plan.capacity)
    return lines


def capacity_line(plan: resources_pb2.RegionCapacityPlan) -> str:
    """`capacity eu: waits (Pending: region 'eu' has 0.4 GiB free ...)`: whether the
    deployment's workers fit in one region now, and what happens when they do not."""
    need = f"needs {gib(plan.footprint_bytes)}, {plan.footprint_source or 'estimated'}"
    if plan.memory_known:
        room = f"{gib(plan.memory_free_bytes)} free of {gib(plan.memory_budget_bytes)}"
    else:
        room = "memory not known yet: its agent has not reported"
    numbers = f"{need}; {room}"
    if plan.outcome == "until-invoked":
        what = f"starts nothing until invoked; {plan.reason or 'its first request starts it'}"
        return f"  capacity {plan.region}: {what} ({numbers})"
    workers = f"{plan.workers} {_plural(plan.workers, 'worker')}"
    if plan.outcome == "waits":
        return f"  capacity {plan.region}: waits (Pending: {plan.reason})"
    if plan.outcome == "makes-room":
        stopped = ", ".join(plan.stops)
        return (
            f"  capacity {plan.region}: stops idle {_plural(len(plan.stops), 'deployment')} "
            f"{stopped} to make room (drained, least recently used first), then starts "
            f"{workers} ({numbers})"
        )
    return f"  capacity {plan.region}: starts {workers} per version ({numbers})"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def effect_line(effect: api_pb2.DeploymentEffect, would: bool) -> str:
    """A stored deployment the change moves or re-routes: `plan` and `apply` never hide one."""
    parts = []
    before, after = list(effect.placement_before), list(effect.placement_after)
    if before != after:
        verb = "would move" if would else "moves"
        parts.append(f"{verb} {', '.join(before) or 'nowhere'} → {', '.join(after) or 'nowhere'}")
    if effect.changed:
        verb = "would change" if would else "changes"
        parts.append(f"{verb} {'; '.join(effect.details or effect.changed)}")
    return f"  deployment/{effect.name} in {effect.environment} {'; '.join(parts)}"
