"""`meshline plan`, `apply --dry-run` and `status.plan` against a real control plane.

No agents run: a plan comes from policy and the registered regions alone, and every region's
gateway shows up in it. Apart from the last test, nothing here is stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controlplane.policy.settings import DEFAULT_RETRY_ON
from tests.cli.helpers import control_plane, meshline

PLATFORM = """\
kind: Region
metadata: {name: eu-west}
spec: {country: FR, continent: EU, flavors: {cpu: [x86-64], gpu: [l4]}}
---
kind: Region
metadata: {name: eu-central}
spec: {country: DE, continent: EU, flavors: {cpu: [x86-64], gpu: [l4]}}
---
kind: Region
metadata: {name: eu-north}
spec: {country: SE, continent: EU, flavors: {cpu: [x86-64]}}
---
kind: Region
metadata: {name: eu-south}
spec: {country: IT, continent: EU, flavors: {gpu: [l4]}, max_replicas: 1}
---
kind: Region
metadata: {name: us-east}
spec: {country: US, continent: NA, flavors: {cpu: [x86-64], gpu: [a100, l4]}}
---
kind: Environment
metadata: {name: production}
spec:
  policies:
{env_policies}
"""

APP = """\
kind: Model
metadata: {name: fraud}
spec:
  versions:
    - {name: v1, runtime: torch, path: model.pt}
    - {name: v2, runtime: torch, path: model.pt}
