"""The one line that says why a worker died, from its log."""

from __future__ import annotations

from pathlib import Path

from meshline.process.children import RUN_MARKER, exit_reason, mark_failure

# The end of a real tritonserver log whose model file is not TorchScript (shortened).
TRITON_LOG = """I1201 19:44:56.610000 21260 cache_manager.cc:480] "Create CacheManager"
E1201 19:44:56.616156 21260 server.cc:241] "CudaDriverHelper has not been initialized."
E1201 19:44:59.357308 21260 model_lifecycle.cc:642] "failed to load 'bad' version 1: \
Internal: RuntimeError: model file /m/bad.pt is not a loadable TorchScript archive\\n\\nAt:\\n  \
model.py(124): __init__\\n"
I1201 19:44:59.357834 21260 server.cc:336] "All models are stopped, unloading models"
error: creating server: Internal - failed to load all models
"""


def test_tritons_generic_last_line_gets_the_real_cause(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text(TRITON_LOG)
    assert exit_reason(log) == (
        "error: creating server: Internal - failed to load all models (failed to load 'bad' "
        "version 1: Internal: RuntimeError: model file /m/bad.pt is not a loadable TorchScript "
        "archive)"
    )


def test_a_plain_last_line_is_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("starting\ntorch_worker: error: model file not found: /m/gone.pt\n")
    assert exit_reason(log) == "torch_worker: error: model file not found: /m/gone.pt"


def test_a_library_line_after_the_workers_own_error_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text(
        "torch_worker: error: model file /m/x.pt does not fit its signature: bad shape\n"
        "E1201 19:53:47.439816   25975 ev_epoll1_linux.cc:373] (event_engine) Epoll1Poller "
        "encountered epoll_wait error: Bad file descriptor\n"
    )
    assert exit_reason(log) == (
        "torch_worker: error: model file /m/x.pt does not fit its signature: bad shape"
    )


def test_no_log_no_reason(tmp_path: Path) -> None:
    assert exit_reason(tmp_path / "missing.log") == ""


def test_only_the_last_run_is_read(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text(
        f"{RUN_MARKER}python -m workers.triton_worker\n{TRITON_LOG}"
        f"{RUN_MARKER}python -m workers.torch_worker\nTraceback (most recent call last):\n"
        "RuntimeError: out of memory\n"
    )
    assert exit_reason(log) == "RuntimeError: out of memory"


def test_a_start_that_failed_is_its_own_reason(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text(f"{RUN_MARKER}python -m workers.torch_worker\nold line\n")
    mark_failure(log, "cannot start the worker: runtime 'onnx' has no worker process")
    assert exit_reason(log) == "cannot start the worker: runtime 'onnx' has no worker process"
