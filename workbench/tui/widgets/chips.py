"""A prompt's tokens as chips: one chip per token, wrapped between chips."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from workbench.engine.prompts.tokens import visible_piece

SEPARATOR = "│"
EMPTY_PIECE = "∅"  # a token with no text (it can happen with byte tokens)


def chip_label(piece: str, token_id: int | None = None) -> str:
    """What one chip reads: the piece made visible and safe, then ``:ID``."""
    shown = visible_piece(piece) or EMPTY_PIECE
    return shown if token_id is None else f"{shown}:{token_id}"


def _fold(label: str, width: int) -> list[str]:
    """A label wider than the view, cut into parts of at most ``width`` cells."""
    parts, part, used = [], "", 0
    for char in label:
        w = cell_len(char)
        if part and used + w > width:
            parts.append(part)
            part, used = "", 0
        part += char
        used += w
    parts.append(part)
    return parts


def chip_lines(
    pieces: Sequence[str], ids: Sequence[int] | None, width: int
) -> list[list[tuple[int, str]]]:
    """The chips laid out in lines of at most ``width`` cells: each line a list
    of (token index, text) parts. Chips on one line have a separator between
    them; a line never breaks inside a chip unless the chip alone is wider
    than the line, and a chip that ends in a line break ends its line too
    (so a prompt's lines stay lines)."""
    width = max(width, 2)
    lines: list[list[tuple[int, str]]] = [[]]
    used = 0
    for index, piece in enumerate(pieces):
        label = chip_label(piece, None if ids is None else ids[index])
        size = cell_len(label)
        need = size + (1 if lines[-1] else 0)
        if lines[-1] and used + need > width:
            lines.append([])
            used, need = 0, size
        if size > width:
            for part in _fold(label, width):
                if lines[-1]:
                    lines.append([])
                lines[-1].append((index, part))
                used = cell_len(part)
        else:
            lines[-1].append((index, label))
            used += need
        if piece.endswith("\n") and index < len(pieces) - 1:
            lines.append([])
            used = 0
    return lines


class TokenChips(Widget):
    """Tokens as chips that read with or without colour: a ``│`` between two
    chips on a line, and two alternating chip styles. Whitespace shows as
    ``·``, ``→`` and ``↵``; pieces are cleaned, so a token cannot act on the
    terminal. ``show_ids`` adds each token's id to its chip."""

    DEFAULT_CSS = """
    TokenChips {
        height: auto;
        width: 1fr;
    }
    TokenChips > .chips--even { background: $primary 25%; }
    TokenChips > .chips--odd { background: $accent 25%; text-style: italic; }
    TokenChips > .chips--separator { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"chips--even", "chips--odd", "chips--separator"}

    def __init__(
        self,
        pieces: Sequence[str] = (),
        ids: Sequence[int] | None = None,
        *,
        show_ids: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._pieces = list(pieces)
        self._ids = list(ids) if ids is not None else None
        self._show_ids = show_ids
        self._cache: tuple[int, bool, list[list[tuple[int, str]]]] | None = None

    @property
    def pieces(self) -> list[str]:
        return list(self._pieces)

    @property
    def show_ids(self) -> bool:
        return self._show_ids

    @show_ids.setter
    def show_ids(self, value: bool) -> None:
        if value != self._show_ids:
            self._show_ids = value
            self.refresh(layout=True)

    def set_tokens(self, pieces: Sequence[str], ids: Sequence[int] | None) -> None:
        self._pieces = list(pieces)
        self._ids = list(ids) if ids is not None else None
        self._cache = None
        self.refresh(layout=True)

    def _lines(self, width: int) -> list[list[tuple[int, str]]]:
        show = self._show_ids and self._ids is not None
        if self._cache is None or self._cache[:2] != (width, show):
            lines = chip_lines(self._pieces, self._ids if show else None, width)
            self._cache = (width, show, lines)
        return self._cache[2]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width)) if self._pieces else 1

    def render(self) -> Text:
        if not self._pieces:
            return Text("(no tokens)", style="italic")
        styles: tuple[Style, Style] = (
            self.get_component_rich_style("chips--even", partial=True),
            self.get_component_rich_style("chips--odd", partial=True),
        )
        separator = self.get_component_rich_style("chips--separator", partial=True)
        text = Text(no_wrap=True, overflow="crop")
        for number, line in enumerate(self._lines(self.size.width)):
            if number:
                text.append("\n")
            previous = -1
            for index, part in line:
                if previous >= 0 and index != previous:
                    text.append(SEPARATOR, separator)
                text.append(part, styles[index % 2])
                previous = index
        return text
