"""Seeing inside, in the app with scripted models: the token view, probability
shading and the token cursor, prompt templates with few-shot variants, and
sweeps of one setting."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widgets import Button, Checkbox, Input, OptionList, Select, TextArea
from tui_support import Factory, notices  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.engine.prompts import templates as t
from workbench.engine.prompts.tokens import REFERENCE_LABEL, reference_tokens
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.scripted import ScriptedRunner
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.params import GenParams
from workbench.tui import keys
from workbench.tui.runs import RunBridge
from workbench.tui.screens.sweep import SweepScreen
from workbench.tui.screens.templates import TemplatesScreen
from workbench.tui.screens.tokens import TokenViewScreen
from workbench.tui.widgets.chips import chip_lines
from workbench.tui.widgets.probabilities import percent

PROMPT = "What is the capital of France?"


def with_logprobs(k: int = 3, **generation: Any) -> Settings:
    return Settings(scan_hf_cache=False, generation=GenParams(logprobs=k, **generation))


def plain(widget: Any) -> str:
    rendered = widget.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def line_styles(view: Any, y: int = 0) -> list[tuple[str, bool, bool]]:
    """(text, underlined, reversed) for each segment of a drawn line."""
    return [
        (seg.text, bool(seg.style and seg.style.underline), bool(seg.style and seg.style.reverse))
        for seg in view.render_line(y)
        if seg.text.strip()
    ]


class Recording(ScriptedRunner):
    """A scripted model that remembers the prompts it was asked to count and run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counted: list[p.Prompt] = []
        self.generated: list[p.Prompt] = []

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        self.counted.append(prompt)
        return super().count(prompt, params)

    def generate(self, prompt, params, n_threads):  # type: ignore[no-untyped-def]
        self.generated.append(prompt)
        return super().generate(prompt, params, n_threads)


class RecordingFactory(Factory):
    def __call__(self, ref: str) -> Any:
        runner = Recording(ref, "one two three four five six")
        self.made.append(runner)
        return runner


# -- the token view ---------------------------------------------------------------


async def test_token_view_shows_each_panels_tokens_and_the_reference(build_app, drive, factory):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        meters = [panel.meter.prompt_tokens for panel in app.panels]
        await d.press("f6")
        await d.settle()
        screen = app.screen
        assert isinstance(screen, TokenViewScreen)
        *models, reference = screen.sections
        assert [s.title for s in models] == [panel.label for panel in app.panels]
        # The count in the view is the meter's count, and the chips are the runner's tokens.
        assert [s.count for s in models] == meters == [16, 16]
        expected = factory.made[0].tokenize(app.prompt_area.prompt, app.panels[0].params)
        assert models[0].pieces == expected.pieces and models[0].ids == expected.ids
        assert "with its chat template" not in plain(models[0].query_one(".tokens-head"))
        assert "16 tokens · chat mode" in plain(models[0].query_one(".tokens-head"))
        chips = plain(models[0].chips)
        # Chips wrap between tokens at the view's width (76 cells at 80x24).
        assert chips.endswith("<t9>│What│·is│·the│·capital│·of\n·France?")
        # The reference: cl100k on the prompt text, labelled as such.
        assert reference.title == REFERENCE_LABEL
        assert [(i, s) for i, s in zip(reference.ids, reference.pieces, strict=True)] == (
            reference_tokens(PROMPT)
        )
        assert f"{REFERENCE_LABEL}   7 tokens" in plain(reference.query_one(".tokens-head"))
        # i shows the ids, and again hides them.
        await d.press("i")
        assert f"·capital:{expected.ids[13]}" in plain(models[0].chips)
        assert f"What:{reference.ids[0]}" in plain(reference.chips)
        await d.press("i")
        assert ":" not in plain(models[0].chips).replace("<t", "")
        # Esc closes; so does F6 again.
        await d.press("escape")
        assert not isinstance(app.screen, TokenViewScreen)
        await d.press("f6")
        await d.settle()
        assert isinstance(app.screen, TokenViewScreen)
        await d.press("f6")
        assert not isinstance(app.screen, TokenViewScreen)


