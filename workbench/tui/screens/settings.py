"""Generation settings: shared values and per-panel overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from workbench.engine.running.params import (
    FIELDS,
    HELP,
    GenParams,
    ParamError,
    coerce,
    from_mapping,
)

SHARED = "shared"


def to_text(value: Any) -> str:
    """A setting's value as the user would type it."""
    if isinstance(value, tuple | list):
        return ", ".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class PanelChoice:
    """A panel the settings can override, as the dialog names it."""

    key: str
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SettingsResult:
    """What the dialog returns: the shared values and each panel's overrides."""

    shared: GenParams
    overrides: dict[str, dict[str, Any]]


class SettingsScreen(ModalScreen[SettingsResult | None]):
    """Edit the shared generation settings, or one panel's overrides.

    The target select switches between "shared" and each panel; what was
    typed for one target is kept while another is shown. For a panel, an
    empty field inherits the shared value (shown greyed). For the shared
    values, an empty field means the value from settings.toml. Apply checks
    every field and stays open, with the message under the field, when a
    value is wrong.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+enter,ctrl+j", "apply", "Apply", show=False),
    ]

    def __init__(
        self,
        shared: GenParams,
        defaults: GenParams,
        panels: Sequence[PanelChoice],
        *,
        target: str = SHARED,
    ) -> None:
        super().__init__()
        self.defaults = defaults
        self.panels = list(panels)
        self.drafts: dict[str, dict[str, str]] = {
            SHARED: {name: to_text(getattr(shared, name)) for name in FIELDS}
        }
        for panel in self.panels:
            self.drafts[panel.key] = {
                name: to_text(panel.overrides[name]) if name in panel.overrides else ""
                for name in FIELDS
            }
        self.target = target if target in self.drafts else SHARED
        self.errors: dict[str, dict[str, str]] = {}

    def compose(self) -> ComposeResult:
        choices = [("all panels (shared)", SHARED)]
        choices += [(f"panel {p.label}", p.key) for p in self.panels]
        with Vertical(id="settings-dialog", classes="dialog") as dialog:
            dialog.border_title = "Generation settings"
            with Horizontal(id="settings-target-row"):
                yield Label("For ", id="settings-for")
                yield Select(choices, value=self.target, allow_blank=False,
                             id="settings-target", compact=True)  # fmt: skip
            yield Static("", id="settings-explain", classes="dialog-hint")
            with VerticalScroll(id="settings-fields"):
                for name in FIELDS:
                    with Horizontal(classes="field-row"):
                        yield Label(name, classes="field-name")
                        yield Input(id=f"field-{name}", classes="field-input", compact=True)
                        yield Static(Text(HELP[name]), classes="field-help")
                    yield Static("", id=f"error-{name}", classes="field-error")
            with Horizontal(id="settings-buttons"):
                yield Button("Apply", id="settings-apply", variant="primary", compact=True)
                yield Button("Cancel", id="settings-cancel", compact=True)
                yield Static("Enter apply · Esc cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self._show(self.target)
        self.query_one(f"#field-{next(iter(FIELDS))}", Input).focus()

    # -- drafts -----------------------------------------------------------------

    def _inputs(self) -> dict[str, Input]:
        return {name: self.query_one(f"#field-{name}", Input) for name in FIELDS}

    def _save(self) -> None:
        self.drafts[self.target] = {name: w.value for name, w in self._inputs().items()}

    def _shared_draft_params(self) -> GenParams | None:
        try:
            return self._shared_params(self.drafts[SHARED])
        except ParamError:
            return None

    def _show(self, target: str) -> None:
        self.target = target
        shared = self._shared_draft_params() or self.defaults
        for name, widget in self._inputs().items():
            widget.value = self.drafts[target][name]
            if target == SHARED:
                widget.placeholder = f"{to_text(getattr(self.defaults, name))} (from settings)"
            else:
                widget.placeholder = f"{to_text(getattr(shared, name))} (shared)"
        if target == SHARED:
            explain = "Shared values for every panel. Empty: the value from settings.toml."
        else:
            explain = "Overrides for this panel only. Empty: inherit the shared value."
        self.query_one("#settings-explain", Static).update(explain)
        self._show_errors()

    def _show_errors(self) -> None:
        errors = self.errors.get(self.target, {})
        for name in FIELDS:
            label = self.query_one(f"#error-{name}", Static)
            message = errors.get(name, "")
            label.update(Text(message))
            label.display = bool(message)
            self.query_one(f"#field-{name}", Input).set_class(bool(message), "-wrong")

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value == self.target or event.value is Select.BLANK:
            return
        self._save()
        self._show(str(event.value))

    # -- validation -------------------------------------------------------------

    def _shared_params(self, draft: dict[str, str]) -> GenParams:
        values = {name: text for name, text in draft.items() if text.strip()}
        return from_mapping(values, base=self.defaults)

    @staticmethod
    def _field_errors(draft: dict[str, str], base: GenParams) -> dict[str, str]:
        """Each non-empty field checked on its own, so every wrong one is named."""
        errors = {}
        for name, text in draft.items():
            if not text.strip():
                continue
            try:
                from_mapping({name: text}, base=base)
            except ParamError as exc:
                errors[name] = str(exc)
        return errors

    def validate(self) -> SettingsResult | None:
        """The result, or None with ``self.errors`` filled in."""
        self._save()
        self.errors = {}
        shared_errors = self._field_errors(self.drafts[SHARED], self.defaults)
        if shared_errors:
            self.errors[SHARED] = shared_errors
            return None
        shared = self._shared_params(self.drafts[SHARED])
        overrides: dict[str, dict[str, Any]] = {}
        for panel in self.panels:
            draft = self.drafts[panel.key]
            errors = self._field_errors(draft, shared)
            if errors:
                self.errors[panel.key] = errors
                continue
            overrides[panel.key] = {
                name: coerce(name, text) for name, text in draft.items() if text.strip()
            }
        if self.errors:
            return None
        return SettingsResult(shared, overrides)

    def action_apply(self) -> None:
        result = self.validate()
        if result is not None:
            self.dismiss(result)
            return
        target = SHARED if SHARED in self.errors else next(iter(self.errors))
        if target != self.target:
            self.query_one(Select).value = target  # its Changed handler saves and shows
            self._show(target)
        else:
            self._show_errors()
        first = next(iter(self.errors[target]))
        self.query_one(f"#field-{first}", Input).focus()
        count = sum(len(e) for e in self.errors.values())
        self.notify(
            f"{count} setting{'s' if count > 1 else ''} to fix (message under the field)",
            severity="error",
        )

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "settings-apply":
            self.action_apply()
        else:
            self.action_cancel()
