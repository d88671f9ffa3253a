"""Gateway certificates: when each region gets a new one, and what the reconciler is given."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.pki.ca import create_ca
from controlplane.pki.gateway import GatewayCertificate, issue_gateway_certificate
from controlplane.reconcile.identities import GatewayIdentities, due, next_renewal_s
from meshline import wire
from meshline.certs import read_certificate_facts

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CA = create_ca(T0 - timedelta(days=1))


def _held(region: str, renew_in_s: float) -> GatewayCertificate:
    issued = issue_gateway_certificate(CA, region, T0, timedelta(hours=1))
    return replace(issued, renew_at=T0 + timedelta(seconds=renew_in_s))


@pytest.mark.parametrize(
    ("held", "regions", "expected"),
    [
        ({}, ["eu", "us"], ["eu", "us"]),  # none yet
        ({"eu": 60.0}, ["eu"], []),  # not due
        ({"eu": 0.0}, ["eu"], ["eu"]),  # due now
        ({"eu": -5.0, "us": 60.0}, ["us", "eu", "eu"], ["eu"]),  # past due; repeats once
        ({"eu": -5.0}, ["us"], ["us"]),  # only the regions asked for
    ],
)
def test_due(held: dict[str, float], regions: list[str], expected: list[str]) -> None:
    current = {region: _held(region, s) for region, s in held.items()}
    assert due(current, regions, T0) == expected


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        ({}, None),
        ({"eu": 60.0, "us": 30.0}, 30.0),
        ({"eu": -30.0}, 1.0),  # a renewal that failed: again in a second, no busy loop
    ],
)
def test_next_renewal(held: dict[str, float], expected: float | None) -> None:
    current = {region: _held(region, s) for region, s in held.items()}
    assert next_renewal_s(current, T0) == expected


def test_a_certificate_names_its_region_and_renews_two_thirds_into_its_life() -> None:
    issued = issue_gateway_certificate(CA, "eu-west", T0, timedelta(seconds=9))
    facts = read_certificate_facts(issued.chain_pem)
    assert facts.spiffe_id == wire.region_spiffe_id("eu-west")
    assert facts.not_after == T0 + timedelta(seconds=9)
    # From the moment it was made (its not-before is minutes earlier, for clock skew).
    assert issued.renew_at == T0 + timedelta(seconds=6)
    leaf = x509.load_pem_x509_certificate(issued.chain_pem.encode())
    leaf.verify_directly_issued_by(CA.certificate)
    key = serialization.load_pem_private_key(issued.key_pem.encode(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, spki) == leaf.public_key().public_bytes(der, spki)
    assert "PRIVATE" not in repr(issued) and issued.key_pem not in repr(issued)


def test_identities_issue_what_is_due_keep_the_rest_and_forget_regions_gone() -> None:
    identities = GatewayIdentities(CA, timedelta(seconds=30))
    first = identities.tls(["eu", "us"], T0)
    assert set(first) == {"eu", "us"}
    assert first["eu"].trusted_ca == CA.bundle_pem.decode()
    assert first["eu"].serial != first["us"].serial
    assert identities.next_renewal_s(T0) == pytest.approx(20.0)
    # Before renewal: the same certificates (Envoy gets no update).
    assert identities.tls(["eu", "us"], T0 + timedelta(seconds=19)) == first
    # Two thirds in: new certificates with new keys.
    later = identities.tls(["eu", "us"], T0 + timedelta(seconds=20))
    assert later["eu"].serial != first["eu"].serial
    assert later["eu"].private_key != first["eu"].private_key
    # A region no longer asked for is forgotten; back again, it gets a new certificate.
    assert set(identities.tls(["eu"], T0 + timedelta(seconds=21))) == {"eu"}
    back = identities.tls(["eu", "us"], T0 + timedelta(seconds=22))
    assert back["us"].serial not in (first["us"].serial, later["us"].serial)


def test_identities_refuse_a_lifetime_that_is_no_lifetime() -> None:
    with pytest.raises(ValueError, match="positive"):
        GatewayIdentities(CA, timedelta(0))
