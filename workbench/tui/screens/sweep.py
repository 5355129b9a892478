"""A sweep: one model, one setting, several values, a panel per value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from workbench.engine.running.params import HELP, ParamError
from workbench.engine.sanitize import clean
from workbench.tui.variants import (
    ADD,
    PLACEMENTS,
    REPLACE,
    SWEEP_EXAMPLES,
    SWEEP_SETTINGS,
    PanelSpec,
)

# (panel key, setting, values as typed) -> the panels; raises ParamError.
Plan = Callable[[str, str, str], list[PanelSpec]]


@dataclass(frozen=True)
class SweepResult:
    """The panels to create, and whether they replace the current ones."""

    specs: list[PanelSpec]
    replace: bool = True


class SweepScreen(ModalScreen[SweepResult | None]):
    """Choose a panel's model, a setting and its values (``0, 0.7, 1.2``).

    ``panels`` are (key, label) for each panel with a model; ``plan`` turns
    the choice into panels, or raises ParamError, shown under the values
    while the dialog stays open.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, panels: Sequence[tuple[str, str]], target: str, plan: Plan) -> None:
        super().__init__()
        self.panels = list(panels)
        self.target = target
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep-dialog", classes="dialog") as dialog:
            dialog.border_title = "Sweep one setting"
            with Horizontal(classes="sweep-row"):
                yield Label("model", classes="sweep-label")
                yield Select([(clean(label, max_len=80), key) for key, label in self.panels],
                             value=self.target, allow_blank=False, id="sweep-panel",
                             compact=True)  # fmt: skip
            with Horizontal(classes="sweep-row"):
                yield Label("setting", classes="sweep-label")
                yield Select([(name, name) for name in SWEEP_SETTINGS], value=SWEEP_SETTINGS[0],
                             allow_blank=False, id="sweep-setting", compact=True)  # fmt: skip
            yield Static("", id="sweep-help", classes="sweep-note")
            with Horizontal(classes="sweep-row"):
                yield Label("values", classes="sweep-label")
                yield Input(id="sweep-values", compact=True)
            yield Static("", id="sweep-error", classes="field-error sweep-note")
            with Horizontal(classes="sweep-row"):
                yield Label("panels", classes="sweep-label")
                yield Select(PLACEMENTS, value=REPLACE, allow_blank=False, id="sweep-placement",
                             compact=True)  # fmt: skip
            yield Static(
                "A panel per value, each with its own copy of the model (memory × values); "
                "Ctrl+R then runs them side by side.",
                classes="sweep-note",
            )
            with Horizontal(id="sweep-buttons"):
                yield Button("Create panels", id="sweep-create", variant="primary", compact=True)
                yield Button("Cancel", id="sweep-cancel", compact=True)
                yield Static("Enter create · Esc cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self._show_setting(SWEEP_SETTINGS[0])
        self.query_one("#sweep-error").display = False
        self.query_one("#sweep-values", Input).focus()

    @property
    def setting(self) -> str:
        return str(self.query_one("#sweep-setting", Select).value)

    def _show_setting(self, name: str) -> None:
        self.query_one("#sweep-help", Static).update(Text(HELP.get(name, "")))
        self.query_one("#sweep-values", Input).placeholder = f"such as {SWEEP_EXAMPLES[name]}"

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "sweep-setting" and event.value is not Select.BLANK:
            self._show_setting(str(event.value))

    def _error(self, message: str) -> None:
        error = self.query_one("#sweep-error", Static)
        error.update(Text(clean(message, max_len=400)))
        error.display = bool(message)
        self.query_one("#sweep-values", Input).set_class(bool(message), "-wrong")

    def action_create(self) -> None:
        panel = str(self.query_one("#sweep-panel", Select).value)
        values = self.query_one("#sweep-values", Input).value
        try:
            specs = self.plan(panel, self.setting, values)
        except ParamError as exc:
            self._error(str(exc))
            self.query_one("#sweep-values", Input).focus()
            return
        replace = self.query_one("#sweep-placement", Select).value != ADD
        self.dismiss(SweepResult(specs, replace))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_create()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "sweep-create":
            self.action_create()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)
