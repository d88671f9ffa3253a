"""Process entry: check flags and files, write the repository, then become tritonserver.

os.execve keeps the pid, so the agent's process handle, SIGTERM and exit status are Triton's
own. Status 2 for bad flags (including a --repository-dir we may not overwrite), 1 for a missing
model file or an incomplete Triton install; after the exec, whatever Triton returns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

from workers.oip.errors import ModelLoadError
from workers.oip.model_file import check_model_file
from workers.triton_worker import backends, install, launch, model_config, repository
from workers.triton_worker.config import parse_args
from workers.triton_worker.errors import TritonSetupError

Exec = Callable[[str, tuple[str, ...], Mapping[str, str]], object]


def main(argv: Sequence[str] | None = None, execve: Exec = os.execve) -> int:
    """Prepare and exec tritonserver; returns only when something failed before the exec."""
    config = parse_args(argv)
    try:
        check_model_file(config.model_path)
    except ModelLoadError as exc:
        return fail(f"--model-path: {exc}", 1)
    try:
        triton = install.find_install()
        backend_dir = backends.prepare_backend_directory(triton, install.python_version())
        repository.write_repository(config.repository_dir, model_config.build_model_config(config))
    except repository.ForeignDirectoryError as exc:
        return fail(str(exc), 2)
    except (TritonSetupError, OSError) as exc:
        return fail(str(exc), 1)
    note = model_config.unused_batching_note(config)
    if note:
        print(f"triton_worker: note: {note}", file=sys.stderr)
    plan = launch.server_launch(config, triton, backend_dir)
    print(
        f"triton_worker[{config.worker_id}]: region {config.region}: serving "
        f"{config.model_name} (version {config.model_version}) from {config.repository_dir}",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    try:
        execve(str(plan.binary), plan.argv, plan.env)
    except OSError as exc:
        return fail(f"cannot start {plan.binary}: {exc}", 1)
    return 0  # only a test's execve returns


def fail(message: str, status: int) -> int:
    print(f"triton_worker: error: {message}", file=sys.stderr, flush=True)
    return status
