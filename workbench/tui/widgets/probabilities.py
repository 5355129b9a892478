"""Next-token probabilities in a panel: the completion shaded by how sure the
model was of each token, and a token cursor that shows the alternatives.

A run has probabilities only when its ``logprobs`` setting is above 0; then
each ``Token`` event carries its logprob and the likeliest alternatives, and
the completion view keeps those events with their place in the text. A run
without them keeps nothing and draws exactly as the plain completion view.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.actions import SkipAction
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from workbench.engine.prompts.tokens import visible_piece
from workbench.engine.running import protocol as p
from workbench.tui import keys
from workbench.tui.widgets.output import CompletionView, safe

UNSURE_BELOW = 0.5
"""Tokens the model gave less than this probability are underlined."""
UNLIKELY_BELOW = 0.1
"""Tokens below this probability are also reversed: they stand out without colour."""


def _cursor_key() -> str:
    """How the help names the key that starts the token cursor."""
    for key in keys.KEYS:
        if key.action == "token_cursor":
            return keys.display(key.keys)
    return "←→"


def percent(logprob: float) -> str:
    """A logprob as a percentage that keeps small values readable."""
    value = math.exp(logprob) * 100
    if value >= 9.95:
        return f"{value:.0f}%"
    if value >= 1:
        return f"{value:.1f}%"
    if value >= 0.01:
        return f"{value:.2f}%"
    return "<0.01%"


def level(logprob: float | None) -> str | None:
    """``unsure``, ``unlikely`` or None (sure enough, or no probability)."""
    if logprob is None:
        return None
    chance = math.exp(logprob)
    if chance < UNLIKELY_BELOW:
        return "unlikely"
    if chance < UNSURE_BELOW:
        return "unsure"
    return None


class TokenInfo(Widget):
    """A few lines above a panel's completion: the token under the token
    cursor (its probability and the alternatives the model weighed), or,
    with shading on, what the shading means. Hidden otherwise."""

    DEFAULT_CSS = """
    TokenInfo {
        height: auto;
        max-height: 6;
        display: none;
        color: $text-muted;
    }
    TokenInfo > .info--token { text-style: bold reverse; }
    TokenInfo > .info--chosen { text-style: bold; color: $foreground; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"info--token", "info--chosen"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text()

    @property
    def text(self) -> str:
        """What the widget shows, as plain text ("" when hidden)."""
        return self._text.plain if self.display else ""

    def render(self) -> Text:
        return self._text

    def _show(self, text: Text) -> None:
        self._text = text
        self.display = True
        self.refresh(layout=True)

    def hide(self) -> None:
        if self.display:
            self._text = Text()
            self.display = False

    def show_legend(self, unsure: Style, unlikely: Style, cursor_key: str) -> None:
        """What the shading means: its two styles, their thresholds, and the
        key that starts the token cursor."""
        text = Text()
        text.append("unsure", unsure)
        text.append(f" <{UNSURE_BELOW:.0%} · ")
        text.append("unlikely", unlikely)
        text.append(f" <{UNLIKELY_BELOW:.0%} · {cursor_key}")
        self._show(text)

    def show_token(self, token: p.Token, number: int, total: int) -> None:
        token_style = self.get_component_rich_style("info--token", partial=True)
        chosen_style = self.get_component_rich_style("info--chosen", partial=True)
        text = Text()
        text.append(visible_piece(token.text) or "∅", token_style)
        if token.logprob is not None:
            text.append(f" {percent(token.logprob)}")
        text.append(f" · token {number}/{total} · ←→ Esc")
        if token.top:
            text.append("\n")
            for n, (piece, logprob) in enumerate(token.top):
                if n:
                    text.append(" │ ")
                shown = visible_piece(piece) or "∅"
                style = chosen_style if piece == token.text else Style()
                text.append(shown, style)
                text.append(f" {percent(logprob)}")
        self._show(text)


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    token: p.Token


class TokenCompletionView(CompletionView):
    """The completion view, with each token's probability when the run has them.

    ``shading`` on underlines tokens the model was unsure of (below
    ``UNSURE_BELOW``) and also reverses the unlikely ones (below
    ``UNLIKELY_BELOW``), so the weak spots read without colour. Left and
    Right move a token cursor over the tokens (the first press starts it at
    the first token in view); ``info`` shows the token under it with its
    alternatives, and Esc leaves. Lines are mapped to text offsets only
    while something is shaded, and only for runs with probabilities.
    """

    DEFAULT_CSS = """
    TokenCompletionView > .completion--unsure { text-style: underline; color: $warning; }
    TokenCompletionView > .completion--unlikely { text-style: underline reverse; color: $error; }
    TokenCompletionView > .completion--cursor { text-style: bold reverse; color: $accent; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "completion--unsure",
        "completion--unlikely",
        "completion--cursor",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move_token_cursor(-1)", "Previous token", show=False),
        Binding("right", "move_token_cursor(1)", "Next token", show=False),
        Binding("escape", "leave_token_cursor", "Leave the token cursor", show=False),
    ]

    @dataclass
    class TokenCursorMoved(Message):
        """The token cursor moved (``index`` None: it left)."""

        view: TokenCompletionView
        index: int | None

        @property
        def control(self) -> TokenCompletionView:
            return self.view

    def __init__(
        self,
        *,
        info: TokenInfo | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._info = info
        self._spans: list[_Span] = []
        self._span_starts: list[int] = []
        self._offsets: list[int] | None = None
        self._cursor: int | None = None
        self._shading = False

    # -- the tokens -----------------------------------------------------------------

    @property
    def tokens(self) -> list[p.Token]:
        """The run's tokens with their probabilities (empty for a run without)."""
        return [span.token for span in self._spans]

    @property
    def has_probabilities(self) -> bool:
        return bool(self._spans)

    @property
    def cursor(self) -> int | None:
        """The index in ``tokens`` of the token under the cursor, if it is on."""
        return self._cursor

    def set_text(self, text: str) -> None:
        self._spans, self._span_starts, self._offsets = [], [], None
        self._cursor = None
        super().set_text(text)
        self._update_info()

    def append(
        self, text: str, *, clean_text: bool = True, tokens: Sequence[p.Token] | None = None
    ) -> None:
        """Add text; with ``tokens`` (the events the text came from, with their
        probabilities) the text is theirs, cleaned token by token so that each
        keeps its place in the text."""
        if not tokens:
            super().append(text, clean_text=clean_text)
            return
        first = not self._spans
        position = len(self.text)
        parts = []
        for token in tokens:
            part = safe(token.text)
            if part and token.logprob is not None:
                span = _Span(position, position + len(part), token)
                self._spans.append(span)
                self._span_starts.append(span.start)
            parts.append(part)
            position += len(part)
        super().append("".join(parts), clean_text=False)
        if first:
            self._update_info()

    def _rewrap(self, first: int) -> None:
        self._offsets = None
        super()._rewrap(first)

    # -- shading and the cursor ---------------------------------------------------------

    @property
    def shading(self) -> bool:
        return self._shading

    @shading.setter
    def shading(self, value: bool) -> None:
        if value != self._shading:
            self._shading = value
            self._update_info()
            if self._spans:
                self.refresh()

    def start_cursor(self) -> bool:
        """Put the token cursor on the first token in view; False without probabilities."""
        if not self._spans:
            return False
        if self._cursor is None:
            self._set_cursor(self._first_in_view())
        return True

    def action_move_token_cursor(self, step: int) -> None:
        if not self._spans:
            raise SkipAction()
        if self._cursor is None:
            self._set_cursor(self._first_in_view())
            return
        self._set_cursor(max(0, min(len(self._spans) - 1, self._cursor + step)))

    def action_leave_token_cursor(self) -> None:
        if self._cursor is None:
            raise SkipAction()  # Esc goes on to the app: cancel, or restore
        self._set_cursor(None)

    def _first_in_view(self) -> int:
        if not self._lines:
            return 0
        offsets = self._line_offsets()
        top = offsets[min(self.scroll_offset.y, len(offsets) - 1)]
        return min(bisect_right(self._span_starts, top - 1), len(self._spans) - 1)

    def _set_cursor(self, index: int | None) -> None:
        self._cursor = index
        if index is not None:
            line = bisect_right(self._line_offsets(), self._spans[index].start) - 1
            height = self.scrollable_content_region.height
            if line < self.scroll_offset.y:
                self.scroll_to(y=line, animate=False, immediate=True)
            elif height and line >= self.scroll_offset.y + height:
                self.scroll_to(y=line - height + 1, animate=False, immediate=True)
        self.refresh()
        self._update_info()
        self.post_message(self.TokenCursorMoved(self, index))

    def _update_info(self) -> None:
        info = self._info
        if info is None:
            return
        if self._cursor is not None and self._cursor < len(self._spans):
            info.show_token(self._spans[self._cursor].token, self._cursor + 1, len(self._spans))
        elif self._shading and self._spans:
            info.show_legend(self._style("unsure"), self._style("unlikely"), _cursor_key())
        else:
            info.hide()

    # -- drawing -------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"completion--{name}", partial=True)

    def _line_offsets(self) -> list[int]:
        """Where each drawn line starts in the text (computed when first needed
        after a change: only while shading or the cursor is on)."""
        if self._offsets is None:
            offsets: list[int] = []
            base = 0
            bounds = [*self._starts, len(self._lines)]
            for k, paragraph in enumerate(self._paragraphs):
                position = 0
                for line in self._lines[bounds[k] : bounds[k + 1]]:
                    found = paragraph.find(line, position)
                    position = found if found >= 0 else position
                    offsets.append(base + position)
                    position += len(line)
                base += len(paragraph) + 1
            self._offsets = offsets
        return self._offsets

    def _token_style(self, index: int) -> Style | None:
        if index == self._cursor:
            return self._style("cursor")
        if self._shading:
            name = level(self._spans[index].token.logprob)
            if name is not None:
                return self._style(name)
        return None

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        if (
            not self._spans
            or (not self._shading and self._cursor is None)
            or index >= len(self._lines)
        ):
            return super().render_line(y)
        line = self._lines[index]
        start = self._line_offsets()[index]
        end = start + len(line)
        base, width = self.line_style()
        segments: list[Segment] = []
        position = start
        k = max(0, bisect_right(self._span_starts, start) - 1)
        while k < len(self._spans) and self._spans[k].start < end:
            span = self._spans[k]
            style = self._token_style(k)
            left, right = max(span.start, start), min(span.end, end)
            if style is not None and left < right:
                if left > position:
                    segments.append(Segment(line[position - start : left - start], base))
                segments.append(Segment(line[left - start : right - start], base + style))
                position = right
            k += 1
        if position < end:
            segments.append(Segment(line[position - start :], base))
        return Strip(segments).crop_extend(0, width, base)
