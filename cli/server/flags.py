"""Checks of the server commands' flags, run before anything starts, and their logging set-up."""

from __future__ import annotations

import logging


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def region_problem(name: str) -> str | None:
    from controlplane.store.names import dns1123_label_problem

    problem = dns1123_label_problem(name)
    return f"region name {problem}" if problem else None


def address_problem(flag: str, address: str) -> str | None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"{flag} {address!r}: expected host:port, e.g. 127.0.0.1:7070"
    return None


def comma_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


# The agent's flags for what the region registers as, by the Region field each one sets.
_REGION_FLAGS = {
    "spec.country": "--country",
    "spec.continent": "--continent",
    "spec.flavors.cpu": "--cpu-flavors",
    "spec.flavors.gpu": "--gpu-flavors",
    "spec.max_replicas": "--max-replicas",
}


def region_facts_problem(
    region: str,
    country: str,
    continent: str,
    cpu: tuple[str, ...],
    gpu: tuple[str, ...],
    max_replicas: int,
) -> str | None:
    """The control plane's own checks of a Region, run before anything starts."""
    from controlplane.api.registration import region_problems
    from meshline.v1.resources_pb2 import FlavorSet, RegionSpec

    spec = RegionSpec(
        country=country,
        continent=continent,
        flavors=FlavorSet(cpu=cpu, gpu=gpu),
        max_replicas=max_replicas,
    )
    problems = []
    for error in region_problems(region, spec):
        path = error.field_path.split("[", 1)[0]
        flag = _REGION_FLAGS.get(path, error.field_path)
        problems.append(f"{flag}: {error.message}")
    return "; ".join(problems) or None
