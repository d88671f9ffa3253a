"""Gateway certificates (the peer path's, from the mesh CA, and the edge certificates of regions
that ask the control plane for TLS, from the edge CA): when each region gets a new one, and what
the reconciler is given."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.ir import names
from controlplane.ir.model import EdgeTls
from controlplane.pki.ca import create_ca
from controlplane.pki.edge import EdgeCertificate, issue_edge_certificate
from controlplane.pki.edge_ca import EdgeCA, create_edge_ca
from controlplane.pki.gateway import GatewayCertificate, issue_gateway_certificate
from controlplane.reconcile.identities import (
    GatewayIdentities,
    due,
    edge_certificate_tls,
    edge_due,
    edge_tls_of,
    edge_wanted,
    next_renewal_s,
)
from meshline import wire
from meshline.certs import read_certificate_facts
from meshline.edge_tls import EdgeTlsMode
from meshline.v1 import agent_pb2

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CA = create_ca(T0 - timedelta(days=1))
EDGE_CA = create_edge_ca(T0 - timedelta(days=1))


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


# -- edge certificates ------------------------------------------------------------------------

EdgeHello = agent_pb2.EdgeTls
MESH_CA_HELLO = EdgeHello(mode="mesh-ca", names=["10.0.0.2", "gw.example.com"])
FILES_HELLO = EdgeHello(mode="files", sds_path="/var/lib/meshline/us/edge/edge-sds.yaml")


def _edge_held(names: tuple[str, ...], renew_in_s: float) -> EdgeCertificate:
    issued = issue_edge_certificate(EDGE_CA, "eu", names, T0, timedelta(hours=1))
    return replace(issued, renew_at=T0 + timedelta(seconds=renew_in_s))


def test_edge_wanted_only_from_the_mesh_ca() -> None:
    hellos = {"eu": MESH_CA_HELLO, "us": FILES_HELLO, "ap": EdgeHello()}
    assert edge_wanted(hellos) == {"eu": ("10.0.0.2", "gw.example.com")}


@pytest.mark.parametrize(
    ("held", "wanted", "expected"),
    [
        (None, ("10.0.0.2",), ["eu"]),  # none yet
        ((("10.0.0.2",), 60.0), ("10.0.0.2",), []),  # not due
        ((("10.0.0.2",), 60.0), ("10.0.0.2", "0.0.0.0"), []),  # the same names certified
        ((("10.0.0.2",), 60.0), ("10.0.0.3",), ["eu"]),  # other names asked for
        ((("10.0.0.2",), 0.0), ("10.0.0.2",), ["eu"]),  # due
        ((("10.0.0.2",), 60.0), ("bad name",), ["eu"]),  # never equal (issuing will refuse)
    ],
)
def test_edge_due(
    held: tuple[tuple[str, ...], float] | None, wanted: tuple[str, ...], expected: list[str]
) -> None:
    current = {"eu": _edge_held(*held)} if held else {}
    assert edge_due(current, {"eu": wanted}, T0) == expected


def test_edge_tls_of_what_the_agents_asked() -> None:
    tls = edge_certificate_tls(_edge_held(("10.0.0.2",), 60.0))
    hellos = {
        "eu": MESH_CA_HELLO,
        "us": FILES_HELLO,
        "ap": EdgeHello(),  # plain text
        "sa": EdgeHello(mode="mesh-ca", names=["10.0.0.9"]),  # no certificate (issuing failed)
        "af": EdgeHello(mode="acme"),  # refused by the hello check: never configured
    }
    edge = edge_tls_of(hellos, {"eu": tls})
    assert edge == {
        "eu": EdgeTls(EdgeTlsMode.MESH_CA, certificate=tls),
        "us": EdgeTls(EdgeTlsMode.FILES, sds_path=FILES_HELLO.sds_path),
    }
    assert edge["eu"].secret_name == names.EDGE_CERTIFICATE_SECRET
    assert edge["us"].secret_name == names.EDGE_FILES_SECRET


def test_identities_issue_edge_certificates_renew_them_and_follow_the_names() -> None:
    identities = GatewayIdentities(CA, timedelta(seconds=30), EDGE_CA)
    hellos = {"eu": MESH_CA_HELLO, "us": FILES_HELLO}
    first = identities.edge_tls(hellos, T0)
    assert set(first) == {"eu", "us"} and first["us"].certificate is None
    cert = first["eu"].certificate
    assert cert is not None and cert.trusted_ca == ""
    leaf = x509.load_pem_x509_certificate(cert.certificate_chain.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["gw.example.com"]
    # From the edge CA: the mesh CA signs the mesh's identities only.
    leaf.verify_directly_issued_by(EDGE_CA.signing.certificate)
    assert leaf.issuer != CA.certificate.subject
    # Peer and edge renewals both wake the reconciler.
    assert identities.next_renewal_s(T0) == pytest.approx(20.0)
    assert identities.edge_tls(hellos, T0 + timedelta(seconds=19)) == first
    renewed = identities.edge_tls(hellos, T0 + timedelta(seconds=20))["eu"].certificate
    assert renewed is not None and renewed.serial != cert.serial
    assert renewed.private_key != cert.private_key
    # An agent restarted with other names gets a certificate for them at once.
    other = {"eu": EdgeHello(mode="mesh-ca", names=["10.0.0.3"])}
    moved = identities.edge_tls(other, T0 + timedelta(seconds=21))["eu"].certificate
    assert moved is not None and moved.serial != renewed.serial
    # An agent that no longer asks is forgotten (and nothing is due any more).
    assert identities.edge_tls({"eu": EdgeHello()}, T0 + timedelta(seconds=22)) == {}
    assert identities.next_renewal_s(T0 + timedelta(seconds=22)) is None


def test_an_edge_certificate_that_cannot_be_issued_leaves_the_region_plain() -> None:
    identities = GatewayIdentities(CA, timedelta(seconds=30), EDGE_CA)
    assert identities.edge_tls({"eu": EdgeHello(mode="mesh-ca", names=["::"])}, T0) == {}


def test_identities_refuse_the_mesh_ca_as_the_edge_ca() -> None:
    with pytest.raises(ValueError, match="the mesh trusts"):
        GatewayIdentities(CA, timedelta(seconds=30), EdgeCA(CA))


def test_identities_made_without_an_edge_ca_make_one_of_their_own() -> None:
    identities = GatewayIdentities(CA, timedelta(seconds=30))
    cert = identities.edge_tls({"eu": MESH_CA_HELLO}, T0)["eu"].certificate
    assert cert is not None
    leaf = x509.load_pem_x509_certificate(cert.certificate_chain.encode())
    assert leaf.issuer.rfc4514_string() == "CN=meshline edge CA,O=meshline"