---
kind: Deployment
metadata: {name: fraud}
spec:
  environment: production
  model: fraud
  version: v1
  replicas: 1
  policies:
{deployment_policies}
"""

ENV_POLICIES = """\
    - {mode: mandatory, location: {continents: [EU]}}
    - routing: {strategy: least_request, timeout_s: 5}"""

DEPLOYMENT_POLICIES = """\
    - flavor: {gpu: [l4]}
    - routing:
        strategy: ring_hash
        hash_header: x-user-id
        retries: {attempts: 2, per_try_timeout_s: 2}
    - failover: {regions: [eu-central]}
    - traffic: {split: [{version: v1, weight: 90}, {version: v2, weight: 10}]}"""

REGIONS = ["eu-west", "eu-central", "eu-north", "eu-south", "us-east"]

GATEWAY = (
    "ring_hash on header x-user-id, timeout 30s, "
    f"retries 2 on {','.join(DEFAULT_RETRY_ON)}, per try 2s"
)


def _tiers(tiers: str) -> list[str]:
    return [
        f"    version v1 [90%] fraud.production.grpc, fraud.production.http: {tiers}",
        f"    version v2 [10%] fraud.production@v2.grpc, fraud.production@v2.http: {tiers}",
    ]


EXPECTED_PLAN = [
    "deployment/fraud (production) → eu-central, eu-west",
    "  effective policies:",
    "    environment 'production' mandatory: location {continents: [EU]}",
    "    deployment 'fraud': flavor {gpu: [l4]}",
    "    deployment 'fraud': routing {strategy: ring_hash, hash_header: x-user-id, "
    "retries: {attempts: 2, per_try_timeout_s: 2.0}}",
    "    deployment 'fraud': failover {regions: [eu-central]}",
    "    deployment 'fraud': traffic {split: [{version: v1, weight: 90}, "
    "{version: v2, weight: 10}]}",
    "    environment 'production' optional: routing {strategy: least_request, timeout_s: 5.0}"
    "  [overridden by deployment 'fraud' routing policy]",
    # Who may call is never left unsaid: secure by default.
    "    default (no access policy): access {}  (any API key whose scope covers the deployment)",
    "  excluded eu-north: deployment 'fraud' flavor {gpu: [l4]}",
    "  excluded eu-south: region 'eu-south' capacity "
    "(max_replicas 1, 1 free, this deployment needs 2)",
    "  excluded us-east: environment 'production' mandatory location {continents: [EU]}",
    "  flavors: eu-central=gpu:l4, eu-west=gpu:l4",
    # Every registered region's gateway routes the deployment, agent or not: the ones it is
    # not placed in forward to the allowed regions (failover keeps only eu-central).
    f"  gateway eu-central: {GATEWAY}",
    *_tiers("P0 eu-central local"),
    f"  gateway eu-north (forwards only): {GATEWAY}",
    *_tiers("P0 eu-central gateway"),
    f"  gateway eu-south (forwards only): {GATEWAY}",
    *_tiers("P0 eu-central gateway"),
    f"  gateway eu-west: {GATEWAY}",
    *_tiers("P0 eu-west local → P1 eu-central gateway"),
    f"  gateway us-east (forwards only): {GATEWAY}",
    *_tiers("P0 eu-central gateway"),
    # No agent reported its machine: memory holds nothing back (yet). A worker of each
    # version, never measured: the Torch runtime's estimate (the artifact is a few bytes).
    *(
        f"  capacity {region}: starts 1 worker per version (needs 256 MiB, estimated; "
        "memory not known yet: its agent has not reported)"
        for region in ("eu-central", "eu-west")
    ),
]


def _files(
    directory: Path,
    env_policies: str = ENV_POLICIES,
    deployment_policies: str = DEPLOYMENT_POLICIES,
) -> tuple[Path, Path]:
    """platform.yaml (regions, environment) and app.yaml (model, deployment)."""
    (directory / "model.pt").write_bytes(b"the API only checks that the file exists")
    platform = directory / "platform.yaml"
    platform.write_text(PLATFORM.replace("{env_policies}", env_policies))
    app = directory / "app.yaml"
    app.write_text(APP.replace("{deployment_policies}", deployment_policies))
    return platform, app


def _plan_section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    return lines[lines.index(EXPECTED_PLAN[0]) :]


def _stored_names(address: str) -> dict[str, list[str]]:
    out = {}
    for kind in ("regions", "environments", "models", "deployments"):
        got = meshline(address, "get", kind, "-o", "json")
        assert got.returncode == 0, got.stderr
        out[kind] = [item["metadata"]["name"] for item in json.loads(got.stdout)]
    return out


NOTHING = {"regions": [], "environments": [], "models": [], "deployments": []}


def test_plan_explains_the_deployment_and_stores_nothing(address: str, tmp_path: Path) -> None:
    platform, app = _files(tmp_path)
    result = meshline(address, "plan", "-f", str(platform), "-f", str(app))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[: lines.index(EXPECTED_PLAN[0])] == [  # a plan, not a stored change
        *(f"region/{r} would be created" for r in REGIONS),
        "environment/production would be created",
        "model/fraud would be created",
    ]
    assert _plan_section(result.stdout) == EXPECTED_PLAN
    assert _stored_names(address) == NOTHING
    table = meshline(address, "get", "deployments")
    assert table.returncode == 0 and "fraud" not in table.stdout


def test_dry_run_prints_the_plan_after_its_results(address: str, tmp_path: Path) -> None:
    platform, app = _files(tmp_path)
    result = meshline(address, "apply", "--dry-run", "-f", str(platform), "-f", str(app))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(EXPECTED_PLAN[0])
    assert lines[:start] == [
        *(f"region/{r} created (dry run)" for r in REGIONS),
        "environment/production created (dry run)",
        "model/fraud created (dry run)",
        "deployment/fraud created (dry run) → eu-central, eu-west",
    ]
    assert lines[start:] == EXPECTED_PLAN
    assert _stored_names(address) == NOTHING


IMPOSSIBLE = [
    pytest.param(
        "    - {mode: mandatory, location: {countries: [DE]}}",
        "    - flavor: {gpu: [a100]}",
        "environment 'production' mandatory location {countries: [DE]} and deployment "
        "'fraud' flavor {gpu: [a100]} allow no common region",
        id="DE-only-environment-vs-a100-deployment",
    ),
    pytest.param(
        "    - {mode: mandatory, flavor: {cpu: [x86-64]}}",
        "    - flavor: {gpu: [l4]}",
        "environment 'production' mandatory flavor {cpu: [x86-64]} and deployment 'fraud' "
        "flavor {gpu: [l4]} collide: a deployment uses CPU flavors or GPU flavors, never both",
        id="cpu-environment-vs-gpu-deployment",
    ),
]


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize(("env_policy", "deployment_policy", "collision"), IMPOSSIBLE)
def test_impossible_policies_fail_naming_both_and_store_nothing(
    address: str,
    tmp_path: Path,
    command: str,
    env_policy: str,
    deployment_policy: str,
    collision: str,
) -> None:
    platform, app = _files(tmp_path, env_policy, deployment_policy)
    result = meshline(address, command, "-f", str(platform), "-f", str(app))
    assert result.returncode == 1
    assert result.stdout == "", "no plan, no results for a rejected file"
    # A plan never stores anything: its refusal must not read like a refused apply.
    verdict = "this change would be refused" if command == "plan" else "nothing was applied"
    assert result.stderr.startswith(f"error: {verdict}:\n"), result.stderr
    assert (
        f"{app} document 2: deployment 'fraud' in environment 'production': "
        f"spec.policies: {collision}"
    ) in result.stderr
    assert _stored_names(address) == NOTHING


def test_status_plan_is_shown_and_ignored_on_apply(tmp_path: Path) -> None:
    platform, app = _files(tmp_path)
    with control_plane(tmp_path / "cp") as address:
        applied = meshline(address, "apply", "-f", str(platform), "-f", str(app))
        assert applied.returncode == 0, applied.stderr
        assert "deployment/fraud created → eu-central, eu-west" in applied.stdout

        dumped = meshline(address, "get", "deployment", "fraud", "-o", "yaml")
        assert dumped.returncode == 0, dumped.stderr
        doc = yaml.safe_load(dumped.stdout)
        plan = doc["status"]["plan"]
        assert plan["regions"] == ["eu-central", "eu-west"]
        assert plan["policies"][0] == {
            "source": "environment 'production' mandatory",
            "policy": {"mode": "mandatory", "location": {"continents": ["EU"]}},
        }
        assert plan["policies"][2]["policy"]["routing"]["retries"] == {
            "attempts": 2,
            "per_try_timeout_s": 2.0,
        }
        assert plan["policies"][-2:] == [
            {
                "source": "environment 'production' optional",
                "policy": {"routing": {"strategy": "least_request", "timeout_s": 5.0}},
                "overridden_by": "deployment 'fraud' routing policy",
            },
            {"source": "default (no access policy)", "policy": {"access": {}}},
        ]
        assert [(e["region"], e["reason"].split(" ")[0]) for e in plan["excluded"]] == [
            ("eu-north", "deployment"),
            ("eu-south", "region"),
            ("us-east", "environment"),
        ]

        # What `get -o yaml` prints (status, nested policies and all) applies back unchanged.
        again = meshline(address, "apply", "-f", "-", stdin=dumped.stdout)
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == "deployment/fraud unchanged → eu-central, eu-west"
        # Status is ignored on apply: an edited spec is applied, an edited status is not.
        doc["spec"]["replicas"] = 2
        doc["status"]["plan"]["regions"] = ["us-east"]
        doc["status"]["placement"] = ["us-east"]
        edited = meshline(address, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
        assert edited.returncode == 0, edited.stderr
        assert edited.stdout.strip() == "deployment/fraud configured → eu-central, eu-west"
        listed = json.loads(meshline(address, "get", "deployments", "-o", "json").stdout)
        assert [(d["spec"]["replicas"], d["status"]["placement"]) for d in listed] == [
            (2, ["eu-central", "eu-west"])
        ]

        # A region a policy names cannot be deleted; one nothing uses can.
        refused = meshline(address, "delete", "region", "eu-central")
        assert refused.returncode == 1
        assert (
            "region 'eu-central' is used by deployment 'fraud' in environment 'production' "
            "(its policy names it in spec.policies[2].failover.regions)"
        ) in refused.stderr
        deleted = meshline(address, "delete", "region", "us-east")
        assert deleted.returncode == 0, deleted.stderr

        # An environment change that moves the stored deployment says so: plan in the
        # conditional, apply as done; neither reads like the other.
        env = tmp_path / "env.yaml"
        env.write_text(
            "kind: Environment\nmetadata: {name: production}\n"
            "spec: {policies: [{mode: mandatory, location: {countries: [FR]}}]}\n"
        )
        planned = meshline(address, "plan", "-f", str(env))
        assert planned.returncode == 0, planned.stderr
        assert planned.stdout.splitlines()[:3] == [
            "environment/production would be configured",
            "deployments this change moves or re-routes:",
            "  deployment/fraud in production would move eu-central, eu-west → eu-west",
        ]
        moved = meshline(address, "apply", "-f", str(env))
        assert moved.returncode == 0, moved.stderr
        assert moved.stdout.splitlines() == [
            "environment/production configured",
            "deployments this change moves or re-routes:",
            "  deployment/fraud in production moves eu-central, eu-west → eu-west",
        ]
