"""Triton worker: generate a Python-backend model repository for one TorchScript model, then exec
into the real `tritonserver` (so the agent's process handle, signals and exit code are Triton's)."""
