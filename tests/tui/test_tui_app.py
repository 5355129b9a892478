"""The app with scripted models: typing, counting, running, cancelling,
panels, settings, help and the command palette."""

from __future__ import annotations

import gc
import io
from typing import Any

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.widgets import Input, OptionList, TextArea
from tui_support import Factory, TokenGate, notices  # type: ignore[import-not-found]

from workbench.engine.prompts.tokens import REFERENCE_LABEL
from workbench.engine.running.backends.scripted import ScriptedRunner
from workbench.tui.screens.help import HelpScreen, keys_table
from workbench.tui.screens.picker import ModelPicker
from workbench.tui.screens.settings import SettingsScreen
from workbench.tui.widgets.panel import ModelPanel


async def type_prompt(d: Any, text: str) -> None:
    editor = d.app.query_one("#prompt-editor", TextArea)
    editor.focus()
    await d.pilot.pause()
    await d.press(*[c if c != " " else "space" for c in text])


async def test_typing_updates_both_meters_and_the_reference(build_app, drive):
    app = build_app()
    async with drive(app) as d:
        first = [p.meter.prompt_tokens for p in app.panels]
        assert first == [None, None]  # nothing typed, nothing counted or loaded
        await type_prompt(d, "one two three")
        await d.settle()
        # Scripted count: one token per word plus a 10-token chat template.
        assert [p.meter.prompt_tokens for p in app.panels] == [13, 13]
        assert all(p.meter.status == "" for p in app.panels)
        assert str(app.prompt_area.reference.render()) == f"{REFERENCE_LABEL}: 3"
        await d.press("space", "f", "o", "u", "r")
        await d.settle()
        assert [p.meter.prompt_tokens for p in app.panels] == [14, 14]
        # Raw mode drops the template: the count follows the mode.
        await d.press("ctrl+t")
        await d.settle()
        assert app.prompt_area.prompt.mode == "raw"
        assert [p.meter.prompt_tokens for p in app.panels] == [4, 4]


async def test_what_the_app_made_at_start_is_frozen_for_the_collector(build_app, drive):
    """A full collection pauses the app; what it made at start lives as long
    as it does, so it is taken out of the collector's sight."""
    gc.unfreeze()
    app = build_app()
    async with drive(app) as d:
        await d.settle()
        frozen = gc.get_freeze_count()
        assert frozen > 1000
        await type_prompt(d, "more")
        await d.settle()
        # Once, not on every change (frozen objects can still be freed).
        assert gc.get_freeze_count() <= frozen


async def test_stale_count_never_overwrites_a_newer_one(build_app, drive):
    app = build_app(prompt="a b")
    async with drive(app) as d:
        panel = app.panels[0]
        panel.request_count(app.prompt_area.prompt)  # running: "a b"
        app.prompt_area.editor.text = "a b c d e"
        panel.request_count(app.prompt_area.prompt)  # waits for the first to end
        await d.settle()
        assert panel.meter.prompt_tokens == 15


async def test_run_shows_both_completions_and_stats(build_app, drive, factory: Factory):
    app = build_app(prompt="What is the capital of France?")
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        smol, gemma = app.panels
        assert smol.output.text.startswith("The capital of France is Paris.")
        assert gemma.output.text.startswith("Paris, and the next question")
        for panel in app.panels:
            assert panel.state == "done"
            assert panel.stats is not None and panel.stats.completion_tokens > 0
            status = panel.status_text
            assert "TTFT 0.05s" in status and "gen 100.0 tok/s" in status
            assert "cached 0" in status and "end of text" in status
        assert not app.running
        # F5 runs too.
        await d.press("f5")
        await d.settle()
        assert all(p.state == "done" for p in app.panels)
        assert len(factory.made) == 2  # runners are kept between runs


