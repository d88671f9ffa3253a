"""Serverless figures, side by side in one run (one region: control plane, Envoy, agent).

1. Cold start: the first response after scale-to-zero, against the bare time to start a
   Torch worker process and get its first answer (no meshline around it); with the agent's
   standby interpreter (the default) and without it (--standby-workers 0).
2. Scale-up reaction: a step from idle to 6 closed-loop clients; when a second worker answers
   its first request, minus the bare worker start (target: within 3 s).
3. Failed requests during an immediate and a canary rollout under a client loop (target: 0).

Writes the "Serverless" section of docs/benchmarks.md and prints the same table.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from bench.report import REPORT, write_section
from controlplane.ir import names
from meshline import wire
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.phases import ROLLING
from meshline.v1 import api_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.load import ClientLoop, infer_request, served_by
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import ManagedProcess, free_port, wait_until
from tests.harness.worker import worker_command
from workers.demo import build_mlp

BATCH = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
# The gRPC cluster of deployment "cold", as the control plane's IR names it.
COLD_CLUSTER = names.backend_clusters(names.route_base("cold", wire.DEFAULT_ENVIRONMENT), "").grpc


def first_answer(target: str, deployment: str, timeout_s: float = 120) -> tuple[float, str]:
    """Send until the first answer; (seconds from the first try, worker that answered)."""
    started = time.monotonic()
    # Reconnect every 50 ms, not with gRPC's 1 s+ back-off: the first answer is what is timed.
    options = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 50)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        while time.monotonic() - started < timeout_s:
            try:
                _, call = stub.ModelInfer.with_call(
                    infer_request(deployment, BATCH),
                    metadata=((wire.DEPLOYMENT_HEADER, deployment),),
                    timeout=timeout_s,
                    wait_for_ready=True,
                )
                return time.monotonic() - started, served_by(call.trailing_metadata()).get(
                    "worker", ""
                )
            except grpc.RpcError:
                time.sleep(0.005)
    raise TimeoutError(f"no answer from {deployment} at {target}")


def bare_start(model: Path, state: Path, i: int) -> float:
    """Spawn a worker and wait for its first answer: what a cold start cannot beat."""
    port = free_port()
    args = worker_command(model, grpc_port=port, http_port=free_port(), model_name="bare")
    started = time.monotonic()
    process = ManagedProcess(f"bare-{i}", args, state)
    try:
        first_answer(f"127.0.0.1:{port}", "bare")
        return time.monotonic() - started
    finally:
        process.stop()


def _region(mesh: Mesh, name: str) -> api_pb2.GetDeploymentResponse:
    return next(r for r in mesh.deployment(name).status.regions if r.region == "eu")


def cold_starts(mesh: Mesh, model_dir: dict[str, Path], rounds: int) -> list[tuple[float, float]]:
    """(first response, cold start as status records it) per round."""
    scaling = "{min_replicas: 0, max_replicas: 1, scale_to_zero_after: 1, cold_start_timeout: 60}"
    mesh.apply(deployment_yaml("cold", model_dir, "v1", ["eu"], scaling=scaling))
    out = []
    try:
        gateway = mesh.gateway("eu")
        for _ in range(rounds):
            wait_until(lambda: _region(mesh, "cold").scaled_to_zero, 120, "scaled to zero")
            wait_until(
                lambda: set(mesh.gateway_hosts("eu", COLD_CLUSTER)) == {names.ACTIVATOR_HOSTNAME},
                30,
                "only the activator in the gateway",
            )
            before = _region(mesh, "cold").cold_starts
            latency, _ = first_answer(gateway, "cold")
            wait_until(
                lambda n=before: _region(mesh, "cold").cold_starts > n,  # type: ignore[misc]
                30,
                "the cold start recorded",
            )
            out.append((latency, _region(mesh, "cold").last_cold_start_s))
    finally:
        mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name="cold"))
    return out


@dataclass
class Step:
    decision_s: float  # load step → the autoscaler wants a second worker (status)
    reaction_s: float  # load step → a second worker's first answer
    replicas: int  # workers serving at the end of the load
    failures: int
    answers: int


def scale_up(mesh: Mesh, model_dir: dict[str, Path], load_s: float) -> Step:
    scaling = "{min_replicas: 1, max_replicas: 4, target_concurrency: 1, stable_window: 5}"
    mesh.apply(deployment_yaml("step", model_dir, "v1", ["eu"], scaling=scaling))
    try:
        mesh.wait_ready("step", replicas=1)
        gateway = mesh.gateway("eu")
        _, first = first_answer(gateway, "step")
        time.sleep(2.0)  # idle before the step
        step_at = time.monotonic()
        decided = float("nan")
        with ClientLoop(gateway, "step", BATCH, concurrency=6) as load:
            while time.monotonic() - step_at < load_s:
                if math.isnan(decided) and _region(mesh, "step").desired_replicas >= 2:
                    decided = time.monotonic() - step_at
                time.sleep(0.05)
        others = sorted(a.done for a in load.answers if a.worker and a.worker != first)
        return Step(
            decision_s=decided,
            reaction_s=(others[0] - step_at) if others else float("nan"),
            replicas=len({a.worker for a in load.answers if a.done > step_at + load_s - 1}),
            failures=len(load.failures),
            answers=load.ok,
        )
    finally:
        mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name="step"))


CANARY = "{strategy: canary, steps: [{weight: 20, duration: 4}, {weight: 60, duration: 4}]}"


@dataclass
class RolloutRun:
    strategy: str
    failed: int
    answered: int
    seconds: float  # apply → the rollout Succeeded
    phase: str


def rollout(mesh: Mesh, model_dir: dict[str, Path], strategy: str) -> RolloutRun:
    """v1 → v2 under 4 closed-loop clients; failures counted over the whole change."""
    name = f"roll-{strategy}"
    extra = f"  rollout: {CANARY}\n" if strategy == "canary" else ""
    mesh.apply(deployment_yaml(name, model_dir, "v1", ["eu"]) + extra)
    try:
        mesh.wait_ready(name, replicas=1)
        gateway = mesh.gateway("eu")
        with ClientLoop(gateway, name, BATCH, concurrency=4) as load:
            time.sleep(2.0)
            changed_at = time.monotonic()
            mesh.apply(deployment_yaml(name, model_dir, "v2", ["eu"]) + extra)

            def finished() -> bool:
                history = mesh.rollouts.ListRollouts(
                    api_pb2.ListRolloutsRequest(name=name), timeout=10
                ).rollouts
                return bool(history) and history[0].phase not in ROLLING

            wait_until(finished, 180, f"the {strategy} rollout to finish")
            seconds = time.monotonic() - changed_at
            time.sleep(2.0)
        phase = (
            mesh.rollouts.ListRollouts(api_pb2.ListRolloutsRequest(name=name), timeout=10)
            .rollouts[0]
            .phase
        )
        return RolloutRun(strategy, len(load.failures), load.ok, seconds, phase)
    finally:
        mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=name))


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f})"


def render(
    bare: list[float],
    cold: list[tuple[float, float]],
    cold_no_standby: list[tuple[float, float]],
    step: Step,
    rollouts: list[RolloutRun],
) -> str:
    first = [c[0] for c in cold]
    recorded = [c[1] for c in cold]
    first_plain = [c[0] for c in cold_no_standby]
    recorded_plain = [c[1] for c in cold_no_standby]
    bare_median = statistics.median(bare)
    rollout_rows = "\n".join(
        f"| {r.strategy} | {r.failed} | {r.answered + r.failed} | {r.seconds:.1f} s | {r.phase} |"
        for r in rollouts
    )

    def ratio(values: list[float]) -> str:
        return f"{statistics.median(values) / bare_median:.2f}"

    return f"""## Serverless: cold starts, scale-up, rollouts

