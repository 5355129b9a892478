"""Saves a comparison to the history while it runs.

``Recorder.on_event`` has the signature of ``Comparison``'s ``on_event`` and
is called from the comparison's threads. It never touches the database
itself: it buffers text and changes in memory and wakes a writer thread of
its own, which saves

- at once, when a panel's state changes (started, done, failed, refused);
- when tokens arrive and the panel was last saved 0.5 s ago or more;
- on its own timer, so text buffered from a stream that went quiet is saved
  within half a second too.

So a model never waits for the disk, and if the process dies, at most the
last half second of text is lost; the next ``Store.open`` finds the run
"interrupted" with everything saved before. A failing write (a locked or
full disk) is reported once through ``warn`` and retried on the next flush;
the comparison itself never sees an error from here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engine import paths
from workbench.engine.history.store import (
    ModelRecord,
    Panel,
    PanelState,
    Run,
    Store,
    StoreError,
    process_identity,
)
from workbench.engine.models import bundled
from workbench.engine.models.catalog import Entry
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner
from workbench.engine.running.compare import Comparison, Job, Result
from workbench.engine.running.params import GenParams

#: Longest time streamed text waits in memory before it is saved.
FLUSH_INTERVAL_S = 0.5
_MIB = 1 << 20

Warn = Callable[[str], None]


# -- what a panel ran ---------------------------------------------------------


def fingerprint(path: Path) -> str:
    """A cheap identity for a model file: sha256 of its size, first and last MiB.

    Never reads more than 2 MiB, whatever the size of the file.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    with path.open("rb") as fh:
        digest.update(fh.read(_MIB))
        if size > _MIB:
            fh.seek(max(_MIB, size - _MIB))
            digest.update(fh.read(_MIB))
    return digest.hexdigest()


def _known_sha256(path: Path) -> str | None:
    """The catalog's sha256 of a default model that was installed and verified."""
    try:
        folder = paths.bundled_models_dir()
        real = path.resolve()
        for model in bundled.load_catalog():
            if (folder / model.file).resolve() == real and bundled.is_installed(model, folder):
                return model.sha256
    except (OSError, ValueError, TypeError):
        pass
    return None


def _unwrap(runner: Runner) -> Runner:
    """The runner underneath wrappers that keep it as ``inner`` (the app's)."""
    for _ in range(8):
        inner = getattr(runner, "inner", None)
        if not isinstance(inner, Runner):
            break
        runner = inner
    return runner


def model_record(runner: Runner) -> ModelRecord:
    """Describe the model behind a runner; reads at most 2 MiB of its file."""
    header = runner.header
    base = _unwrap(runner)
    entry = getattr(base, "entry", None)
    record = ModelRecord(
        id=runner.id,
        title=header.title,
        architecture=header.arch,
        params_label=header.params,
        quant=header.quant,
        n_ctx_train=header.n_ctx_train,
        kind=header.kind,
    )
    if not isinstance(entry, Entry):
        return record
    path = entry.path
    info = entry.info
    try:
        st = path.stat()
        size, mtime, fp = st.st_size, st.st_mtime, fingerprint(path)
    except OSError:
        size, mtime, fp = None, None, None
    return ModelRecord(
        id=runner.id,
        title=header.title,
        path=str(path),
        sha256=_known_sha256(path),
        fingerprint=fp,
        size=size,
        mtime=mtime,
        architecture=info.architecture if info else header.arch,
        n_params=info.n_params if info else None,
        params_label=info.params_label if info else header.params,
        quant=info.quant if info else header.quant,
        n_ctx_train=info.context_length if info else header.n_ctx_train,
        kind=info.base_or_instruct if info else header.kind,
    )


def overrides(shared: GenParams, params: GenParams) -> dict[str, Any]:
    """The settings in which a panel differs from the shared ones."""
    base, own = shared.to_dict(), params.to_dict()
    return {k: v for k, v in own.items() if base.get(k) != v}


# -- the recorder -------------------------------------------------------------


@dataclass
class _Pending:
    """What one panel has that the database does not have yet."""

    text: str = ""
    changes: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    last_flush: float = float("-inf")
    ended: bool = False


