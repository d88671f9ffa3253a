"""A gateway's port belongs to one Envoy: a second one on the same port fails to bind instead of
sharing it (SO_REUSEPORT would let the kernel split clients between two meshes' gateways)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap_yaml
from tests.controlplane.translate.cases import EMPTY
from tests.controlplane.translate.envoy_gateway import HOST, running_gateway
from tests.harness.processes import VENV_BIN, ManagedProcess, free_port, wait_until


def test_listeners_do_not_reuse_ports() -> None:
    listeners = [r for r in translate_gateway(EMPTY).listeners.values() if r.HasField("address")]
    assert listeners
    assert all(listener.HasField("enable_reuse_port") for listener in listeners)
    assert not any(listener.enable_reuse_port.value for listener in listeners)


def test_a_second_envoy_cannot_take_a_running_gateways_port(tmp_path: Path) -> None:
    ir = replace(EMPTY, listen_host=HOST, listen_port=free_port(HOST))
    with running_gateway(ir, tmp_path, name="first"):
        config = tmp_path / "second.yaml"
        config.write_text(static_bootstrap_yaml(translate_gateway(ir), admin_port=free_port(HOST)))
        second = ManagedProcess(
            "second",
            [
                str(VENV_BIN / "envoy"),
                "-c",
                str(config),
                "--disable-hot-restart",
                "--base-id-path",
                str(tmp_path / "base-id"),
                "--use-dynamic-base-id",
                "--concurrency",
                "2",
            ],
            tmp_path,
        )
        try:
            wait_until(lambda: not second.alive(), 60, "the second Envoy to give up")
            assert second.proc.returncode != 0
            assert "Address already in use" in second.log() or "cannot bind" in second.log()
        finally:
            second.stop()
