"""A model's completion: plain text, scrollable, safe to show."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.engine.sanitize import clean

# Model output has no length limit worth enforcing here; clean() wants one.
NO_LIMIT = 10**9
# Drawn lines kept for reuse: a few screens' worth.
STRIPS_KEPT = 512


def safe(text: str) -> str:
    """Model text with escape sequences and control characters removed, so
    nothing a model writes can reach the terminal as a command."""
    return clean(text, max_len=NO_LIMIT, keep_newlines=True)


class CompletionView(ScrollView, can_focus=True):
    """The text a model produced, appended in batches while it streams.

    It wraps and draws its own lines: appending re-wraps only the last
    paragraph and redraws only this widget, never the screen. (A Static holding the whole text is
    re-wrapped and the screen laid out again on every batch, which took a
    third of a core with two models streaming.) Text is never parsed as
    markup. While text streams
    in, the view follows the end unless the reader has scrolled up.
    """

    ALLOW_SELECT = False  # copy with Ctrl+Y instead: lines are drawn by hand

    DEFAULT_CSS = """
    CompletionView {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        /* Always there (see _resize_virtual), so only the thumb shows. */
        scrollbar-background: $background;
        scrollbar-background-hover: $background;
        scrollbar-background-active: $background;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = ""
        self._paragraphs: list[str] = [""]
        self._lines: list[str] = [""]
        self._starts: list[int] = [0]  # index in _lines of each paragraph's first line
        self._wrap_width = 0
        # Drawn lines by index, for the style and width they were drawn with.
        # Wrapped lines never change once a later paragraph starts, so while
        # the view follows streaming text only the lines scrolled into view
        # are drawn anew.
        self._strips: dict[int, Strip] = {}
        self._strips_for: tuple[Style, int] | None = None
        # The style and width of the frame being drawn (see render_lines).
        self._frame: tuple[Style, int] | None = None

    @property
    def text(self) -> str:
        """The completion as shown (already cleaned)."""
        return self._text

    @property
    def lines(self) -> list[str]:
        """The wrapped lines, as drawn."""
        return list(self._lines)

    def clear(self) -> None:
        self.set_text("")
        self.scroll_home(animate=False, immediate=True)

    def set_text(self, text: str) -> None:
        self._text = ""
        self._paragraphs, self._lines, self._starts = [""], [""], [0]
        self._strips.clear()
        self.append(text, clean_text=True)
        self.refresh()

    def append(self, text: str, *, clean_text: bool = True) -> None:
        text = safe(text) if clean_text else text
        if not text:
            self._resize_virtual()
            return
        follow = self.scroll_y >= self.max_scroll_y
        self._text += text
        first, *rest = text.split("\n")
        changed = len(self._paragraphs) - 1
        self._paragraphs[-1] += first
        self._paragraphs.extend(rest)
        self._rewrap(changed)
        self._resize_virtual()
        self.refresh()
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    # -- wrapping ----------------------------------------------------------------

    def _width(self) -> int:
        return max(1, self.scrollable_content_region.width)

    def _wrap(self, paragraph: str) -> list[str]:
        if not paragraph or not self._wrap_width:
            return [paragraph]
        lines = Text(paragraph).wrap(self.app.console, self._wrap_width, overflow="fold")
        return [line.plain for line in lines] or [""]

    def _rewrap(self, first: int) -> None:
        """Wrap paragraphs from ``first`` on again (the ones before are unchanged)."""
        start = self._starts[first]
        for index in [i for i in self._strips if i >= start]:
            del self._strips[index]
        del self._lines[start:]
        del self._starts[first:]
        for paragraph in self._paragraphs[first:]:
            self._starts.append(len(self._lines))
            self._lines.extend(self._wrap(paragraph))

    def _resize_virtual(self) -> None:
        size = Size(self._wrap_width, len(self._lines))
        if size == self.virtual_size:
            return
        # Setting virtual_size lays out the whole screen again (about 40 ms,
        # many times a second while two models stream). This widget's own
        # size never depends on its text and its scrollbar is always shown
        # (overflow-y: scroll), so updating the scroll bounds is enough.
        # _scroll_update is what Textual itself calls after a layout
        # (textual is pinned, see pyproject.toml).
        self.set_reactive(CompletionView.virtual_size, size)
        self._scroll_update(size)

    def on_resize(self, event: events.Resize) -> None:
        width = self._width()
        if width != self._wrap_width:
            self._wrap_width = width
            self._rewrap(0)
            self._resize_virtual()
            self.refresh()

    # -- drawing -------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # A frame draws every visible line with one style and width; working
        # them out once per frame instead of once per line (rich_style walks
        # up the DOM) took a third off the view's drawing time while two
        # models streamed.
        self._frame = (self.rich_style, self._width())
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def line_style(self) -> tuple[Style, int]:
        """The style and width lines are drawn with now."""
        return self._frame or (self.rich_style, self._width())

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        style, width = look = self.line_style()
        if index >= len(self._lines):
            return Strip.blank(width, style)
        if look != self._strips_for:
            self._strips.clear()
            self._strips_for = look
        strip = self._strips.get(index)
        if strip is None:
            if len(self._strips) > STRIPS_KEPT:
                self._strips.clear()
            strip = Strip([Segment(self._lines[index], style)]).crop_extend(0, width, style)
            self._strips[index] = strip
        return strip
