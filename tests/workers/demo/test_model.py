"""The demo MLP: deterministic per seed, different across seeds, runnable by the worker."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from tests.harness.processes import REPO_ROOT
from workers.demo import DEMO_SIGNATURE, build_mlp, demo_signature_json


def run(path: Path, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path))
    with torch.inference_mode():
        out: np.ndarray = module(torch.from_numpy(x)).numpy()
        return out


def weights(path: Path) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return dict(torch.jit.load(str(path)).state_dict())


def test_same_seed_same_weights(tmp_path: Path) -> None:
    a = weights(build_mlp(tmp_path / "a.pt", seed=5))
    b = weights(build_mlp(tmp_path / "sub" / "other-name.pt", seed=5))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_seeds_give_different_outputs(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((4, 784), dtype=np.float32)
    v1 = run(build_mlp(tmp_path / "v1.pt", seed=0), x)
    v2 = run(build_mlp(tmp_path / "v2.pt", seed=1), x)
    assert v1.shape == v2.shape == (4, 10)
    assert v1.dtype == np.float32
    assert not np.allclose(v1, v2)


def test_caller_rng_is_left_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_mlp(tmp_path / "m.pt", seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_signature_matches_the_model() -> None:
    assert json.loads(demo_signature_json()) == DEMO_SIGNATURE
    assert DEMO_SIGNATURE["inputs"][0]["shape"] == [-1, 784]
    assert DEMO_SIGNATURE["outputs"][0]["shape"] == [-1, 10]


def test_command_line_writes_the_same_bytes_every_time(tmp_path: Path) -> None:
    outs = [tmp_path / "one.pt", tmp_path / "two" / "other.pt"]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "workers.demo", "--out", str(out), "--seed", "3"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for out, proc in zip(outs, runs, strict=True):
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert stdout.strip() == str(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    lib = weights(build_mlp(tmp_path / "lib.pt", seed=3))
    assert all(torch.equal(lib[k], v) for k, v in weights(outs[0]).items())