`make bench-serverless` (bench/serverless.py), one run on {platform.machine()} with
{len(bare)} rounds each; control plane, one region (Envoy + agent) and the client on the same
cores. Demo MLP (784→10), Torch worker.

| measurement | median | ratio to a bare worker start |
|---|---:|---:|
| bare worker start (spawn → first answer, no meshline) | {_ms(bare)} | 1.00 |
| cold start, first response via the gateway (at zero → answer) | {_ms(first)} | {ratio(first)} |
| cold start as status records it (wake → worker routable) | {_ms(recorded)} | {ratio(recorded)} |
| the same without a standby interpreter: first response | {_ms(first_plain)} | \
{ratio(first_plain)} |
| the same without a standby interpreter: as status records it | {_ms(recorded_plain)} | \
{ratio(recorded_plain)} |
| scale-up decision: load step → autoscaler wants more workers | \
{step.decision_s * 1000:.0f} ms | {step.decision_s / bare_median:.2f} |
| scale-up reaction: load step → a 2nd worker answers | {step.reaction_s * 1000:.0f} ms | \
{step.reaction_s / bare_median:.2f} |

- Scale-up: the autoscaler decided {step.decision_s:.1f} s after the step (target: a new
  replica within 3 s + its own start time, i.e. within {3 + bare_median:.1f} s here); the first
  new worker answered {step.reaction_s:.1f} s after the step (a bare worker start:
  {bare_median:.1f} s). The first new worker takes the agent's standby interpreter; the others
  (up to 4 at once) start while 6 clients, Envoy and the first worker use the same cores.
  {step.replicas} workers answered in the last second of the load; {step.failures} failed of
  {step.answers + step.failures} requests.

Rollouts v1 → v2 under 4 closed-loop clients (target: 0 failed requests; canary: 20 % then
60 %, 4 s each, judged against the stable version):

| strategy | failed | requests | apply → Succeeded | phase |
|---|---:|---:|---:|---|
{rollout_rows}

Reading the figures. A bare start is a new interpreter importing torch, gRPC and aiohttp, then
loading the model. The agent keeps one standby interpreter with those imports done (agent flag
`--standby-workers`, default 1; it waits on a pipe, costing memory, not CPU), so a cold start
only loads the model: that is why it beats a bare start. Without the standby (second pair of
rows), a cold start is a bare start plus what meshline adds: the wake-up (the activator's held
request reaches the autoscaler at once), the agent seeing the new worker healthy (probed every
50 ms while it starts), the gateway routing to it (EDS push, Envoy's own health check), and the
replay of the held request.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load", type=float, default=30.0, help="seconds of the load step")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshline-bench-") as tmp:
        state = Path(tmp)
        models = {
            "v1": build_mlp(state / "v1.pt", seed=0),
            "v2": build_mlp(state / "v2.pt", seed=1),
        }
        bare = [bare_start(models["v1"], state, i) for i in range(args.rounds)]
        no_standby_facts = {"eu": {"standby_workers": 0}}
        with running_mesh(state / "no-standby", ("eu",), no_standby_facts) as mesh:
            cold_no_standby = cold_starts(mesh, models, args.rounds)
        with running_mesh(state / "standby", regions=("eu",)) as mesh:
            cold = cold_starts(mesh, models, args.rounds)
            step = scale_up(mesh, models, args.load)
            rollouts = [rollout(mesh, models, s) for s in ("immediate", "canary")]
    text = render(bare, cold, cold_no_standby, step, rollouts)
    print(text)
    if not args.no_write:
        write_section(text, args.report)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
