"""The activator: where a cold region's requests wait while its first worker starts.

Envoy lists it behind a cold region's workers (the last priority), so it sees traffic only
while no worker and no warm region can take it. It never proxies a byte: it holds the request,
makes the autoscaler wake the region, and once the region's Envoy routes to a worker it answers
"retry" (a header the route retries on), so Envoy replays the buffered request to the worker.
Only gateways of the mesh reach it (mutual TLS, each with its region's certificate), and it
holds a bounded number of requests at once.
"""

from controlplane.activator.callers import CallerRefusal, caller_gateway
from controlplane.activator.holds import (
    Activator,
    HoldRequest,
    HoldResult,
    HoldTarget,
    WakeProblem,
)
from controlplane.activator.limits import HeldNow, HoldLimits, over_limit
from controlplane.activator.server import ActivatorServer, activator_out_of_reach
from controlplane.activator.tls import ActivatorTls

__all__ = [
    "Activator",
    "ActivatorServer",
    "ActivatorTls",
    "CallerRefusal",
    "HeldNow",
    "HoldLimits",
    "HoldRequest",
    "HoldResult",
    "HoldTarget",
    "WakeProblem",
    "activator_out_of_reach",
    "caller_gateway",
    "over_limit",
]
