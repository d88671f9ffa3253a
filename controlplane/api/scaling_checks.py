"""Apply-time checks of a deployment's `scaling`: impossible bounds are errors naming the field.

Each field's own range is in bounds.py; these are the relations between them.
"""

from __future__ import annotations

from controlplane.api.bounds import within
from controlplane.api.errors import DocumentErrors
from meshline.packing import PACKING_DEDICATED, PACKINGS
from meshline.quantity import QuantityError, parse_bytes
from meshline.v1.resources_pb2 import DeploymentSpec, ModelVersion


def check_scaling(out: DocumentErrors, spec: DeploymentSpec, version: ModelVersion | None) -> None:
    if not spec.HasField("scaling"):
        return
    here = "spec.scaling"
    s = spec.scaling
    if spec.replicas:
        out.add(
            "spec.replicas",
            f"set replicas or scaling, not both: with scaling the autoscaler decides the "
            f"replicas (got replicas {spec.replicas})",
        )
    replicas_in_range = within(s, "min_replicas") and within(s, "max_replicas")
    if replicas_in_range and s.min_replicas > s.max_replicas:
        out.add(
            f"{here}.max_replicas",
            f"must be at least min_replicas ({s.min_replicas}), got {s.max_replicas}",
        )
    if within(s, "initial_replicas") and replicas_in_range and s.initial_replicas:
        if s.initial_replicas > max(s.max_replicas, s.min_replicas, 1):
            out.add(
                f"{here}.initial_replicas",
                f"must be at most max_replicas ({max(s.max_replicas, s.min_replicas, 1)}), "
                f"got {s.initial_replicas}",
            )
        elif s.initial_replicas < s.min_replicas:
            out.add(
                f"{here}.initial_replicas",
                f"must be at least min_replicas ({s.min_replicas}) or 0 (= min_replicas), "
                f"got {s.initial_replicas}",
            )
    if within(s, "scale_to_zero_after") and s.scale_to_zero_after > 0 and s.min_replicas > 0:
        out.add(
            f"{here}.scale_to_zero_after",
            f"scaling to zero needs min_replicas 0, got min_replicas {s.min_replicas} (set "
            "scale_to_zero_after 0 to keep workers, or min_replicas 0 to let them go)",
        )
    windows_in_range = within(s, "stable_window") and within(s, "panic_window")
    if windows_in_range and s.stable_window and s.panic_window > s.stable_window:
        out.add(
            f"{here}.panic_window",
            f"must not be longer than stable_window ({s.stable_window:g} s), got "
            f"{s.panic_window:g}",
        )
    if version is not None and version.HasField("external"):
        out.add(
            here,
            f"model '{spec.model}' version '{spec.version}' is an external Triton, one endpoint "
            "that meshline does not start: it cannot be autoscaled",
        )


def check_resources(
    out: DocumentErrors, spec: DeploymentSpec, version: ModelVersion | None
) -> None:
    """`resources.memory`: an amount of memory above zero; `resources.packing`: one of
    PACKINGS, and `shared` only where one process can serve the model next to others."""
    _check_packing(out, spec, version)
    memory = spec.resources.memory
    if not memory:
        return
    try:
        amount = parse_bytes(memory)
    except QuantityError as exc:
        out.add("spec.resources.memory", str(exc))
        return
    if amount <= 0:
        out.add("spec.resources.memory", f"a worker needs more than 0 bytes, got {memory}")


def _check_packing(out: DocumentErrors, spec: DeploymentSpec, version: ModelVersion | None) -> None:
    here = "spec.resources.packing"
    packing = spec.resources.packing
    if not packing or packing == PACKING_DEDICATED:
        return
    if packing not in PACKINGS:
        out.add(here, f"unknown packing '{packing}' (expected one of {', '.join(PACKINGS)})")
        return
    # A shared worker runs one request per forward pass of each model, one copy of it.
    if spec.batching.max_batch_size > 1 or spec.batching.priority_levels > 0:
        out.add(
            here,
            "packing: shared runs each model without batching or priority queues (a shared "
            "worker runs one request per forward pass); remove spec.batching or use packing: "
            "dedicated",
        )
    if spec.instances > 1:
        out.add(
            here,
            f"packing: shared loads one copy of the model per shared worker, got instances "
            f"{spec.instances} (use packing: dedicated for parallel copies)",
        )
    if version is None:
        return
    if version.HasField("external"):
        out.add(
            here,
            f"model '{spec.model}' version '{spec.version}' is an external server, which "
            "meshline does not run: it cannot be packed",
        )
    elif (version.runtime or "torch") != "torch":
        out.add(
            here,
            f"packing: shared needs runtime torch; model '{spec.model}' version "
            f"'{spec.version}' is runtime '{version.runtime}' (Triton serves its own models: "
            "use packing: dedicated)",
        )
