"""The agent's identity: the pure decisions (start from the stored certificate or join, when to
renew, where the mesh port is) as tables, and its files (0600 where a key is, one rename for
key and certificate, Envoy's SDS file) on a real directory."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from controlplane.pki import open_ca
from tests.harness.mesh_identity import region_identity
from workers.agent.identity import (
    ENVOY_SECRET_NAME,
    SECRET_TYPE,
    Identity,
    IdentityPaths,
    Start,
    decide_start,
    key_matches,
    load_identity,
    mesh_target,
    renewal_delay_s,
    save_identity,
)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ca")


def _identity(ca_dir: Path, region: str = "eu", lifetime_s: float = 3600) -> Identity:
    ca = open_ca(ca_dir, None, datetime.now(UTC))
    made = region_identity(ca, region, timedelta(seconds=lifetime_s))
    return Identity(region, made.chain_pem, made.key_pem, "127.0.0.1:7071", datetime.now(UTC))


@dataclass(frozen=True)
class StartCase:
    stored: str  # "none", "valid", "expired", "other-region"
    have_token: bool
    start: Start
    says: str


START_CASES = {
    "a valid certificate needs no token": StartCase("valid", False, Start.USE_STORED, "valid"),
    "a valid certificate wins over a token": StartCase("valid", True, Start.USE_STORED, "valid"),
    "first start joins": StartCase("none", True, Start.JOIN, "no certificate stored yet"),
    "first start without a token": StartCase("none", False, Start.NO_TOKEN, "no certificate"),
    "an expired certificate joins again": StartCase("expired", True, Start.JOIN, "expired"),
    "an expired certificate, no token": StartCase("expired", False, Start.NO_TOKEN, "expired"),
    "another region's certificate": StartCase("other-region", True, Start.JOIN, "region us's"),
    "another region's, no token": StartCase("other-region", False, Start.NO_TOKEN, "us's"),
}


@pytest.mark.parametrize("case", START_CASES.values(), ids=START_CASES.keys())
def test_decide_start(case: StartCase, ca_dir: Path) -> None:
    now = datetime.now(UTC)
    stored = {
        "none": None,
        "valid": _identity(ca_dir),
        "expired": _identity(ca_dir, lifetime_s=1),
        "other-region": _identity(ca_dir, region="us"),
    }[case.stored]
    at = now + timedelta(seconds=10) if case.stored == "expired" else now
    decision = decide_start(stored, "eu", at, case.have_token)
    assert decision.start is case.start
    assert case.says in decision.reason


@pytest.mark.parametrize(
    ("given", "api", "dialed"),
    [
        ("10.0.0.1:7071", "cp.example:7070", "10.0.0.1:7071"),
        ("0.0.0.0:7071", "10.77.0.1:7070", "10.77.0.1:7071"),
        ("[::]:7071", "cp.example:7070", "cp.example:7071"),
        ("cp.example:7071", "10.0.0.1:7070", "cp.example:7071"),
    ],
)
def test_the_mesh_port_is_dialed_where_the_api_was_when_it_listens_everywhere(
    given: str, api: str, dialed: str
) -> None:
    assert mesh_target(given, api) == dialed


def test_renewal_comes_two_thirds_into_the_lifetime_from_its_arrival(ca_dir: Path) -> None:
    """Certificates are backdated for clock skew: counting from not-before, a 30 s certificate
    would be due at once."""
    identity = _identity(ca_dir, lifetime_s=30)
    arrived = identity.received_at
    assert renewal_delay_s(identity, arrived) == pytest.approx(
        (identity.expires_at - arrived).total_seconds() * 2 / 3, abs=0.01
    )
    assert renewal_delay_s(identity, identity.expires_at) == 0


def test_identity_files_round_trip_with_the_keys_owner_only(tmp_path: Path, ca_dir: Path) -> None:
    paths = IdentityPaths.of(tmp_path)
    identity = _identity(ca_dir)
    ca_pem = (ca_dir / "ca.crt").read_text()
    save_identity(paths, identity, ca_pem)
    assert load_identity(paths) == identity
    assert paths.ca.read_text() == ca_pem
    for secret in (paths.identity, paths.envoy_sds):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o700
    assert identity.key_pem not in repr(identity)


def test_envoys_sds_file_holds_one_secret_with_chain_and_key(tmp_path: Path, ca_dir: Path) -> None:
    paths = IdentityPaths.of(tmp_path)
    identity = _identity(ca_dir)
    save_identity(paths, identity, (ca_dir / "ca.crt").read_text())
    (secret,) = yaml.safe_load(paths.envoy_sds.read_text())["resources"]
    assert secret["@type"] == SECRET_TYPE and secret["name"] == ENVOY_SECRET_NAME
    tls = secret["tls_certificate"]
    assert tls["certificate_chain"]["inline_string"] == identity.certificate_pem
    assert tls["private_key"]["inline_string"] == identity.key_pem
    # A renewal replaces the file whole (a rename), with the new pair.
    renewed = _identity(ca_dir)
    save_identity(paths, renewed, (ca_dir / "ca.crt").read_text())
    (secret,) = yaml.safe_load(paths.envoy_sds.read_text())["resources"]
    assert secret["tls_certificate"]["private_key"]["inline_string"] == renewed.key_pem
    assert [p.name for p in paths.directory.iterdir() if p.name.startswith(".")] == []


def test_an_unusable_stored_identity_is_no_identity(tmp_path: Path, ca_dir: Path) -> None:
    paths = IdentityPaths.of(tmp_path)
    assert load_identity(paths) is None
    identity = _identity(ca_dir)
    save_identity(paths, identity, (ca_dir / "ca.crt").read_text())
    other_key = _identity(ca_dir).key_pem
    assert not key_matches(identity.certificate_pem, other_key)
    body = json.loads(paths.identity.read_text())
    paths.identity.write_text(json.dumps({**body, "key_pem": other_key}))
    assert load_identity(paths) is None  # a key that is not the certificate's
    paths.identity.write_text("{not json")
    assert load_identity(paths) is None
    paths.identity.write_text(json.dumps({**body, "certificate_pem": "junk"}))
    assert load_identity(paths) is None


def test_validity_follows_the_certificate(ca_dir: Path) -> None:
    identity = _identity(ca_dir, lifetime_s=60)
    assert identity.valid_at(datetime.now(UTC))
    assert not identity.valid_at(identity.expires_at)
    assert replace(identity, region="us").facts.region == "eu"  # the certificate says who
