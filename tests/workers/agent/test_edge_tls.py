"""Edge TLS on the agent: which settings its flags make, the checks of the user's files before
anything starts (also through the real `meshline agent` command, which must refuse to start),
the SDS file, and the probe that reads what the gateway's listener serves."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from meshline.edge_tls import FILES_SECRET, EdgeTlsMode
from tests.harness.processes import free_port
from tests.harness.user_certificates import UserCA, write_private
from workers.agent.edge_probe import expires_text, served_certificate
from workers.agent.edge_tls import (
    EdgeTlsError,
    EdgeTlsSettings,
    check_user_files,
    edge_tls_settings,
    hello_edge_tls,
    sds_path,
    write_sds_file,
)

CA = UserCA.create()
NAMES = ["127.0.0.1", "localhost"]


def _settings(**flags: object) -> EdgeTlsSettings | None:
    given: dict[str, object] = {
        "cert_file": None,
        "key_file": None,
        "from_mesh_ca": False,
        "tls_names": (),
        "host": "127.0.0.1",
    }
    given.update(flags)
    return edge_tls_settings(**given)  # type: ignore[arg-type]


def test_no_flags_is_plain_text() -> None:
    assert _settings() is None


def test_files_are_kept_as_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = _settings(cert_file=Path("tls.crt"), key_file=Path("tls.key"))
    assert settings == EdgeTlsSettings(
        EdgeTlsMode.FILES, cert_file=tmp_path / "tls.crt", key_file=tmp_path / "tls.key"
    )


@pytest.mark.parametrize(
    ("host", "names", "expected"),
    [
        ("127.0.0.1", (), ("127.0.0.1", "localhost")),  # loopback is dialled as localhost too
        ("10.0.0.2", ("gw.example.com",), ("10.0.0.2", "gw.example.com")),
        ("0.0.0.0", ("gw.example.com", "10.0.0.2"), ("gw.example.com", "10.0.0.2")),
    ],
)
def test_mesh_ca_names_what_clients_dial(
    host: str, names: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    settings = _settings(from_mesh_ca=True, tls_names=names, host=host)
    assert settings == EdgeTlsSettings(EdgeTlsMode.MESH_CA, names=expected)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"cert_file": Path("/c"), "key_file": Path("/k"), "from_mesh_ca": True},
            "choose one source",
        ),
        ({"cert_file": Path("/c")}, "--tls-cert needs --tls-key too"),
        ({"key_file": Path("/k")}, "--tls-key needs --tls-cert too"),
        (
            {"cert_file": Path("/c"), "key_file": Path("/k"), "tls_names": ("a.example",)},
            "--tls-name: only with --tls-from-mesh-ca",
        ),
        ({"tls_names": ("a.example",)}, "--tls-name: only with --tls-from-mesh-ca"),
        ({"from_mesh_ca": True, "host": "0.0.0.0"}, "give the names clients use with --tls-name"),
        (
            {"from_mesh_ca": True, "tls_names": ("bad_name",)},
            "--tls-name: 'bad_name' is neither an IP address nor a DNS name",
        ),
    ],
)
def test_flags_that_do_not_fit_are_named(flags: dict[str, object], message: str) -> None:
    with pytest.raises(EdgeTlsError, match=message):
        _settings(**flags)


# -- the user's files ---------------------------------------------------------------------------


def _pair(tmp_path: Path, **issue: object) -> tuple[Path, Path]:
    return CA.issue(NAMES, **issue).write(tmp_path)  # type: ignore[arg-type]


def test_a_good_pair_is_accepted(tmp_path: Path) -> None:
    pair = CA.issue(NAMES)
    cert, key = pair.write(tmp_path)
    facts = check_user_files(cert, key, datetime.now(UTC))
    assert facts.serial == format(pair.serial, "x")
    assert facts.not_after == pair.not_after


def _mismatched(tmp_path: Path) -> tuple[Path, Path]:
    cert, _ = _pair(tmp_path / "a")
    _, other_key = _pair(tmp_path / "b")
    return cert, other_key


def _expired(tmp_path: Path) -> tuple[Path, Path]:
    return _pair(tmp_path, starts=datetime.now(UTC) - timedelta(days=3), lifetime=timedelta(days=1))


def _not_yet(tmp_path: Path) -> tuple[Path, Path]:
    return _pair(tmp_path, starts=datetime.now(UTC) + timedelta(days=1))


def _missing_cert(tmp_path: Path) -> tuple[Path, Path]:
    _, key = _pair(tmp_path)
    return tmp_path / "absent.crt", key


def _missing_key(tmp_path: Path) -> tuple[Path, Path]:
    cert, _ = _pair(tmp_path)
    return cert, tmp_path / "absent.key"


def _not_pem(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = _pair(tmp_path)
    cert.write_text("hello")
    return cert, key


def _key_is_a_certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, _ = _pair(tmp_path)
    return cert, cert


def _encrypted_key(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = _pair(tmp_path)
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    write_private(key, encrypted.decode())
    return cert, key


def _a_directory(tmp_path: Path) -> tuple[Path, Path]:
    _, key = _pair(tmp_path)
    return tmp_path, key


BAD_FILES = {
    "mismatched key": (_mismatched, "--tls-key {key}: not the key of the certificate in {cert}"),
    "expired": (_expired, "--tls-cert {cert}: the certificate expired at"),
    "not yet valid": (_not_yet, "--tls-cert {cert}: the certificate is not valid before"),
    "missing certificate": (_missing_cert, "--tls-cert {cert}: no such file"),
    "missing key": (_missing_key, "--tls-key {key}: no such file"),
    "not PEM": (_not_pem, "--tls-cert {cert}: not a PEM certificate"),
    "a certificate as key": (_key_is_a_certificate, "--tls-key {key}: not a PEM private key"),
    "encrypted key": (_encrypted_key, "--tls-key {key}: the key is encrypted"),
    "a directory": (_a_directory, "--tls-cert {cert}: a directory, not a file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_named(case: str, tmp_path: Path) -> None:
    make, message = BAD_FILES[case]
    cert, key = make(tmp_path)
    with pytest.raises(EdgeTlsError) as refused:
        check_user_files(cert, key, datetime.now(UTC))
    assert message.format(cert=cert, key=key) in str(refused.value)


@pytest.mark.parametrize("case", ["mismatched key", "missing certificate", "expired"])
def test_the_agent_refuses_to_start_naming_the_file(case: str, tmp_path: Path) -> None:
    """The real command: it ends before joining (no control plane runs here) and starts no
    Envoy, with the file and the problem in its error."""
    make, message = BAD_FILES[case]
    cert, key = make(tmp_path / "files")
    state = tmp_path / "state"
    result = subprocess.run(
        [
            sys.executable, "-m", "cli", "agent", "--region", "eu",
            "--controlplane", f"127.0.0.1:{free_port()}", "--state-dir", str(state),
            "--tls-cert", str(cert), "--tls-key", str(key),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert message.format(cert=cert, key=key) in result.stderr, result.stderr
    assert not (state / "envoy").exists() and not (state / "identity").exists()


def test_the_sds_file_names_the_files_and_holds_no_key(tmp_path: Path) -> None:
    pair = CA.issue(NAMES)
    cert, key = pair.write(tmp_path / "user")
    settings = EdgeTlsSettings(EdgeTlsMode.FILES, cert_file=cert, key_file=key)
    path = write_sds_file(tmp_path / "state", settings)
    assert path == sds_path(tmp_path / "state") and path.is_absolute()
    text = path.read_text()
    assert "PRIVATE KEY" not in text and "CERTIFICATE" not in text
    (secret,) = yaml.safe_load(text)["resources"]
    assert secret["name"] == FILES_SECRET
    assert secret["tls_certificate"] == {
        "certificate_chain": {"filename": str(cert)},
        "private_key": {"filename": str(key)},
    }
    hello = hello_edge_tls(settings, path)
    assert (hello.mode, hello.sds_path, list(hello.names)) == ("files", str(path), [])


def test_the_hello_of_plain_text_and_of_mesh_ca() -> None:
    assert hello_edge_tls(None, None).mode == ""
    hello = hello_edge_tls(EdgeTlsSettings(EdgeTlsMode.MESH_CA, names=("10.0.0.2",)), None)
    assert (hello.mode, hello.sds_path, list(hello.names)) == ("mesh-ca", "", ["10.0.0.2"])


# -- the probe --------------------------------------------------------------------------------


@asynccontextmanager
async def _listener(context: ssl.SSLContext | None) -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    port = free_port()
    server = await asyncio.start_server(answer, "127.0.0.1", port, ssl=context)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


async def test_the_probe_reads_the_served_certificate(tmp_path: Path) -> None:
    pair = CA.issue(NAMES)
    cert, key = pair.write(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with _listener(context) as port:
        facts = await served_certificate("127.0.0.1", port)
    assert facts is not None and facts.serial == format(pair.serial, "x")
    assert expires_text(facts) == pair.not_after.isoformat().replace("+00:00", "Z")


async def test_the_probe_sees_nothing_on_plain_text_or_a_closed_port() -> None:
    async with _listener(None) as port:
        assert await served_certificate("127.0.0.1", port) is None
    assert await served_certificate("127.0.0.1", free_port()) is None
    assert expires_text(None) == ""
