"""`meshline models ...`: push a model file as a version, list, inspect and delete versions."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer
import yaml
from google.protobuf import json_format
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from cli.client.api import api_client, call, fail, resolve_address
from cli.client.render import OutputFormat, to_document
from meshline.v1 import api_pb2
from meshline.v1.resources_pb2 import ModelSignature, ModelVersion, TensorSpec

CHUNK_BYTES = 1 << 20

app = typer.Typer(
    name="models",
    help="The model registry: push files as versions, list, inspect and delete versions.",
    no_args_is_help=True,
)
console = Console() if sys.stdout.isatty() else Console(width=200)
# Progress goes to stderr, so `-o json` output stays clean.
progress_console = Console(stderr=True)

AddressOption = Annotated[
    str | None, typer.Option("--address", help="Control plane API (host:port)")
]


def parse_tensor(text: str, flag: str) -> TensorSpec:
    """NAME:DATATYPE:SHAPE with SHAPE as comma-separated sizes (-1 = any), e.g. x:FP32:-1,784."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise fail(f"{flag} {text!r}: expected NAME:DATATYPE:SHAPE, e.g. input:FP32:-1,784")
    name, datatype, shape = parts
    try:
        sizes = [int(s) for s in shape.split(",") if s.strip()]
    except ValueError:
        raise fail(f"{flag} {text!r}: the shape must be integers, e.g. -1,784") from None
    return TensorSpec(name=name, datatype=datatype.upper(), shape=sizes)


def read_signature(path: Path) -> ModelSignature:
    """A signature from YAML/JSON: `{inputs: [...], outputs: [...]}`, or a version or a Model
    document holding one (its first version's)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"{path}: {exc}") from None
    if isinstance(data, dict) and data.get("kind") == "Model":
        versions = (data.get("spec") or {}).get("versions") or [{}]
        data = versions[0]
    if isinstance(data, dict) and "signature" in data:
        data = data["signature"]
    try:
        return json_format.ParseDict(data or {}, ModelSignature())
    except json_format.ParseError as exc:
        raise fail(f"{path}: not a signature ({exc})") from None


def sha256_of(path: Path, progress: Progress) -> str:
    """The file's sha256, read once before the upload (the server checks it against the bytes)."""
    digest = hashlib.sha256()
    task = progress.add_task("hashing", total=path.stat().st_size)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            progress.advance(task, len(chunk))
    return digest.hexdigest()


def push_requests(
    path: Path, header: api_pb2.PushModelVersionHeader, progress: Progress
) -> Iterator[api_pb2.PushModelVersionRequest]:
    """The header, then the file in chunks, advancing the progress bar as each one goes."""
    yield api_pb2.PushModelVersionRequest(header=header)
    task = progress.add_task("uploading", total=header.size_bytes)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield api_pb2.PushModelVersionRequest(chunk=chunk)
            progress.advance(task, len(chunk))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=progress_console,
        transient=not progress_console.is_terminal,
    )


