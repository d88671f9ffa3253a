"""Checks of the server commands' flags, run before anything starts, and their logging set-up."""

from __future__ import annotations

import logging

from meshline.durations import DurationError, parse_duration


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


# Agent flags that once set what a region registers as. An agent is not trusted with placement
# facts: they come from the join token or an applied Region.
REMOVED_FACT_FLAGS = (
    "--country",
    "--continent",
    "--cpu-flavors",
    "--gpu-flavors",
    "--max-replicas",
)


def removed_fact_flags_problem(region: str, given: dict[str, bool]) -> str | None:
    """A clear error for the removed fact flags that were given (`given`: flag -> set)."""
    used = [flag for flag in REMOVED_FACT_FLAGS if given.get(flag)]
    if not used:
        return None
    return (
        f"{', '.join(used)}: an agent no longer says what its region is (anyone could claim "
        "any country). Give the facts to its join token, e.g. `meshline regions token create "
        f"{region} --country DE --continent EU`, or apply a Region named {region}"
    )


def duration_problem(flag: str, text: str) -> tuple[int, str | None]:
    """Seconds of a duration flag (e.g. 24h, 90s), or a problem naming the flag."""
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        return 0, f"{flag}: {exc}"
    if seconds <= 0:
        return 0, f"{flag}: must be more than 0 (e.g. 24h)"
    return seconds, None


XDS_PROTOCOLS = ("sotw", "delta")


def xds_protocol_problem(value: str) -> str | None:
    """--xds-protocol names one of the ADS protocols Envoy is bootstrapped with."""
    if value in XDS_PROTOCOLS:
        return None
    return (
        f"--xds-protocol {value!r}: expected sotw (state of the world, the default) or delta "
        "(incremental xDS)"
    )
