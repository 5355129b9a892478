"""The panels side by side, and the one owner of their model runners.

``PanelRow`` is the only thing that makes, attaches, replaces and closes a
panel's runner: a panel holds its runner, the row sets it, and everyone
else asks the row (``panels``, ``runners``) or a panel. A panel's life is
its one ``PanelState``; every change is one ``ModelPanel.StateChanged``
message, which the app hands to whoever cares.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from textual.containers import HorizontalScroll
from textual.geometry import Offset, Region
from textual.worker import Worker

from workbench.engine.running.backends.base import Runner
from workbench.engine.running.backends.remote import RemoteRunner
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.params import GenParams
from workbench.engine.sanitize import clean
from workbench.tui.variants import PanelSpec, Variant
from workbench.tui.widgets.panel import ModelPanel

RunnerFactory = Callable[[str], Runner]


class PanelRow(HorizontalScroll, can_focus=False):
    """The panels side by side; scrolls sideways when they do not all fit.

    Panels share the width equally while each gets at least
    ``MIN_PANEL_WIDTH`` columns; past that as many as fit are shown, sized
    to fill the row exactly, and the rest are a sideways scroll away.
    Not focusable itself: Tab goes from panel to panel.

    ``factory`` makes a runner from a model reference (in a thread: reading
    the catalog takes a moment); ``params_for`` gives a panel's effective
    settings; ``leaving`` is called before a panel's runner goes away, so a
    run in progress on it can be cancelled.
    """

    MIN_PANEL_WIDTH = 38

    def __init__(
        self,
        refs: Sequence[str],
        *,
        factory: RunnerFactory,
        params_for: Callable[[ModelPanel], GenParams],
        leaving: Callable[[ModelPanel], None],
        id: str | None = None,
    ) -> None:
        super().__init__(*(ModelPanel(ref, number=n) for n, ref in enumerate(refs, 1)), id=id)
        self._factory = factory
        self._params_for = params_for
        self._leaving = leaving
        self._last: ModelPanel | None = None
        self._opening: dict[str, int] = {}

    # -- what the row holds ---------------------------------------------------------

    @property
    def panels(self) -> list[ModelPanel]:
        return list(self.query_children(ModelPanel))

    @property
    def runners(self) -> list[Runner]:
        """The runners of the panels, the only place runners are kept."""
        return [panel.runner for panel in self.panels if panel.runner is not None]

    @property
    def last_current(self) -> ModelPanel | None:
        """The panel last made current, if it is still here."""
        last = self._last
        return last if last is not None and last.is_attached else None

    def set_current(self, panel: ModelPanel | None) -> None:
        self._last = panel
        for other in self.panels:
            other.current = other is panel

    # -- layout -----------------------------------------------------------------------

    def on_resize(self) -> None:
        self.fit_panels()

    def scroll_to_region(self, region: Region, **kwargs: Any) -> Offset:
        """Scroll whole panels into view: when focus moves into a panel, show
        all of it, by the least distance, without centring. Panel widths
        divide the row's width, so panels stay aligned with its edges."""
        for panel in self.query_children(ModelPanel):
            box = panel.virtual_region_with_margin
            if box.x <= region.x < box.right:
                region = Region(box.x, region.y, box.width, region.height)
                break
        kwargs.update(center=False, animate=False)
        return super().scroll_to_region(region, **kwargs)

    def fit_panels(self) -> None:
        panels = self.panels
        width = self.size.width
        if not panels or not width:
            return
        visible = max(1, min(len(panels), width // self.MIN_PANEL_WIDTH))
        base, extra = divmod(width, visible)
        for index, panel in enumerate(panels):
            # Panels beyond the first screenful repeat the pattern of widths.
            panel.styles.width = base + (1 if index % visible < extra else 0)

    def _refit(self) -> None:
        self.call_after_refresh(self.fit_panels)

    # -- opening and closing runners ----------------------------------------------------

    def open(self, panel: ModelPanel) -> None:
        """Make the panel's runner in a thread; the panel becomes idle with
        it, or fails with the reason."""
        factory, ref, variant = self._factory, panel.ref, panel.variant
        # Only the latest opening of a panel counts: a model changed again
        # while the first was still opening must not arrive after it.
        self._opening[panel.key] = seq = self._opening.get(panel.key, 0) + 1

        def open_runner() -> None:
            try:
                runner = factory(ref)
                if isinstance(runner, RemoteRunner):
                    # Ask the server which model it serves and its context
                    # size, so the panel opens with them; a server that cannot
                    # be reached fails the panel with the reason.
                    try:
                        runner.connect()
                    except BaseException:
                        runner.close()
                        raise
                if variant is not None:  # a sweep value or a template variant
                    runner = VariantRunner(runner, variant.label, variant.prompt)
            except KeyError as exc:
                message = str(exc.args[0]) if exc.args else f"no model {ref!r}"
            except Exception as exc:  # any failure belongs in the panel, not a traceback
                message = str(exc) or type(exc).__name__
            else:
                self.post_message(ModelPanel.RunnerOpened(panel, runner, seq))
                return
            self.post_message(ModelPanel.RunnerFailed(panel, clean(message, max_len=600), seq))

        self.app.run_worker(open_runner, name=f"open {ref}", group="open", thread=True,
                        exit_on_error=False)  # fmt: skip

    def on_model_panel_runner_opened(self, message: ModelPanel.RunnerOpened) -> None:
        message.stop()
        panel = message.panel
        if not panel.is_attached or message.seq != self._opening.get(panel.key):
            self.close_runners([message.runner])  # removed, or opening another model
            return
        panel.attach(message.runner)
        panel.set_params(self._params_for(panel))

    def on_model_panel_runner_failed(self, message: ModelPanel.RunnerFailed) -> None:
        message.stop()
        if message.panel.is_attached and message.seq == self._opening.get(message.panel.key):
            message.panel.fail(message.message)

    def close_runners(self, runners: Sequence[Runner]) -> Worker[None] | None:
        """Close runners (ending their worker processes) in a thread."""
        if not runners:
            return None

        def close_all() -> None:
            threads = [threading.Thread(target=r.close, daemon=True) for r in runners]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        return self.app.run_worker(close_all, name="close models", group="close", thread=True,
                               exit_on_error=False)  # fmt: skip

    async def close_all(self) -> None:
        """Close every panel's runner and wait until their processes end."""
        runners = []
        for panel in self.panels:
            runner, panel.runner = panel.runner, None
            if runner is not None:
                runners.append(runner)
        worker = self.close_runners(runners)
        if worker is not None:
            await worker.wait()

    def on_unmount(self) -> None:
        # A safety net for exits that did not go through close_all.
        runners = self.runners
        threads = [threading.Thread(target=r.close, daemon=True) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=5)

    # -- adding, replacing, removing panels -----------------------------------------------

    def _new_panel(
        self, ref: str, number: int, variant: Variant | None, overrides: Mapping[str, Any]
    ) -> ModelPanel:
        panel = ModelPanel(ref, number=number, variant=variant)
        panel.overrides = dict(overrides)
        panel.set_params(self._params_for(panel))
        return panel

    async def add_panel(
        self,
        ref: str,
        *,
        overrides: dict[str, Any] | None = None,
        before: ModelPanel | None = None,
    ) -> ModelPanel:
        """A new panel for ``ref`` (at the end, or before another), opening."""
        panel = self._new_panel(ref, len(self.panels) + 1, None, overrides or {})
        await self.mount(panel, before=before)
        self._refit()
        self.open(panel)
        return panel

    async def add_specs(self, specs: Sequence[PanelSpec]) -> list[ModelPanel]:
        """A panel for each spec (sweep values, template variants), after the others."""
        first = len(self.panels) + 1
        new = [
            self._new_panel(spec.ref, number, spec.variant, spec.overrides)
            for number, spec in enumerate(specs, first)
        ]
        await self.mount_all(new)
        self._refit()
        for panel in new:
            self.open(panel)
        return new

    def replace_model(self, panel: ModelPanel, ref: str) -> None:
        """Open another model in this panel; its old runner is closed."""
        if not panel.is_attached:
            return
        self._leaving(panel)
        panel.ref = ref
        old = panel.detach()
        if old is not None:
            self.close_runners([old])
        self.open(panel)

    async def remove_panel(self, panel: ModelPanel) -> None:
        """Remove a panel and close its runner; the others are renumbered."""
        self._leaving(panel)
        runner, panel.runner = panel.runner, None
        await panel.remove()
        if runner is not None:
            self.close_runners([runner])
        self.fit_panels()
        for number, other in enumerate(self.panels, 1):
            other.set_number(number)

    async def remove_all_panels(self) -> None:
        """Remove every panel and close their runners."""
        panels = self.panels
        for panel in panels:
            self._leaving(panel)
        runners = []
        for panel in panels:
            runner, panel.runner = panel.runner, None
            if runner is not None:
                runners.append(runner)
        await self.remove_children(ModelPanel)
        self.close_runners(runners)