@app.command()
def push(
    file: Annotated[Path, typer.Argument(help="The model file (TorchScript)")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (created if new)")],
    version: Annotated[str, typer.Option("--version", "-v", help="Version name")],
    runtime: Annotated[str, typer.Option(help="torch or triton")] = "torch",
    signature_from: Annotated[
        Path | None,
        typer.Option("--signature-from", help="YAML with inputs/outputs (or a Model document)"),
    ] = None,
    input: Annotated[
        list[str] | None, typer.Option("--input", help="NAME:DATATYPE:SHAPE, e.g. x:FP32:-1,784")
    ] = None,
    output: Annotated[
        list[str] | None, typer.Option("--output", help="NAME:DATATYPE:SHAPE")
    ] = None,
    address: AddressOption = None,
) -> None:
    """Upload FILE as version VERSION of MODEL (streamed, sha256-checked by the server)."""
    if not file.is_file():
        raise fail(f"{file}: no such file")
    signature = read_signature(signature_from) if signature_from else ModelSignature()
    signature.inputs.extend(parse_tensor(t, "--input") for t in input or ())
    signature.outputs.extend(parse_tensor(t, "--output") for t in output or ())
    if not signature.inputs or not signature.outputs:
        raise fail("a version needs a signature: --signature-from FILE, or --input and --output")
    addr = resolve_address(address)
    with _progress() as progress:
        header = api_pb2.PushModelVersionHeader(
            model=model,
            version=ModelVersion(name=version, runtime=runtime, signature=signature),
            sha256=sha256_of(file, progress),
            size_bytes=file.stat().st_size,
        )
        with api_client(addr) as api:
            reply = call(
                addr,
                lambda: api.models.PushModelVersion(push_requests(file, header, progress)),
            )
    v = reply.version
    console.print(
        f"model/{model} version {v.name} {reply.action}: sha256 {v.sha256}, "
        f"{_size(v.size_bytes)}, {v.framework}",
        highlight=False,
    )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _origin(v: ModelVersion) -> str:
    if v.HasField("external"):
        return f"external {v.external.grpc_address}"
    if v.HasField("huggingface"):
        hf = v.huggingface
        return f"hf://{hf.repo_id}/{hf.filename}@{hf.revision or 'main'}"
    return v.path or "pushed"


def versions_table(rows: Sequence[tuple[str, ModelVersion]]) -> Table:
    table = Table(
        "MODEL",
        "VERSION",
        "RUNTIME",
        "FRAMEWORK",
        "SIZE",
        "SHA256",
        "CREATED",
        "ORIGIN",
        box=None,
        header_style="bold",
    )
    for model, v in rows:
        table.add_row(
            model,
            v.name,
            v.runtime,
            v.framework or "-",
            _size(v.size_bytes) if v.sha256 else "-",
            v.sha256[:12] or "-",
            v.created_at or "-",
            _origin(v),
        )
    return table


@app.command("list")
def list_versions(address: AddressOption = None) -> None:
    """Every model's versions with their registry metadata."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        models = call(addr, lambda: api.models.ListModels(api_pb2.ListModelsRequest())).models
    console.print(versions_table([(m.metadata.name, v) for m in models for v in m.spec.versions]))


MIN_DIGEST_PREFIX = 6


def _full_digest(addr: str, given: str) -> str:
    """`given` if it is a whole digest, else the one registered digest it is a prefix of."""
    if len(given) == 64:
        return given  # the server names what is wrong with it
    if len(given) < MIN_DIGEST_PREFIX or any(c not in "0123456789abcdef" for c in given):
        raise fail(
            f"'{given}' is neither a sha256 digest (64 lowercase hex digits) nor a prefix of "
            f"one (at least {MIN_DIGEST_PREFIX} lowercase hex digits, as `models list` shows)"
        )
    with api_client(addr) as api:
        models = call(addr, lambda: api.models.ListModels(api_pb2.ListModelsRequest())).models
    known = {v.sha256 for m in models for v in m.spec.versions if v.sha256}
    matches = sorted(d for d in known if d.startswith(given))
    if not matches:
        raise fail(f"no registered artifact's sha256 starts with '{given}'")
    if len(matches) > 1:
        raise fail(f"'{given}' is the start of {len(matches)} digests: {', '.join(matches)}")
    return matches[0]


@app.command()
def versions(
    model: Annotated[str, typer.Argument()],
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """The versions of MODEL."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.models.ListModelVersions(api_pb2.ListModelVersionsRequest(model=model)),
        )
    if output is OutputFormat.table:
        console.print(versions_table([(model, v) for v in reply.versions]))
    else:
        _print_data([_version_data(model, v) for v in reply.versions], output)


@app.command()
def get(
    model: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.yaml,
    address: AddressOption = None,
) -> None:
    """Inspect one version: origin, artifact, signature, and the deployments that use it."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.models.GetModelVersion(
                api_pb2.GetModelVersionRequest(model=model, version=version)
            ),
        )
    if output is OutputFormat.table:
        console.print(versions_table([(model, reply.version)]))
        console.print(f"used by: {', '.join(reply.used_by) or 'nothing'}", highlight=False)
    else:
        data = _version_data(model, reply.version)
        data["used_by"] = list(reply.used_by)
        _print_data(data, output)


def _version_data(model: str, version: ModelVersion) -> dict[str, object]:
    body = to_document(version)
    body.pop("kind")
    return {"model": model, **body}


def _print_data(data: object, fmt: OutputFormat) -> None:
    """Straight to stdout: rich would wrap long lines (paths, digests) and break YAML."""
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@app.command("delete-version")
def delete_version(
    model: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    address: AddressOption = None,
) -> None:
    """Delete a version no deployment uses (its artifact too, when nothing else shares it)."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.models.DeleteModelVersion(
                api_pb2.DeleteModelVersionRequest(model=model, version=version)
            ),
        )
    notes = []
    if reply.artifact_removed:
        notes.append("artifact removed")
    if reply.model_deleted:
        notes.append(f"it was the last version: model/{model} deleted")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    console.print(f"model/{model} version {version} deleted{suffix}", highlight=False)


@app.command()
def pull(
    sha256: Annotated[str, typer.Argument(help="The artifact's sha256")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write it")],
    address: AddressOption = None,
) -> None:
    """Download an artifact by sha256, or a unique prefix of it as `models list` shows
    (checked after download)."""
    addr = resolve_address(address)
    sha256 = _full_digest(addr, sha256)
    digest = hashlib.sha256()
    partial = out.with_name(out.name + ".part")
    with api_client(addr) as api, _progress() as progress, partial.open("wb") as f:
        task = progress.add_task("download", total=None)

        def fetch() -> None:
            for message in api.models.DownloadArtifact(
                api_pb2.DownloadArtifactRequest(sha256=sha256)
            ):
                if message.size_bytes:
                    progress.update(task, total=message.size_bytes)
                f.write(message.chunk)
                digest.update(message.chunk)
                progress.advance(task, len(message.chunk))

        try:
            call(addr, fetch)
        except typer.Exit:
            partial.unlink(missing_ok=True)
            raise
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise fail(f"downloaded bytes hash to {digest.hexdigest()}, expected {sha256}")
    partial.replace(out)
    console.print(f"{out}: sha256 {sha256}", highlight=False)