async def test_cancel_keeps_partial_text(build_app, drive, factory: Factory):
    gate = TokenGate()
    factory.options["smollm2"] = {"gate": gate}
    app = build_app(prompt="Tell me about Paris")
    async with drive(app) as d:
        await d.press("ctrl+r")
        gate.allow(3)
        smol, gemma = app.panels
        await d.until(lambda: gemma.state == "done", "the ungated panel to finish")
        await d.until(
            lambda: smol.output.text == "The capital of", "three tokens in the gated panel"
        )
        assert smol.state == "generating" and app.running
        # Escape with focus in the prompt (no panel focused) cancels every run.
        await d.press("escape")
        await d.settle()
        assert smol.state == "cancelled"
        assert smol.output.text == "The capital of"
        assert gemma.state == "done"  # already finished: untouched
        assert not app.running


async def test_escape_in_a_focused_panel_cancels_only_that_panel(build_app, drive, factory):
    gates = {"smollm2": TokenGate(), "gemma": TokenGate()}
    factory.options.update({name: {"gate": gate} for name, gate in gates.items()})
    app = build_app(prompt="Tell me about Paris")
    async with drive(app) as d:
        await d.press("ctrl+r")
        smol, gemma = app.panels
        gates["smollm2"].allow(1)
        gates["gemma"].allow(1)
        await d.until(lambda: smol.output.text and gemma.output.text, "a token in each")
        gemma.output.focus()
        await d.press("escape")
        await d.until(lambda: gemma.state == "cancelled", "the focused panel to cancel")
        assert smol.state == "generating"
        # A second run while one is going is refused with a notification.
        await d.press("ctrl+r")
        assert smol.run_id == 1
        gates["smollm2"].set()
        await d.settle()
        assert smol.state == "done" and gemma.output.text == "Paris,"


async def test_add_and_remove_a_panel(build_app, drive, factory: Factory):
    app = build_app(prompt="hello there")
    async with drive(app) as d:
        await d.press("ctrl+n")
        await d.settle()
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        olist = picker.query_one(OptionList)
        assert olist.option_count == 3
        broken = olist.get_option("broken-file")
        assert broken.disabled and "not a GGUF file" in str(broken.prompt)
        await d.press("g", "e", "m")
        assert olist.option_count == 1
        await d.press("enter")
        await d.settle()
        assert [p.ref for p in app.panels] == ["smollm2", "gemma", "gemma"]
        new = app.panels[2]
        assert new.state == "idle" and new.meter.prompt_tokens == 12
        assert app.focused is new.output  # the new panel has focus
        # Remove the focused panel: its runner is closed.
        await d.press("ctrl+w")
        await d.settle()
        assert [p.ref for p in app.panels] == ["smollm2", "gemma"]
        assert factory.made[-1].closed
        assert [p.number for p in app.panels] == [1, 2]


async def test_change_the_focused_panels_model(build_app, drive, factory: Factory):
    app = build_app()
    async with drive(app) as d:
        app.panels[1].output.focus()
        await d.press("ctrl+o")
        await d.settle()
        assert isinstance(app.screen, ModelPicker)
        await d.press("s", "m", "o", "l", "enter")
        await d.settle()
        assert [p.ref for p in app.panels] == ["smollm2", "smollm2"]
        assert factory.by_id("gemma")[0].closed


async def test_picker_escape_changes_nothing(build_app, drive):
    app = build_app()
    async with drive(app) as d:
        await d.press("ctrl+n")
        await d.settle()
        await d.press("escape")
        await d.settle()
        assert not isinstance(app.screen, ModelPicker)
        assert len(app.panels) == 2


