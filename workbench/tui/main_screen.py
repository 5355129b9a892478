"""The main screen: the prompt, the panels side by side, and their keys.

It owns what the user works on (the shared settings, the panel row, the
run in progress) and the flows that act on them (history, seeing inside),
and it carries its own key bindings, so a dialog on top of it switches them
off by being on top. The app around it holds what lasts longer than a
screen: the settings file, the model catalog, help and quit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import textual
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.worker import Worker

from workbench.engine.config import Settings
from workbench.engine.models.catalog import Catalog, Entry
from workbench.engine.running import protocol as p
from workbench.engine.running.compare import Comparison, Job
from workbench.engine.running.params import GenParams, ParamError
from workbench.engine.running.resources import physical_cores
from workbench.tui import keys
from workbench.tui.history import History
from workbench.tui.panels import PanelRow, RunnerFactory
from workbench.tui.runs import RunBridge
from workbench.tui.screens.diff import DiffSide, diff_dialog
from workbench.tui.screens.picker import ModelPicker
from workbench.tui.screens.pull import PullDialog
from workbench.tui.screens.settings import SHARED, PanelChoice, SettingsResult, SettingsScreen
from workbench.tui.seeing import Seeing
from workbench.tui.widgets.panel import ModelPanel, PanelState
from workbench.tui.widgets.prompt import PromptArea

# Seconds after the last keystroke before the prompt is counted again: long
# enough to let a burst of typing pass, short beside the count itself (10-20
# ms in the worker for a 4,000-token prompt, 30-50 ms to reach both meters).
COUNT_DELAY = 0.15


@dataclass(frozen=True)
class Services:
    """What the main screen uses of the app: the settings, the catalog, the
    way runners are made, and the way dialogs are shown."""

    settings: Settings
    catalog: Callable[[], Catalog]
    rescan_catalog: Callable[[], Catalog]
    factory: RunnerFactory
    push_dialog: Callable[[Screen[Any], Callable[[Any], Any] | None], None]
    # Called with each screen once its widgets exist (cursor blink off for tests).
    prepare: Callable[[Screen[Any]], None]


class MainScreen(Screen[None]):
    """Type once, count per model, run all. Implements ``host.Host`` for
    the flows it owns."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings(keys.SCREEN)  # type: ignore[assignment]

    def __init__(self, services: Services, models: list[str], prompt: str) -> None:
        super().__init__()
        self.services = services
        self.settings = services.settings
        self.shared: GenParams = services.settings.generation
        self.model_refs = models
        self.initial_prompt = prompt
        self._comparison: Comparison | None = None
        self._run_worker: Worker[None] | None = None
        self._run_panels: list[ModelPanel] = []
        self._run_seq = 0
        self.history = History(self)
        self.seeing = Seeing(self)

    def compose(self) -> ComposeResult:
        yield PromptArea(self.initial_prompt, id="prompt-area")
        yield PanelRow(
            self.model_refs,
            factory=self.services.factory,
            params_for=self.params_for,
            leaving=self._cancel_panel,
            id="panels",
        )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.history.open()
        for panel in self.panels:
            panel.set_params(self.params_for(panel))
            self.row.open(panel)
        if not self.panels:
            self.notify("No model panels: Ctrl+N adds one", timeout=8)
        else:
            self.row.set_current(self.panels[0])
        self.watch(self, "focused", self._focus_changed)
        self.services.prepare(self)
        self.prompt_area.editor.focus()
        if self.initial_prompt:
            self._count_now()

    # -- what the flows use (host.Host) -------------------------------------------------

    def notify(self, message: str, **kwargs: Any) -> None:
        """The app's notify, markup off unless asked for (messages carry
        names and words from outside); Textual's own would turn it on."""
        self.app.notify(message, **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> Worker[Any]:
        """A worker of the app's, where the one handler of failures sees it."""
        return self.app.run_worker(*args, **kwargs)

    def push_dialog(self, screen: Screen[Any], callback: Callable[[Any], Any] | None) -> None:
        self.services.push_dialog(screen, callback)

    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.app.call_from_thread(callback, *args, **kwargs)

    @property
    def app_running(self) -> bool:
        return self.app.is_running

    def catalog(self) -> Catalog:
        return self.services.catalog()

    def history_off(self) -> None:
        """Say quietly, beside the reference count, that runs are not kept."""
        self.app.sub_title = "history off"
        options = self.query("#prompt-options")
        if options and not self.query("#history-off"):
            options.first().mount(Static(Text("history off"), id="history-off"))

    @property
    def prompt_area(self) -> PromptArea:
        return self.query_one(PromptArea)

    @property
    def row(self) -> PanelRow:
        """The panels and their runners' one owner."""
        return self.query_one(PanelRow)

    @property
    def panels(self) -> list[ModelPanel]:
        return self.row.panels

    @property
    def focused_panel(self) -> ModelPanel | None:
        """The panel holding the keyboard focus, if one does."""
        node = self.focused if self.app.screen is self else None
        while node is not None:
            if isinstance(node, ModelPanel):
                return node
            node = node.parent  # type: ignore[assignment]
        return None

    @property
    def current_panel(self) -> ModelPanel | None:
        """The focused panel, else the one last focused, else the first."""
        panel = self.focused_panel or self.row.last_current
        if panel is not None:
            return panel
        panels = self.panels
        return panels[0] if panels else None

    def _focus_changed(self, focused: Widget | None) -> None:
        panel = self.focused_panel
        if panel is not None:
            self.row.set_current(panel)

    def params_for(self, panel: ModelPanel) -> GenParams:
        try:
            return self.shared.with_overrides(panel.overrides)
        except ParamError as exc:  # overrides are checked on entry; keep going regardless
            self.notify(f"panel {panel.number}: {exc}", severity="error")
            return self.shared

    def on_model_panel_state_changed(self, message: ModelPanel.StateChanged) -> None:
        """The one place a panel's change of state is handed on."""
        panel = message.panel
        if message.old == PanelState.OPENING and panel.runner is not None:
            panel.output.shading = self.seeing.shading
            panel.request_count(self.prompt_area.prompt)
        self.history.state_changed(panel, message.new)
        self.seeing.state_changed(panel)

    # -- counting ---------------------------------------------------------------

    def on_prompt_area_prompt_edited(self, event: PromptArea.PromptEdited) -> None:
        # Debounced: a worker that waits, cancelled by the next keystroke.
        self._count_later()

    # As a @work method the coroutine is made when the worker starts, so a
    # debounce cancelled before it started leaves none behind never awaited.
    @textual.work(name="debounce", group="debounce", exclusive=True)
    async def _count_later(self) -> None:
        await asyncio.sleep(COUNT_DELAY)
        self._count_now()

    def _count_now(self) -> None:
        area = self.prompt_area
        prompt = area.prompt
        area.count_reference()
        for panel in self.panels:
            panel.request_count(prompt)

    @property
    def running(self) -> bool:
        return self._comparison is not None

    def action_run(self) -> None:
        if self._comparison is not None:
            self.notify("A run is in progress: Esc cancels it; then run again.",
                        severity="warning")  # fmt: skip
            return
        prompt = self.prompt_area.prompt
        candidates = self.panels
        if not prompt.text.strip():  # template variants still run their own prompts
            candidates = [panel for panel in candidates if panel.own_prompt is not None]
        if not candidates:
            self.notify("Type a prompt first.", severity="warning")
            return
        panels = [panel for panel in candidates if panel.runner is not None]
        waiting = [panel for panel in self.panels if panel.state == PanelState.OPENING]
        if waiting:
            names = ", ".join(str(panel.number) for panel in waiting)
            self.notify(f"Panel {names} still opening its model: not run.", severity="warning")
        if not panels:
            self.notify("No panel has a model to run: Ctrl+N adds one.", severity="warning")
            return
        self._run_seq += 1
        run = self._run_seq
        jobs = []
        for panel in panels:
            assert panel.runner is not None
            panel.begin_run(run)
            jobs.append(Job(panel.runner, panel.params))
        posts = [panel.post_message for panel in panels]
        bridge = RunBridge(run, posts)
        recorder = self.history.recorder()

        def on_event(i: int, event: p.Event) -> None:
            recorder.on_event(i, event)  # the history first: it only buffers
            bridge.on_event(i, event)

        comparison = Comparison(
            jobs,
            prompt,
            schedule="sequential" if self.settings.schedule == "sequential" else "parallel",
            total_threads=self.settings.threads or physical_cores(),
            on_event=on_event,
        )
        self._comparison = comparison
        self._run_panels = panels

        shared = self.shared

        def run_all() -> None:
            try:
                self.history.start(recorder, comparison, shared)  # reads the model files
                comparison.run()
            finally:
                self.history.finish(recorder, comparison.results)
                bridge.close()
                # After every event of this run, in each panel's own queue.
                for post in posts:
                    post(ModelPanel.RunEnded(run))

        self._run_worker = self.work(
            run_all, name=f"run {run}", group="run", thread=True, exit_on_error=False
        )
        self.refresh_bindings()

    def run_over(self, worker: Worker[Any]) -> None:
        """A worker of the app's ended: if it was this screen's run, the run is over."""
        if worker is not self._run_worker:
            return
        self._comparison = None
        self._run_worker = None
        self._run_panels = []
        self.refresh_bindings()

    def action_cancel(self) -> None:
        comparison = self._comparison
        if comparison is None:
            if self.maximized is not None:
                self.minimize()
            return
        panel = self.focused_panel
        if panel is not None and panel in self._run_panels and panel.running:
            comparison.cancel(self._run_panels.index(panel))
            self.notify(f"Cancelling panel {panel.number}", timeout=2)
        else:
            comparison.cancel()
            self.notify("Cancelling every run", timeout=2)

    # -- panels -------------------------------------------------------------------

    async def _entries(self) -> list[Entry] | None:
        """The catalog's entries, read in a thread the first time."""
        worker = self.work(self.catalog, name="catalog", group="catalog", thread=True,
                           exit_on_error=False)  # fmt: skip
        try:
            catalog = await worker.wait()
        except Exception:  # reported by the worker handler
            return None
        return list(catalog.entries)

    async def action_add_panel(self) -> None:
        entries = await self._entries()
        if entries is None:
            return
        picker = ModelPicker(entries, title="Add a panel", servers=self.settings.servers)
        self.push_dialog(picker, self.add_panel)

    async def add_panel(self, ref: str | None) -> None:
        """A new panel for ``ref`` (a picker's answer: None adds nothing), made current."""
        if not ref:
            return
        panel = await self.row.add_panel(ref)
        self.row.set_current(panel)
        self.call_after_refresh(panel.output.focus)

    async def action_change_model(self) -> None:
        panel = self.current_panel
        if panel is None:
            self.notify("No panel to change: Ctrl+N adds one.", severity="warning")
            return
        entries = await self._entries()
        if entries is None:
            return
        title = f"Model for panel {panel.number}"
        picker = ModelPicker(entries, title=title, servers=self.settings.servers)
        self.push_dialog(picker, partial(self._change_model, panel))

    def _change_model(self, panel: ModelPanel, ref: str | None) -> None:
        if ref:
            self.row.replace_model(panel, ref)

    def _cancel_panel(self, panel: ModelPanel) -> None:
        if self._comparison is not None and panel in self._run_panels:
            self._comparison.cancel(self._run_panels.index(panel))

    async def action_remove_panel(self) -> None:
        panel = self.current_panel
        if panel is None:
            self.notify("No panel to remove.", severity="warning")
            return
        index = self.panels.index(panel)
        await self.row.remove_panel(panel)
        rest = self.panels
        if rest:
            neighbour = rest[min(index, len(rest) - 1)]
            self.row.set_current(neighbour)
            neighbour.output.focus()
        else:
            self.row.set_current(None)
            self.prompt_area.editor.focus()
        self.notify(f"Removed panel {index + 1} ({panel.title})", timeout=3)

    # -- settings, mode, view -----------------------------------------------------

    def action_settings(self) -> None:
        choices = [PanelChoice(p.key, p.label, dict(p.overrides)) for p in self.panels]
        focused = self.focused_panel
        target = focused.key if focused is not None else SHARED
        screen = SettingsScreen(self.shared, self.settings.generation, choices, target=target)
        self.push_dialog(screen, self._settings_done)

    def _settings_done(self, result: SettingsResult | None) -> None:
        if result is None:
            return
        self.shared = result.shared
        prompt = self.prompt_area.prompt
        for panel in self.panels:
            panel.overrides = dict(result.overrides.get(panel.key, {}))
            panel.set_params(self.params_for(panel))
            panel.request_count(prompt)
        self.notify("Settings applied", timeout=2)

    def action_toggle_mode(self) -> None:
        self.prompt_area.toggle_mode()

    def action_maximize(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        panel = self.current_panel
        if panel is None:
            return
        self.maximize(panel, container=False)
        panel.output.focus()

    def action_copy(self) -> None:
        panel = self.current_panel
        if panel is None or not panel.output.text:
            self.notify("Nothing to copy yet.", severity="warning")
            return
        text = panel.output.text
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied panel {panel.number}: {len(text):,} characters", timeout=3)

    # -- history, diff, export, pull (history.py, screens/) ---------------------

    def action_history(self) -> None:
        self.history.show()

    def action_export(self) -> None:
        self.history.export_current()

    def action_diff(self) -> None:
        panels = self.panels
        sides = [DiffSide(panel.number, panel.title, panel.output.text) for panel in panels]
        current = self.current_panel
        screen = diff_dialog(sides, panels.index(current) if current in panels else 0)
        if isinstance(screen, str):
            self.notify(screen, severity="warning")
            return
        self.push_dialog(screen, None)

    def action_pull(self) -> None:
        self.push_dialog(PullDialog(rescan=self.services.rescan_catalog), self.add_panel)

    # -- seeing inside: tokens, probabilities, templates, sweeps (seeing.py) -------

    def action_token_view(self) -> None:
        self.seeing.token_view()

    def action_shade(self) -> None:
        self.seeing.toggle_shading()

    def action_token_cursor(self) -> None:
        self.seeing.token_cursor()

    def action_templates(self) -> None:
        self.seeing.templates()

    def action_sweep(self) -> None:
        self.seeing.sweep()

    async def action_quit(self) -> None:
        await self.app.run_action("quit")

    async def shutdown_models(self) -> None:
        """Cancel runs and close every runner, so all worker processes end."""
        if self._comparison is not None:
            self._comparison.cancel()
            await self.history.quit(self._comparison.results)
        await self.row.close_all()

    def on_unmount(self) -> None:
        # A safety net for exits that did not go through shutdown_models (the
        # panel row closes what is left of its runners as it goes).
        if self._comparison is not None:
            self._comparison.cancel()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.app.screen is not self and action != "quit":
            return False  # a dialog is on top: its keys, not these, and the footer says so
        if action == "cancel":
            return self.running or self.maximized is not None
        return True
