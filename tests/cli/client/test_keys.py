"""`meshline keys ...` against a real control plane process: a secret is printed once, alone
on stdout; list and get never show one; bad input is refused by name."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.store import Store
from controlplane.store.keys import active_credentials
from tests.cli.helpers import meshline


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(secret: str) -> dict[str, object]:
    return dict(json.loads(_unb64(secret.split(".")[1])))


def _everything_shown(address: str, name: str) -> str:
    """All that list and get print about keys, in every format."""
    shown = []
    for fmt in ("table", "json", "yaml"):
        for args in (("list",), ("get", name)):
            result = meshline(address, "keys", *args, "-o", fmt)
            assert result.returncode == 0, result.stderr
            shown.append(result.stdout + result.stderr)
    return "\n".join(shown)


def test_create_prints_the_secret_once(address: str, cp_state: Path) -> None:
    created = meshline(
        address, "keys", "create", "ci", "-e", "production", "--deployments", "b,a",
        "--roles", "reader", "--expires", "30d",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"  # the secret alone: KEY=$(meshline keys create ...)
    assert secret.count(".") == 2 and "shown this once" in created.stderr
    assert secret not in created.stderr
    claims = _claims(secret)
    assert (claims["sub"], claims["env"], claims["deployments"]) == ("ci", "production", ["a", "b"])
    assert claims["roles"] == ["reader"] and claims["exp"] == int(str(claims["iat"])) + 30 * 86400

    got = json.loads(meshline(address, "keys", "get", "ci", "-o", "json").stdout)
    assert got["kind"] == "ApiKey" and got["metadata"]["name"] == "ci"
    assert got["spec"]["deployments"] == ["a", "b"] and got["status"]["phase"] == "Active"
    assert got["status"]["key_id"] == claims["jti"]

    shown = _everything_shown(address, "ci")
    signature = secret.rsplit(".", 1)[1]
    assert secret not in shown and signature not in shown
    table = meshline(address, "keys", "list").stdout
    assert all(h in table for h in ("NAME", "ENVIRONMENT", "DEPLOYMENTS", "ROLES", "PHASE"))
    assert all(h in table for h in ("EXPIRES", "KEY ID"))
    row = next(line for line in table.splitlines() if line.split()[:1] == ["ci"])
    assert "production" in row and "a,b" in row and "Active" in row and str(claims["jti"]) in row
    # Nowhere in the control plane's state directory: not its store, not its log (which
    # names the key and its key id only).
    log = (cp_state / "controlplane.log").read_text()
    assert f"API key ci created (key id {claims['jti']})" in log
    for path in cp_state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and signature.encode() not in data, path


def test_json_create_and_a_secret_the_stored_public_key_verifies(
    address: str, cp_state: Path
) -> None:
    created = meshline(address, "keys", "create", "svc", "-o", "json")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["key"]["metadata"]["name"] == "svc" and body["key"]["status"]["phase"] == "Active"
    secret = body["secret"]
    header, payload, signature = secret.split(".")
    kid = json.loads(_unb64(header))["kid"]
    # Read the running control plane's store file (a second reader, WAL mode).
    with Store.open(cp_state / "meshline.db") as store:
        credentials = {c.key_id: c for c in active_credentials(store, 0.0)}
    public = Ed25519PublicKey.from_public_bytes(_unb64(credentials[kid].public_key))
    public.verify(_unb64(signature), f"{header}.{payload}".encode())


def test_rotate_revoke_and_the_name_stays_taken(address: str) -> None:
    first = meshline(address, "keys", "create", "rot").stdout.strip()
    rotated = meshline(address, "keys", "rotate", "rot", "--grace", "10m")
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.strip()
    assert rotated.stdout == second + "\n" and second != first
    assert "previous secret" in rotated.stderr and "works until" in rotated.stderr
    old_kid, new_kid = _claims(first)["jti"], _claims(second)["jti"]
    got = meshline(address, "keys", "get", "rot")
    assert f"previous key id {old_kid} works until" in got.stdout and str(new_kid) in got.stdout

    revoked = meshline(address, "keys", "revoke", "rot")
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith("apikey/rot revoked at ")
    doc = yaml.safe_load(meshline(address, "keys", "get", "rot", "-o", "yaml").stdout)
    assert doc["status"]["phase"] == "Revoked"
    again = meshline(address, "keys", "create", "rot")
    assert again.returncode != 0 and again.stdout == ""
    assert "revoked keys keep their name: pick another name) [ALREADY_EXISTS]" in again.stderr
    refused = meshline(address, "keys", "rotate", "rot")
    assert refused.returncode != 0 and "is revoked" in refused.stderr and refused.stdout == ""


def test_bad_input_is_refused_by_name(address: str) -> None:
    bad = meshline(address, "keys", "create", "later", "--expires", "3 days")
    assert bad.returncode != 0 and bad.stdout == ""
    assert "--expires: invalid duration '3 days'" in bad.stderr and "e.g. 30d" in bad.stderr
    zero = meshline(address, "keys", "create", "later", "--expires", "0")
    assert zero.returncode != 0 and "--expires: must be longer than 0" in zero.stderr
    grace = meshline(address, "keys", "rotate", "later", "--grace", "soon")
    assert grace.returncode != 0 and "--grace: invalid duration 'soon'" in grace.stderr
    name = meshline(address, "keys", "create", "Bad_Name")
    assert name.returncode != 0
    assert "name: 'Bad_Name' is not a DNS-1123 label" in name.stderr
    assert "[INVALID_ARGUMENT]" in name.stderr
    role = meshline(address, "keys", "create", "later", "--roles", "ok,read all")
    assert "spec.roles[1]: 'read all' contains a space" in role.stderr
    missing = meshline(address, "keys", "get", "nope")
    assert missing.returncode != 0 and "API key 'nope' not found [NOT_FOUND]" in missing.stderr
    listed = json.loads(meshline(address, "keys", "list", "-o", "json").stdout)
    assert "later" not in [k["metadata"]["name"] for k in listed]  # nothing was created