async def test_settings_override_for_one_panel(build_app, drive, factory: Factory):
    app = build_app(prompt="What is the capital of France?")
    async with drive(app) as d:
        app.panels[1].output.focus()
        await d.press("f2")
        await d.settle()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert screen.target == app.panels[1].key  # opens on the focused panel
        max_tokens = screen.query_one("#field-max_tokens", Input)
        assert max_tokens.value == ""  # inherits
        assert max_tokens.placeholder.startswith("256")
        max_tokens.focus()
        await d.press("3")
        # An invalid value elsewhere: the dialog stays, says why, keeps the text.
        temperature = screen.query_one("#field-temperature", Input)
        temperature.value = "hot"
        await d.press("enter")
        await d.settle()
        assert app.screen is screen
        error = screen.query_one("#error-temperature")
        assert error.display and "temperature must be a float" in str(error.render())
        assert temperature.value == "hot" and max_tokens.value == "3"
        assert app.focused is temperature
        temperature.value = "0"
        await d.press("enter")
        await d.settle()
        assert not isinstance(app.screen, SettingsScreen)
        smol, gemma = app.panels
        assert gemma.overrides == {"max_tokens": 3, "temperature": 0.0}
        assert gemma.params.max_tokens == 3 and gemma.params.temperature == 0.0
        assert smol.params == app.shared
        assert gemma.meter.max_tokens == 3
        await d.press("ctrl+r")
        await d.settle()
        assert gemma.stats is not None and gemma.stats.completion_tokens == 3
        assert gemma.stop_reason == "max_tokens"
        assert smol.stats is not None and smol.stats.completion_tokens > 3


async def test_settings_shared_values_and_switching_targets_keeps_drafts(build_app, drive):
    app = build_app()
    async with drive(app) as d:
        await d.press("f2")
        await d.settle()
        screen = app.screen
        assert isinstance(screen, SettingsScreen) and screen.target == "shared"
        screen.query_one("#field-max_tokens", Input).value = "64"
        screen.query_one("#field-stop", Input).value = "###, END"
        select = screen.query_one("#settings-target")
        select.value = app.panels[0].key  # type: ignore[attr-defined]
        await d.settle()
        assert screen.target == app.panels[0].key
        seed = screen.query_one("#field-seed", Input)
        assert seed.value == ""
        seed.value = "7"
        select.value = "shared"  # type: ignore[attr-defined]
        await d.settle()
        assert screen.query_one("#field-max_tokens", Input).value == "64"  # kept
        screen.query_one(Input).focus()
        await d.press("enter")
        await d.settle()
        assert app.shared.max_tokens == 64 and app.shared.stop == ("###", "END")
        assert app.panels[0].overrides == {"seed": 7}
        assert app.panels[0].params.seed == 7 and app.panels[0].params.max_tokens == 64
        assert app.panels[1].params.seed == app.shared.seed


async def test_same_model_twice_with_different_temperatures(build_app, drive):
    app = build_app(models=["smollm2", "smollm2"], prompt="hi")
    async with drive(app) as d:
        a, b = app.panels
        a.overrides = {"temperature": 0.0}
        b.overrides = {"temperature": 1.0}
        for panel in app.panels:
            panel.set_params(app.params_for(panel))
        assert (a.params.temperature, b.params.temperature) == (0.0, 1.0)
        assert a.runner is not b.runner
        await d.press("ctrl+r")
        await d.settle()
        assert a.state == b.state == "done"


async def test_refused_prompt_in_one_panel_while_the_other_runs(build_app, drive, factory):
    factory.options["gemma"] = {"n_ctx": 64}
    app = build_app(prompt=" ".join(["word"] * 80))
    async with drive(app) as d:
        smol, gemma = app.panels
        assert gemma.meter.level == "over"
        assert "TOO LONG 90/64" in str(gemma.meter.render())
        assert smol.meter.level == "ok"
        await d.press("ctrl+r")
        await d.settle()
        assert gemma.state == "refused"
        status = gemma.status_text
        assert "refused" in status and "90 tokens" in status and "64" in status
        assert gemma.output.text == ""
        assert smol.state == "done" and smol.output.text


async def test_failing_runner_shows_its_error_while_the_other_completes(build_app, drive, factory):
    factory.options["gemma"] = {"fail": "could not load gemma.gguf: worker killed by SIGABRT"}
    app = build_app(prompt="hello")
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        smol, gemma = app.panels
        assert gemma.state == "error"
        assert "SIGABRT" in gemma.status_text
        assert smol.state == "done" and smol.output.text
        # The next run tries the failing model again.
        factory.made[1].fail = None
        await d.press("ctrl+r")
        await d.settle()
        assert gemma.state == "done"


