"""ModelRepository: the protocol-neutral core of a shared worker, serving many models at once.

Its agent says which models the worker may serve, and which it should hold loaded, through the
model repository extension (Triton's and KServe's load / unload / index); the gRPC and REST
adapters call this class as they call one model's DataPlane (workers/torch_worker/backend.py).

- The catalog: every model the worker was told about, with its config and phase. A model
  evicted for room stays in it and loads again on its next request; one unloaded on request
  answers NOT_FOUND until it is loaded again.
- Loading runs off the event loop (the other models keep serving), one load at a time, so the
  process's own growth in resident memory measures each model's footprint.
- Make-before-break: loading a changed config loads the new copy beside the old one, swaps,
  and drops the old one once the requests it admitted have finished.
- An unload never fails a request in flight: the model stops admitting (UNAVAILABLE), its
  requests finish, then it is dropped and its memory handed back.
- Under `memory_budget_bytes`, a load first unloads least recently used idle models
  (workers/torch_worker/eviction.py decides which). When every model it could take is busy,
  it waits (up to `room_wait_s`): the models it needs stop admitting requests (new ones wait
  for their next load), finish those in flight, and go; past the wait it fails with
  RESOURCE_EXHAUSTED and the numbers. A model with requests in flight, or with requests
  waiting to run on it (its load just finished), is never unloaded for room.
- Isolation: one model's failure (a raising forward, a file that does not load) is answered to
  its own requests only. A crash of the process cannot be contained here: the activity file
  names the model(s) in a risky call (workers/torch_worker/activity.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from meshline.quantity import gib
from workers.oip.errors import (
    InferenceError,
    LoadFailedError,
    ModelLoadError,
    ModelNotFoundError,
    NotReadyError,
    OutOfMemoryBudgetError,
)
from workers.oip.model_file import check_model_file
from workers.torch_worker.activity import FIRST_FORWARD, LOAD, ActivityLog
from workers.torch_worker.batcher import BatchPolicy
from workers.torch_worker.dataplane import (
    EXTENSIONS,
    PLATFORM,
    SERVER_NAME,
    DataPlane,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
)
from workers.torch_worker.eviction import Resident, plan_room
from workers.torch_worker.metrics import SharedMetrics
from workers.torch_worker.model_config import ModelConfig
from workers.torch_worker.runtime import INLINE_BUDGET_S, TorchRuntime

log = logging.getLogger(__name__)

SHARED_EXTENSIONS = (*EXTENSIONS, "model_repository")
T = TypeVar("T")


class ModelPhase(enum.Enum):
    LOADING = "loading"  # its first load runs; requests wait for it
    READY = "ready"
    UNLOADING = "unloading"  # unloaded on request: its requests in flight finish
    EVICTED = "evicted"  # unloaded for room: loads again on its next request
    UNLOADED = "unloaded"  # unloaded on request: NOT_FOUND until loaded again
    FAILED = "failed"  # its last load failed: UNAVAILABLE with the reason


# The model repository extension's states (Triton's words).
INDEX_STATE: dict[ModelPhase, str] = {
    ModelPhase.LOADING: "LOADING",
    ModelPhase.READY: "READY",
    ModelPhase.UNLOADING: "UNLOADING",
    ModelPhase.EVICTED: "UNAVAILABLE",
    ModelPhase.UNLOADED: "UNAVAILABLE",
    ModelPhase.FAILED: "UNAVAILABLE",
}


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    reason: str


@dataclass(frozen=True)
class RepositorySettings:
    """How every model of a shared worker is loaded and run (its flags)."""

    server_version: str
    torch_threads: int = 1
    instances: int = 1
    inline_budget_s: float = INLINE_BUDGET_S
    warmup: bool = True
    memory_budget_bytes: int = 0  # 0: no budget
    # How long a load that needs room waits for busy models to finish their requests.
    room_wait_s: float = 30.0


class ReadinessSink(Protocol):
    """Told when a model becomes ready or stops being ready (gRPC health per model)."""

    async def set_model_ready(self, model_name: str, ready: bool) -> None: ...


class LoadedModel:
    """One loaded copy of a model: its data plane, its memory, and the requests it admitted."""

    def __init__(self, config: ModelConfig, dataplane: DataPlane, footprint_bytes: int) -> None:
        self.config = config
        self.dataplane = dataplane
        self.footprint_bytes = footprint_bytes
        self.in_flight = 0
        self.last_used = 0
        self.forwarded = False  # a forward pass for a client has succeeded
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self, tick: int) -> None:
        self.in_flight += 1
        self.last_used = tick
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drained(self) -> None:
        """Returns once no request it admitted is still running."""
        await self._idle.wait()

    @property
    def busy(self) -> int:
        return self.dataplane.runtime.busy

    def close(self) -> None:
        self.dataplane.close()
        self.dataplane.runtime.close()


@dataclass
class CatalogEntry:
    config: ModelConfig
    phase: ModelPhase
    reason: str = ""
    loaded: LoadedModel | None = None
    replacing: bool = False  # a changed config loads while `loaded` serves
    # Requests waiting for this model's load (and, once it is loaded, to start on it).
    waiting: int = 0
    # Chosen to make room by a load that waits: `loaded` admits no new request and goes once
    # idle; `yield_over` is set when that ends (unloaded, or the load no longer needs it).
    yielding: bool = False
    yield_over: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.yield_over.set()

    def resident(self) -> Resident | None:
        loaded = self.loaded
        if loaded is None:
            return None
        return Resident(
            name=self.config.name,
            footprint_bytes=loaded.footprint_bytes,
            in_flight=loaded.in_flight,
            last_used=loaded.last_used,
            pinned=self.replacing,
            waiting=self.waiting,
            releasing=self.phase is ModelPhase.UNLOADING,
            yielding=self.yielding,
        )

    def start_yielding(self) -> None:
        self.yielding = True
        self.yield_over.clear()

    def stop_yielding(self) -> None:
        self.yielding = False
        self.yield_over.set()


def build_runtime(config: ModelConfig, settings: RepositorySettings) -> TorchRuntime:
    """Load (and warm up) one model; blocking: runs on a thread. ModelLoadError if it fails."""
    runtime = TorchRuntime(
        config.path,
        config.signature,
        settings.torch_threads,
        settings.instances,
        inline_budget_s=settings.inline_budget_s,
    )
    runtime.load()
    if settings.warmup:
        try:
            runtime.warmup()
        except BaseException:
            runtime.close()
            raise
    return runtime


def current_rss_bytes() -> int:
    """This process's resident memory now (/proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def release_memory() -> None:
    """Hand the heap a dropped model freed back to the system.

    Dropping the last reference frees a model at once (tests/workers/torch_worker checks that
    its module goes without a collection): no gc.collect(), which takes ~0.3 s with torch
    loaded and would hold every other model's requests.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)  # glibc; elsewhere there is nothing to call


class ModelRepository:
    """Many models behind one InferenceBackend; load / unload / index for the agent."""

    def __init__(
        self,
        settings: RepositorySettings,
        metrics: SharedMetrics,
        readiness: ReadinessSink,
        activity: ActivityLog,
        rss: Callable[[], int] = current_rss_bytes,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._readiness = readiness
        self._activity = activity
        self._rss = rss
        self._catalog: dict[str, CatalogEntry] = {}
        self._operations: dict[str, asyncio.Lock] = {}  # load / unload of one model, in turn
        self._memory = asyncio.Lock()  # room-making and loading, one model at a time
        self._retiring: list[LoadedModel] = []  # replaced copies finishing their requests
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tick = 0
        # Set whenever memory may have become free to take (a model went idle, a request
        # waiting for a load started, a copy was dropped): a load waiting for room looks again.
        self._room_changed = asyncio.Event()
        self._draining = False
        self._load_thread = ThreadPoolExecutor(1, thread_name_prefix="model-load")
        self._loaded_before = False  # a load ran in this process (its setup is paid)
        self._loads_running = 0
        metrics.set_budget(settings.memory_budget_bytes)

    # ---- health and metadata (InferenceBackend) -----------------------------------------

    @property
    def priority_levels(self) -> int:
        return 0  # no queue in shared mode: every request runs as it comes

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        """The worker takes requests (even with no model loaded: its agent loads them)."""
        return not self._draining

    def resolve(self, name: str, version: str = "") -> None:
        self._entry(name, version)

    def model_ready(self, name: str, version: str = "") -> bool:
        entry = self._known(name, version)
        return entry.phase is ModelPhase.READY and not self._draining

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata(SERVER_NAME, self.settings.server_version, SHARED_EXTENSIONS)

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        config = self._entry(name, version).config
        return ModelMetadata(
            name=name,
            versions=(config.version,),
            platform=PLATFORM,
            inputs=config.signature.inputs,
            outputs=config.signature.outputs,
        )

    def _known(self, name: str, version: str) -> CatalogEntry:
        entry = self._catalog.get(name)
        if entry is None:
            raise ModelNotFoundError(
                f"unknown model '{name}': this worker was never asked to load it"
            )
        if version and version != entry.config.version:
            raise ModelNotFoundError(
                f"model '{name}' has no version '{version}' here "
                f"(this worker serves version '{entry.config.version}')"
            )
        return entry

    def _entry(self, name: str, version: str) -> CatalogEntry:
        """The model's entry, unless it is unknown or was unloaded (NOT_FOUND)."""
        entry = self._known(name, version)
        if entry.phase is ModelPhase.UNLOADED:
            raise ModelNotFoundError(f"model '{name}' was unloaded from this worker")
        return entry

    # ---- inference -----------------------------------------------------------------------

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Run on the model's loaded copy (loading an evicted model first)."""
        name = request.model_name
        loaded = self._admit(name, request.model_version)
        if loaded is None:
            loaded = await self._admit_after_load(name, request.model_version)
        try:
            if loaded.forwarded:
                return await loaded.dataplane.infer(request)
            with self._activity.risky(name, loaded.config.version, FIRST_FORWARD):
                response = await loaded.dataplane.infer(request)
            loaded.forwarded = True
            return response
        finally:
            loaded.leave()
            if loaded.in_flight == 0:
                self._room_changed.set()

    async def _admit_after_load(self, name: str, version: str) -> LoadedModel:
        """Wait for the model's (re)load, then admit the request.

        Counted as waiting on the model from now until admitted, so that the copy its load
        makes is not unloaded for room before the request starts on it.
        """
        entry = self._entry(name, version)
        entry.waiting += 1
        self._report_waiting(entry)
        try:
            await self._run_shielded(self._load(name, None, on_demand=True))
            loaded = self._admit(name, version)
        finally:
            entry.waiting -= 1
            self._report_waiting(entry)
            self._room_changed.set()
        if loaded is None:  # the waiting count holds the copy: not reached, kept as a guard
            raise NotReadyError(f"model '{name}' was unloaded before this request could run")
        return loaded

    def _report_waiting(self, entry: CatalogEntry) -> None:
        """Requests waiting for a model's load are its queued requests (the agent reads them)."""
        self._metrics.set_queued(entry.config.name, entry.waiting)

    def _admit(self, name: str, version: str) -> LoadedModel | None:
        """Count the request on the model's loaded copy (synchronously: an eviction or an
        unload decided afterwards sees it); None when the model must load first (it is not
        loaded, or it is yielding its memory to another model's load)."""
        if self._draining:
            raise NotReadyError("the worker is shutting down")
        entry = self._entry(name, version)
        if entry.phase is ModelPhase.UNLOADING:
            raise NotReadyError(f"model '{name}' is being unloaded: it takes no new requests")
        if entry.phase is ModelPhase.FAILED:
            raise NotReadyError(f"model '{name}' is not available: {entry.reason}")
        loaded = entry.loaded
        if loaded is None or entry.yielding:
            return None
        self._tick += 1
        loaded.enter(self._tick)
        return loaded

    def in_flight(self, name: str) -> int:
        """Requests `name` admitted and not yet answered (its replaced copy's included)."""
        entry = self._catalog.get(name)
        copies = [entry.loaded] if entry is not None and entry.loaded is not None else []
        copies += [old for old in self._retiring if old.config.name == name]
        return sum(c.in_flight for c in copies)

    # ---- repository extension ------------------------------------------------------------

    def index(self, ready_only: bool = False) -> list[IndexEntry]:
        """Every model the worker was told about, by name, with its state and why."""
        return [
            IndexEntry(name, e.config.version, INDEX_STATE[e.phase], e.reason)
            for name, e in sorted(self._catalog.items())
            if not ready_only or e.phase is ModelPhase.READY
        ]

    async def load(self, name: str, config: ModelConfig | None) -> None:
        """Load `name` with `config` (None: as it was last configured); returns once it serves.

        Idempotent: the same config again changes nothing. A changed config is loaded beside
        the serving copy and replaces it. Errors: LoadFailedError (the file does not load),
        OutOfMemoryBudgetError, ModelNotFoundError (None for a model never configured).
        A cancelled caller does not cancel the load.
        """
        await self._run_shielded(self._load(name, config, on_demand=False))

    async def unload(self, name: str) -> None:
        """Stop admitting requests to `name`, let those in flight finish, then drop it."""
        await self._run_shielded(self._unload(name))

    async def _run_shielded(self, operation: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(operation)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its caller may have gone

    def _operation_lock(self, name: str) -> asyncio.Lock:
        return self._operations.setdefault(name, asyncio.Lock())

    async def _load(self, name: str, config: ModelConfig | None, on_demand: bool) -> None:
        if self._draining:
            raise NotReadyError("the worker is shutting down: it loads no models")
        async with self._operation_lock(name):
            entry = self._catalog.get(name)
            if on_demand:
                if entry is None or entry.phase is ModelPhase.UNLOADED:
                    raise ModelNotFoundError(f"model '{name}' was unloaded from this worker")
                if entry.phase is ModelPhase.FAILED:
                    raise NotReadyError(f"model '{name}' is not available: {entry.reason}")
                while entry.loaded is not None and entry.yielding:
                    await entry.yield_over.wait()  # unloaded for room, or kept after all
                if entry.loaded is not None:
                    return  # another request loaded it meanwhile, or it was kept
                config = entry.config
            elif config is None:
                if entry is None:
                    raise ModelNotFoundError(
                        f"model '{name}' is not in this worker's repository: load it with its "
                        "config (the 'config' parameter)"
                    )
                config = entry.config
            if (
                entry is not None
                and entry.phase is ModelPhase.READY
                and entry.config == config
                and entry.loaded is not None
            ):
                return
            await self._load_locked(name, entry, config, on_demand)

    async def _load_locked(
        self, name: str, entry: CatalogEntry | None, config: ModelConfig, on_demand: bool
    ) -> None:
        if entry is None:
            entry = self._catalog[name] = CatalogEntry(config, ModelPhase.LOADING)
            self._metrics.bind(name, config.version)
        replacing = entry.loaded is not None and entry.phase is ModelPhase.READY
        if replacing:
            entry.replacing = True
            entry.reason = f"loading a new config (version {config.version}); this one serves"
        else:
            entry.config, entry.phase, entry.reason = config, ModelPhase.LOADING, ""
            self._metrics.bind(name, config.version)
        try:
            loaded = await self._build(name, config)
        except InferenceError as exc:
            if replacing:
                entry.reason = f"loading version {config.version} failed: {exc.message}"
            elif on_demand and isinstance(exc, OutOfMemoryBudgetError):
                entry.phase, entry.reason = ModelPhase.EVICTED, exc.message
            else:
                entry.phase, entry.reason = ModelPhase.FAILED, exc.message
            log.warning("%s", exc.message)
            raise
        finally:
            entry.replacing = False
        old = entry.loaded
        self._tick += 1  # a load counts as a use: a model just loaded is not the first to go
        loaded.last_used = self._tick
        entry.config, entry.loaded = config, loaded
        entry.phase, entry.reason = ModelPhase.READY, ""
        self._metrics.set_memory(name, config.version, loaded.footprint_bytes)
        await self._readiness.set_model_ready(name, True)
        if old is None:
            return
        self._retiring.append(old)
        try:
            await old.drained()
        finally:
            self._retiring.remove(old)
            self._drop(old)
        log.info("model %s: the replaced copy finished its requests and was dropped", name)

    async def _build(self, name: str, config: ModelConfig) -> LoadedModel:
        """Make room, load on a thread, measure: one model at a time."""
        async with self._memory:
            try:
                check_model_file(config.path)
                file_bytes = config.path.stat().st_size
            except (ModelLoadError, OSError) as exc:
                raise LoadFailedError(f"model '{name}' failed to load: {exc}") from exc
            # Before it loads, a model is taken at its declared size, else at its file's: the
            # weights are most of a TorchScript file and all of it ends up in memory.
            needed = config.memory_bytes or file_bytes
            victims = await self._make_room(name, needed)
            for victim in victims:
                await self._readiness.set_model_ready(victim, False)
            before = self._rss()
            with self._activity.risky(name, config.version, LOAD):
                try:
                    runtime = await self._in_load_thread(config)
                except ModelLoadError as exc:
                    raise LoadFailedError(f"model '{name}' failed to load: {exc}") from exc
                except Exception as exc:  # whatever torch raises: this model's failure alone
                    raise LoadFailedError(
                        f"model '{name}' failed to load: {type(exc).__name__}: {exc}"
                    ) from exc
            grown = self._rss() - before
            # The process's first load also pays torch's one-time setup (at 1,000 packed demo
            # models: ~12 MiB against ~1 MiB for every later load). That is the process's
            # cost, which the agent counts once as the shared worker's own; charged to the
            # first model it made the largest growth ever seen for that artifact, which
            # capacity then planned every packed copy of it at.
            first_load, self._loaded_before = not self._loaded_before, True
            footprint = config.memory_bytes or (needed if first_load else max(grown, needed))
            dataplane = DataPlane(
                name,
                config.version,
                runtime,
                self.settings.server_version,
                policy=BatchPolicy(instances=self.settings.instances),
                observer=self._metrics.bind(name, config.version),
            )
            log.info(
                "loaded model %s version %s from %s: %s (the process grew by %s)",
                name,
                config.version,
                config.path,
                gib(footprint),
                gib(max(grown, 0)),
            )
            return LoadedModel(config, dataplane, footprint)

    async def _in_load_thread(self, config: ModelConfig) -> TorchRuntime:
        """build_runtime on the repository's own thread (not the loop's default executor, which
        asyncio.run waits for at exit: a load still running must not hold a shutdown)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._load_thread, self._build_counted, config)

    def _build_counted(self, config: ModelConfig) -> TorchRuntime:
        # Counted on the load thread itself (its only writer): a caller that stops waiting
        # does not stop the load.
        self._loads_running += 1
        try:
            return build_runtime(config, self.settings)
        finally:
            self._loads_running -= 1

    async def _make_room(self, name: str, needed: int) -> tuple[str, ...]:
        """Unload what the plan says, waiting for busy models first if it must; the models
        unloaded. OutOfMemoryBudgetError when it cannot fit, or the wait runs out."""
        loop = asyncio.get_running_loop()
        wait_s = self.settings.room_wait_s
        deadline = loop.time() + wait_s
        entry = self._catalog[name]  # the load made it
        try:
            while True:
                self._room_changed.clear()
                plan = plan_room(name, needed, self._residents(), self.settings.memory_budget_bytes)
                if plan.fits:
                    for victim in plan.evict:  # no await since the plan: all still idle
                        self._evict(victim, name)
                    return plan.evict
                if plan.refused:
                    raise OutOfMemoryBudgetError(plan.refusal)
                self._yield_for(name, plan.drain)
                if not entry.replacing:  # listed as LOADING, and why it takes long
                    entry.reason = f"waiting for room: {plan.refusal}"
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise OutOfMemoryBudgetError(
                        f"{plan.refusal}; waited {wait_s:g} s for their requests to finish"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room_changed.wait(), remaining)
        finally:
            self._stop_yielding()  # whatever the plan no longer needs admits again
            if not entry.replacing:
                entry.reason = ""

    def _residents(self) -> list[Resident]:
        residents = [r for e in self._catalog.values() if (r := e.resident()) is not None]
        return residents + [self._retiring_resident(old) for old in self._retiring]

    def _yield_for(self, name: str, drain: tuple[str, ...]) -> None:
        """The models in `drain`, and only those, stop admitting: `name`'s load waits for them."""
        for model, entry in self._catalog.items():
            if model in drain and not entry.yielding:
                entry.start_yielding()
                log.info(
                    "model %s: admits no new request until '%s' has loaded (its %d request(s) "
                    "in flight finish, then it is unloaded for room)",
                    model,
                    name,
                    entry.loaded.in_flight if entry.loaded is not None else 0,
                )
            elif model not in drain and entry.yielding:
                entry.stop_yielding()

    def _stop_yielding(self) -> None:
        for entry in self._catalog.values():
            if entry.yielding:
                entry.stop_yielding()

    @staticmethod
    def _retiring_resident(old: LoadedModel) -> Resident:
        return Resident(old.config.name, old.footprint_bytes, old.in_flight, releasing=True)

    def _evict(self, name: str, for_model: str) -> None:
        entry = self._catalog[name]
        loaded = entry.loaded
        if loaded is None or loaded.in_flight:  # plan_room picks idle models only
            raise AssertionError(f"model '{name}' is not idle and cannot be evicted")
        entry.loaded = None
        entry.stop_yielding()  # its waiting requests go on to load it again
        entry.phase = ModelPhase.EVICTED
        entry.reason = (
            f"unloaded to make room for '{for_model}' (the least recently used idle model); "
            "loads again on its next request"
        )
        self._drop(loaded)
        log.info("model %s: %s", name, entry.reason)

    async def _unload(self, name: str) -> None:
        async with self._operation_lock(name):
            entry = self._catalog.get(name)
            if entry is None:
                raise ModelNotFoundError(
                    f"unknown model '{name}': this worker was never asked to load it"
                )
            loaded = entry.loaded
            if loaded is not None:
                entry.phase = ModelPhase.UNLOADING
                entry.reason = f"{loaded.in_flight} request(s) in flight finish first"
                log.info("unloading model %s: %s", name, entry.reason)
                await self._readiness.set_model_ready(name, False)
                await loaded.drained()
                entry.loaded = None
                self._drop(loaded)
            entry.phase, entry.reason = ModelPhase.UNLOADED, "unloaded on request"
            await self._readiness.set_model_ready(name, False)
            log.info("model %s unloaded", name)

    def _drop(self, loaded: LoadedModel) -> None:
        """Close a copy nobody uses any more and give its memory back."""
        loaded.close()
        name, version = loaded.config.name, loaded.config.version
        entry = self._catalog.get(name)
        current = entry.loaded if entry is not None else None
        if current is None or current.config.version != version:
            self._metrics.forget_memory(name, version)
        release_memory()
        self._room_changed.set()

    # ---- shutdown ------------------------------------------------------------------------

    def start_draining(self) -> None:
        """Not ready, and no new request or load from now on; running ones continue."""
        self._draining = True

    @property
    def busy(self) -> int:
        """Forward passes and loads running right now, over every model."""
        copies = [e.loaded for e in self._catalog.values() if e.loaded is not None]
        return sum(c.busy for c in [*copies, *self._retiring]) + self._loads_running

    def close(self) -> None:
        self._load_thread.shutdown(wait=False, cancel_futures=True)
        for entry in self._catalog.values():
            if entry.loaded is not None:
                entry.loaded.close()
        for old in self._retiring:
            old.close()
