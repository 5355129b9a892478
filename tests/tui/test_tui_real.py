"""The app on the two real default models, in their worker processes."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from textual.widgets import TextArea
from tui_support import Driver  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.params import GenParams
from workbench.engine.running.worker import FAULT_ENV
from workbench.tui.app import WorkbenchApp, make_app

pytestmark = pytest.mark.slow


def real_app(models: list[str], prompt: str = "") -> WorkbenchApp:
    settings = Settings(
        scan_hf_cache=False,
        max_default_ctx=2048,
        generation=GenParams(max_tokens=16, temperature=0.0),
    )
    return make_app(settings=settings, models=models, prompt=prompt, cursor_blink=False)


def worker_pids(app: WorkbenchApp) -> list[int]:
    return [
        pid
        for panel in app.panels
        if isinstance(panel.runner, LocalRunner) and (pid := panel.runner.worker_pid)
    ]


async def test_real_counts_and_run(default_model_paths: dict[str, Path]):
    models = [str(default_model_paths["smollm2"]), str(default_model_paths["gemma"])]
    app = real_app(models)
    async with Driver(app, (80, 24)) as d:
        smol, gemma = app.panels
        assert smol.runner is not None and gemma.runner is not None
        assert [p.meter.prompt_tokens for p in app.panels] == [None, None]
        assert worker_pids(app) == []  # nothing loads before it is needed
        editor = app.query_one("#prompt-editor", TextArea)
        editor.focus()
        await d.press(*"Name three colours of the rainbow:")
        await d.settle()
        counts = [p.meter.prompt_tokens for p in app.panels]
        assert all(c is not None and c > 0 for c in counts), counts
        # SmolLM2 wraps the prompt in its chat template; Gemma (base) has none.
        assert counts[0] != counts[1]
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run to finish", timeout=240)
        await d.settle()
        for panel in app.panels:
            assert panel.state == "done", (panel.state, panel.message)
            assert panel.output.text.strip()
            assert panel.stats is not None
            assert 0 < panel.stats.completion_tokens <= 16
            assert panel.stats.gen_tps > 0 and panel.stats.ttft_s > 0
            status = panel.status_text
            assert "tok/s" in status and "TTFT" in status
        workers = [psutil.Process(pid) for pid in worker_pids(app)]
        assert len(workers) == 2
        await d.press("ctrl+q")
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "model workers outlived the app"


async def test_broken_model_file_beside_a_working_one(
    default_model_paths: dict[str, Path], tmp_path: Path
):
    # A real model cut short: the header reads fine, the weights are missing.
    truncated = tmp_path / "truncated-smollm2.gguf"
    with default_model_paths["smollm2"].open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(8 << 20))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is not a model\n")
    models = [str(default_model_paths["smollm2"]), str(truncated), str(not_gguf)]
    app = real_app(models, prompt="The sky is")
    async with Driver(app, (120, 30)) as d:
        good, cut, text = app.panels
        assert text.state == "error" and text.runner is None
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run to finish", timeout=240)
        await d.settle()
        assert good.state == "done" and good.output.text.strip()
        assert cut.state == "error" and cut.message
        assert text.state == "error"
        # The app carries on: a second run works for the good model again.
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the second run to finish", timeout=240)
        await d.settle()
        assert good.state == "done"
        await d.press("ctrl+q")


async def test_a_crash_on_the_first_decode_is_retried_and_said_in_the_panel(
    default_model_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    # The worker's fault switch crashes it (SIGSEGV) on a repacked model's
    # first decode, as llama.cpp's AMX kernels do; the meter's count is what
    # loads the model first.
    monkeypatch.setenv(FAULT_ENV, "crash-on-repacked-decode")
    settings = Settings(
        scan_hf_cache=False,
        max_default_ctx=2048,
        cpu_repack="on",
        generation=GenParams(max_tokens=8, temperature=0.0),
    )
    app = make_app(
        settings=settings,
        models=[str(default_model_paths["smollm2"])],
        prompt="The sky is",
        cursor_blink=False,
    )
    async with Driver(app, (80, 24)) as d:
        (panel,) = app.panels
        await d.until(lambda: panel.meter.prompt_tokens is not None, "the count", timeout=120)
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run to finish", timeout=240)
        await d.settle()
        assert panel.state == "done", (panel.state, panel.message)
        assert panel.output.text.strip()
        status = " ".join(panel.status_text.split())
        assert "repacking off" in status
        assert "llama.cpp crashed on this CPU" in status
        assert "Retried with repacking off" in status
        await d.press("ctrl+q")
