"""What the app's flows may use of the app: a narrow protocol.

The flows (``history.History``, ``seeing.Seeing``, and the ones to come)
are given the app as a ``Host``, so they never import ``tui/app.py`` and
there is no import circle between the app and them. They reach the panels
through ``host.row`` (the ``PanelRow``, their one owner) and ask the app
for nothing else than what is listed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.engine.catalog import Catalog
    from workbench.engine.config import Settings
    from workbench.engine.params import GenParams
    from workbench.tui.panels import PanelRow
    from workbench.tui.widgets.panel import ModelPanel
    from workbench.tui.widgets.prompt import PromptArea


class Host(Protocol):
    settings: Settings
    shared: GenParams
    sub_title: str

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
    def is_running(self) -> bool: ...

    def catalog(self) -> Catalog: ...

    def params_for(self, panel: ModelPanel) -> GenParams: ...

    def action_run(self) -> None: ...

    def push_dialog(self, screen: Any, callback: Any) -> None: ...

    # Textual's own, as the app has them (markup is off by default there:
    # see WorkbenchApp.notify).
    def notify(self, *args: Any, **kwargs: Any) -> Any: ...

    def run_worker(self, *args: Any, **kwargs: Any) -> Any: ...

    def call_from_thread(self, *args: Any, **kwargs: Any) -> Any: ...

    def call_later(self, *args: Any, **kwargs: Any) -> Any: ...

    def call_after_refresh(self, *args: Any, **kwargs: Any) -> Any: ...

    def query(self, *args: Any, **kwargs: Any) -> Any: ...
