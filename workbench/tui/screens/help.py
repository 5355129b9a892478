"""The help screen: every key, and what the app does with it."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.engine.prompts.tokens import REFERENCE_LABEL
from workbench.tui.keys import KEYS, OTHER_KEYS, display

ABOUT = (
    "Type a prompt once; each panel counts it with its own model's tokenizer "
    "(the meter: prompt + max new tokens / context window; █ prompt, ▒ reserved "
    f"for the answer). {REFERENCE_LABEL} is shown once, for comparison with "
    "OpenAI models only. Panels run side by side; states: idle, loading, "
    "reading prompt, generating, done, cancelled, error, refused (prompt too "
    "long for that model)."
)


def keys_table() -> Table:
    rows = [(display(key.keys), key.help) for key in KEYS] + list(OTHER_KEYS)
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column("keys", style="bold", no_wrap=True, width=max(len(k) for k, _ in rows))
    table.add_column("what", ratio=1)
    for keys, what in rows:
        table.add_row(keys, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key the app binds, what it does, and a word on the meters."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog") as dialog:
            dialog.border_title = "Keys"
            with VerticalScroll(id="help-body"):
                yield Static(keys_table(), id="help-keys")
                yield Static(Text(ABOUT), id="help-about")
            yield Static("Esc / F1 close · ↑↓ scroll", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