async def test_token_view_counts_follow_the_mode_and_show_why_they_differ(build_app, drive):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        await d.press("ctrl+t")  # raw: no chat template
        await d.settle()
        await d.press("f6")
        await d.settle()
        first = app.screen.sections[0]
        assert first.count == app.panels[0].meter.prompt_tokens == 6
        assert "raw mode" in plain(first.query_one(".tokens-head"))
        assert first.pieces[0] == "What"


async def test_token_view_pieces_are_made_safe_and_whitespace_visible(build_app, drive):
    class Hostile(ScriptedRunner):
        def tokenize(self, prompt: p.Prompt, params: GenParams) -> p.Tokenized:
            pieces = ["<bos>", "a b", "\n", "\t", "\x1b[2J", "\x1b]52;c;ZXZpbA==\x07", "", "é"]
            return p.Tokenized(1, list(range(len(pieces))), pieces, "note\x1b[31m")

    app = build_app(models=["x"], runner_factory=lambda ref: Hostile(ref, "x"), prompt="hi")
    async with drive(app) as d:
        await d.press("f6")
        await d.settle()
        section = app.screen.sections[0]
        shown = plain(section.chips) + plain(section.query_one(".tokens-head"))
        assert "\x1b" not in shown and "\x07" not in shown
        assert "a·b│↵" in shown  # a line break ends the line of chips
        assert "\n→│␛[2J│␛]52;c;ZXZpbA==␇│∅│é" in shown


async def test_token_view_says_why_a_panel_has_no_tokens(build_app, drive):
    class NoTokens(ScriptedRunner):
        def tokenize(self, prompt: p.Prompt, params: GenParams) -> p.Tokenized:
            raise OSError("tokenizer file unreadable")

    def make(ref: str) -> Any:
        if ref.startswith("unknown"):
            raise KeyError("no model 'unknown-model'")
        return NoTokens(ref, "x")

    app = build_app(models=["smollm2", "unknown-model"], runner_factory=make, prompt="hi")
    async with drive(app) as d:
        await d.press("f6")
        await d.settle()
        broken, missing, reference = app.screen.sections
        assert "cannot show tokens: OSError: tokenizer file unreadable" in plain(
            broken.query_one(".tokens-head")
        )
        assert broken.count is None
        assert "no model: no model 'unknown-model'" in plain(missing.query_one(".tokens-head"))
        assert reference.count == 1


def test_chips_break_between_tokens_and_after_line_breaks():
    pieces = ["Hello", " world", ",", "\n", "next", " line"]
    lines = chip_lines(pieces, None, 14)
    assert [[part for _, part in line] for line in lines] == [
        ["Hello", "·world", ","],  # 5 + 1 + 6 + 1 + 1 = 14 cells
        ["↵"],
        ["next", "·line"],
    ]
    # A chip wider than the view is folded; ids make chips longer.
    lines = chip_lines(["abcdefghij"], [7], 4)
    assert ["".join(part for _, part in line) for line in lines] == ["abcd", "efgh", "ij:7"]
    assert chip_lines(["日本語"], None, 4) == [[(0, "日本")], [(0, "語")]]


# -- probabilities -----------------------------------------------------------------


def test_bridge_keeps_token_events_only_for_runs_with_probabilities():
    received: list[Any] = []
    bridge = RunBridge(1, [received.append, received.append], interval=3600)
    bridge.on_event(0, p.Token(1, "plain"))
    measured = [p.Token(1, "a", [("a", -0.1)], -0.1), p.Token(1, " b"), p.Token(1, " c", [], -2.0)]
    for event in measured:
        bridge.on_event(1, event)
    bridge.close()
    by_text = {m.text: m for m in received}
    assert by_text["plain"].tokens is None  # nothing kept without probabilities
    # One message for the batch (no extra redraws), holding every event since
    # the first measured one, so each has its place in the text.
    assert by_text["a b c"].tokens == tuple(measured)
    assert by_text["a b c"].n_tokens == 3


