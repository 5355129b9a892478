"""Seeing inside with the two real default models, in their worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import Driver  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.engine.running.params import GenParams
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.tokens import TokenViewScreen

pytestmark = pytest.mark.slow

# Digits, an accent and a contraction: the two tokenizers cut these differently,
# and SmolLM2's chat template adds a system turn that Gemma (a base model) has not.
TEXT = "The café's naïve owner counted 12345 tokens."


def real_app(
    models: list[str], prompt: str, *, max_tokens: int = 16, logprobs: int = 0
) -> WorkbenchApp:
    generation = GenParams(max_tokens=max_tokens, temperature=0.0, logprobs=logprobs)
    settings = Settings(scan_hf_cache=False, max_default_ctx=2048, generation=generation)
    return make_app(settings=settings, models=models, prompt=prompt, cursor_blink=False)


async def test_real_token_view_counts_equal_the_meters(default_model_paths: dict[str, Path]):
    models = [str(default_model_paths["smollm2"]), str(default_model_paths["gemma"])]
    app = real_app(models, TEXT)
    async with Driver(app, (80, 24)) as d:
        await d.until(
            lambda: all(panel.meter.prompt_tokens for panel in app.panels), "both counts", 240
        )
        for mode in ("chat", "raw"):
            if app.prompt_area.prompt.mode != mode:
                await d.press("ctrl+t")
                await d.settle()
            meters = [panel.meter.prompt_tokens for panel in app.panels]
            await d.press("f6")
            await d.until(
                lambda: (
                    isinstance(app.screen, TokenViewScreen)
                    and all(s.done for s in app.screen.sections)
                ),
                "the token view",
                240,
            )
            screen = app.screen
            assert isinstance(screen, TokenViewScreen)
            smol, gemma, reference = screen.sections
            assert [smol.count, gemma.count] == meters, mode
            assert smol.count != gemma.count, mode
            assert gemma.pieces[0] == "<bos>"
            joined = "".join(gemma.pieces[1:])
            assert joined == TEXT  # the pieces join back to the text Gemma reads
            if mode == "chat":
                assert "<|im_start|>" in smol.pieces and "user" in smol.pieces
            else:
                assert "".join(smol.pieces) == TEXT
            assert reference.count == 12
            await d.press("escape")
            await d.settle()
        await d.press("ctrl+q")


async def test_real_probabilities_of_a_greedy_run(default_model_paths: dict[str, Path]):
    app = real_app(
        [str(default_model_paths["smollm2"])], "Name three colours:", max_tokens=8, logprobs=3
    )
    async with Driver(app, (80, 24)) as d:
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run to finish", timeout=240)
        await d.settle()
        panel = app.panels[0]
        assert panel.state == "done", panel.message
        tokens = panel.output.tokens
        assert 0 < len(tokens) <= 8
        assert "".join(token.text for token in tokens) == panel.output.text
        for token in tokens:
            assert token.logprob is not None and token.logprob <= 0
            assert token.top is not None and len(token.top) == 3
            # Greedy: the likeliest alternative is the token chosen.
            assert token.top[0][0] == token.text
            assert token.top[0][1] == pytest.approx(token.logprob, abs=1e-6)
            assert [lp for _, lp in token.top] == sorted((lp for _, lp in token.top), reverse=True)
        await d.press("f7", "ctrl+l")
        await d.settle()
        assert panel.output.cursor == 0
        info = panel.query_one(".panel-token-info").text  # type: ignore[attr-defined]
        assert "token 1/" in info and "│" in info
        await d.press("ctrl+q")
