"""A local GGUF model, run in a worker process of its own."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from workbench.engine.models.catalog import Entry
from workbench.engine.running import cpu
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner, RunnerError, next_id
from workbench.engine.running.params import GenParams
from workbench.engine.running.resources import check_memory
from workbench.engine.running.worker import WorkerDied, WorkerProcess, describe_exit

DEFAULT_MAX_CTX = 4096
E = TypeVar("E", p.Counted, p.Tokenized)
CTX_PAD = 256
# How long to wait for a worker that is alive but silent before checking
# again whether it is still there; it never gives up on a live worker.
POLL_S = 0.5


class _Crashed(Exception):
    """The worker died by a signal while loading; ``how`` names the signal."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class LocalRunner(Runner):
    """Runs a catalog entry in a worker process, started on first use.

    The worker keeps the model and its KV cache between runs. It is
    restarted when the context size changes, and after it dies.

    ``cpu_repack`` is the user's setting for llama.cpp's weight repacking
    (``auto``, ``on``, ``off``; see ``engine.running.cpu``). A worker killed by a
    signal during the load's first decode with repacking on is started once
    more with it off; the ``Loaded`` event's note says so, and the choice is
    remembered for this file on this CPU.
    """

    def __init__(
        self, entry: Entry, max_default_ctx: int = DEFAULT_MAX_CTX, cpu_repack: str = "auto"
    ) -> None:
        self.id = entry.id
        self.entry = entry
        self.info = entry.info
        self.max_default_ctx = max_default_ctx
        self.cpu_repack = cpu_repack
        info = entry.info
        self.header = (
            Header(
                title=entry.display_name,
                arch=info.architecture,
                params=info.params_label,
                quant=info.quant,
                size=info.size_label,
                n_ctx_train=info.context_length,
                kind=info.base_or_instruct,
            )
            if info
            else Header(title=entry.display_name)
        )
        self._proc: WorkerProcess | None = None
        self._loaded: p.Loaded | None = None
        self._noted: p.Loaded | None = None
        self._loaded_ctx = 0
        self._load_lock = threading.Lock()
        self._events: queue.Queue[p.Event] = queue.Queue()
        self._run_id = 0
        self._cancel = threading.Event()
        self._count_lock = threading.Lock()
        self._counts: queue.Queue[p.Event] = queue.Queue()
        self._tokenized: queue.Queue[p.Event] = queue.Queue()
        # One token view at a time: answers are matched to requests by id.
        self._tokenize_lock = threading.Lock()

    # -- worker plumbing ------------------------------------------------------

    def _route(self, event: p.Event) -> None:
        if isinstance(event, p.Counted) or (isinstance(event, p.Error) and event.kind == "count"):
            self._counts.put(event)
        elif isinstance(event, p.Tokenized) or (
            isinstance(event, p.Error) and event.kind == "tokenize"
        ):
            self._tokenized.put(event)
        else:
            self._events.put(event)

    def _died(self, error: p.Error) -> None:
        self._loaded = None
        self._events.put(error)
        self._counts.put(error)
        self._tokenized.put(error)

    def _wait(self, box: queue.Queue[p.Event], proc: WorkerProcess) -> p.Event:
        while True:
            try:
                return box.get(timeout=POLL_S)
            except queue.Empty:
                if not proc.alive and proc.exit_message:
                    return p.Error(-1, proc.exit_message, kind="crash")

    def n_ctx_for(self, params: GenParams) -> int:
        if params.n_ctx:
            # llama.cpp rounds a context up to a multiple of 256; say so up front.
            return -(-params.n_ctx // CTX_PAD) * CTX_PAD
        trained = self.info.context_length if self.info and self.info.context_length else 2048
        return min(trained, self.max_default_ctx)

    def repack_choice(self) -> cpu.RepackChoice:
        """Whether the next load repacks weights, and why."""
        return cpu.repack_for(self.cpu_repack, self.entry.path)

    def load(self, n_ctx: int, n_threads: int) -> p.Loaded:
        """Start the worker and load the model, unless already loaded at n_ctx."""
        with self._load_lock:
            proc = self._proc
            if proc and proc.alive and self._loaded and self._loaded_ctx == n_ctx:
                return self._loaded
            if self.info is None:
                raise RunnerError(f"cannot load {self.entry.path.name}: {self.entry.error}")
            if problem := check_memory(self.info, n_ctx):
                raise RunnerError(f"{self.header.title} at n_ctx {n_ctx:,} {problem}")
            choice = self.repack_choice()
            try:
                loaded = self._start(n_ctx, n_threads, choice)
            except _Crashed as crash:
                advice = cpu.crash_advice(cpu.this_cpu(), choice, crash.how)
                if not choice.enabled or crash.how.startswith("killed by signal SIGILL"):
                    raise RunnerError(f"could not load {self.entry.path.name}: {advice}") from None
                off = cpu.RepackChoice(False, choice.setting, "retried after a crash")
                try:
                    loaded = self._start(n_ctx, n_threads, off)
                except _Crashed as again:
                    here = cpu.this_cpu()
                    raise RunnerError(
                        f"could not load {self.entry.path.name}: llama.cpp's worker was "
                        f"{crash.how} with weight repacking on, and {again.how} with it off: "
                        f"the file may be broken, or llama.cpp cannot run it on this CPU "
                        f"({here.name}; features in play: {here.in_play()})"
                    ) from None
                # Only a retry that works is remembered: auto starts with it off next time.
                cpu.remember_crash(self.entry.path, crash.how)
                loaded = dataclasses.replace(
                    loaded,
                    note=f"{advice}. Retried with repacking off, which works: kept off for "
                    "this file on this machine",
                )
            self._loaded, self._loaded_ctx = loaded, n_ctx
            return loaded

    def _start(self, n_ctx: int, n_threads: int, choice: cpu.RepackChoice) -> p.Loaded:
        """A fresh worker with the model loaded; raises ``_Crashed`` if the
        worker dies by a signal on the way (the load ends with its first
        decode), ``RunnerError`` for any other failure."""
        if self._proc:
            self._proc.close()
        self._drain()
        proc = self._proc = WorkerProcess(self._route, self._died)
        self._loaded = None
        proc.send(p.Load(str(self.entry.path), n_ctx, max(1, n_threads), repack=choice.enabled))
        while True:
            event = self._wait(self._events, proc)
            if isinstance(event, p.Loaded):
                return event
            if isinstance(event, p.Error):
                proc.close(timeout=0.5)
                code = proc.proc.returncode
                if event.kind == "crash" and code is not None and code < 0:
                    raise _Crashed(describe_exit(code))
                raise RunnerError(f"could not load {self.entry.path.name}: {event.message}")

    def _drain(self) -> None:
        for box in (self._events, self._counts, self._tokenized):
            while not box.empty():
                box.get_nowait()

    # -- Runner ---------------------------------------------------------------

    def _ask(
        self,
        lock: threading.Lock,
        box: queue.Queue[p.Event],
        make: Callable[[int], p.Request],
        answer: type[E],
        params: GenParams,
    ) -> E:
        """Send a question to the worker and wait for its answer.

        One question of a kind at a time: the worker answers only the newest
        of the counts waiting, so two callers could otherwise share one
        answer. The model is loaded if needed, but a model loaded at another
        context size answers as well: tokens do not depend on it, and a
        reload would end a run in progress.
        """
        with lock:
            if not (self._proc and self._proc.alive and self._loaded):
                self.load(self.n_ctx_for(params), 1)
            proc = self._proc
            assert proc is not None
            req_id = next_id()
            try:
                proc.send(make(req_id))
            except WorkerDied as exc:
                raise RunnerError(str(exc)) from None
            while True:
                event = self._wait(box, proc)
                if isinstance(event, answer) and getattr(event, "id", -1) >= req_id:
                    return event
                if isinstance(event, p.Error) and event.id in (req_id, -1):
                    raise RunnerError(event.message)

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        return self._ask(
            self._count_lock, self._counts, lambda i: p.Count(i, prompt), p.Counted, params
        )

    def tokenize(self, prompt: p.Prompt, params: GenParams) -> p.Tokenized:
        """The prompt's tokens, from the worker's own tokenizer (chat template
        included in chat mode); loads the model if needed."""
        return self._ask(
            self._tokenize_lock,
            self._tokenized,
            lambda i: p.Tokenize(i, prompt),
            p.Tokenized,
            params,
        )

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        finished = False
        proc: WorkerProcess | None = None
        run_id = self._run_id = next_id()
        self._cancel.clear()
        try:
            n_ctx = self.n_ctx_for(params)
            fresh = not (self._loaded and self._loaded_ctx == n_ctx and self._proc)
            try:
                loaded = self.load(n_ctx, n_threads)
            except (RunnerError, WorkerDied) as exc:
                finished = True
                yield p.Error(-1, str(exc), kind="load")
                return
            # A load's note (a crash and its retry) reaches the first run
            # even when a token count made the load.
            if fresh or (loaded.note and loaded is not self._noted):
                self._noted = loaded
                yield loaded
            proc = self._proc
            assert proc is not None
            if self._cancel.is_set():  # cancelled while the model was loading
                finished = True
                yield p.Done(run_id, "cancelled", p.Stats(load_s=loaded.load_s))
                return
            try:
                proc.send(p.Generate(run_id, prompt, params.to_dict(), n_threads))
            except WorkerDied as exc:
                finished = True
                yield p.Error(run_id, str(exc), kind="crash")
                return
            while True:
                event = self._wait(self._events, proc)
                if isinstance(event, p.Error) and event.id in (run_id, -1):
                    finished = True
                    yield event
                    return
                if getattr(event, "id", None) != run_id:
                    continue  # left over from an earlier, abandoned run
                if isinstance(event, p.Done):
                    finished = True
                    yield event
                    return
                yield event
        finally:
            if not finished and proc is not None and proc.alive:
                self.cancel()

    def cancel(self) -> None:
        self._cancel.set()
        proc = self._proc
        if proc and proc.alive:
            with contextlib.suppress(WorkerDied):
                proc.send(p.Cancel(self._run_id))

    def set_threads(self, n_threads: int) -> None:
        proc = self._proc
        if proc and proc.alive:
            with contextlib.suppress(WorkerDied):
                proc.send(p.SetThreads(max(1, n_threads)))

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.alive else None

    def close(self) -> None:
        with self._load_lock:
            if self._proc:
                self._proc.close()
            self._proc = None
            self._loaded = None