async def test_unknown_model_opens_with_an_error_in_its_panel(build_app, drive):
    app = build_app(models=["smollm2", "unknown-model"], prompt="hello")
    async with drive(app) as d:
        smol, bad = app.panels
        assert bad.state == "error" and bad.runner is None
        assert "no model 'unknown-model'" in bad.status_text
        await d.press("ctrl+r")
        await d.settle()
        assert smol.state == "done"
        assert bad.state == "error"


async def test_model_output_cannot_reach_the_terminal(build_app, drive, factory):
    app = build_app(models=["evil"], prompt="hi")
    async with drive(app) as d:
        runner = factory.made[0]
        runner.reply = "safe\x1b]52;c;ZXZpbA==\x07 \x1b[2Jtext [bold]x[/bold]"
        await d.press("ctrl+r")
        await d.settle()
        text = app.panels[0].output.text
        assert "\x1b" not in text and "\x07" not in text
        assert text == "safe text [bold]x[/bold]"  # brackets shown as typed


async def test_copy_and_maximize_the_focused_panel(build_app, drive):
    app = build_app(prompt="hello")
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        gemma = app.panels[1]
        gemma.output.focus()
        await d.press("ctrl+y")
        assert app.clipboard == gemma.output.text
        await d.press("f11")
        assert app.screen.maximized is gemma
        await d.press("escape")  # nothing runs: Esc restores
        assert app.screen.maximized is None


async def test_help_screen_lists_every_key(build_app, drive):
    app = build_app()
    async with drive(app) as d:
        await d.press("f1")
        await d.settle()
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=200, file=io.StringIO(), record=True)
        console.print(keys_table())
        text = console.export_text()
        for key in ("Ctrl+R / F5", "Esc", "Ctrl+N", "Ctrl+W", "Ctrl+O", "F2 / Ctrl+G",
                    "Ctrl+T", "F11 / Ctrl+F", "Ctrl+Y", "F1 / ?", "Ctrl+Q", "Ctrl+P"):  # fmt: skip
            assert key in text, key
        assert "otherwise cancel every run" in text
        await d.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        # ? opens help when no text field has focus, and types a ? when one has.
        app.panels[0].output.focus()
        await d.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await d.press("f1")
        app.prompt_area.editor.focus()
        await d.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        assert app.prompt_area.editor.text == "?"


async def test_command_palette_lists_every_action(build_app, drive):
    app = build_app()
    async with drive(app) as d:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Run all panels", "Cancel runs", "Add a panel", "Remove the focused panel",
                      "Change the focused panel's model", "Generation settings",
                      "Toggle chat / raw completion", "Maximize the focused panel",
                      "Copy the focused panel's completion", "Keys and help", "Quit"):  # fmt: skip
            assert title in titles, title
        await d.press("ctrl+p")
        await d.settle()
        assert isinstance(app.screen, CommandPalette)
        await d.press(*"toggle chat")
        await d.settle()
        await d.press("enter")
        await d.settle()
        assert app.prompt_area.prompt.mode == "raw"


async def test_dialog_keys_do_not_reach_the_main_screen(build_app, drive):
    app = build_app(prompt="hello")
    async with drive(app) as d:
        await d.press("f2")
        await d.settle()
        await d.press("ctrl+r", "ctrl+n")
        await d.settle()
        assert isinstance(app.screen, SettingsScreen)
        assert all(p.state == "idle" for p in app.panels)


async def test_quit_closes_every_runner(build_app, drive, factory: Factory):
    app = build_app(prompt="hello")
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        await d.press("ctrl+q")
        await d.pilot.pause()
    assert factory.made and all(r.closed for r in factory.made)


async def test_settings_warnings_are_shown(build_app, drive):
    from workbench.engine.config import Settings

    settings = Settings(scan_hf_cache=False, warnings=["settings.toml: threads must be a number"])
    app = build_app(settings=settings)
    async with drive(app) as d:
        assert any("threads must be a number" in m for m in notices(app))
        await d.settle()


