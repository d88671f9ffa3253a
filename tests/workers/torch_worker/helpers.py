"""Shared helpers for the torch worker tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np

WORKER_ID = "torch-test-1"
REGION = "eu-test"


def images(batch: int, seed: int = 0) -> np.ndarray:
    """Deterministic float32 inputs of shape [batch, 784]."""
    return np.random.default_rng(seed).standard_normal((batch, 784), dtype=np.float32)


def assert_matches_torch(got: np.ndarray, want: np.ndarray) -> None:
    """Same numbers as local torch (tight tolerance: thread counts may differ in the reduction)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> HttpReply:
    """One HTTP request with the standard library; errors are replies, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return HttpReply(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return HttpReply(error.code, dict(error.headers.items()), error.read())


def assert_matches_batched(got: np.ndarray, want: np.ndarray) -> None:
    """A caller's rows from a merged forward pass vs local torch on that caller's input alone.

    BLAS picks its kernel by the number of rows, so a row computed inside a batch of 16 may differ
    from the same row computed alone in the last bits (a few 1e-7 for the demo MLP): the
    tolerance is a little looser than `assert_matches_torch`, far below any real mix-up of rows.
    """
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
