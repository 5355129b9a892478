"""The app's side of the history: every run recorded as it streams, past runs
brought back into the panels, and runs exported as Markdown.

``History`` belongs to the app. It opens the store once, off the event loop,
when the app starts; if that fails, history is off for the session (the app
says why) and everything else works as before. The recorder itself is the
engine's (``engine/history/recorder.py``): it buffers events in memory and writes
from a thread of its own, so recording never slows a run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.engine.config import Settings
from workbench.engine.history.export import format_time, to_markdown
from workbench.engine.history.recorder import Recorder
from workbench.engine.history.store import ModelRecord, Panel, Run, Store, StoreError
from workbench.engine.history.store import PanelState as StoredState
from workbench.engine.history.store import open_store_or_none as open_store
from workbench.engine.models.catalog import Catalog
from workbench.engine.running.compare import Comparison, Result
from workbench.engine.running.params import FIELDS, GenParams, ParamError, coerce, from_mapping
from workbench.engine.sanitize import clean
from workbench.tui.screens.history import HistoryScreen
from workbench.tui.widgets.panel import ModelPanel, PanelState

if TYPE_CHECKING:
    from workbench.tui.host import Host

# How a stored panel's end shows in a panel. A run the app never finished
# (it was killed) shows as cancelled, with a note saying so.
ENDS = (PanelState.DONE, PanelState.CANCELLED, PanelState.ERROR, PanelState.REFUSED)
# Where an exported report goes: the current directory, this name.
EXPORT_NAME = "workbench-run-{id}.md"
# How long a run started right after launch waits for the store to open
# (longer only if another program holds the database).
OPEN_WAIT_S = 5.0


def export_path(run_id: int, folder: Path | None = None) -> Path:
    """``./workbench-run-<id>.md`` (or in ``folder``)."""
    return (folder or Path.cwd()) / EXPORT_NAME.format(id=run_id)


def params_from(stored: dict[str, Any], base: GenParams) -> tuple[GenParams, list[str]]:
    """Stored shared settings as GenParams, and what could not be used.

    Settings this version does not know, or values it no longer accepts, are
    left at ``base``'s value and named in the second result.
    """
    problems: list[str] = []
    params = base
    for name, value in stored.items():
        if name not in FIELDS:
            problems.append(f"unknown setting {name!r} ignored")
            continue
        try:
            params = from_mapping({name: value}, base=params)
        except ParamError as exc:
            problems.append(str(exc))
    return params, problems


def overrides_from(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored panel's overrides with their real types; unusable ones dropped."""
    out: dict[str, Any] = {}
    for name, value in stored.items():
        try:
            out[name] = coerce(name, value)
        except ParamError:
            continue
    return out


def ref_for(model: ModelRecord, settings: Settings, catalog: Catalog) -> str:
    """What to open in a panel for a model a stored run used.

    The catalog id if the catalog still has it, else the file it was loaded
    from if that still exists, else the id (the panel then says the model is
    not available). A model server is found by its settings name; one opened
    by URL was stored as host, port and path, and is opened over http again.
    """
    if model.path is None and model.architecture == "remote":
        if model.id.partition("#")[0] in settings.servers:
            return model.id
        return f"http://{model.id}"
    if any(entry.id == model.id for entry in catalog):
        return model.id
    if model.path and Path(model.path).is_file():
        return model.path
    return model.id


@dataclass(frozen=True)
class _Shown:
    """A stored panel waiting for its panel's model to open before it is shown."""

    run: Run
    stored: Panel


def notify_from_thread(app: Host, message: str, **kwargs: Any) -> None:
    """``notify`` from any thread; does nothing once the app has stopped."""
    if not app.app_running:
        return
    try:
        app.call_from_thread(app.notify, message, **kwargs)
    except RuntimeError:  # called from the app's own thread after all
        app.notify(message, **kwargs)


