"""The Prompt Workbench app: one prompt, one panel per model, side by side."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import HorizontalScroll
from textual.geometry import Offset, Region
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, TextArea
from textual.worker import Worker, WorkerState

from workbench.engine.config import Settings, load_settings
from workbench.engine.models.catalog import Catalog, Entry, build_catalog
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner, RunnerError
from workbench.engine.running.backends.remote import RemoteRunner
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.compare import Comparison, Job
from workbench.engine.running.params import GenParams, ParamError
from workbench.engine.running.resources import physical_cores
from workbench.engine.running.runners import make_runner
from workbench.engine.sanitize import clean
from workbench.tui import keys
from workbench.tui.history import History
from workbench.tui.runs import RunBridge
from workbench.tui.screens.diff import DiffSide, diff_dialog
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.picker import ModelPicker
from workbench.tui.screens.pull import PullDialog
from workbench.tui.screens.settings import SHARED, PanelChoice, SettingsResult, SettingsScreen
from workbench.tui.seeing import Seeing
from workbench.tui.widgets.panel import ModelPanel
from workbench.tui.widgets.prompt import PromptArea

RunnerFactory = Callable[[str], Runner]

# Seconds after the last keystroke before the prompt is counted again: long
# enough to let a burst of typing pass, short beside the count itself (10-20
# ms in the worker for a 4,000-token prompt, 30-50 ms to reach both meters).
COUNT_DELAY = 0.15
# Actions that change panels or runs; off while a dialog is open.
MAIN_SCREEN_ACTIONS = {k.action for k in keys.KEYS} - {"quit", "help"}


class PanelRow(HorizontalScroll, can_focus=False):
    """The panels side by side; scrolls sideways when they do not all fit.

    Panels share the width equally while each gets at least
    ``MIN_PANEL_WIDTH`` columns; past that as many as fit are shown, sized
    to fill the row exactly, and the rest are a sideways scroll away.
    Not focusable itself: Tab goes from panel to panel.
    """

    MIN_PANEL_WIDTH = 38

    def on_resize(self) -> None:
        self.fit_panels()

    def scroll_to_region(self, region: Region, **kwargs: Any) -> Offset:
        """Scroll whole panels into view: when focus moves into a panel, show
        all of it, by the least distance, without centring. Panel widths
        divide the row's width, so panels stay aligned with its edges."""
        for panel in self.query_children(ModelPanel):
            box = panel.virtual_region_with_margin
            if box.x <= region.x < box.right:
                region = Region(box.x, region.y, box.width, region.height)
                break
        kwargs.update(center=False, animate=False)
        return super().scroll_to_region(region, **kwargs)

    def fit_panels(self) -> None:
        panels = list(self.query_children(ModelPanel))
        width = self.size.width
        if not panels or not width:
            return
        visible = max(1, min(len(panels), width // self.MIN_PANEL_WIDTH))
        base, extra = divmod(width, visible)
        for index, panel in enumerate(panels):
            # Panels beyond the first screenful repeat the pattern of widths.
            panel.styles.width = base + (1 if index % visible < extra else 0)


class WorkbenchApp(App[None]):
    """Compare models side by side: type once, count per model, run all."""

    CSS_PATH = "app.tcss"
    TITLE = "Prompt Workbench"
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings()  # type: ignore[assignment]
    # Esc cancels runs; it restores a maximized panel only when nothing runs.
    ESCAPE_TO_MINIMIZE = False
    # A taller prompt editor on tall terminals (see app.tcss).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]  # noqa: RUF012 - Textual's own type

    def __init__(
        self,
        settings: Settings,
        models: Sequence[str],
        prompt: str,
        runner_factory: RunnerFactory | None,
        catalog: Catalog | None,
        *,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.shared: GenParams = settings.generation
        self.model_refs = list(models)
        self.initial_prompt = prompt
        self.cursor_blink = cursor_blink
        self._catalog = catalog
        self._catalog_lock = threading.Lock()
        self._factory = runner_factory or self._make_runner
        self.history = History(self)
        self._runners: list[Runner] = []
        self._comparison: Comparison | None = None
        self._run_worker: Worker[None] | None = None
        self._run_panels: list[ModelPanel] = []
        self._run_seq = 0
        self._last_panel: ModelPanel | None = None
        self.seeing = Seeing(self)

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield PromptArea(self.initial_prompt, id="prompt-area")
        with PanelRow(id="panels"):
            for number, ref in enumerate(self.model_refs, 1):
                yield ModelPanel(ref, number=number)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Thread workers run in the loop's default executor, which has only
        # cores + 4 threads; each panel may hold one while its model loads,
        # and a run must never queue behind them.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="workbench")
        )
        for warning in self.settings.warnings:
            self.notify(clean(warning, max_len=500), severity="warning", timeout=12)
        self.history.open()
        for panel in self.panels:
            panel.set_params(self.params_for(panel))
            self._open(panel)
        if not self.panels:
            self.notify("No model panels: Ctrl+N adds one", timeout=8)
        else:
            self._set_current(self.panels[0])
        self.watch(self.screen, "focused", self._focus_changed)
        self.prompt_area.editor.focus()
        self.apply_cursor_blink(self.screen)
        # Everything made so far (modules, styles, the screen) lives as long
        # as the app: out of the collector's sight, a full collection while
        # two models stream paused the app for 40-100 ms instead of 110-200.
        self.call_after_refresh(gc.freeze)
        if self.initial_prompt:
            self._count_now()

    def apply_cursor_blink(self, node: Screen[Any] | Widget) -> None:
        """Blinking cursors off (for stable snapshot pictures) when asked."""
        if not self.cursor_blink:
            for widget in node.query("Input, TextArea"):
                if isinstance(widget, Input | TextArea):
                    widget.cursor_blink = False

    def push_dialog(self, screen: Screen[Any], callback: Callable[[Any], Any] | None) -> None:
        self.push_screen(screen, callback)
        self.call_after_refresh(self.apply_cursor_blink, screen)

    @property
    def prompt_area(self) -> PromptArea:
        return self.query_one(PromptArea)

    @property
    def panels(self) -> list[ModelPanel]:
        return list(self.query(ModelPanel))

    @property
    def focused_panel(self) -> ModelPanel | None:
        """The panel holding the keyboard focus, if one does."""
        node = self.screen.focused if self.screen is self.screen_stack[0] else None
        while node is not None:
            if isinstance(node, ModelPanel):
                return node
            node = node.parent  # type: ignore[assignment]
        return None

    @property
    def current_panel(self) -> ModelPanel | None:
        """The focused panel, else the one last focused, else the first."""
        panel = self.focused_panel
        if panel is not None:
            return panel
        if self._last_panel is not None and self._last_panel.is_attached:
            return self._last_panel
        panels = self.panels
        return panels[0] if panels else None

    def _focus_changed(self, focused: Widget | None) -> None:
        panel = self.focused_panel
        if panel is not None:
            self._set_current(panel)

    def _set_current(self, panel: ModelPanel) -> None:
        self._last_panel = panel
        for other in self.panels:
            other.current = other is panel

    def params_for(self, panel: ModelPanel) -> GenParams:
        try:
            return self.shared.with_overrides(panel.overrides)
        except ParamError as exc:  # overrides are checked on entry; keep going regardless
            self.notify(f"panel {panel.number}: {exc}", severity="error")
            return self.shared

    # -- runners ----------------------------------------------------------------

    def catalog(self) -> Catalog:
        """The model catalog, built on first use (call from a thread worker)."""
        with self._catalog_lock:
            if self._catalog is None:
                self._catalog = build_catalog(self.settings)
            return self._catalog

    def rescan_catalog(self) -> Catalog:
        """Scan for models again (after a pull); call from a thread worker."""
        catalog = build_catalog(self.settings)
        with self._catalog_lock:
            self._catalog = catalog
        return catalog

    def _make_runner(self, ref: str) -> Runner:
        """A catalog id, a .gguf path, a server URL or a [servers.NAME] name."""
        runner = make_runner(ref, self.settings, self.catalog())
        entry = getattr(runner, "entry", None)
        if isinstance(entry, Entry) and entry.info is None:
            raise RunnerError(f"cannot use {entry.path.name}: {entry.error}")
        return runner

    def _open(self, panel: ModelPanel) -> None:
        """Make the panel's runner in a thread (reading the catalog takes a moment)."""
        factory, ref, variant = self._factory, panel.ref, panel.variant

        def connect(runner: RemoteRunner) -> None:
            # Ask the server which model it serves and its context size, so
            # the panel opens with them; a server that cannot be reached fails
            # the panel with the reason.
            try:
                runner.connect()
            except BaseException:
                runner.close()
                raise

        def open_runner() -> None:
            try:
                runner = factory(ref)
                if isinstance(runner, RemoteRunner):
                    connect(runner)
                if variant is not None:  # a sweep value or a template variant
                    runner = VariantRunner(runner, variant.label, variant.prompt)
            except KeyError as exc:
                message = str(exc.args[0]) if exc.args else f"no model {ref!r}"
            except Exception as exc:  # any failure belongs in the panel, not a traceback
                message = str(exc) or type(exc).__name__
            else:
                panel.post_message(ModelPanel.RunnerOpened(panel, runner))
                return
            panel.post_message(ModelPanel.RunnerFailed(panel, clean(message, max_len=600)))

        self.run_worker(open_runner, name=f"open {ref}", group="open", thread=True,
                        exit_on_error=False)  # fmt: skip

    def on_model_panel_runner_opened(self, message: ModelPanel.RunnerOpened) -> None:
        panel = message.panel
        if not panel.is_attached:  # removed while opening
            self._close_runners([message.runner])
            return
        self._runners.append(message.runner)
        panel.set_params(self.params_for(panel))
        self.seeing.panel_opened(panel)
        panel.request_count(self.prompt_area.prompt)

    def _close_runners(self, runners: list[Runner]) -> Worker[None] | None:
        """Close runners (ending their worker processes) in a thread."""
        for runner in runners:
            if runner in self._runners:
                self._runners.remove(runner)
        if not runners:
            return None

        def close_all() -> None:
            threads = [threading.Thread(target=r.close, daemon=True) for r in runners]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        return self.run_worker(close_all, name="close models", group="close", thread=True,
                               exit_on_error=False)  # fmt: skip

    # -- counting ---------------------------------------------------------------

    def on_prompt_area_prompt_edited(self, event: PromptArea.PromptEdited) -> None:
        # Debounced: a worker that waits, cancelled by the next keystroke.
        self._count_later()

    # As a @work method the coroutine is made when the worker starts, so a
    # debounce cancelled before it started leaves none behind never awaited.
    @work(name="debounce", group="debounce", exclusive=True)
    async def _count_later(self) -> None:
        await asyncio.sleep(COUNT_DELAY)
        self._count_now()

    def _count_now(self) -> None:
        area = self.prompt_area
        prompt = area.prompt
        area.count_reference()
        for panel in self.panels:
            panel.request_count(prompt)

    # -- running ------------------------------------------------------------------

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
        waiting = [panel for panel in self.panels if panel.state == "opening"]
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

        self._run_worker = self.run_worker(
            run_all, name=f"run {run}", group="run", thread=True, exit_on_error=False
        )
        self.refresh_bindings()

    def _run_over(self, worker: Worker[Any]) -> None:
        if worker is not self._run_worker:
            return
        self._comparison = None
        self._run_worker = None
        self._run_panels = []
        self.refresh_bindings()

    def action_cancel(self) -> None:
        comparison = self._comparison
        if comparison is None:
            if self.screen.maximized is not None:
                self.screen.minimize()
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
        worker = self.run_worker(self.catalog, name="catalog", group="catalog", thread=True,
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
        self.push_dialog(picker, self._add_panel)

    def _add_panel(self, ref: str | None) -> None:
        if not ref:
            return
        panel = ModelPanel(ref, number=len(self.panels) + 1)
        panel.set_params(self.params_for(panel))
        row = self.query_one(PanelRow)
        row.mount(panel)
        row.call_after_refresh(row.fit_panels)
        self._open(panel)
        self._set_current(panel)
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
        if not ref or not panel.is_attached:
            return
        self._cancel_panel(panel)
        old = panel.runner
        panel.forget_counts()
        panel.ref = ref
        panel.runner = None
        panel.open_error = None
        panel.state = "opening"
        panel.refresh_display()
        if old is not None:
            self._close_runners([old])
        self._open(panel)

    def _cancel_panel(self, panel: ModelPanel) -> None:
        if self._comparison is not None and panel in self._run_panels:
            self._comparison.cancel(self._run_panels.index(panel))

    async def action_remove_panel(self) -> None:
        panel = self.current_panel
        if panel is None:
            self.notify("No panel to remove.", severity="warning")
            return
        self._cancel_panel(panel)
        runner, panel.runner = panel.runner, None
        panels = self.panels
        index = panels.index(panel)
        await panel.remove()
        if runner is not None:
            self._close_runners([runner])
        rest = self.panels
        self.query_one(PanelRow).fit_panels()
        for number, other in enumerate(rest, 1):
            other.set_number(number)
        if rest:
            neighbour = rest[min(index, len(rest) - 1)]
            self._set_current(neighbour)
            neighbour.output.focus()
        else:
            self._last_panel = None
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
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        panel = self.current_panel
        if panel is None:
            return
        screen.maximize(panel, container=False)
        panel.output.focus()

    def action_copy(self) -> None:
        panel = self.current_panel
        if panel is None or not panel.output.text:
            self.notify("Nothing to copy yet.", severity="warning")
            return
        text = panel.output.text
        self.copy_to_clipboard(text)
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
        self.push_dialog(PullDialog(rescan=self.rescan_catalog), self._add_panel)

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

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_dialog(HelpScreen(), None)

    async def action_quit(self) -> None:
        await self.shutdown_models()
        self.exit()

    async def shutdown_models(self) -> None:
        """Cancel runs and close every runner, so all worker processes end."""
        if self._comparison is not None:
            self._comparison.cancel()
            await self.history.quit(self._comparison.results)
        runners = list(self._runners)
        for panel in self.panels:
            if panel.runner is not None and panel.runner not in runners:
                runners.append(panel.runner)
        worker = self._close_runners(runners)
        if worker is not None:
            await worker.wait()

    def on_unmount(self) -> None:
        # A safety net for exits that did not go through action_quit.
        if self._comparison is not None:
            self._comparison.cancel()
        runners, self._runners = self._runners, []
        threads = [threading.Thread(target=r.close, daemon=True) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=5)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_SCREEN_ACTIONS and self.screen is not self.screen_stack[0]:
            return False
        if action == "cancel":
            return self.running or self.screen.maximized is not None
        return True

    # -- the one place worker failures are handled --------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            self.log.error(f"worker {worker.name!r} failed: {error!r}")
            self.notify(
                clean(f"{worker.name}: {type(error).__name__}: {error}", max_len=500),
                title="Something went wrong",
                severity="error",
                timeout=10,
            )
        if worker.group == "run" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._run_over(worker)

    # -- command palette ----------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key in keys.KEYS:
            if not key.palette:
                continue
            yield SystemCommand(
                key.title,
                f"{keys.display(key.keys)} · {key.help}",
                partial(self.run_action, key.action),
            )


def make_app(
    settings: Settings | None = None,
    models: Sequence[str] | None = None,
    prompt: str = "",
    runner_factory: RunnerFactory | None = None,
    catalog: Catalog | None = None,
    *,
    cursor_blink: bool = True,
) -> WorkbenchApp:
    """Build the app, for the CLI and for tests.

    ``models`` are model ids or .gguf paths, one panel each (default: the
    settings' default models). ``runner_factory`` makes a runner from one of
    them; the default finds it in the catalog and runs it in a local worker
    process. Nothing is loaded here: the catalog is read and models start
    when first needed.
    """
    settings = settings if settings is not None else load_settings()
    refs = list(models) if models else list(settings.default_models)
    return WorkbenchApp(settings, refs, prompt, runner_factory, catalog, cursor_blink=cursor_blink)
