"""The wire vocabulary that the control plane, Envoy's config, the agent, the workers, the CLI
and the benchmarks share: header names and fixed values a request or response carries.

One module, below everything else, so that no side retypes a header name: a rename here is a
rename everywhere.
"""

from __future__ import annotations

# The environment a request that names none is routed to (and the API's default).
DEFAULT_ENVIRONMENT = "production"

# --- routing key (HTTP header / gRPC metadata) -------------------------------------------
DEPLOYMENT_HEADER = "x-meshline-deployment"
ENVIRONMENT_HEADER = "x-meshline-environment"
# Pins a request to one model version; set by gateways on every forwarded request.
VERSION_HEADER = "x-meshline-version"
# A request's batching priority; the OIP `priority` parameter wins.
PRIORITY_HEADER = "x-meshline-priority"


def authority(deployment: str, environment: str) -> str:
    """The gRPC `:authority` that names a deployment: `{deployment}.{environment}`."""
    return f"{deployment}.{environment}"


# --- set by gateways ---------------------------------------------------------------------
# Set (to the entry region) on requests a gateway forwards to another region's gateway.
# A request that carries it is served by local workers only: it is never forwarded again.
HOP_HEADER = "x-meshline-hop"
# The sending gateway's secret token on every request it forwards: only a request with a peer's
# token is served as forwarded (a client cannot set the hop marker itself). Sent to peer
# gateways only (never to a worker), and stripped by the serving gateway. mTLS between gateways
# replaces it.
FORWARD_TOKEN_HEADER = "x-meshline-forward-token"
# Who called: the API key's name or the JWT's subject, as the entry gateway verified it. Any
# value a client sends is replaced (or removed when the caller is anonymous).
PRINCIPAL_HEADER = "x-meshline-principal"
# Which region's gateway the request entered at (on every response).
ENTRY_REGION_HEADER = "x-meshline-entry-region"
# The region of the gateway that sends a request upstream (on every forwarded request): the
# activator needs it to know whose cold start a held request waits for.
GATEWAY_REGION_HEADER = "x-meshline-gateway"

# --- set by the activator ----------------------------------------------------------------
# The activator's answer "a worker is ready now": routes retry on it.
ACTIVATOR_RETRY_HEADER = "x-meshline-activator"
ACTIVATOR_RETRY_VALUE = "retry"

# --- set by workers (response headers / gRPC trailers) -----------------------------------
# Which worker and region answered.
WORKER_HEADER = "x-meshline-worker"
REGION_HEADER = "x-meshline-region"

# --- API keys ----------------------------------------------------------------------------
# The `iss` of every API key's token (a JWT the control plane mints, `meshline keys create`);
# the gateways' jwt_authn provider for API keys matches it.
MESHLINE_ISSUER = "meshline"
