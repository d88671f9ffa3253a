"""Where the tritonserver that ships in the nvidia-pytriton wheel keeps its pieces.

pytriton's own Python backend folder has no stub: pytriton picks one of its per-Python-version
stubs at run time. We do the same for the running interpreter (see backends.py).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from workers.triton_worker.errors import TritonSetupError

STUB_NAME = "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonInstall:
    """Paths inside pytriton's tritonserver folder."""

    root: Path  # .../site-packages/pytriton/tritonserver

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.root / "backends" / "python"

    @property
    def backend_library(self) -> Path:
        return self.python_backend / "libtriton_python.so"

    @property
    def backend_utils(self) -> Path:
        return self.python_backend / "triton_python_backend_utils.py"

    @property
    def cache_directory(self) -> Path:
        return self.root / "caches"

    def stub(self, version: str) -> Path:
        """The Python backend stub built for Python `version` ("3.11"); a clear error if absent."""
        path = self.root / "python_backend_stubs" / version / STUB_NAME
        if not path.is_file():
            stubs = self.root / "python_backend_stubs"
            have = sorted(p.name for p in stubs.iterdir() if p.is_dir()) if stubs.is_dir() else []
            raise TritonSetupError(
                f"no Triton Python backend stub for Python {version} in {stubs} "
                f"(stubs exist for: {', '.join(have) or 'none'})"
            )
        return path

    def check(self) -> None:
        """TritonSetupError naming the first missing piece."""
        for path in (self.binary, self.backend_library, self.backend_utils):
            if not path.is_file():
                raise TritonSetupError(f"incomplete Triton install: {path} is missing")


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def find_install() -> TritonInstall:
    """The tritonserver of the installed nvidia-pytriton package."""
    spec = importlib.util.find_spec("pytriton")  # no import: pytriton's import is slow and noisy
    if spec is None or not spec.submodule_search_locations:
        raise TritonSetupError("nvidia-pytriton is not installed (it ships tritonserver)")
    install = TritonInstall(Path(next(iter(spec.submodule_search_locations))) / "tritonserver")
    install.check()
    return install