class Recorder:
    """Records one comparison in the history, streaming included.

    Use one recorder per run::

        recorder = Recorder(store, source="app", warn=show)
        comparison = Comparison(jobs, prompt, ..., on_event=recorder.on_event)
        recorder.start_comparison(comparison, shared_params)
        try:
            comparison.run()
        finally:
            recorder.finish(comparison.results)

    With ``store=None`` (history off) every method does nothing, so callers
    need no special case. Nothing here raises into the comparison.
    """

    def __init__(
        self,
        store: Store | None,
        *,
        source: str = "app",
        warn: Warn | None = None,
        interval: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.source = source
        self.interval = interval
        self._warn = warn or (lambda _msg: None)
        self._warned = False
        self._clock = clock
        self._lock = threading.Lock()  # the buffers; never held while writing
        self._write_lock = threading.Lock()  # one writer at a time keeps text in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[_Pending] = []
        self._run_id: int | None = None
        self._finished = False

    @property
    def run_id(self) -> int | None:
        """The stored run's id, once ``start`` succeeded."""
        return self._run_id

    # -- starting -------------------------------------------------------------

    def start(
        self,
        prompt: p.Prompt,
        jobs: Sequence[Job],
        *,
        shared: GenParams,
        schedule: str,
        threads: int,
    ) -> int | None:
        """Store the run as "running" before any model starts; its id, or None.

        Call it from a worker thread: it reads up to 2 MiB of each model file.
        """
        if self.store is None or self._run_id is not None or self._finished:
            return self._run_id
        try:
            panels = [
                Panel(
                    position=i,
                    model=model_record(job.runner),
                    params=job.params.to_dict(),
                    overrides=overrides(shared, job.params),
                    n_ctx=job.runner.n_ctx_for(job.params),
                )
                for i, job in enumerate(jobs)
            ]
            run = Run(
                id=None,
                started_at=time.time(),
                prompt=prompt.text,
                system=prompt.system,
                mode=prompt.mode,
                schedule=schedule,
                threads=threads,
                params=shared.to_dict(),
                source=self.source,
                panels=panels,
            )
            pid, started = process_identity()
            run_id = self.store.create_run(run, pid=pid, pid_started=started)
        except Exception as exc:  # history must never stop a run
            self._report(f"history: could not save this run ({exc})")
            return None
        with self._lock:
            self._pending = [_Pending() for _ in jobs]
            self._run_id = run_id
        self._thread = threading.Thread(target=self._write_loop, name="history", daemon=True)
        self._thread.start()
        return run_id

    def start_comparison(self, comparison: Comparison, shared: GenParams) -> int | None:
        """``start`` with the prompt, jobs, schedule and threads of a comparison."""
        return self.start(
            comparison.prompt,
            comparison.jobs,
            shared=shared,
            schedule=comparison.schedule,
            threads=comparison.total_threads,
        )

    # -- events (comparison threads) -----------------------------------------

    def on_event(self, i: int, event: p.Event) -> None:
        """Called by the comparison from its threads; never blocks on the disk."""
        try:
            self._on_event(i, event)
        except Exception as exc:  # history must never break a run
            self._report(f"history: {exc}")

    def _on_event(self, i: int, event: p.Event) -> None:
        with self._lock:
            if self._run_id is None or self._finished or not 0 <= i < len(self._pending):
                return
            pending = self._pending[i]
            if isinstance(event, p.Token):
                pending.text += event.text
                if self._clock() - pending.last_flush >= self.interval:
                    self._wake.set()
                return
            now = time.time()
            changes = pending.changes
            if isinstance(event, p.Loaded):
                changes["n_ctx"] = event.n_ctx
            elif isinstance(event, p.PromptStarted):
                changes.update(state="running", started_at=now)
                self._add_note(pending, event.note)
            elif isinstance(event, p.Done):
                state: PanelState = "cancelled" if event.stop_reason == "cancelled" else "done"
                changes.update(
                    state=state, stop_reason=event.stop_reason, stats=event.stats, finished_at=now
                )
                pending.ended = True
            elif isinstance(event, p.Error):
                state = "refused" if event.kind == "refused" else "error"
                changes.update(state=state, error=event.message, finished_at=now)
                pending.ended = True
            else:
                return
        self._wake.set()

    @staticmethod
    def _add_note(pending: _Pending, note: str) -> None:
        if note and note not in pending.notes:
            pending.notes.append(note)
            pending.changes["notes"] = list(pending.notes)

    # -- writing (the recorder's own thread) ----------------------------------

    def _write_loop(self) -> None:
        # Wake often enough that quiet text never waits much past the interval.
        tick = self.interval / 4
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._flush(due_only=True)

    def _flush(self, *, due_only: bool) -> None:
        with self._write_lock:
            self._flush_locked(due_only=due_only)

    def _flush_locked(self, *, due_only: bool) -> None:
        run_id = self._run_id
        store = self.store
        if run_id is None or store is None:
            return
        now = self._clock()
        batch: list[tuple[int, str, dict[str, Any]]] = []
        with self._lock:
            for i, pending in enumerate(self._pending):
                due = not due_only or now - pending.last_flush >= self.interval
                if pending.changes or (pending.text and due):
                    batch.append((i, pending.text, pending.changes))
                    pending.text, pending.changes, pending.last_flush = "", {}, now
        for n, (i, text, changes) in enumerate(batch):
            try:
                store.update_panel(run_id, i, append=text, updated_at=time.time(), **changes)
            except StoreError as exc:
                self._report(f"history: could not save run {run_id} ({exc}); trying again")
                with self._lock:  # keep the unsaved part, in order, for the next flush
                    for j, old_text, old_changes in batch[n:]:
                        pending = self._pending[j]
                        pending.text = old_text + pending.text
                        pending.changes = {**old_changes, **pending.changes}
                return

    def flush(self) -> None:
        """Save everything buffered now (the writer thread does it anyway)."""
        self._flush(due_only=False)

    # -- finishing ------------------------------------------------------------

    def finish(
        self, results: Sequence[Result] | None = None, *, unfinished: PanelState = "interrupted"
    ) -> None:
        """Save what is left and mark the run finished. Safe to call twice.

        ``results`` (the comparison's) add the notes that came without an
        event, such as a clipped max tokens. Panels that never ended get
        ``unfinished``: "cancelled" after the user stopped everything.
        """
        with self._lock:
            if self._run_id is None or self._finished:
                self._finished = True
                return
            self._finished = True
            for pending, result in zip(self._pending, results or (), strict=False):
                for note in result.notes:
                    self._add_note(pending, note)
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._flush(due_only=False)
        store, run_id = self.store, self._run_id
        if store is None:
            return
        try:
            store.finish_run(run_id, finished_at=time.time(), unfinished=unfinished)
        except StoreError as exc:
            self._report(f"history: could not save run {run_id} ({exc})")

    def _report(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            self._warn(message)
