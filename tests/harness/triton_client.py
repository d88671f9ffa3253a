"""Call an OIP endpoint with tritonclient, in a subprocess of its own.

tritonclient registers the same `inference.*` protobuf symbols as meshline's
generated code, so the two cannot share a process. Tests call `triton_infer`,
which runs this module as a script and reads the outputs back as JSON.

Script usage: python -m tests.harness.triton_client REQUEST_JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class TritonCall:
    url: str  # host:port
    protocol: str  # "grpc" or "http"
    model: str
    inputs: dict[str, list[list[float]]]
    headers: dict[str, str] = field(default_factory=dict)
    binary: bool = True  # HTTP only: binary tensor extension vs JSON


@dataclass
class TritonResult:
    outputs: dict[str, np.ndarray]
    error: str = ""


def triton_infer(call: TritonCall) -> TritonResult:
    result = subprocess.run(
        [sys.executable, "-m", "tests.harness.triton_client", json.dumps(asdict(call))],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tritonclient script failed: {result.stderr[-2000:]}")
    payload = json.loads(result.stdout)
    return TritonResult(
        {k: np.asarray(v, dtype=np.float32) for k, v in payload["outputs"].items()},
        payload["error"],
    )


def _run(call: TritonCall) -> dict[str, object]:
    if call.protocol == "grpc":
        import tritonclient.grpc as client
    else:
        import tritonclient.http as client  # type: ignore[no-redef]
    from tritonclient.utils import InferenceServerException

    triton = client.InferenceServerClient(url=call.url)
    inputs = []
    for name, data in call.inputs.items():
        array = np.asarray(data, dtype=np.float32)
        tensor = client.InferInput(name, list(array.shape), "FP32")
        if call.protocol == "grpc":
            tensor.set_data_from_numpy(array)
        else:
            tensor.set_data_from_numpy(array, binary_data=call.binary)
        inputs.append(tensor)
    try:
        result = triton.infer(call.model, inputs, headers=call.headers)
    except InferenceServerException as exc:
        return {"outputs": {}, "error": f"{exc.status()}: {exc.message()}"}
    response = result.get_response()
    names = (
        [o.name for o in response.outputs]
        if call.protocol == "grpc"
        else [o["name"] for o in response["outputs"]]
    )
    return {"outputs": {n: result.as_numpy(n).tolist() for n in names}, "error": ""}


if __name__ == "__main__":
    print(json.dumps(_run(TritonCall(**json.loads(sys.argv[1])))))
