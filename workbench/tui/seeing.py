"""Seeing inside the models, for the app: the token view, probability shading
and the token cursor, prompt templates with few-shot variants, and sweeps.

``Seeing`` holds what these features share and does the work of their keys;
the app's actions call it. Variant and sweep panels are ordinary panels with
a ``Variant``: the app opens each with a runner of its own, wrapped in a
``VariantRunner`` (see ``WorkbenchApp._open``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from textual.widgets import Input, TextArea

from workbench.engine.running.params import ParamError
from workbench.engine.running.protocol import Prompt
from workbench.tui.screens.sweep import SweepResult, SweepScreen
from workbench.tui.screens.templates import TemplateResult, TemplatesScreen
from workbench.tui.screens.tokens import TokenSource, TokenViewScreen
from workbench.tui.variants import PanelSpec, sweep_specs, template_specs
from workbench.tui.widgets.panel import ModelPanel, PanelState
from workbench.tui.widgets.prompt import ModeSwitch, PromptArea

if TYPE_CHECKING:
    from workbench.tui.host import Host


class Seeing:
    """The token view, shading, templates and sweeps of one app."""

    def __init__(self, app: Host) -> None:
        self.app = app
        self.shading = False
        # Panels made by "run variants" that must open before the run starts.
        self._run_after_open: set[str] = set()

    # -- the token view ---------------------------------------------------------------

    def token_view(self) -> None:
        """Every panel's tokens of its prompt, and the cl100k reference."""
        app = self.app
        prompt = app.prompt_area.prompt
        sources = []
        for panel in app.panels:
            used = panel.own_prompt or prompt
            problem = ""
            if panel.runner is None:
                problem = f"no model: {panel.open_error}" if panel.open_error else "opening…"
            elif not used.text.strip() and not used.system.strip():
                problem = "no prompt to show"
            sources.append(TokenSource(panel.label, panel.runner, panel.params, used, problem))
        app.push_dialog(TokenViewScreen(sources, prompt.text), None)

    # -- probabilities ----------------------------------------------------------------

    def toggle_shading(self) -> None:
        app = self.app
        self.shading = not self.shading
        for panel in app.panels:
            panel.output.shading = self.shading
        if not self.shading:
            app.notify("Probability shading off", timeout=2)
        elif any(panel.output.has_probabilities for panel in app.panels):
            app.notify("Probability shading on", timeout=2)
        else:
            app.notify(
                "Probability shading on; no run has probabilities yet: set logprobs "
                "(1 to 10) in the settings (F2) and run again.",
                timeout=6,
            )

    def token_cursor(self) -> None:
        app = self.app
        panel = app.current_panel
        if panel is None:
            app.notify("No panel: Ctrl+N adds one.", severity="warning")
            return
        if not panel.output.start_cursor():
            app.notify(
                f"Panel {panel.number}'s run has no probabilities: set logprobs (1 to 10) "
                "in the settings (F2) and run again.",
                severity="warning",
                timeout=6,
            )
            return
        panel.output.focus()

    def state_changed(self, panel: ModelPanel) -> None:
        """A panel's state changed (the app hands on every change): a run
        waiting for its panels to open may start."""
        if self._run_after_open and panel.key in self._run_after_open:
            self._run_if_open()

    # -- panels for variants ----------------------------------------------------------

    async def place_panels(self, specs: Sequence[PanelSpec], replace: bool) -> list[ModelPanel]:
        """Make a panel for each spec, after the current ones or instead of them."""
        app = self.app
        if app.running:
            app.notify("A run is in progress: Esc cancels it; then try again.", severity="warning")
            return []
        row = app.row
        if replace:
            await row.remove_all_panels()
        new = await row.add_specs(specs)
        for panel in new:
            panel.output.shading = self.shading
        if new:
            row.set_current(new[0])
            app.call_after_refresh(new[0].output.focus)
        return new

    def run_when_open(self, panels: Sequence[ModelPanel]) -> None:
        """Run every panel once these have opened their models (or failed to)."""
        self._run_after_open = {panel.key for panel in panels}
        self._run_if_open()

    def _run_if_open(self) -> None:
        waiting = self._run_after_open
        if waiting and not any(
            panel.key in waiting and panel.state == PanelState.OPENING for panel in self.app.panels
        ):
            waiting.clear()
            self.app.action_run()

    # -- templates --------------------------------------------------------------------

    def templates(self) -> None:
        app = self.app
        panel = app.current_panel
        usable = panel is not None and panel.open_error is None
        model = panel.title if panel is not None and usable else None
        screen = TemplatesScreen(app.prompt_area.prompt, model)
        app.push_dialog(screen, partial(self._templates_done, panel if usable else None))

    def fill_editor(self, prompt: Prompt) -> None:
        """Put a prompt in the editor: its text, system prompt and mode."""
        area = self.app.prompt_area
        # One edit for the three changes, so the prompt is counted once.
        with area.prevent(TextArea.Changed, Input.Changed, ModeSwitch.ModeChanged):
            area.editor.text = prompt.text
            area.system.value = prompt.system
            area.switch.mode = prompt.mode
        area.post_message(PromptArea.PromptEdited(area))

    async def _templates_done(
        self, panel: ModelPanel | None, result: TemplateResult | None
    ) -> None:
        if result is None:
            return
        app = self.app
        if result.action in ("editor", "across"):
            label, prompt = result.prompts[0]
            self.fill_editor(prompt)
            app.prompt_area.editor.focus()
            if result.action == "across":
                app.action_run()
            else:
                app.notify(f"Template in the editor: {label}", timeout=3)
            return
        if panel is None:
            return
        specs = template_specs(panel.ref, panel.overrides, result.prompts)
        new = await self.place_panels(specs, result.replace)
        if new:
            self.run_when_open(new)

    # -- sweeps -----------------------------------------------------------------------

    def sweep(self) -> None:
        app = self.app
        panels = [panel for panel in app.panels if panel.open_error is None]
        if not panels:
            app.notify("No panel with a model to sweep: Ctrl+N adds one.", severity="warning")
            return
        current = app.current_panel
        target = current if current in panels else panels[0]
        assert target is not None
        choices = [(panel.key, panel.label) for panel in panels]
        app.push_dialog(SweepScreen(choices, target.key, self._plan_sweep), self._sweep_done)

    def _plan_sweep(self, key: str, setting: str, values: str) -> list[PanelSpec]:
        panel = next((p for p in self.app.panels if p.key == key), None)
        if panel is None:
            raise ParamError("that panel was removed")
        params = self.app.params_for(panel)
        return sweep_specs(panel.ref, params, panel.overrides, setting, values, base=panel.variant)

    async def _sweep_done(self, result: SweepResult | None) -> None:
        if result is None:
            return
        new = await self.place_panels(result.specs, result.replace)
        if new:
            self.app.notify(f"{len(new)} panels: Ctrl+R runs them side by side", timeout=4)
