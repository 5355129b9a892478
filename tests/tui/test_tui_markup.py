"""Text from outside (a model's name, a file name) shows as written
everywhere the app shows it: never read as Rich markup, never raising on a
stray bracket."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from tui_support import HEADERS, fake_catalog, fake_info  # type: ignore[import-not-found]

from workbench.engine.models.catalog import Catalog, Entry
from workbench.engine.running.backends.base import Header
from workbench.tui.app import WorkbenchApp

# Markup that would turn red, make a link, and an opening bracket that a
# markup parser would reject.
NAME = "[bold red]x[/] ["
FILE_ID = "[link=http://e]y[/link]"


def screen_text(app: WorkbenchApp) -> str:
    """What the terminal shows, as plain text."""
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r">([^<]*)</text>", svg))).replace("\xa0", " ")


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    monkeypatch.setitem(HEADERS, FILE_ID, Header(NAME, "llama", "1M", "Q4_0", "1 MiB", 2048))
    entries = list(fake_catalog())
    info = fake_info(NAME, "llama", 1_000_000, "Q4_0", 1 << 20, 2048)
    entries.insert(0, Entry(FILE_ID, Path("/models/y.gguf"), "dir", info=info))
    return Catalog(entries)


async def test_a_model_named_in_markup_shows_as_written(
    build_app: Any, drive: Any, hostile: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Toasts are not drawn in a headless test: record what reaches Textual.
    notified: list[tuple[str, bool]] = []
    original = App.notify

    def notify(self: App[Any], message: str, **kwargs: Any) -> None:
        notified.append((message, kwargs.get("markup", True)))
        original(self, message, **kwargs)

    monkeypatch.setattr(App, "notify", notify)
    app = build_app(models=[FILE_ID, "smollm2"], prompt="Hello", catalog=hostile)
    async with drive(app, (120, 30)) as d:
        assert app.panels[0].title == NAME
        assert f"1 {NAME}" in screen_text(app)  # the panel's title

        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run to finish")
        await d.settle()

        await d.press("f8")  # the diff names both panels
        await d.settle()
        assert NAME in screen_text(app)
        await d.press("escape")
        await d.settle()

        await d.press("f3")  # the history lists the run's models
        await d.until(lambda: FILE_ID in screen_text(app), "the history list")
        await d.press("escape")
        await d.settle()

        await d.press("ctrl+o")  # the model picker lists the file
        await d.settle()
        assert FILE_ID in screen_text(app)
        await d.press("escape")
        await d.settle()

        await d.press("f9")  # the export names the model
        report = tmp_path / "workbench-run-1.md"
        await d.until(report.exists, "the export")
        # Markdown's own escapes, which a Markdown viewer shows as the name.
        assert NAME in report.read_text().replace("\\", "")

        app.panels[0].output.focus()
        await d.press("ctrl+w")  # the notification names the panel, markup off
        await d.settle()
        assert (f"Removed panel 1 ({FILE_ID})", False) in notified