class History:
    """Records the app's runs and brings past ones back.

    ``open`` starts opening the store in a worker; until it has, and if it
    fails, ``store`` is None and runs are simply not recorded (a Recorder
    without a store does nothing).
    """

    def __init__(self, app: Host) -> None:
        self.app = app
        self.store: Store | None = None
        self.opened = False
        self._opened = threading.Event()  # for run threads
        self.off_reason: str | None = None
        self._recorder: Recorder | None = None  # the app's latest run
        self._restored: int | None = None  # a run brought back from the history
        self._unfinished: StoredState = "interrupted"
        self._waiting: dict[ModelPanel, _Shown] = {}

    # -- the store --------------------------------------------------------------

    def open(self) -> None:
        """Open the store in a thread; say so if history is off."""
        self.app.work(self._open(), name="open history", group="history",
                            exit_on_error=False)  # fmt: skip

    async def _open(self) -> None:
        reasons: list[str] = []
        store = None
        try:
            store = self.store = await asyncio.to_thread(open_store, reasons.append)
        finally:
            self.opened = True
            self._opened.set()
        if store is None:
            self.off_reason = clean(reasons[0] if reasons else "unknown reason", max_len=400)
            self.app.notify(f"history off: {self.off_reason}", severity="warning", timeout=12)
            self.app.history_off()

    # -- recording ----------------------------------------------------------------

    def recorder(self) -> Recorder:
        """A recorder for the run about to start (recording nothing if history is off)."""
        recorder = Recorder(self.store, source="app", warn=self._warn)
        self._recorder = recorder
        self._restored = None
        return recorder

    def start(self, recorder: Recorder, comparison: Comparison, shared: GenParams) -> None:
        """Store the run as it starts (call from its thread, before it runs).

        A run started as the app opens waits a moment for the store.
        """
        if recorder.store is None and self._opened.wait(OPEN_WAIT_S):
            recorder.store = self.store
        recorder.start_comparison(comparison, shared)

    def _warn(self, message: str) -> None:
        # Recorder warnings come from the comparison's and the recorder's threads.
        notify_from_thread(self.app, clean(message, max_len=500), severity="warning", timeout=10)

    def finish(self, recorder: Recorder, results: Sequence[Result]) -> None:
        """The run is over (call from its thread): save what is left."""
        recorder.finish(results, unfinished=self._unfinished)

    async def quit(self, results: Sequence[Result] | None) -> None:
        """The app quits mid-run: panels still going end as "cancelled"."""
        self._unfinished = "cancelled"
        recorder = self._recorder
        if recorder is not None:
            await asyncio.to_thread(partial(recorder.finish, results or (), unfinished="cancelled"))

    @property
    def current_run(self) -> int | None:
        """The run the panels show: the latest one, or one brought back."""
        if self._recorder is not None:
            return self._recorder.run_id
        return self._restored

    # -- the history screen -------------------------------------------------------

    def _usable(self) -> Store | None:
        if self.store is None:
            if not self.opened:
                self.app.notify("The history is still opening; try again in a moment.",
                                severity="warning")  # fmt: skip
            else:
                self.app.notify(f"history off: {self.off_reason}", severity="warning")
        return self.store

    def show(self) -> None:
        """The list of past runs; Enter brings one back."""
        store = self._usable()
        if store is None:
            return
        screen = HistoryScreen(store, export=self.export)
        self.app.push_dialog(screen, self._chosen)

    def _chosen(self, run_id: int | None) -> None:
        if run_id is not None:
            self.app.work(self._restore(run_id), name=f"open run {run_id}",
                                group="history", exit_on_error=False)  # fmt: skip

    async def _restore(self, run_id: int) -> None:
        store = self.store
        if store is None:
            return
        app = self.app
        if app.running:
            app.notify("A run is in progress: Esc cancels it; then open the run again.",
                       severity="warning")  # fmt: skip
            return

        def load() -> tuple[Run | None, list[str]]:
            run = store.get_run(run_id)
            if run is None:
                return None, []
            catalog = app.catalog()
            return run, [ref_for(pl.model, app.settings, catalog) for pl in run.panels]

        try:
            run, refs = await asyncio.to_thread(load)
        except StoreError as exc:
            app.notify(clean(f"history: {exc}", max_len=500), severity="error")
            return
        if run is None:
            app.notify(f"No run {run_id} in the history.", severity="warning")
            return
        if app.running:  # started while the run was read
            return
        await self._apply(run, refs)

    async def _apply(self, run: Run, refs: list[str]) -> None:
        """Prompt, mode, settings and panels as the run had them, with its text."""
        app = self.app
        area = app.prompt_area
        area.editor.text = clean(run.prompt, max_len=1 << 30, keep_newlines=True)
        area.system.value = clean(run.system, max_len=1 << 20)
        area.switch.mode = "raw" if run.mode == "raw" else "chat"
        app.shared, problems = params_from(run.params, app.settings.generation)
        for problem in problems:
            app.notify(clean(f"run {run.id}: {problem}", max_len=300), severity="warning")

        # Panels on screen are kept where they can be: one already running the
        # same model keeps its loaded model; others open the run's model.
        row = app.row
        panels = row.panels
        for index, (stored, ref) in enumerate(zip(run.panels, refs, strict=True)):
            old = panels[index] if index < len(panels) else None
            # A sweep's or a template's panel (seeing.py) has a label and maybe
            # a prompt of its own: the run's panel replaces it.
            if old is not None and old.variant is None:
                panel = old
                if panel.runner is None or panel.runner.id != stored.model.id:
                    row.replace_model(panel, ref)
            else:
                panel = await row.add_panel(ref, before=old)
                if old is not None:
                    await row.remove_panel(old)
            panel.overrides = overrides_from(stored.overrides)
            panel.set_params(app.params_for(panel))
            self._show(panel, _Shown(run, stored))
        for panel in panels[len(run.panels) :]:
            await row.remove_panel(panel)
        row.fit_panels()
        if row.panels:
            row.set_current(row.panels[0])
        area.editor.focus()
        self._recorder = None
        self._restored = run.id
        app.notify(f"Run {run.id} is back: Ctrl+R runs it again.", timeout=4)

    def _show(self, panel: ModelPanel, shown: _Shown) -> None:
        """Show the stored result now, or once the panel's model has opened
        (opening ends in "idle" or "error", which would replace it)."""
        if panel.state == PanelState.OPENING:
            self._waiting[panel] = shown
        else:
            self._waiting.pop(panel, None)
            show_stored(panel, shown.run, shown.stored)

    def state_changed(self, panel: ModelPanel, state: PanelState) -> None:
        """A panel's state changed to ``state`` (the app hands on every change)."""
        if panel not in self._waiting:
            if state in (PanelState.OPENING, PanelState.LOADING):  # another model, a new run
                panel.border_subtitle = ""
            return
        if state != PanelState.OPENING:
            shown = self._waiting.pop(panel)
            show_stored(panel, shown.run, shown.stored)

    # -- export -------------------------------------------------------------------

    def export_current(self) -> None:
        """Export the run the panels show (the latest, or one brought back)."""
        if self._usable() is None:
            return
        run_id = self.current_run
        if run_id is None:
            self.app.notify("Nothing to export yet: run the prompt first, or open a run "
                            "from the history (F3).", severity="warning")  # fmt: skip
            return
        self.export(run_id)

    def export(self, run_id: int, folder: Path | None = None) -> None:
        """Write run ``run_id`` as Markdown to ``./workbench-run-<id>.md``, in a thread."""
        store = self.store
        if store is None:
            return
        app = self.app

        def write() -> None:
            try:
                run = store.get_run(run_id)
                if run is None:
                    notify_from_thread(app, f"No run {run_id} in the history.",
                                       severity="warning")  # fmt: skip
                    return
                path = export_path(run_id, folder)
                path.write_text(to_markdown(run), encoding="utf-8")
            except (StoreError, OSError) as exc:
                notify_from_thread(app, clean(f"export failed: {exc}", max_len=500),
                                   severity="error")  # fmt: skip
                return
            when = format_time(run.started_at, seconds=False)
            notify_from_thread(app, clean(f"Exported run {run_id} ({when}) to {path}",
                                          max_len=500), timeout=8)  # fmt: skip

        app.work(write, name=f"export run {run_id}", group="export", thread=True,
                       exit_on_error=False)  # fmt: skip


def show_stored(panel: ModelPanel, run: Run, stored: Panel) -> None:
    """Show a stored panel's text, figures and end in a panel, as they were,
    with "run N · from history" on its lower border until the next run.

    A panel whose model could not be opened keeps its error (the stored text
    still shows, for reference).
    """
    panel.output.set_text(stored.text)
    panel.output.scroll_home(animate=False)
    panel.stop_reason = stored.stop_reason
    panel.stats = stored.stats
    panel.n_generated = stored.stats.completion_tokens if stored.stats else 0
    panel.border_subtitle = f"run {run.id} · from history"
    notes = []
    if stored.state not in ENDS:
        notes.append(f"{stored.state}: the run never finished")
    notes += [clean(note, max_len=300) for note in stored.notes]
    panel.notes = notes
    if panel.state != "error" or panel.runner is not None:
        panel.message = clean(stored.error or "", max_len=600)
        panel.state = PanelState(stored.state) if stored.state in ENDS else PanelState.CANCELLED
    panel.refresh_display()
