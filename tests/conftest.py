"""Session-wide: the CLI's credentials file is a temporary one, never the real ~/.meshline.

Every process the tests start inherits $MESHLINE_CONFIG pointing here, so `meshline login`,
`meshline up` (its `local` context) and the harness's contexts for test control planes
(tests/harness/credentials.py) write only this file.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from meshline.wire import CONFIG_ENV

_created: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    directory = tempfile.mkdtemp(prefix="meshline-test-config-")
    _created.append(directory)
    os.environ[CONFIG_ENV] = os.path.join(directory, "config")


def pytest_unconfigure(config: pytest.Config) -> None:
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)