async def test_shading_and_the_token_cursor_show_probabilities(build_app, drive, factory):
    app = build_app(prompt=PROMPT, settings=with_logprobs(3))
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        smol = app.panels[0]
        view = smol.output
        words = factory.made[0].reply.split(" ")
        assert [token.text for token in view.tokens][:3] == ["The", " capital", " of"]
        assert len(view.tokens) == len(words)
        assert all(len(token.top or []) == 3 for token in view.tokens)
        assert view.tokens[0].logprob == math.log(0.4)
        # Shading off: drawn as plain text, nothing extra shown.
        assert not any(u or r for _, u, r in line_styles(view))
        assert smol.query_one(".panel-token-info").display is False
        await d.press("f7")
        await d.settle()
        assert app.seeing.shading and all(panel.output.shading for panel in app.panels)
        styles = line_styles(view)
        # Every third word has probability 0.4 (< 50 %): underlined; the rest plain.
        assert styles[0] == ("The", True, False)
        assert (" capital of", False, False) in styles
        assert (" France", True, False) in styles
        legend = smol.query_one(".panel-token-info")
        assert legend.display and "unsure <50% · unlikely <10% · Ctrl+L" in legend.text
        # The token cursor: Ctrl+L starts it on the first token in view.
        app.prompt_area.editor.focus()
        await d.press("ctrl+l")
        await d.settle()
        assert view.cursor == 0 and app.focused is view
        info = smol.query_one(".panel-token-info")
        assert info.text.startswith("The 40% · token 1/18")
        await d.press("right")
        assert view.cursor == 1
        assert info.text.splitlines() == [
            "·capital 90% · token 2/18 · ←→ Esc",
            "·capital 90% │ ·capital~0 25% │ ·capital~1 13%",
        ]
        cursor = [s for s in view.render_line(0) if s.text == " capital"]
        assert cursor and cursor[0].style is not None and cursor[0].style.reverse
        await d.press("left", "left")  # stops at the first token
        assert view.cursor == 0
        # Esc leaves the cursor (and cancels nothing); the legend is back.
        await d.press("escape")
        assert view.cursor is None and "unsure" in info.text
        await d.press("f7")
        assert not view.shading and info.display is False
        assert not any(u or r for _, u, r in line_styles(view))


async def test_unlikely_tokens_are_reversed_and_the_cursor_follows_into_view(build_app, drive):
    class Doubtful(ScriptedRunner):
        @staticmethod
        def _probabilities(i: int, text: str, k: int) -> tuple[list[tuple[str, float]], float]:
            chosen = math.log(0.05 if i == 1 else 0.9)
            return [(text, chosen)], chosen

    app = build_app(
        models=["x"],
        runner_factory=lambda ref: Doubtful(ref, " ".join(["word"] * 200)),
        prompt="hi",
        settings=with_logprobs(1),
    )
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        view = app.panels[0].output
        view.scroll_home(animate=False, immediate=True)
        await d.press("f7")
        assert line_styles(view)[:2] == [("word", False, False), (" word", True, True)]
        await d.press("ctrl+l")
        await d.settle()
        for _ in range(199):
            await d.press("right")
        assert view.cursor == 199
        assert view.scroll_y == view.max_scroll_y  # the last token was scrolled into view
        assert "token 200/200" in app.panels[0].query_one(".panel-token-info").text


async def test_a_run_without_probabilities_shows_nothing_extra(build_app, drive):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        app.panels[0].output.focus()
        await d.press("ctrl+r")
        await d.settle()
        for panel in app.panels:
            assert panel.output.tokens == [] and not panel.output.has_probabilities
        await d.press("f7")
        await d.settle()
        assert any("no run has probabilities yet" in m for m in notices(app))
        for panel in app.panels:
            assert panel.query_one(".panel-token-info").display is False
            assert not any(u or r for _, u, r in line_styles(panel.output))
        await d.press("ctrl+l")
        await d.settle()
        assert any("has no probabilities" in m for m in notices(app))
        await d.press("right", "left")
        assert app.panels[0].output.cursor is None


async def test_probabilities_for_one_panel_only(build_app, drive):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        gemma = app.panels[1]
        gemma.overrides = {"logprobs": 2}
        gemma.set_params(app.params_for(gemma))
        await d.press("ctrl+r")
        await d.settle()
        assert app.panels[0].output.tokens == []
        assert gemma.output.tokens and all(len(x.top or []) == 2 for x in gemma.output.tokens)
        assert gemma.output.text == app.panels[1].output.text


def test_percentages_stay_readable():
    assert [percent(math.log(x)) for x in (0.9, 0.123, 0.041, 0.0031, 1e-7)] == [
        "90%", "12%", "4.1%", "0.31%", "<0.01%",
    ]  # fmt: skip


