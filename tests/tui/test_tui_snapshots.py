"""Pictures of the main states at 80x24 and 160x48 (SVG snapshots).

Regenerate on purpose with ``pytest tests/tui --snapshot-update`` and look
at the result before committing it.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from tui_support import settle  # type: ignore[import-not-found]

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
PROMPT = "What is the capital of France? Answer in one sentence."


async def _settled(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def _run(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("ctrl+r")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_idle_with_prompt_and_meters(snap_compare, build_app, size):
    """The prompt (5 lines at 80x24, more when tall), the system prompt, the
    mode switch and the cl100k reference count on one line; two panels side
    by side, each with its header (arch, params, quant, size, kind, ctx in
    use of trained) and a token meter reading 20+256/2,048 with a short bar;
    panel 1 has the heavy border of the current panel; the footer shows
    Run, Add, Model, Settings, Help and Quit."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", SIZES)
def test_after_a_run_with_stats(snap_compare, build_app, size):
    """Both panels done: the completion text, and three stat lines (stop
    reason and tokens; TTFT and cached; prompt and generation tok/s)."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=size, run_before=_run)


@pytest.mark.parametrize("size", SIZES)
def test_refused_panel(snap_compare, build_app, factory, size):
    """Panel 2 (n_ctx 64) is refused: its meter is full, in the error
    colour, reading TOO LONG 90/64, and its status gives the numbers;
    panel 1 ran to completion."""
    factory.options["gemma"] = {"n_ctx": 64}
    app = build_app(prompt=" ".join(["word"] * 80))
    assert snap_compare(app, terminal_size=size, run_before=_run)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, build_app, size):
    """The help dialog over the app: every key with what it does, Esc's
    rule spelled out, and the meter explained."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, press=["f1"], terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", SIZES)
def test_settings_dialog(snap_compare, build_app, size):
    """The settings dialog on the shared values: the target select, then
    one row per setting (name, value, help text), Apply and Cancel."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, press=["f2"], terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", SIZES)
def test_settings_dialog_with_an_error(snap_compare, build_app, size):
    """The settings dialog for panel 2 after Apply with temperature "hot":
    the dialog stays open and the message shows under the field."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.panels[1].output.focus()
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("tab", "h", "o", "t", "enter")
        await settle(pilot)

    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_model_picker(snap_compare, build_app, size):
    """The model picker: a filter field and the catalog with id, arch,
    params, quant and size; the broken file is listed, greyed, with its
    reason; the first model is highlighted."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)

    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_more_panels_than_fit(snap_compare, build_app):
    """Three panels at 80x24: two whole panels fit, the third is a sideways
    scroll away (a scrollbar shows above the footer)."""
    app = build_app(models=["smollm2", "gemma", "smollm2#2"], prompt=PROMPT)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled)


def test_monochrome(snap_compare, build_app, monkeypatch):
    """NO_COLOR: the same idle screen without colour; the current panel is
    still told apart by its heavy border and the meter by its shapes."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_run)
