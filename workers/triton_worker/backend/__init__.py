"""The Triton Python-backend model (model.py), copied into each generated model repository.

It runs inside Triton's Python backend stub, not in meshline's process: it imports nothing from
meshline. This package exists so the file ships with the wheel and can be found by path.
"""

from pathlib import Path

MODEL_FILE = Path(__file__).with_name("model.py")
