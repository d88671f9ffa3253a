"""Errors that stop a Triton worker before tritonserver starts (status 1, message on stderr)."""

from __future__ import annotations


class TritonSetupError(Exception):
    """The Triton install, backend folder or model repository cannot be prepared."""
