"""`meshline regions token ...` against a real control plane process: the token is printed once,
alone on stdout, with the agent command (token in the environment, not argv) on stderr; list
never shows a secret; bad input is refused by name; `get regions` shows certificate expiry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from controlplane.store import Store
from controlplane.store.region_certificates import RegionCertificate, record_certificate
from meshline import join_token
from tests.cli.helpers import meshline


def _everything_listed(address: str) -> str:
    shown = []
    for fmt in ("table", "json", "yaml"):
        result = meshline(address, "regions", "token", "list", "-o", fmt)
        assert result.returncode == 0, result.stderr
        shown.append(result.stdout + result.stderr)
    return "\n".join(shown)


def test_create_prints_the_token_once_with_the_agent_command(address: str, cp_state: Path) -> None:
    created = meshline(
        address, "regions", "token", "create", "eu", "--expires", "1h", "--country", "de",
        "--continent", "EU", "--cpu-flavors", "c1,c2", "--max-replicas", "4",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"  # alone: TOKEN=$(meshline regions token create eu)
    text = join_token.parse(secret)
    note = created.stderr
    assert f"jointoken/{text.token_id} created for region eu (expires " in note
    assert "shown this once" in note and secret not in note and text.secret not in note
    assert "read -rs MESHLINE_JOIN_TOKEN && export MESHLINE_JOIN_TOKEN" in note
    assert f"meshline agent --region eu --controlplane {address} --ca-file ca.crt" in note

    table = meshline(address, "regions", "token", "list").stdout
    assert all(h in table for h in ("ID", "REGION", "PHASE", "EXPIRES", "USES", "LAST USED"))
    row = next(line for line in table.splitlines() if line.split()[:1] == [text.token_id])
    assert row.split()[1:3] == ["eu", "Active"] and "DE EU cpu:c1,c2 max 4" in row
    docs = json.loads(meshline(address, "regions", "token", "list", "-o", "json").stdout)
    doc = next(d for d in docs if d["metadata"]["name"] == text.token_id)
    assert doc["kind"] == "JoinToken" and doc["spec"]["facts"]["country"] == "DE"
    assert doc["status"]["phase"] == "Active"
    shown = _everything_listed(address)
    assert text.secret not in shown
    # Nowhere in the control plane's state directory: not its store, not its log (which names
    # the token's id only).
    log = (cp_state / "controlplane.log").read_text()
    assert f"join token {text.token_id} created for region eu" in log
    for path in cp_state.rglob("*"):
        if path.is_file():
            assert text.secret.encode() not in path.read_bytes(), path


def test_json_create_list_by_region_and_revoke(address: str) -> None:
    created = meshline(address, "regions", "token", "create", "us", "--expires", "0", "-o", "json")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    token_id = body["token"]["metadata"]["name"]
    assert join_token.parse(body["secret"]).token_id == token_id
    assert "expires_at" not in body["token"]["spec"]  # 0 = never
    assert body["agent_commands"][1].startswith("meshline agent --region us --controlplane ")

    listed = meshline(address, "regions", "token", "list", "--region", "us", "-o", "yaml")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(listed.stdout)] == [token_id]

    revoked = meshline(address, "regions", "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"jointoken/{token_id} revoked at ")
    table = meshline(address, "regions", "token", "list", "--region", "us").stdout
    row = next(line for line in table.splitlines() if line.split()[:1] == [token_id])
    assert "Revoked" in row and "never" in row


def test_bad_input_is_refused_by_name(address: str) -> None:
    cases = [
        (("create", "eu", "--expires", "soon"), "--expires: invalid duration 'soon'"),
        (("create", "EU"), "spec.region: 'EU' is not a DNS-1123 label"),
        (("create", "eu", "--country", "XX1"), "spec.facts.country: 'XX1' is not an ISO 3166-1"),
        (("create", "eu", "--expires", "400d"), "expires_in_s: 3.456e+07 seconds is too long"),
        (("revoke", "0000beef"), "join token '0000beef' not found [NOT_FOUND]"),
        (("revoke", "eu"), "name: 'eu' is not a join token id"),
        (("list", "--region", "Bad"), "region: 'Bad' is not a DNS-1123 label"),
    ]
    for args, expected in cases:
        result = meshline(address, "regions", "token", *args)
        assert result.returncode != 0 and result.stdout == "", args
        assert expected in result.stderr, (args, result.stderr)


def test_get_regions_shows_when_each_certificate_expires(
    address: str, cp_state: Path, tmp_path: Path
) -> None:
    document = tmp_path / "regions.yaml"
    document.write_text(
        "kind: Region\nmetadata: {name: ap}\nspec: {country: JP}\n---\n"
        "kind: Region\nmetadata: {name: sa}\nspec: {country: BR}\n"
    )
    applied = meshline(address, "apply", "-f", str(document))
    assert applied.returncode == 0, applied.stderr
    # What a join records, written by a second reader of the running control plane's store.
    with Store.open(cp_state / "meshline.db") as store:
        record_certificate(store, RegionCertificate("ap", "4d2f", 1_900_000_000.0, time.time()))
    table = meshline(address, "get", "regions").stdout
    assert "CERT EXPIRES" in table
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "2030-03-17T17:46:40Z" in rows["ap"] and "2030-" not in rows["sa"]
    doc = yaml.safe_load(meshline(address, "get", "region", "ap", "-o", "yaml").stdout)
    status = doc["status"]
    assert (status["certificate_expires_at"], status["certificate_serial"]) == (
        "2030-03-17T17:46:40Z",
        "4d2f",
    )
