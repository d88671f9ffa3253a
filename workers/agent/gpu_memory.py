"""GPU memory as nvidia-smi reports it: the parser (pure) and one bounded query (I/O).

Only NVIDIA GPUs are seen, and only where nvidia-smi is on PATH; a machine without one has no
GPUs as far as meshline knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from meshline.process import children

MIB = 1024 * 1024
NVIDIA_SMI_ARGS = (
    "--query-gpu=name,memory.total,memory.used",
    "--format=csv,noheader,nounits",
)


@dataclass(frozen=True)
class Gpu:
    name: str
    total_bytes: int
    used_bytes: int


class GpuQueryError(Exception):
    """nvidia-smi did not answer (in time), failed, or printed something unexpected."""


def _mib(field: str) -> int:
    """A memory figure in MiB; 0 where nvidia-smi has none (`[N/A]`, `[Not Supported]`)."""
    field = field.strip()
    if field.startswith("[") and field.endswith("]"):
        return 0
    if not field.isdigit():
        raise ValueError(f"not a memory figure in MiB: {field!r}")
    return int(field) * MIB


def parse_nvidia_smi(csv: str) -> list[Gpu]:
    """`nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader,nounits`:
    one GPU a line, `name, total MiB, used MiB` (a name may hold commas: fields are counted
    from the right)."""
    gpus: list[Gpu] = []
    for line in csv.splitlines():
        if not line.strip():
            continue
        fields = line.rsplit(",", 2)
        if len(fields) != 3 or not fields[0].strip():
            raise ValueError(f"expected 'name, total, used', got {line.strip()!r}")
        name, total, used = fields
        gpus.append(Gpu(name.strip(), _mib(total), _mib(used)))
    return gpus


async def query_gpus(nvidia_smi: str, timeout_s: float) -> list[Gpu]:
    """Run nvidia-smi once; killed after `timeout_s` (a wedged driver can hang it)."""
    try:
        process = await asyncio.create_subprocess_exec(
            nvidia_smi,
            *NVIDIA_SMI_ARGS,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=children.child_environment(os.environ),
        )
    except OSError as exc:
        raise GpuQueryError(f"cannot run {nvidia_smi}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        raise GpuQueryError(f"{nvidia_smi} did not answer within {timeout_s:g} s") from None
    finally:  # timed out, or the agent is stopping: leave nothing running
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise GpuQueryError(f"{nvidia_smi} exited with code {process.returncode}: {reason}")
    try:
        return parse_nvidia_smi(out.decode(errors="replace"))
    except ValueError as exc:
        raise GpuQueryError(f"unexpected output of {nvidia_smi}: {exc}") from exc
