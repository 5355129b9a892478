"""The Prompt Workbench app: one prompt, one panel per model, side by side.

The app holds what outlives a screen (the settings, the model catalog) and
binds the keys that work everywhere (help, quit); the main screen
(``main_screen.py``) holds the prompt, the panels and their keys. Dialogs
are pushed over it.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from workbench.engine.config import Settings, load_settings
from workbench.engine.errors import describe
from workbench.engine.models.catalog import Catalog, Entry, build_catalog
from workbench.engine.running.backends.base import Runner, RunnerError
from workbench.engine.running.params import GenParams
from workbench.engine.running.runners import make_runner
from workbench.engine.sanitize import clean
from workbench.tui import keys
from workbench.tui.history import History
from workbench.tui.main_screen import MainScreen, Services
from workbench.tui.panels import PanelRow, RunnerFactory
from workbench.tui.screens.help import HelpScreen
from workbench.tui.seeing import Seeing
from workbench.tui.widgets.panel import ModelPanel
from workbench.tui.widgets.prompt import PromptArea


class WorkbenchApp(App[None]):
    """Compare models side by side: type once, count per model, run all."""

    CSS_PATH = "app.tcss"
    TITLE = "Prompt Workbench"
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings(keys.APP)  # type: ignore[assignment]
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
        self.cursor_blink = cursor_blink
        self._catalog = catalog
        self._catalog_lock = threading.Lock()
        services = Services(
            settings=settings,
            catalog=self.catalog,
            rescan_catalog=self.rescan_catalog,
            factory=runner_factory or self._make_runner,
            push_dialog=self.push_dialog,
            prepare=self.apply_cursor_blink,
        )
        self.main = MainScreen(services, list(models), prompt)

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def on_mount(self) -> None:
        # Thread workers run in the loop's default executor, which has only
        # cores + 4 threads; each panel may hold one while its model loads,
        # and a run must never queue behind them.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="workbench")
        )
        for warning in self.settings.warnings:
            self.notify(clean(warning, max_len=500), severity="warning", timeout=12)
        # Everything made so far (modules, styles, the screen) lives as long
        # as the app: out of the collector's sight, a full collection while
        # two models stream paused the app for 40-100 ms instead of 110-200.
        self.call_after_refresh(gc.freeze)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's notify with markup off unless asked for: messages carry
        model names, file names and servers' words, which must show as
        written (a name like ``[bold]x[/]`` is not a style, and a stray ``[``
        must not raise). The one way the app's code notifies."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def apply_cursor_blink(self, node: Screen[Any] | Widget) -> None:
        """Blinking cursors off (for stable snapshot pictures) when asked."""
        if not self.cursor_blink:
            for widget in node.query("Input, TextArea"):
                if isinstance(widget, Input | TextArea):
                    widget.cursor_blink = False

    def push_dialog(self, screen: Screen[Any], callback: Callable[[Any], Any] | None) -> None:
        self.push_screen(screen, callback)
        self.call_after_refresh(self.apply_cursor_blink, screen)

    # -- the main screen's state, as tests and the palette reach it --------------------

    @property
    def shared(self) -> GenParams:
        return self.main.shared

    @shared.setter
    def shared(self, params: GenParams) -> None:
        self.main.shared = params

    @property
    def history(self) -> History:
        return self.main.history

    @property
    def seeing(self) -> Seeing:
        return self.main.seeing

    @property
    def prompt_area(self) -> PromptArea:
        return self.main.prompt_area

    @property
    def row(self) -> PanelRow:
        return self.main.row

    @property
    def panels(self) -> list[ModelPanel]:
        return self.main.panels

    @property
    def current_panel(self) -> ModelPanel | None:
        return self.main.current_panel

    @property
    def running(self) -> bool:
        return self.main.running

    def params_for(self, panel: ModelPanel) -> GenParams:
        return self.main.params_for(panel)

    async def add_panel(self, ref: str | None) -> None:
        await self.main.add_panel(ref)

    # -- the catalog --------------------------------------------------------------------

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

    # -- keys that work everywhere ------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_dialog(HelpScreen(), None)

    async def action_quit(self) -> None:
        await self.main.shutdown_models()
        self.exit()

    # -- the one place worker failures are handled --------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            self.log.error(f"worker {worker.name!r} failed: {error!r}")
            self.notify(
                clean(f"{worker.name}: {describe(error)}", max_len=500),
                title="Something went wrong",
                severity="error",
                timeout=10,
            )
        if worker.group == "run" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.main.run_over(worker)

    # -- command palette ----------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key in keys.KEYS:
            if not key.palette:
                continue
            node = self if key.scope == keys.APP else self.main
            yield SystemCommand(
                key.title,
                f"{keys.display(key.keys)} · {key.help}",
                partial(node.run_action, key.action),
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
