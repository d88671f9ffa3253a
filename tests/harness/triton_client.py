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
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("triton_client_script.py")


def triton_infer(
    endpoint: str,
    model: str,
    data: np.ndarray,
    cases: tuple[str, ...] = ("grpc", "http-binary", "http-json"),
    headers: dict[str, str] | None = None,
) -> dict[str, np.ndarray | str]:
    """Each case's `output` tensor, or its error text. gRPC and HTTP share one endpoint here."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.npy"
        np.save(path, data)
        args = [
            sys.executable,
            str(SCRIPT),
            "--grpc",
            endpoint,
            "--http",
            endpoint,
            "--model",
            model,
            "--input",
            str(path),
            "--cases",
            ",".join(cases),
        ]
        for key, value in (headers or {}).items():
            args += ["--header", f"{key}={value}"]
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
