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
# Set (to the entry region) on requests a gateway forwards to another region's gateway (at its
# peer listener, mTLS only): served by local workers only, never forwarded again. A client that
# sends it to a gateway's public listener is refused.
HOP_HEADER = "x-meshline-hop"
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

# --- mesh trust: management API credentials, the mesh CA, identities ---------------------
# Management API calls carry `authorization: Bearer <token>` (an API key with a management role,
# or an identity provider's JWT), like inference calls.
AUTHORIZATION_HEADER = "authorization"
# The CLI's credential lookup: --token, else $MESHLINE_TOKEN, else the current context of the
# credentials file ($MESHLINE_CONFIG, else ~/.meshline/config).
TOKEN_ENV = "MESHLINE_TOKEN"
CONFIG_ENV = "MESHLINE_CONFIG"
# In the control plane's state dir: the first admin credential (written 0600 at first start,
# for the local user and `meshline up`), and the mesh CA's certificate (public).
ADMIN_TOKEN_FILE = "admin-token"
CA_CERT_FILE = "ca.crt"
# SPIFFE ids in the mesh certificates' URI SAN: one per region (its agent and its Envoy), one
# for the control plane.
TRUST_DOMAIN = "meshline"


def region_spiffe_id(region: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/region/{region}"


CONTROLPLANE_SPIFFE_ID = f"spiffe://{TRUST_DOMAIN}/controlplane"
