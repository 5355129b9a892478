"""Two panels' completions compared word by word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench.engine.history.diff import (
    ADDED_CLOSE,
    ADDED_OPEN,
    REMOVED_CLOSE,
    REMOVED_OPEN,
    WordDiff,
    word_diff,
)
from workbench.engine.sanitize import clean

# Completions are cleaned when they reach a panel; this only bounds labels.
_LABEL = 60


@dataclass(frozen=True)
class DiffSide:
    """One panel's completion, and how to name it."""

    number: int
    label: str
    text: str


class DiffView(Widget):
    """The diff as running text: removed words struck through between ``[-``
    and ``-]``, added words underlined between ``{+`` and ``+}``, so it reads
    without colour too. The colours come from app.tcss."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"diff--removed", "diff--added"}

    DEFAULT_CSS = """
    DiffView {
        height: auto;
    }
    """

    def __init__(self, diff: WordDiff, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff = diff

    def render(self) -> Text:
        removed = self.get_component_rich_style("diff--removed", partial=True)
        added = self.get_component_rich_style("diff--added", partial=True)
        text = Text()
        for chunk in self.diff.chunks:
            if chunk.kind == "removed":
                text.append(f"{REMOVED_OPEN}{chunk.text}{REMOVED_CLOSE}", removed)
            elif chunk.kind == "added":
                text.append(f"{ADDED_OPEN}{chunk.text}{ADDED_CLOSE}", added)
            else:
                text.append(chunk.text)
        if not text:
            text.append("(both completions are empty)", "italic")
        return text

    @property
    def plain(self) -> str:
        """The text as drawn, markers included, without styles."""
        return self.diff.marked()


class DiffScreen(ModalScreen[None]):
    """How the second panel's completion differs from the first's."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, old: DiffSide, new: DiffSide) -> None:
        super().__init__()
        self.old = old
        self.new = new
        self.diff = word_diff(old.text, new.text)

    def compose(self) -> ComposeResult:
        old, new = self.old, self.new
        with Vertical(id="diff-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Diff: panel {old.number} → panel {new.number}"
            legend = Text(no_wrap=True, overflow="ellipsis")
            legend.append(f"{REMOVED_OPEN}…{REMOVED_CLOSE}", "bold")
            legend.append(f" only in {old.number} · {clean(old.label, max_len=_LABEL)}")
            legend.append("\n")
            legend.append(f"{ADDED_OPEN}…{ADDED_CLOSE}", "bold")
            legend.append(f" only in {new.number} · {clean(new.label, max_len=_LABEL)}")
            yield Static(legend, id="diff-legend")
            yield Static(Text(self.diff.summary()), id="diff-summary")
            with VerticalScroll(id="diff-body"):
                yield DiffView(self.diff, id="diff-view")
            yield Static("↑↓ PgUp PgDn Home End scroll · Esc close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#diff-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class PairPicker(ModalScreen[None]):
    """Which two panels to compare, when there are more than two; choosing a
    pair replaces this dialog by their diff."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, sides: Sequence[DiffSide], *, first: int = 0) -> None:
        super().__init__()
        self.sides = list(sides)
        # Pairs with the current panel first, then the others, in order.
        pairs = list(combinations(range(len(self.sides)), 2))
        self.pairs = sorted(pairs, key=lambda pair: first not in pair)

    def compose(self) -> ComposeResult:
        with Vertical(id="pair-dialog", classes="dialog") as dialog:
            dialog.border_title = "Diff which two panels?"
            options = []
            for a, b in self.pairs:
                old, new = self.sides[a], self.sides[b]
                label = Text(no_wrap=True, overflow="ellipsis")
                label.append(f"{old.number} ↔ {new.number}", "bold")
                label.append(f"  {clean(old.label, max_len=26)}  ↔  {clean(new.label, max_len=26)}")
                options.append(Option(label, id=f"{a}-{b}"))
            yield OptionList(*options, id="pair-list", compact=True)
            yield Static("↑↓ choose · Enter compare · Esc close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        a, b = (int(i) for i in (event.option.id or "0-1").split("-"))
        self.app.switch_screen(DiffScreen(self.sides[a], self.sides[b]))

    def action_close(self) -> None:
        self.dismiss(None)


def diff_dialog(sides: Sequence[DiffSide], current: int = 0) -> ModalScreen[Any] | str:
    """The screen that compares panels' completions, or why there is none.

    Two panels: their diff. More: a picker of pairs first.
    """
    if len(sides) < 2:
        return "A diff needs two panels: Ctrl+N adds one."
    if len(sides) == 2:
        return DiffScreen(sides[0], sides[1])
    return PairPicker(sides, first=current)
