"""Where the `meshline` process sends a token, seen from a listener that counts who connects:
never to an address other than the server of the context it names, and never to the address a
cloned directory records when the token comes from elsewhere."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.client.contexts import Context, CredentialsFile, save
from meshline.secret_file import write_secret_file
from tests.cli.helpers import run_cli


class Listener:
    """A TCP port on loopback that counts connections and closes each at once (a client
    fails fast: UNAVAILABLE)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()


@contextmanager
def listening() -> Iterator[Listener]:
    listener = Listener()
    listener._thread.start()
    try:
        yield listener
    finally:
        listener._stop.set()
        listener._thread.join(timeout=5)
        listener.sock.close()


def shell(config: Path, **extra: str) -> dict[str, str]:
    """A user's shell: its credentials file, no token or address unless given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MESHLINE_TOKEN", "MESHLINE_ADDRESS", "MESHLINE_CONFIG")
    }
    return {**env, "MESHLINE_CONFIG": str(config), **extra}


def test_a_named_context_with_another_address_sends_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config"
    with listening() as evil:
        save(config, CredentialsFile("", (Context("prod", "prod.example.test:7070", "prod-t"),)))
        for args, env in (
            (("--context", "prod", "whoami", "--address", evil.address), shell(config)),
            (("--context", "prod", "whoami"), shell(config, MESHLINE_ADDRESS=evil.address)),
        ):
            result = run_cli(*args, env=env, cwd=tmp_path)
            assert result.returncode == 1
            assert "context 'prod' is for server prod.example.test:7070" in result.stderr
            assert "prod-t" not in result.stderr
        assert evil.connections == 0
        # the listener does see a CLI that connects
        control = run_cli("--token", "t", "whoami", "--address", evil.address, env=shell(config))
        assert control.returncode == 1
        assert evil.connections >= 1


def test_a_cloned_directory_does_not_redirect_a_token_from_elsewhere(tmp_path: Path) -> None:
    config = tmp_path / "config"
    save(config, CredentialsFile())  # no context at all, as on a CI runner
    clone = tmp_path / "clone"
    state = clone / ".meshline"
    (state / "controlplane").mkdir(parents=True)
    (state / "controlplane" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    planted = state / "controlplane" / "admin-token"
    planted.write_text("attackers-token\n")
    planted.chmod(0o644)
    with listening() as evil:
        (state / "controlplane.addr").write_text(evil.address + "\n")
        for args, env in (
            (("--token", "ci-token", "whoami"), shell(config)),
            (("whoami",), shell(config, MESHLINE_TOKEN="ci-token")),
            (("whoami",), shell(config)),
        ):
            result = run_cli(*args, env=env, cwd=clone)
            assert result.returncode == 1
            assert evil.address not in result.stderr
        assert evil.connections == 0
        # the same directory with this user's own admin token is `meshline up`'s: used
        write_secret_file(planted, "admin-token\n")
        run_cli("whoami", env=shell(config), cwd=clone)
        assert evil.connections >= 1
