"""Quarantine: one deployment whose config Envoy rejects must not freeze its region's config.

`decide.py` attributes each rejection to a deployment (pure, table-tested), `verdict.py` reads
Envoy's answer from the xDS cache, `gateways.py` pushes each region's config minus what its
Envoy rejected, `file.py` keeps quarantines across restarts.
"""

from controlplane.quarantine.decide import Quarantine, RouteKey
from controlplane.quarantine.file import FILE_NAME
from controlplane.quarantine.fingerprint import fingerprint
from controlplane.quarantine.gateways import GatewayConfigs

__all__ = ["FILE_NAME", "GatewayConfigs", "Quarantine", "RouteKey", "fingerprint"]
