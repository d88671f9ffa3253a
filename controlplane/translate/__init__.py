"""translate: IR → Envoy resources (one module per Envoy feature).

listener (LDS), routes (RDS, the routing key), clusters (CDS), endpoints (EDS),
retries, responses (the gateway's own answers), path_metadata, names; static_bootstrap turns the
result into a self-contained Envoy bootstrap (for `envoy --mode validate` and static dumps).
"""

from controlplane.translate.resources import EnvoyResources
from controlplane.translate.translator import translate_gateway

__all__ = ["EnvoyResources", "translate_gateway"]
