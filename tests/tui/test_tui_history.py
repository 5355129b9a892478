"""The app's history with scripted models: runs recorded, listed, filtered,
brought back and run again; a damaged history; export; the diff view."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from history_support import seed_two_runs, stored_panel, stored_run  # type: ignore[import-not-found]
from textual.widgets import Input, OptionList, TextArea
from tui_support import REPLIES, Driver, Factory, TokenGate, notices  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.engine.history.store import Store, history_path
from workbench.engine.running.params import GenParams
from workbench.tui.app import make_app
from workbench.tui.screens.diff import DiffScreen, DiffView, PairPicker
from workbench.tui.screens.history import HistoryScreen


def messages(app: Any) -> list[str]:
    return notices(app)


async def open_history(d: Any, *, settle: bool = True) -> HistoryScreen:
    await d.press("f3")
    await d.until(lambda: isinstance(d.app.screen, HistoryScreen), "the history screen")
    screen = d.app.screen
    await d.until(lambda: screen.runs or "run" in str(screen.query_one("#history-status").render()),
                  "the list of runs")  # fmt: skip
    if settle:
        await d.settle()
    return screen


def listed_ids(screen: HistoryScreen) -> list[int]:
    return [run.id for run in screen.runs]


async def set_prompt(d: Any, text: str) -> None:
    d.app.query_one("#prompt-editor", TextArea).text = text
    await d.settle()


async def run_all(d: Any) -> None:
    await d.press("ctrl+r")
    await d.until(lambda: not d.app.running, "the run to end")
    await d.settle()


# -- recording ------------------------------------------------------------------------


async def test_a_run_in_the_app_lands_in_the_history(build_app, drive):
    app = build_app(prompt="What is the capital of France?")
    async with drive(app) as d:
        gemma = app.panels[1]
        gemma.overrides = {"temperature": 0.0}
        gemma.set_params(app.params_for(gemma))
        app.prompt_area.system.value = "Answer briefly."
        await run_all(d)
        run_id = app.history.current_run
    assert run_id is not None
    with Store.open() as store:
        runs = store.list_runs()
        assert [r.id for r in runs] == [run_id]
        assert runs[0].models == ["smollm2", "gemma"] and runs[0].states == ["done", "done"]
        run = store.get_run(run_id)
    assert run is not None
    assert run.prompt == "What is the capital of France?" and run.system == "Answer briefly."
    assert run.mode == "chat" and run.source == "app" and run.state == "finished"
    assert run.params["temperature"] == 0.7
    a, b = run.panels
    assert a.text == REPLIES["smollm2"] and b.text == REPLIES["gemma"]
    assert a.state == b.state == "done" and a.stop_reason == "eos"
    assert a.stats is not None and a.stats.completion_tokens == len(REPLIES["smollm2"].split())
    assert a.overrides == {} and b.overrides == {"temperature": 0.0}
    assert b.params["temperature"] == 0.0


async def test_quitting_mid_run_keeps_the_partial_text_as_cancelled(build_app, drive, factory):
    gate = TokenGate()
    factory.options["smollm2"] = {"gate": gate}
    app = build_app(prompt="Tell me about Paris")
    async with drive(app) as d:
        smol, gemma = app.panels
        await d.press("ctrl+r")
        gate.allow(3)
        await d.until(lambda: smol.output.text == "The capital of" and gemma.state == "done",
                      "three tokens in the gated panel")  # fmt: skip
        await d.press("ctrl+q")
        await d.pilot.pause()
    with Store.open() as store:
        run = store.get_run(1)
    assert run is not None and run.state == "finished"
    assert run.panels[0].state == "cancelled" and run.panels[0].text == "The capital of"
    assert run.panels[1].state == "done" and run.panels[1].text == REPLIES["gemma"]


async def test_a_damaged_history_turns_history_off_and_runs_still_work(build_app, drive):
    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(5).randbytes(8192))
    app = build_app(prompt="hello")
    async with drive(app) as d:
        assert any(m.startswith("history off:") and "damaged" in m for m in messages(app))
        assert app.sub_title == "history off"
        assert "history off" in str(app.query_one("#history-off").render())
        await run_all(d)
        assert all(p.state == "done" and p.output.text for p in app.panels)
        # The history screen and export say why they are not there.
        await d.press("f3")
        await d.settle()
        assert not isinstance(app.screen, HistoryScreen)
        app.panels[0].output.focus()
        await d.press("f9")
        await d.settle()
        assert sum(m.startswith("history off:") for m in messages(app)) == 3
    assert path.read_bytes() == random.Random(5).randbytes(8192)  # left as it was


# -- the history screen -----------------------------------------------------------------


async def test_history_lists_newest_first_filters_and_brings_a_run_back(
    build_app, drive, factory: Factory
):
    app = build_app(prompt="What is the capital of France?")
    async with drive(app) as d:
        # Run 1: both models, chat, a system prompt, shared and per-panel settings.
        app.prompt_area.system.value = "Be brief."
        app.shared = GenParams(max_tokens=64, temperature=0.2, seed=7)
        gemma = app.panels[1]
        gemma.overrides = {"max_tokens": 4, "stop": ("###",)}
        for panel in app.panels:
            panel.set_params(app.params_for(panel))
        await run_all(d)
        first_texts = [p.output.text for p in app.panels]
        assert app.panels[1].stop_reason == "max_tokens"
        # Run 2: smollm2 alone, raw mode, other settings.
        app.panels[1].output.focus()
        await d.press("ctrl+w")
        await d.settle()
        await set_prompt(d, "Write a haiku about the sea")
        await d.press("ctrl+t")
        app.prompt_area.system.value = ""
        app.shared = GenParams()
        app.panels[0].set_params(app.params_for(app.panels[0]))
        await run_all(d)
        assert [p.ref for p in app.panels] == ["smollm2"]

        screen = await open_history(d)
        assert listed_ids(screen) == [2, 1]
        lines = [str(screen.option_list.get_option_at_index(i).prompt) for i in range(2)]
        assert "Write a haiku about the sea" in lines[0] and "raw" in lines[0]
        assert "smollm2 done" in lines[0] and "gemma" not in lines[0]
        assert "What is the capital of France?" in lines[1]
        assert "smollm2 done · gemma done" in lines[1]
        # Filter by text (prompts and completions), then by model.
        await d.press(*"what")  # any case
        await d.settle()
        assert listed_ids(screen) == [1]
        screen.query_one("#history-search", Input).value = "paris, and"  # gemma's text
        await d.settle()
        assert listed_ids(screen) == [1]
        screen.query_one("#history-search", Input).value = "nothing like this"
        await d.settle()
        assert listed_ids(screen) == [] and screen.selected is None
        assert "no run matches" in str(screen.option_list.get_option_at_index(0).prompt)
        screen.query_one("#history-search", Input).value = ""
        screen.query_one("#history-model", Input).value = "gem"
        await d.settle()
        assert listed_ids(screen) == [1]
        screen.query_one("#history-model", Input).value = ""
        await d.settle()
        assert listed_ids(screen) == [2, 1]
        assert screen.selected == 1  # the highlight stays on its run while filtering
        # Keys only: up to the newer run, down to the older one, Enter.
        await d.press("up")
        assert screen.selected == 2
        await d.press("down", "enter")
        await d.until(lambda: len(app.panels) == 2 and app.panels[1].state == "done",
                      "the run to come back")  # fmt: skip
        await d.settle()
        assert not isinstance(app.screen, HistoryScreen)
        prompt = app.prompt_area.prompt
        assert prompt.text == "What is the capital of France?"
        assert prompt.system == "Be brief." and prompt.mode == "chat"
        assert app.shared.max_tokens == 64 and app.shared.temperature == 0.2
        assert app.shared.seed == 7
        smol, gemma = app.panels
        assert [p.ref for p in app.panels] == ["smollm2", "gemma"]
        assert gemma.overrides == {"max_tokens": 4, "stop": ("###",)}
        assert gemma.params.max_tokens == 4 and smol.params.max_tokens == 64
        assert [p.output.text for p in app.panels] == first_texts
        for panel in app.panels:
            assert panel.state == "done" and panel.stats is not None
            assert "TTFT 0.05s" in panel.status_text
            assert str(panel.border_subtitle) == "run 1 · from history"
        assert "max tokens · 4 tok" in gemma.status_text
        assert app.history.current_run == 1
        # And again: a new run, recorded as run 3.
        await run_all(d)
        assert all(p.state == "done" for p in app.panels)
        assert all(str(p.border_subtitle) == "" for p in app.panels)
        assert app.history.current_run == 3
    with Store.open() as store:
        again = store.get_run(3)
    assert again is not None and again.prompt == "What is the capital of France?"
    assert again.panels[1].overrides == {"max_tokens": 4, "stop": ["###"]}


async def test_a_run_with_a_missing_model_comes_back_with_the_error_in_its_panel(build_app, drive):
    with Store.open() as store:
        run_id = store.create_run(
            stored_run(
                "Three panels, one gone",
                [
                    stored_panel(0, "gemma", "first"),
                    stored_panel(1, "unknown-model", "a model since deleted"),
                    stored_panel(2, "smollm2", "third", state="interrupted", stats=None),
                ],
            )
        )
    app = build_app(models=["smollm2"])
    async with drive(app) as d:
        screen = await open_history(d)
        assert listed_ids(screen) == [run_id]
        await d.press("enter")
        await d.until(lambda: len(app.panels) == 3, "three panels")
        await d.settle()
        first, gone, third = app.panels
        assert [p.number for p in app.panels] == [1, 2, 3]
        assert first.ref == "gemma" and first.state == "done"
        assert gone.state == "error" and gone.runner is None
        assert "no model 'unknown-model'" in gone.status_text
        assert gone.output.text == "a model since deleted"  # kept, for reference
        assert third.state == "cancelled" and "interrupted: the run never finished" in (
            third.status_text
        )
        await run_all(d)
        assert first.state == "done" and third.state == "done" and gone.state == "error"


async def test_fewer_panels_in_the_run_than_on_screen_removes_the_rest(build_app, drive, factory):
    with Store.open() as store:
        store.create_run(stored_run("one", [stored_panel(0, "gemma", "only gemma")]))
    app = build_app(models=["smollm2", "gemma", "smollm2"])
    async with drive(app) as d:
        await open_history(d)
        await d.press("enter")
        await d.until(lambda: len(app.panels) == 1 and app.panels[0].state == "done",
                      "one panel")  # fmt: skip
        assert app.panels[0].output.text == "only gemma"
        await d.settle()
        assert sum(r.closed for r in factory.made) == 3  # smollm2 twice, and gemma replaced


async def test_history_screen_keys(build_app, drive):
    seed_two_runs()
    app = build_app()
    async with drive(app) as d:
        screen = await open_history(d)
        assert listed_ids(screen) == [2, 1] and screen.selected == 2
        assert "[cli]" in str(screen.option_list.get_option_at_index(0).prompt)
        await d.press("down")
        assert screen.selected == 1
        await d.press("up")
        assert screen.selected == 2
        await d.press("f3")  # F3 again closes, like Esc
        await d.settle()
        assert not isinstance(app.screen, HistoryScreen)
        screen = await open_history(d)
        await d.press("escape")
        await d.settle()
        assert not isinstance(app.screen, HistoryScreen)
        assert app.prompt_area.prompt.text == ""  # nothing was opened


async def test_a_run_cannot_come_back_while_another_runs(build_app, drive, factory):
    seed_two_runs()
    gate = TokenGate()
    factory.options["smollm2"] = {"gate": gate}
    app = build_app(prompt="busy")
    async with drive(app) as d:
        try:
            await d.press("ctrl+r")
            await d.until(lambda: app.panels[1].state == "done", "gemma to finish", timeout=10)
            await open_history(d, settle=False)  # the run's worker waits on the gate
            await d.press("enter")
            await d.until(lambda: any("A run is in progress" in m for m in messages(app)),
                          "the refusal", timeout=10)  # fmt: skip
            assert app.prompt_area.prompt.text == "busy"
        finally:
            gate.set()
        await d.settle()


# -- export -----------------------------------------------------------------------------


async def test_export_writes_the_run_as_markdown(build_app, drive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = build_app(prompt="What is the capital of France?")
    async with drive(app) as d:
        app.panels[0].output.focus()
        await d.press("f9")
        await d.settle()
        assert any("Nothing to export yet" in m for m in messages(app))
        await run_all(d)
        await d.press("ctrl+e")  # focus is in a panel: Ctrl+E exports too
        await d.settle()
        report = tmp_path / "workbench-run-1.md"
        assert report.is_file()
        assert any("Exported run 1" in m and str(report) in m for m in messages(app))
    text = report.read_text()
    assert "# Run 1: What is the capital of France?" in text
    assert REPLIES["smollm2"] in text and REPLIES["gemma"] in text


async def test_export_a_past_run_from_the_history_screen(build_app, drive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seed_two_runs()
    app = build_app()
    async with drive(app) as d:
        screen = await open_history(d)
        await d.press("down", "f9")
        await d.settle()
        assert isinstance(app.screen, HistoryScreen)  # stays open
        assert sorted(p.name for p in Path(tmp_path).glob("*.md")) == ["workbench-run-1.md"]
        assert screen.selected == 1
    text = (tmp_path / "workbench-run-1.md").read_text()
    assert "The capital of France is Paris." in text and "Paris, and the next question" in text


async def test_ctrl_e_in_the_prompt_stays_end_of_line(build_app, drive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = build_app(prompt="hello")
    async with drive(app) as d:
        await run_all(d)
        editor = app.prompt_area.editor
        editor.focus()
        editor.move_cursor((0, 0))
        await d.press("ctrl+e")
        await d.settle()
        assert editor.cursor_location == (0, 5)
        assert not list(Path(tmp_path).glob("*.md"))


# -- the diff view -----------------------------------------------------------------------


async def test_diff_of_two_panels_marks_removed_and_added_words(build_app, drive, factory):
    app = build_app(prompt="What colour is the sky?")
    async with drive(app) as d:
        factory.made[0].reply = "The sky is blue today."
        factory.made[1].reply = "The sky was blue yesterday."
        await run_all(d)
        await d.press("f8")
        await d.settle()
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        view = screen.query_one(DiffView)
        assert view.plain == "The sky [-is-]{+was+} blue [-today-]{+yesterday+}."
        rendered = view.render()
        assert rendered.plain == view.plain
        struck = [
            rendered.plain[s.start : s.end] for s in rendered.spans if "strike" in str(s.style)
        ]
        under = [
            rendered.plain[s.start : s.end] for s in rendered.spans if "underline" in str(s.style)
        ]
        assert struck == ["[-is-]", "[-today-]"] and under == ["{+was+}", "{+yesterday+}"]
        summary = str(screen.query_one("#diff-summary").render())
        assert summary == "4 words the same, 2 removed, 2 added"
        legend = str(screen.query_one("#diff-legend").render())
        assert (
            "only in 1 · SmolLM2-135M-Instruct" in legend and "only in 2 · Gemma 3 270M" in legend
        )
        await d.press("escape")
        await d.settle()
        assert not isinstance(app.screen, DiffScreen)
        # Ctrl+D opens it from a panel; in the prompt it deletes a character.
        app.panels[1].output.focus()
        await d.press("ctrl+d")
        await d.settle()
        assert isinstance(app.screen, DiffScreen)
        await d.press("escape")
        editor = app.prompt_area.editor
        editor.focus()
        editor.move_cursor((0, 0))
        await d.press("ctrl+d")
        await d.settle()
        assert not isinstance(app.screen, DiffScreen)
        assert editor.text == "hat colour is the sky?"


async def test_diff_scrolls_by_keyboard(build_app, drive, factory):
    app = build_app(prompt="count")
    async with drive(app) as d:
        factory.made[0].reply = "\n".join(f"line {i} same" for i in range(80))
        factory.made[1].reply = "\n".join(f"line {i} {'same' if i % 9 else 'other'}"
                                          for i in range(80))  # fmt: skip
        app.shared = GenParams(max_tokens=1000)
        for panel in app.panels:
            panel.set_params(app.params_for(panel))
        await run_all(d)
        await d.press("f8")
        await d.settle()
        body = app.screen.query_one("#diff-body")
        assert app.screen.focused is body and body.max_scroll_y > 0
        await d.press("pagedown")
        await d.settle()
        assert body.scroll_y > 0
        await d.press("end")
        await d.settle()
        assert body.scroll_y == body.max_scroll_y


async def test_diff_with_more_panels_asks_which_two(build_app, drive, factory):
    app = build_app(models=["smollm2", "gemma", "other"], prompt="hi")
    async with drive(app) as d:
        factory.made[2].reply = "Paris, and the next answer"
        await run_all(d)
        app.panels[2].output.focus()  # the current panel's pairs come first
        await d.press("f8")
        await d.settle()
        picker = app.screen
        assert isinstance(picker, PairPicker)
        olist = picker.query_one(OptionList)
        labels = [str(olist.get_option_at_index(i).prompt) for i in range(olist.option_count)]
        assert [label.split()[0:3] for label in labels] == [
            ["1", "↔", "3"], ["2", "↔", "3"], ["1", "↔", "2"]
        ]  # fmt: skip
        await d.press("down", "enter")
        await d.settle()
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        assert (screen.old.number, screen.new.number) == (2, 3)
        assert screen.query_one(DiffView).plain == (
            "Paris, and the next [-question in the quiz was about the longest river in "
            "Europe, which-]{+answer+}"
        )
        await d.press("escape")
        await d.settle()
        assert app.screen is app.screen_stack[0]


async def test_diff_needs_two_panels(build_app, drive):
    app = build_app(models=["smollm2"])
    async with drive(app) as d:
        app.panels[0].output.focus()
        await d.press("f8")
        await d.settle()
        assert not isinstance(app.screen, DiffScreen)
        assert any("A diff needs two panels" in m for m in messages(app))


async def test_new_keys_are_in_the_palette_and_help(build_app, drive):
    from workbench.tui.screens.help import keys_table

    app = build_app()
    async with drive(app):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in (
            "History: past runs",
            "Diff two panels' completions",
            "Export the run as Markdown",
            "Pull a model from the Hugging Face Hub",
        ):
            assert title in titles, title
        rows = [str(row) for row in keys_table().columns[0]._cells]
        for keys in ("F3", "F8 / Ctrl+D", "F9 / Ctrl+E", "F4"):
            assert keys in rows, keys


# -- a real model ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_real_run_is_recorded_with_its_figures(default_model_paths: dict[str, Path]):
    settings = Settings(
        scan_hf_cache=False,
        max_default_ctx=2048,
        generation=GenParams(max_tokens=8, temperature=0.0),
    )
    app = make_app(settings=settings, models=[str(default_model_paths["smollm2"])],
                   prompt="Name a colour.", cursor_blink=False)  # fmt: skip
    async with Driver(app, (80, 24)) as d:
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run to finish", timeout=240)
        await d.settle()
        panel = app.panels[0]
        assert panel.state == "done", panel.status_text
        shown = panel.output.text
        await d.press("ctrl+q")
    with Store.open() as store:
        (summary,) = store.list_runs()
        run = store.get_run(summary.id)
    assert run is not None and run.prompt == "Name a colour." and run.state == "finished"
    (stored,) = run.panels
    assert stored.model.id == "smollm2-135m-instruct-q4_1"
    assert stored.model.path == str(default_model_paths["smollm2"].resolve())
    assert stored.model.sha256 and stored.model.fingerprint
    assert stored.state == "done" and stored.text == shown and stored.text.strip()
    s = stored.stats
    assert s is not None and 0 < s.completion_tokens <= 8
    assert s.gen_tps > 0 and s.ttft_s > 0 and s.prompt_tokens > 0
    assert run.params["max_tokens"] == 8 and run.params["temperature"] == 0.0


async def test_a_variant_panel_is_replaced_not_reused(build_app, drive):
    from workbench.engine.running.protocol import Prompt
    from workbench.tui.variants import PanelSpec, Variant

    with Store.open() as store:
        store.create_run(stored_run("plain", [stored_panel(0, "smollm2", "plain answer")]))
    app = build_app(models=["smollm2"])
    async with drive(app) as d:
        await app.row.remove_all_panels()
        variant = Variant("one-shot", Prompt("Q: 2+2\nA: 4\nQ: hi\nA:", "", "raw"))
        await app.row.add_specs([PanelSpec("smollm2", variant=variant)])
        await d.settle()
        await open_history(d)
        await d.press("enter")
        await d.until(lambda: app.panels[0].state == "done", "the run to come back")
        await d.settle()
        (panel,) = app.panels
        assert getattr(panel, "variant", None) is None and panel.title == "SmolLM2-135M-Instruct"
        assert panel.output.text == "plain answer"


async def test_a_run_started_while_the_history_opens_is_still_recorded(
    build_app, monkeypatch: pytest.MonkeyPatch
):
    import workbench.tui.history as history

    release = threading.Event()
    real_open = history.open_store

    def slow_open(warn: Any) -> Any:
        release.wait(30)
        return real_open(warn)

    monkeypatch.setattr(history, "open_store", slow_open)

    class Unsettled(Driver):  # the history's worker waits on the test: no settling first
        async def __aenter__(self) -> Driver:
            self._context = self.app.run_test(size=self.size, message_hook=self._hook)
            self.pilot = await self._context.__aenter__()
            return self

    app = build_app(prompt="early bird")
    try:
        async with Unsettled(app, (80, 24)) as d:
            await d.until(lambda: all(p.runner is not None for p in app.panels), "the models")
            assert not app.history.opened
            await d.press("ctrl+r")
            await d.until(lambda: app.running, "the run to start")
            release.set()
            await d.until(lambda: not app.running, "the run to end")
            await d.settle()
            assert app.history.current_run == 1
    finally:
        release.set()
    with Store.open() as store:
        run = store.get_run(1)
    assert run is not None and run.prompt == "early bird"
    assert [p.text for p in run.panels] == [REPLIES["smollm2"], REPLIES["gemma"]]
