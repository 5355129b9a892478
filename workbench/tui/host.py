"""What the app's flows may use of their screen: a narrow protocol.

The flows (``history.History``, ``seeing.Seeing``, and the ones to come)
are given the main screen as a ``Host``, so they never import it or the
app, and there is no import circle between them. They reach the panels
through ``host.row`` (the ``PanelRow``, their one owner) and ask for
nothing else than what is listed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.engine.config import Settings
    from workbench.engine.models.catalog import Catalog
    from workbench.engine.running.params import GenParams
    from workbench.tui.panels import PanelRow
    from workbench.tui.widgets.panel import ModelPanel
    from workbench.tui.widgets.prompt import PromptArea


class Host(Protocol):
    settings: Settings
    shared: GenParams

    @property
    def row(self) -> PanelRow: ...

    @property
    def panels(self) -> list[ModelPanel]: ...

    @property
    def current_panel(self) -> ModelPanel | None: ...

    @property
    def prompt_area(self) -> PromptArea: ...

    @property
    def running(self) -> bool: ...

    @property
    def app_running(self) -> bool:
        """False once the app has stopped (threads must not call into it then)."""

    def catalog(self) -> Catalog: ...

    def params_for(self, panel: ModelPanel) -> GenParams: ...

    def action_run(self) -> None: ...

    def push_dialog(self, screen: Any, callback: Any) -> None: ...

    def history_off(self) -> None:
        """Show that runs are not being kept."""

    def notify(self, *args: Any, **kwargs: Any) -> Any:
        """Textual's notify, markup off unless asked for."""

    def work(self, *args: Any, **kwargs: Any) -> Any:
        """Textual's run_worker, on the app (where failures are reported)."""

    def call_from_thread(self, *args: Any, **kwargs: Any) -> Any: ...

    def call_after_refresh(self, *args: Any, **kwargs: Any) -> Any: ...