# -- templates --------------------------------------------------------------------


async def open_templates(d: Any) -> TemplatesScreen:
    await d.press("f10")
    await d.settle()
    screen = d.app.screen
    assert isinstance(screen, TemplatesScreen)
    return screen


async def pick(d: Any, screen: TemplatesScreen, name: str) -> None:
    olist = screen.query_one(OptionList)
    olist.highlighted = [x.name for x in screen.templates].index(name)
    await d.settle()
    assert screen.template is not None and screen.template.name == name


async def test_templates_run_variants_makes_a_panel_per_number_of_shots(build_app, drive):
    factory = RecordingFactory()
    app = build_app(prompt="", runner_factory=factory)
    async with drive(app) as d:
        old = list(factory.made)
        screen = await open_templates(d)
        assert [x.name for x in screen.templates[:3]] == [
            "sentiment", "dialogue-summary", "passage-qa",
        ]  # fmt: skip
        await pick(d, screen, "sentiment")
        assert screen.query_one("#var-input", Input).value.startswith("Setup took two minutes")
        screen.query_one("#var-input", Input).value = "Great coffee, rude staff."
        boxes = {box.id: box for box in screen.query(Checkbox)}
        assert set(boxes) == {"shot-0", "shot-1", "shot-3"}
        for box in boxes.values():
            box.value = True
        await d.settle()
        assert screen.shots() == [0, 1, 3]
        preview = plain(screen.query_one("#templates-preview"))
        assert "── zero-shot · raw ──" in preview and "── 3-shot · raw ──" in preview
        assert "Review: Great coffee, rude staff.\nSentiment:" in preview
        screen.query_one("#templates-variants", Button).press()
        await d.settle()
        template = t.load_template("sentiment")
        values = {"input": "Great coffee, rude staff."}
        panels = app.panels
        assert len(panels) == 3  # replacing the two panels there were
        assert all(r.closed for r in old)
        assert [panel.title for panel in panels] == [
            "zero-shot · smollm2", "one-shot · smollm2", "3-shot · smollm2",
        ]  # fmt: skip
        for panel, shots in zip(panels, (0, 1, 3), strict=True):
            assert panel.own_prompt == p.Prompt(template.render(values, shots), "", "raw")
            assert isinstance(panel.runner, VariantRunner)
            # Its own runner of the same model, asked with its own prompt for
            # the count and the run, although the editor is empty.
            inner = panel.runner.inner
            assert isinstance(inner, Recording) and inner.id == "smollm2"
            assert inner.generated == [panel.own_prompt]
            assert inner.counted and set(inner.counted) == {panel.own_prompt}
            assert panel.state == "done"
        assert len({id(panel.runner) for panel in panels}) == 3
        texts = [panel.own_prompt.text for panel in panels if panel.own_prompt]
        assert texts[0].count("Review:") == 1 and texts[2].count("Review:") == 4
        counts = [panel.meter.prompt_tokens for panel in panels]
        assert counts[0] < counts[1] < counts[2]


async def test_templates_variants_can_be_added_to_the_panels(build_app, drive, factory):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        app.panels[1].output.focus()
        screen = await open_templates(d)
        await pick(d, screen, "dialogue-summary")
        assert isinstance(screen.query_one("#var-input"), TextArea)  # a text of several lines
        screen.query_one("#templates-placement", Select).value = "add"
        screen.query_one("#templates-variants", Button).press()
        await d.settle()
        titles = [panel.title for panel in app.panels]
        assert titles == ["SmolLM2-135M-Instruct", "Gemma 3 270M",
                          "zero-shot · Gemma 3 270M", "one-shot · Gemma 3 270M"]  # fmt: skip
        assert all(panel.state == "done" for panel in app.panels)
        assert [panel.number for panel in app.panels] == [1, 2, 3, 4]


async def test_templates_put_in_editor_fills_the_prompt_system_and_mode(build_app, drive):
    app = build_app(prompt="old text")
    async with drive(app) as d:
        app.prompt_area.system.value = "be brief"
        screen = await open_templates(d)
        await pick(d, screen, "sentiment")
        screen.query_one("#shot-3", Checkbox).value = False
        await d.settle()
        assert screen.shots() == [0, 1]
        screen.query_one("#templates-editor", Button).press()
        await d.settle()
        template = t.load_template("sentiment")
        prompt = app.prompt_area.prompt
        assert prompt == p.Prompt(template.render(None, 1), "", "raw")  # the last one ticked
        assert all(panel.state == "idle" for panel in app.panels)  # nothing runs
        words = len(prompt.text.split())  # raw mode: no chat template
        assert [panel.meter.prompt_tokens for panel in app.panels] == [words, words]


