"""The JWK of an API key's public half (what a gateway's JWKS lists for each working secret),
and the claims of its token.

Here, in the bottom layer and with no dependency, because two sides need it: the API mints
secrets (controlplane/api/key_tokens.py) and the translate side builds Envoy's JWKS from the
store's public keys, and translate must not import the API (it sits downstream of it).
"""

from __future__ import annotations

# Every API key's secret is an Ed25519 JWS (RFC 8037).
JWT_ALGORITHM = "EdDSA"
JWK_KEY_TYPE = "OKP"
JWK_CURVE = "Ed25519"

# The claims of an API key's token that say who it is and what it may call (absent scope
# claims: unrestricted). The API writes them; the gateways' access rules read them.
SUBJECT_CLAIM = "sub"
ENVIRONMENT_CLAIM = "env"
DEPLOYMENTS_CLAIM = "deployments"
ROLES_CLAIM = "roles"


def public_jwk(public_key_b64: str, key_id: str) -> dict[str, str]:
    """The JWK of one secret's public key: `public_key_b64` is the raw 32-byte Ed25519 key,
    base64url without padding (as the store keeps it), `key_id` the token's `kid`."""
    return {
        "kty": JWK_KEY_TYPE,
        "crv": JWK_CURVE,
        "x": public_key_b64,
        "kid": key_id,
        "alg": JWT_ALGORITHM,
        "use": "sig",
    }
