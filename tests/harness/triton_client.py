"""Call an OIP endpoint with the real tritonclient from a test process.

tritonclient registers the same `inference.*` protobuf symbols as meshline's
generated code, so it runs in a subprocess (`triton_client_script.py`); this
module is the typed front of that script.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCRIPT = Path(__file__).with_name("triton_client_script.py")


def triton_infer(
    endpoint: str,
    model: str,
    data: np.ndarray,
    cases: tuple[str, ...] = ("grpc", "http-binary", "http-json"),
    headers: dict[str, str] | None = None,
    http_endpoint: str | None = None,
    ca_file: Path | None = None,
) -> dict[str, np.ndarray | str]:
    """Each case's `output` tensor, or its error text. gRPC and HTTP share `endpoint` (a
    gateway) unless `http_endpoint` names another (a Triton worker's own HTTP port).
    `ca_file`: speak TLS (tritonclient's `ssl=True`), trusting that CA."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.npy"
        np.save(path, data)
        args = [
            sys.executable,
            str(SCRIPT),
            "--grpc",
            endpoint,
            "--http",
            http_endpoint or endpoint,
            "--model",
            model,
            "--input",
            str(path),
            "--cases",
            ",".join(cases),
        ]
        for key, value in (headers or {}).items():
            args += ["--header", f"{key}={value}"]
        if ca_file is not None:
            args += ["--ca-file", str(ca_file)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"tritonclient script failed: {result.stderr[-2000:]}")
    out: dict[str, np.ndarray | str] = {}
    for case, reply in json.loads(result.stdout).items():
        if not reply["ok"]:
            out[case] = f"{reply.get('status')}: {reply['error']}"
            continue
        tensor = reply["outputs"]["output"]
        out[case] = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    return out


@dataclass(frozen=True)
class Burst:
    """Answers of one burst: per row the `output` tensor or the error text, and the bad input's."""

    replies: list[np.ndarray | str]
    bad: np.ndarray | str | None


def triton_burst(
    grpc_endpoint: str,
    http_endpoint: str,
    model: str,
    data: np.ndarray,
    protocol: str = "grpc",
    bad: np.ndarray | None = None,
) -> Burst:
    """One concurrent request per row of `data` ([1, ...] each), over "grpc" or "http", with `bad`
    sent among them when given."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.npy"
        np.save(path, data)
        args = [
            sys.executable, str(SCRIPT),
            "--grpc", grpc_endpoint,
            "--http", http_endpoint,
            "--model", model,
            "--input", str(path),
            "--cases", f"{protocol}-burst",
        ]  # fmt: skip
        if bad is not None:
            bad_path = Path(tmp) / "bad.npy"
            np.save(bad_path, bad)
            args += ["--bad-input", str(bad_path)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"tritonclient script failed: {result.stderr[-2000:]}")
    answer = json.loads(result.stdout)[f"{protocol}-burst"]
    if not answer["ok"]:
        raise RuntimeError(f"burst failed: {answer}")
    return Burst(
        replies=[_tensor_or_error(r) for r in answer["replies"]],
        bad=None if answer["bad"] is None else _tensor_or_error(answer["bad"]),
    )


def _tensor_or_error(reply: dict[str, Any]) -> np.ndarray | str:
    if not reply["ok"]:
        return f"{reply.get('status')}: {reply['error']}"
    tensor = reply["outputs"]["output"]
    return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