async def test_templates_without_shots_use_the_current_mode(build_app, drive):
    app = build_app(prompt="x")
    async with drive(app) as d:
        screen = await open_templates(d)
        await pick(d, screen, "passage-qa")
        assert not screen.query_one("#templates-shots").display
        screen.query_one("#var-question", Input).value = "Who built it?"
        await d.settle()
        assert "Question: Who built it?\nAnswer:" in plain(screen.query_one("#templates-preview"))
        # No shots ticked is an error for a few-shot template, shown in the dialog.
        await pick(d, screen, "sentiment")
        for box in screen.query(Checkbox):
            box.value = False
        await d.settle()
        assert "tick at least one" in plain(screen.query_one("#templates-error"))
        screen.query_one("#templates-editor", Button).press()
        await d.settle()
        assert app.screen is screen
        await pick(d, screen, "passage-qa")
        screen.query_one("#templates-across", Button).press()
        await d.settle()
        prompt = app.prompt_area.prompt
        assert prompt.mode == "chat" and prompt.text.endswith("Answer:")
        assert all(panel.state == "done" for panel in app.panels)  # run on every panel


async def test_save_the_prompt_as_a_template(build_app, drive, workbench_home):
    app = build_app(prompt="Translate {input} into French.")
    async with drive(app) as d:
        await d.press("ctrl+t")
        screen = await open_templates(d)
        name = screen.query_one("#templates-name", Input)
        message = screen.query_one("#templates-message")
        for bad, why in (("bad name!", "cannot name a template"),
                         ("sentiment", "built-in template (read-only)")):  # fmt: skip
            name.value = bad
            screen.query_one("#templates-save", Button).press()
            await d.settle()
            assert why in plain(message) and message.has_class("-error")
            assert app.screen is screen
        name.value = "to-french"
        name.focus()
        await d.press("enter")
        await d.settle()
        assert "Saved to-french" in plain(message)
        assert "to-french" in [x.name for x in screen.templates]
        olist = screen.query_one(OptionList)
        assert olist.get_option("to-french").prompt.plain == "to-french (yours)"  # type: ignore[union-attr]
        assert screen.template is not None and screen.template.name == "to-french"
        assert screen.query_one("#var-input", Input).value == ""
        saved = t.load_template("to-french")
        assert (saved.text, saved.mode, saved.builtin) == ("Translate {input} into French.", "raw",
                                                           False)  # fmt: skip
        assert saved.name in [x.name for x in t.list_templates()]
        # Saving again replaces it, and says so.
        screen.query_one("#templates-save", Button).press()
        await d.settle()
        assert "Replaced to-french" in plain(message)
        await d.press("escape")
        assert not isinstance(app.screen, TemplatesScreen)


# -- sweeps -----------------------------------------------------------------------


async def open_sweep(d: Any) -> SweepScreen:
    await d.press("f12")
    await d.settle()
    screen = d.app.screen
    assert isinstance(screen, SweepScreen)
    return screen


async def test_sweep_makes_a_panel_per_value(build_app, drive, factory):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        app.panels[1].output.focus()
        screen = await open_sweep(d)
        assert screen.query_one("#sweep-panel", Select).value == app.panels[1].key
        assert screen.setting == "temperature"
        assert app.focused is screen.query_one("#sweep-values", Input)
        await d.press(*"0,1", "enter")
        await d.settle()
        assert not isinstance(app.screen, SweepScreen)
        panels = app.panels
        assert [panel.title for panel in panels] == [
            "temperature=0 · Gemma 3 270M", "temperature=1 · Gemma 3 270M",
        ]  # fmt: skip
        assert [panel.overrides for panel in panels] == [{"temperature": 0.0},
                                                         {"temperature": 1.0}]  # fmt: skip
        assert [panel.params.temperature for panel in panels] == [0.0, 1.0]
        assert [r.id for r in factory.made[-2:]] == ["gemma", "gemma"]
        assert factory.made[0].closed and factory.made[1].closed
        assert all(panel.state == "idle" for panel in panels)  # Ctrl+R runs them
        await d.press("ctrl+r")
        await d.settle()
        assert all(panel.state == "done" for panel in panels)


