"""Pictures of seeing inside at 80x24 (SVG snapshots): the token view, the
templates and sweep dialogs, and a panel shaded by probability.

Regenerate on purpose with
``pytest tests/tui/test_tui_seeing_snapshots.py --snapshot-update`` and look
at the result before committing it.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from tui_support import settle  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.engine.running.params import GenParams

SIZE = (80, 24)
PROMPT = "What is the capital of France?\nAnswer in one sentence."


def press_after_settling(*keys: str) -> Any:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()  # toasts would cover the panels
        await pilot.pause()

    return before


def test_token_view(snap_compare, build_app):
    """The token view over the whole screen: panel 1 (SmolLM2) and panel 2
    (Gemma), each named with its count (20 tokens, chat mode) above its
    chips: ten chat-template tokens <t0>..<t9>, then the words, a │ between
    chips, spaces shown as ·, the line break as ↵ with the next chip on a
    new line; chips alternate two styles. Last the cl100k reference (12
    tokens, the prompt text alone). The hint line names i, the scroll keys
    and Esc."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=SIZE, run_before=press_after_settling("f6"))


def test_token_view_with_ids(snap_compare, build_app):
    """The same token view after i: every chip ends in :ID."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=SIZE, run_before=press_after_settling("f6", "i"))


def test_templates_dialog(snap_compare, build_app):
    """The templates dialog on "sentiment": the list (sentiment highlighted,
    dialogue-summary, passage-qa), the description and kind (few-shot, 3
    examples, raw, built-in), the input variable with its default, shots 0, 1
    and 3 ticked, the panels choice (replace), the start of the preview, the
    three action buttons and the save row."""
    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=SIZE, run_before=press_after_settling("f10"))


def test_sweep_dialog_with_an_error(snap_compare, build_app):
    """The sweep dialog for panel 1 after creating with temperature "0, 9":
    model and setting selects, the setting's help, the values field marked
    wrong with "temperature must be between 0 and 5, not 9.0" under it, the
    panels choice, a note on memory, and the buttons."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f12")
        await settle(pilot)
        await pilot.press(*"0, 9", "enter")
        await settle(pilot)

    app = build_app(prompt=PROMPT)
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_probability_shading(snap_compare, build_app):
    """Both panels after a run with logprobs 3 and F7: above each completion
    the legend (unsure <50% · unlikely <10% · Ctrl+L); every third word
    (probability 0.4) underlined in the warning colour, the others plain."""
    settings = Settings(scan_hf_cache=False, generation=GenParams(logprobs=3))
    app = build_app(prompt=PROMPT, settings=settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=press_after_settling("ctrl+r", "f7"))


def test_token_cursor(snap_compare, build_app):
    """Panel 1 focused with the token cursor on its second token (" capital",
    reversed): above the completion its probability (90%), its place (token
    2/18) and the three alternatives the model weighed, the chosen one bold."""
    settings = Settings(scan_hf_cache=False, generation=GenParams(logprobs=3))
    app = build_app(prompt=PROMPT, settings=settings)
    before = press_after_settling("ctrl+r", "f7", "ctrl+l", "right")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)
