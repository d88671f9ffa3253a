"""Find a file of a HuggingFace model repository in the local cache; never the network.

The cache layout is huggingface_hub's: `<cache>/models--<org>--<name>/refs/<revision>` holds a
commit hash, and `snapshots/<commit>/<filename>` is the file (usually a link into `blobs/`).
Reading it directly keeps meshline free of a huggingface_hub dependency and works offline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from meshline.v1.resources_pb2 import HuggingFaceSource

DEFAULT_REVISION = "main"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class HuggingFaceError(Exception):
    """The repository, revision or file is not in the local cache (or is malformed)."""


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (as huggingface_hub)."""
    env = os.environ if env is None else env
    if cache := env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(cache).expanduser()
    if home := env.get("HF_HOME"):
        return Path(home).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def source_problems(source: HuggingFaceSource) -> list[tuple[str, str]]:
    """(field, message) for each malformed field of `source`."""
    problems = []
    parts = source.repo_id.split("/")
    if not source.repo_id:
        problems.append(("repo_id", "repo_id is required (e.g. org/name)"))
    elif len(parts) > 2 or not all(_REPO_PART.match(p) and ".." not in p for p in parts):
        problems.append(("repo_id", f"'{source.repo_id}' is not a HuggingFace repo id (org/name)"))
    name = source.filename
    if not name:
        problems.append(("filename", "filename is required (the file in the repo, e.g. model.pt)"))
    elif name.startswith("/") or ".." in name.split("/"):
        problems.append(("filename", f"'{name}' must be a path inside the repository"))
    revision = source.revision
    if revision and (revision.startswith("/") or ".." in revision.split("/")):
        problems.append(("revision", f"'{revision}' is not a branch, tag or commit"))
    return problems


def resolve_cached(source: HuggingFaceSource, cache: Path | None = None) -> Path:
    """The cached file `source` names; HuggingFaceError naming what is missing otherwise."""
    cache = hub_cache_dir() if cache is None else cache
    revision = source.revision or DEFAULT_REVISION
    subject = f"huggingface repo '{source.repo_id}' revision '{revision}' file '{source.filename}'"
    repo_dir = cache / f"models--{source.repo_id.replace('/', '--')}"

    def missing(what: str) -> HuggingFaceError:
        return HuggingFaceError(
            f"{subject} is not in the local HuggingFace cache {cache}: {what} (meshline reads "
            "the cache only, never the network: download it first, e.g. `huggingface-cli "
            f"download {source.repo_id} {source.filename} --revision {revision}`, or point "
            "HF_HUB_CACHE / HF_HOME at the cache that has it)"
        )

    if not repo_dir.is_dir():
        raise missing(f"no {repo_dir.name} folder")
    ref = repo_dir / "refs" / revision
    if ref.is_file():
        commit = ref.read_text().strip()
    elif _COMMIT.match(revision) and (repo_dir / "snapshots" / revision).is_dir():
        commit = revision
    else:
        cached = sorted(p.name for p in (repo_dir / "refs").glob("*") if p.is_file())
        raise missing(f"no ref '{revision}' (cached refs: {', '.join(cached) or 'none'})")
    file = repo_dir / "snapshots" / commit / source.filename
    if not file.is_file():  # also a link whose blob was cleaned away
        raise missing(f"no {source.filename} in snapshot {commit}")
    return file.resolve()
