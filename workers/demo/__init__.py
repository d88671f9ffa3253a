"""Demo model for meshline: a seeded MLP saved as TorchScript (see workers/demo/model.py)."""

from workers.demo.model import (
    DEMO_SIGNATURE,
    build_faulty_mlp,
    build_mlp,
    build_slow_mlp,
    demo_signature_json,
)

__all__ = [
    "DEMO_SIGNATURE",
    "build_faulty_mlp",
    "build_mlp",
    "build_slow_mlp",
    "demo_signature_json",
]
