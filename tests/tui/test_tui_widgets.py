"""Widgets on their own, each in a small host app with the real stylesheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widget import Widget

import workbench.tui
from workbench.tui.widgets.meter import TokenMeter
from workbench.tui.widgets.output import CompletionView
from workbench.tui.widgets.prompt import ModeSwitch, PromptArea

CSS = Path(workbench.tui.__file__).parent / "app.tcss"


class Host(App[None]):
    CSS_PATH = CSS

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def meter_text(meter: TokenMeter) -> str:
    return meter.render().plain


async def test_meter_levels_and_shapes():
    meter = TokenMeter()
    async with Host(meter).run_test(size=(40, 3)) as pilot:
        assert meter_text(meter) == "no prompt to count"
        meter.status = "loading model…"
        assert meter_text(meter) == "loading model…"
        meter.status = ""
        meter.prompt_tokens, meter.max_tokens, meter.n_ctx = 100, 256, 4096
        await pilot.pause()
        text = meter_text(meter)
        assert meter.level == "ok" and text.endswith(" 100+256/4,096")
        assert text.startswith("█") and "▒" in text and "─" in text
        assert len(text) == 40
        meter.prompt_tokens = 3500  # fits, but not with all the reserved tokens
        assert meter.level == "high" and meter_text(meter).endswith("3,500+256/4,096 !")
        meter.prompt_tokens = 5000
        assert meter.level == "over"
        assert meter_text(meter).endswith("TOO LONG 5,000/4,096")
        assert "─" not in meter_text(meter)  # the bar is full
        meter.status = "counting…"  # a newer count is on its way: the number stays
        assert meter_text(meter).endswith("…")


async def test_meter_keeps_the_numbers_when_narrow():
    meter = TokenMeter()
    async with Host(meter).run_test(size=(14, 3)):
        meter.prompt_tokens, meter.max_tokens, meter.n_ctx = 10, 256, 2048
        assert meter_text(meter).startswith("10+256/2,048")


async def test_completion_view_wraps_appends_and_follows_the_end():
    view = CompletionView()
    async with Host(view).run_test(size=(20, 5)) as pilot:
        await pilot.pause()
        view.append("one two three four five six seven eight nine ten eleven twelve " * 2)
        await pilot.pause()
        assert view.text.startswith("one two")
        assert all(len(line) <= 19 for line in view.lines)  # one column for the scrollbar
        assert len(view.lines) > 5
        assert view.scroll_y == view.max_scroll_y  # follows the end
        view.append(" thirteen\n\nfourteen")
        await pilot.pause()
        assert view.lines[-1] == "fourteen" and view.lines[-2] == ""
        view.scroll_home(animate=False, immediate=True)
        view.append(" fifteen")
        await pilot.pause()
        assert view.scroll_y == 0  # a reader who scrolled up keeps their place
        view.clear()
        assert view.text == "" and view.lines == [""]


async def test_completion_view_draws_what_it_holds_as_text_streams():
    """Drawn lines are kept for reuse; a line that grows, a rewrapped
    paragraph, a clear and a new width must each be drawn anew."""
    view = CompletionView()

    def drawn() -> list[str]:
        top = view.scroll_offset.y
        return [view.render_line(y).text.rstrip() for y in range(min(5, len(view.lines) - top))]

    def expected() -> list[str]:
        top = view.scroll_offset.y
        return [line.rstrip() for line in view.lines[top : top + 5]]

    async with Host(view).run_test(size=(20, 5)) as pilot:
        await pilot.pause()
        for piece in ("alpha beta", " gamma", " delta epsilon", "\nzeta", " eta theta iota"):
            view.append(piece)
            await pilot.pause()
            assert drawn() == expected()
        assert "zeta eta theta" in " ".join(drawn())
        await pilot.resize_terminal(14, 5)
        await pilot.pause()
        assert drawn() == expected()
        view.clear()
        await pilot.pause()
        assert drawn() == [""]
        view.append("kappa")
        await pilot.pause()
        assert drawn() == ["kappa"]


async def test_completion_view_strips_escape_sequences():
    view = CompletionView()
    async with Host(view).run_test(size=(30, 5)):
        view.append("a\x1b[31mred\x1b[0m \x1b]0;title\x07b\r\n[b]c[/b]")
        assert view.text == "ared b\n[b]c[/b]"


async def test_mode_switch_keys():
    switch = ModeSwitch()
    seen: list[Any] = []

    class SwitchHost(Host):
        def on_mode_switch_mode_changed(self, event: ModeSwitch.ModeChanged) -> None:
            seen.append(event.mode)

    async with SwitchHost(switch).run_test(size=(30, 3)) as pilot:
        switch.focus()
        await pilot.press("space")
        assert switch.mode == "raw"
        await pilot.press("left")
        assert switch.mode == "chat"
        await pilot.press("right", "enter")
        assert switch.mode == "chat"
        await pilot.pause()
        assert seen == ["raw", "chat", "raw", "chat"]
        assert "chat" in switch.render().plain and "raw" in switch.render().plain


async def test_prompt_area_builds_the_prompt():
    area = PromptArea("hello")
    async with Host(area).run_test(size=(80, 8)) as pilot:
        area.system.value = "be brief"
        area.toggle_mode()
        await pilot.pause()
        prompt = area.prompt
        assert (prompt.text, prompt.system, prompt.mode) == ("hello", "be brief", "raw")
        area.set_reference(1234)
        assert area.reference.render().plain == "OpenAI cl100k (reference): 1,234"
