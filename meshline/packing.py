"""`resources.packing`: whether a deployment's replicas are processes of their own or models
loaded into a region's shared Torch worker. One vocabulary for the API, the control plane and
the agent."""

from __future__ import annotations

PACKING_DEDICATED = "dedicated"
PACKING_SHARED = "shared"
PACKINGS = (PACKING_DEDICATED, PACKING_SHARED)
# A packed model's footprint is what it holds inside a shared process, not a process's whole
# cost: it is recorded apart from the same artifact's footprint as a process of its own.
SHARED_FOOTPRINT_RUNTIME = "torch-shared"
