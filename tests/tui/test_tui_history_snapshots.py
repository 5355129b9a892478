"""Pictures of the history screen, the diff view and the pull dialog at 80x24.

Regenerate on purpose with
``pytest tests/tui/test_tui_history_snapshots.py --snapshot-update`` and look
at the result before committing it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from history_support import FakeHub, seed_two_runs  # type: ignore[import-not-found]
from textual.pilot import Pilot
from textual.widgets import Input
from tui_support import settle  # type: ignore[import-not-found]

from workbench.tui.screens.pull import PullDialog

SIZE = (80, 24)


@pytest.fixture
def utc() -> Iterator[None]:
    """Times in the pictures are local times: make local UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_history_screen_with_two_runs(snap_compare, build_app, utc):
    """The history over the app: two filter fields (text, model), then the
    runs newest first, two lines each: "#2  2025-03-14 10:26  raw  [cli] Write
    a haiku about the sea." over "smollm2 cancelled · gemma error", and "#1
    ... chat  What is the capital of France?..." over "smollm2 done · gemma
    done"; run 2 is highlighted; "2 runs" and the keys at the bottom."""
    seed_two_runs()

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)

    app = build_app(prompt="What is the capital of France?")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_diff_screen(snap_compare, build_app, factory):
    """The diff of panel 1 and panel 2 after a run: the legend ("[-…-] only in
    1 · SmolLM2-135M-Instruct", "{+…+} only in 2 · Gemma 3 270M"), the
    summary "12 words the same, 3 removed, 2 added", and the text with "[-is-]"
    struck through in the error colour and "{+was+}" underlined in the
    success colour, wrapped to the dialog's width."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        factory.made[0].reply = "The sky is blue on a clear day, because air scatters blue light."
        factory.made[1].reply = "The sky was blue on a clear morning, because air scatters light."
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("f8")
        await settle(pilot)

    app = build_app(prompt="Why is the sky blue?")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_pull_dialog_with_a_file_list(snap_compare, build_app, tmp_path: Path):
    """The pull dialog after listing test-org/tiny-GGUF: the repository
    field, a header (file, quant, size), four files with their quant and size
    (IQ4_XS 70.0 MiB highlighted; the split BF16 file greyed, "(1 of 2
    parts)"), the status "test-org/tiny-GGUF @ 0123456789ab: 4 GGUF
    files..." and the keys."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = pilot.app
        app.push_dialog(PullDialog(hub=FakeHub(tmp_path)), None)  # type: ignore[attr-defined]
        await settle(pilot)
        app.screen.query_one("#pull-repo", Input).value = "test-org/tiny-GGUF"
        await pilot.press("enter")
        await settle(pilot)

    app = build_app(prompt="What is the capital of France?")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)
