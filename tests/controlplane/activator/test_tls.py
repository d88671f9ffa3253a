"""The activator's key reaches Python's ssl module without a file on disk (or, where there is
no anonymous memory file, only in a private 0600 file for the moment it is read)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from controlplane.activator.tls import HAS_MEMFD, in_memory_file


@pytest.mark.parametrize("anonymous", [True, False] if HAS_MEMFD else [False])
def test_the_path_reads_the_data_then_is_gone(anonymous: bool) -> None:
    with in_memory_file(b"chain and key", anonymous=anonymous) as path:
        assert Path(path).read_bytes() == b"chain and key"
        if anonymous:
            assert path.startswith("/proc/self/fd/")
        else:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not Path(path).exists()