async def test_panel_messages_are_past_tense_and_nested():
    for name in ("RunnerOpened", "RunnerFailed", "TokensCounted", "ModelLoaded",
                 "PromptReadingStarted", "TokensArrived", "RunFinished", "RunFailed",
                 "RunEnded"):  # fmt: skip
        assert hasattr(ModelPanel, name)


async def test_picker_offers_a_typed_gguf_path(build_app, drive, tmp_path):
    model = tmp_path / "my-model.gguf"
    model.write_bytes(b"GGUF")
    app = build_app(models=["smollm2"])
    async with drive(app) as d:
        await d.press("ctrl+n")
        await d.settle()
        app.screen.query_one("#picker-filter", Input).value = str(model)
        await d.settle()
        olist = app.screen.query_one(OptionList)
        assert olist.get_option_at_index(0).id == str(model)
        await d.press("enter")
        await d.settle()
        assert [p.ref for p in app.panels] == ["smollm2", str(model)]


async def test_context_size_override_shows_in_the_header_and_meter(build_app, drive):
    app = build_app(prompt="hello there")
    async with drive(app) as d:
        smol = app.panels[0]
        smol.output.focus()
        await d.press("f2")
        await d.settle()
        app.screen.query_one("#field-n_ctx", Input).value = "512"
        await d.press("enter")
        await d.settle()
        header = str(smol.query_one(".panel-header").render())
        assert "ctx 512 of 8,192" in header
        assert smol.meter.n_ctx == 512 and smol.meter.level == "ok"
        assert app.panels[1].meter.n_ctx == 2048


async def test_escape_cancels_before_it_restores_a_maximized_panel(build_app, drive, factory):
    gate = TokenGate()
    factory.options["smollm2"] = {"gate": gate}
    app = build_app(prompt="hello")
    async with drive(app) as d:
        smol = app.panels[0]
        smol.output.focus()
        await d.press("f11")
        assert app.screen.maximized is smol
        await d.press("ctrl+r")
        gate.allow(1)
        await d.until(lambda: smol.state == "generating", "generation to start")
        await d.press("escape")
        await d.settle()
        assert smol.state == "cancelled" and app.screen.maximized is smol
        await d.press("escape")
        assert app.screen.maximized is None


async def test_a_failing_worker_is_reported_and_the_app_carries_on(build_app, drive):
    app = build_app(prompt="hello")
    async with drive(app) as d:

        def broken() -> None:
            raise ValueError("disk on fire")

        app.run_worker(broken, name="export", thread=True, exit_on_error=False)
        await d.settle()
        messages = notices(app)
        assert any("export: ValueError: disk on fire" in m for m in messages), messages
        await d.press("ctrl+r")
        await d.settle()
        assert all(p.state == "done" for p in app.panels)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_runner_that_raises_ends_its_panel_in_error(build_app, drive, factory):
    class Exploding(ScriptedRunner):
        def generate(self, prompt, params, n_threads):  # type: ignore[no-untyped-def]
            raise RuntimeError("segfault, as far as anyone can tell")
            yield  # pragma: no cover

    app = build_app(
        runner_factory=lambda ref: Exploding(ref, "x") if ref == "gemma" else factory(ref),
        prompt="hello",
    )
    async with drive(app) as d:
        await d.press("ctrl+r")
        await d.settle()
        smol, gemma = app.panels
        assert smol.state == "done"
        assert gemma.state == "error" and "without a result" in gemma.status_text
        assert not app.running


async def test_a_count_that_raises_shows_in_the_panel(build_app, drive, factory):
    class CannotCount(ScriptedRunner):
        def count(self, prompt, params):  # type: ignore[no-untyped-def]
            raise OSError("tokenizer file unreadable")

    app = build_app(
        runner_factory=lambda ref: CannotCount(ref, "x") if ref == "gemma" else factory(ref),
        prompt="hello",
    )
    async with drive(app):
        smol, gemma = app.panels
        assert smol.meter.prompt_tokens == 11
        assert gemma.state == "error" and "tokenizer file unreadable" in gemma.status_text
        assert gemma.meter.status == "cannot count"
