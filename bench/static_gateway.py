"""A region's gateway config for one deployment and one worker, with no control plane.

`python -m bench.static_gateway --deployment D --worker HOST:GRPC:HTTP --listen PORT --admin PORT`
prints the Envoy bootstrap (YAML) that this tree's translate stage produces, through
static_bootstrap. Run from two source trees, it gives two Envoys whose only difference is the
translate code: an A/B of Envoy settings with the same worker behind both.
"""

from __future__ import annotations

import argparse

from controlplane.ir import DeploymentRoute, Endpoint, GatewayIR
from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap_yaml


def gateway_yaml(
    deployment: str, host: str, grpc_port: int, http_port: int, listen: int, admin: int
) -> str:
    route = DeploymentRoute.local(
        deployment=deployment,
        environment="production",
        endpoints=(Endpoint(f"{deployment}-w1", host, grpc_port, http_port),),
    )
    ir = GatewayIR(region="bench", listen_host="127.0.0.1", listen_port=listen, routes=(route,))
    return static_bootstrap_yaml(translate_gateway(ir), admin_port=admin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--worker", required=True, help="HOST:GRPC_PORT:HTTP_PORT")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--admin", type=int, required=True)
    args = parser.parse_args()
    host, grpc_port, http_port = args.worker.rsplit(":", 2)
    print(
        gateway_yaml(args.deployment, host, int(grpc_port), int(http_port), args.listen, args.admin)
    )


if __name__ == "__main__":
    main()