async def test_sweep_keeps_the_dialog_open_on_a_bad_value(build_app, drive):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        screen = await open_sweep(d)
        values = screen.query_one("#sweep-values", Input)
        error = screen.query_one("#sweep-error")
        for typed, message in (("0, hot", "temperature must be a float, not 'hot'"),
                               ("0, 9", "temperature must be between 0 and 5, not 9.0"),
                               ("0,,1", "an empty value"),
                               ("", "type the values of temperature"),
                               ("1, 1", "the value 1.0 is given twice")):  # fmt: skip
            values.value = typed
            screen.query_one("#sweep-create", Button).press()
            await d.settle()
            assert app.screen is screen
            assert error.display and message in plain(error), (typed, plain(error))
            assert values.has_class("-wrong")
        assert len(app.panels) == 2


async def test_sweep_of_another_setting_added_to_the_panels(build_app, drive):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        smol = app.panels[0]
        smol.overrides = {"max_tokens": 3}
        smol.set_params(app.params_for(smol))
        screen = await open_sweep(d)
        screen.query_one("#sweep-setting", Select).value = "seed"
        await d.settle()
        values = screen.query_one("#sweep-values", Input)
        assert "1, 2, 3" in values.placeholder
        assert "random seed" in plain(screen.query_one("#sweep-help"))
        screen.query_one("#sweep-placement", Select).value = "add"
        values.value = "7, 8"
        screen.query_one("#sweep-create", Button).press()
        await d.settle()
        new = app.panels[2:]
        assert len(app.panels) == 4
        assert [panel.overrides for panel in new] == [{"max_tokens": 3, "seed": 7},
                                                      {"max_tokens": 3, "seed": 8}]  # fmt: skip
        assert [panel.title for panel in new] == ["seed=7 · SmolLM2-135M-Instruct",
                                                  "seed=8 · SmolLM2-135M-Instruct"]  # fmt: skip


async def test_sweep_of_a_template_variant_keeps_its_prompt(build_app, drive):
    factory = RecordingFactory()
    app = build_app(prompt="", runner_factory=factory)
    async with drive(app) as d:
        screen = await open_templates(d)
        await pick(d, screen, "sentiment")
        screen.query_one("#shot-0", Checkbox).value = False
        screen.query_one("#shot-3", Checkbox).value = False
        await d.settle()
        screen.query_one("#templates-variants", Button).press()
        await d.settle()
        (one_shot,) = app.panels
        sweep = await open_sweep(d)
        sweep.query_one("#sweep-values", Input).value = "0, 0.7"
        sweep.query_one("#sweep-create", Button).press()
        await d.settle()
        assert [panel.title for panel in app.panels] == [
            "one-shot · temperature=0 · smollm2", "one-shot · temperature=0.7 · smollm2",
        ]  # fmt: skip
        assert all(panel.own_prompt == one_shot.own_prompt for panel in app.panels)
        await d.press("ctrl+r")
        await d.settle()
        for panel in app.panels:
            assert panel.state == "done"
            assert isinstance(panel.runner, VariantRunner)
            assert panel.runner.inner.generated == [one_shot.own_prompt]  # type: ignore[attr-defined]


# -- keys -------------------------------------------------------------------------


async def test_new_keys_are_listed_but_not_in_the_footer(build_app, drive):
    app = build_app()
    async with drive(app):
        actions = {"token_view", "shade", "token_cursor", "templates", "sweep"}
        ours = [k for k in keys.KEYS if k.action in actions]
        assert len(ours) == 5 and not any(k.footer for k in ours)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert all(k.title in titles for k in ours)
        shown = {b.binding.action for b in app.active_bindings.values() if b.binding.show}
        assert not shown & actions


async def test_dialog_keys_stay_in_their_dialogs(build_app, drive):
    app = build_app(prompt=PROMPT)
    async with drive(app) as d:
        await open_sweep(d)
        await d.press("f10", "f6", "f7")
        await d.settle()
        assert isinstance(app.screen, SweepScreen) and not app.seeing.shading
