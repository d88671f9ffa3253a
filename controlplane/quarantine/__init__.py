"""Quarantine: one deployment whose config Envoy rejects must not freeze its region's config.

`decide.py` attributes each rejection to a deployment (pure, table-tested), `verdict.py` reads
Envoy's answer from the xDS cache, `offline.py` confirms a suspect with a validating Envoy,
`gateways.py` pushes each region's config minus what its Envoy rejected and keeps what each
region accepted and rejected in the store (controlplane/store/quarantines.py).
"""

from controlplane.quarantine.decide import Quarantine
from controlplane.quarantine.fingerprint import fingerprint
from controlplane.quarantine.gateways import GatewayConfigs

__all__ = ["GatewayConfigs", "Quarantine", "fingerprint"]
