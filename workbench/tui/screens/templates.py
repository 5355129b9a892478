"""Prompt templates: pick one, fill in its variables, choose the shots, look at
the prompts it makes, then put one in the editor or run them side by side.
The current prompt can be saved as a template of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from workbench.engine.prompts import templates as t
from workbench.engine.running.protocol import Mode, Prompt
from workbench.engine.sanitize import clean
from workbench.tui.variants import PLACEMENTS, REPLACE

Action = Literal["editor", "variants", "across"]
BUTTONS: dict[str, Action] = {
    "templates-editor": "editor",
    "templates-variants": "variants",
    "templates-across": "across",
}
_BIG = 1 << 20


@dataclass(frozen=True)
class TemplateResult:
    """What to do with the template's prompts.

    ``editor``: put ``prompts[0]`` in the editor (text, system prompt, mode).
    ``variants``: one panel per prompt on the current panel's model,
    replacing the current panels or added to them (``replace``).
    ``across``: put ``prompts[0]`` in the editor and run every panel.
    """

    action: Action
    prompts: list[tuple[str, Prompt]]
    replace: bool = True


def _shown(text: str) -> str:
    return clean(text, max_len=_BIG, keep_newlines=True)


class TemplatesScreen(ModalScreen[TemplateResult | None]):
    """The templates, built-in and the user's; the form for the highlighted one.

    ``current`` is the prompt in the editor (saved by "Save"); its mode is
    also the mode of a template that does not name one. ``model`` names the
    panel whose model "Run variants" uses (None: no panel).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, current: Prompt, model: str | None) -> None:
        super().__init__()
        self.current = current
        self.model = model
        self.templates: list[t.Template] = []
        self.template: t.Template | None = None
        self.warnings: list[str] = []

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="templates-dialog", classes="dialog") as dialog:
            dialog.border_title = "Prompt templates"
            with Horizontal(id="templates-main"):
                yield OptionList(id="templates-list", compact=True)
                with VerticalScroll(id="templates-form"):
                    yield Static("", id="templates-about")
                    yield Vertical(id="templates-vars")
                    with Horizontal(id="templates-shots", classes="templates-row"):
                        yield Label("shots", classes="templates-label")
                    with Horizontal(id="templates-placement-row", classes="templates-row"):
                        yield Label("panels", classes="templates-label")
                        yield Select(PLACEMENTS, value=REPLACE, allow_blank=False,
                                     id="templates-placement", compact=True)  # fmt: skip
                    yield Static("", id="templates-error", classes="field-error")
                    yield Static("", id="templates-preview")
            with Horizontal(id="templates-actions"):
                yield Button("Put in editor", id="templates-editor", variant="primary",
                             compact=True)  # fmt: skip
                yield Button("Run variants on this model", id="templates-variants", compact=True)
                yield Button("Run across panels", id="templates-across", compact=True)
            with Horizontal(id="templates-save-row"):
                yield Label("Save the prompt as ", id="templates-save-label")
                yield Input(id="templates-name", placeholder="name", compact=True)
                yield Button("Save", id="templates-save", compact=True)
            yield Static("", id="templates-message")
            yield Static("Tab moves · Enter picks · Esc closes", classes="dialog-hint")

    async def on_mount(self) -> None:
        self.query_one("#templates-message").display = False
        variants = self.query_one("#templates-variants", Button)
        if self.model:
            variants.tooltip = f"one panel per variant, each its own copy of {self.model}"
        else:
            variants.disabled = True
        self._load_list()
        await self._select(self.templates[0].name if self.templates else None)
        self.query_one(OptionList).focus()

    def _load_list(self, highlight: str | None = None) -> None:
        self.warnings = []
        self.templates = t.list_templates(self.warnings.append)
        olist = self.query_one(OptionList)
        olist.clear_options()
        for template in self.templates:
            name = Text(clean(template.name, max_len=64))
            if not template.builtin:
                name.append(" (yours)", style="italic")
            olist.add_option(Option(name, id=template.name))
        if self.warnings:
            self._message(f"{len(self.warnings)} template file(s) skipped: {self.warnings[0]}")
        names = [template.name for template in self.templates]
        if highlight in names:
            olist.highlighted = names.index(highlight)
        elif names:
            olist.highlighted = 0

    # -- the form ------------------------------------------------------------------

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None and (
            self.template is None or event.option.id != self.template.name
        ):
            await self._select(event.option.id)

    async def _select(self, name: str | None) -> None:
        template = next((x for x in self.templates if x.name == name), None)
        self.template = template
        about = self.query_one("#templates-about", Static)
        box = self.query_one("#templates-vars", Vertical)
        await box.remove_children()
        shots_row = self.query_one("#templates-shots", Horizontal)
        await shots_row.remove_children(Checkbox)
        if template is None:
            about.update("No templates.")
            self._refresh()
            return
        n = len(template.examples)
        kind = f"few-shot, {n} example{'s' if n != 1 else ''}" if n else "template"
        origin = "built-in" if template.builtin else "yours"
        text = Text(f"{kind} · {template.mode or 'any mode'} · {origin}", style="italic")
        if template.description:
            text = Text(clean(template.description, max_len=300) + "\n") + text
        about.update(text)
        rows = []
        for variable in template.variables:
            value = template.defaults.get(variable, "")
            field: Widget
            if "\n" in value:
                field = TextArea(value, id=f"var-{variable}", classes="templates-var-area",
                                 compact=True, soft_wrap=True, tab_behavior="focus")  # fmt: skip
            else:
                field = Input(value, id=f"var-{variable}", classes="templates-var", compact=True)
            rows.append(Horizontal(Label(clean(variable, max_len=14), classes="templates-label"),
                                   field, classes="templates-row"))  # fmt: skip
        await box.mount_all(rows)
        box.display = bool(rows)
        if template.examples:
            boxes = [Checkbox(str(k), True, id=f"shot-{k}", compact=True)
                     for k in t.default_shots(n)]  # fmt: skip
            await shots_row.mount_all(boxes)
        shots_row.display = bool(template.examples)
        self.app.call_after_refresh(self._blink_off)
        self._refresh()

    def _blink_off(self) -> None:
        apply = getattr(self.app, "apply_cursor_blink", None)
        if apply is not None:
            apply(self)

    def values(self) -> dict[str, str]:
        """The variables as typed."""
        values: dict[str, str] = {}
        for variable in self.template.variables if self.template else []:
            field = self.query_one(f"#var-{variable}")
            if isinstance(field, Input):
                values[variable] = field.value
            elif isinstance(field, TextArea):
                values[variable] = field.text
        return values

    def shots(self) -> list[int]:
        """The numbers of shots ticked, in order."""
        return sorted(
            int(str(box.id).removeprefix("shot-"))
            for box in self.query(Checkbox)
            if box.value and box.id and box.id.startswith("shot-")
        )

    def prompts(self) -> list[tuple[str, Prompt]]:
        """(label, prompt) for each variant; TemplateError says what is wrong."""
        template = self.template
        if template is None:
            raise t.TemplateError("no template chosen")
        mode: Mode = template.mode or self.current.mode
        if not template.examples:
            return template.variants(self.values(), mode=mode)
        shots = self.shots()
        if not shots:
            raise t.TemplateError("tick at least one number of shots")
        return template.variants(self.values(), shots, mode=mode)

    def _refresh(self) -> None:
        error = self.query_one("#templates-error", Static)
        preview = self.query_one("#templates-preview", Static)
        try:
            prompts = self.prompts() if self.template is not None else []
        except t.TemplateError as exc:
            error.update(Text(clean(str(exc), max_len=400)))
            error.display = True
            preview.update("")
            return
        error.display = False
        text = Text()
        if len(prompts) > 1:
            text.append(f"Put in editor and Run across panels: {prompts[-1][0]}\n", "italic")
        for label, prompt in prompts:
            heading = f"── {clean(label, max_len=80)} · {prompt.mode}"
            if prompt.system:
                heading += f" · system: {clean(prompt.system, max_len=60)}"
            text.append(heading + " ──\n", style="bold")
            text.append(_shown(prompt.text) + "\n")
        preview.update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "templates-name":
            event.stop()
            self._refresh()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._refresh()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._refresh()

    # -- actions ---------------------------------------------------------------------

    def _message(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#templates-message", Static)
        message.update(Text(clean(text, max_len=400), style="bold" if error else ""))
        message.set_class(error, "-error")
        message.display = bool(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id or ""
        if button == "templates-save":
            self.action_save()
        elif button in BUTTONS:
            self.finish(BUTTONS[button])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "templates-name":
            self.action_save()
        else:
            self.finish("editor")

    def finish(self, action: Action) -> None:
        try:
            prompts = self.prompts()
        except t.TemplateError as exc:
            self._message(str(exc), error=True)
            return
        if action == "variants":
            if not self.model:
                self._message("No panel to run the variants on: add one first.", error=True)
                return
            replace = self.query_one("#templates-placement", Select).value == REPLACE
            self.dismiss(TemplateResult("variants", prompts, replace))
            return
        self.dismiss(TemplateResult(action, prompts[-1:]))

    def action_save(self) -> None:
        name = self.query_one("#templates-name", Input).value.strip()
        current = self.current
        try:
            t.check_name(name)
            if not current.text.strip():
                raise t.TemplateError("the prompt is empty: nothing to save")
            replaced = any(x.name == name and not x.builtin for x in self.templates)
            template = t.Template(name, current.text, system=current.system, mode=current.mode)
            path = t.save_template(template)
        except t.TemplateError as exc:
            self._message(str(exc), error=True)
            return
        self._load_list(highlight=name)
        verb = "Replaced" if replaced else "Saved"
        self._message(f"{verb} {name} ({path})")

    def action_cancel(self) -> None:
        self.dismiss(None)
