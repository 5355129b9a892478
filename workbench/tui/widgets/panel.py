"""One model's panel: header, token meter, state and stats, completion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from workbench.engine.errors import describe
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.params import GenParams
from workbench.tui.variants import Variant
from workbench.tui.widgets.meter import TokenMeter
from workbench.tui.widgets.panel_text import (
    RUNNING,
    PanelState,
    StateLine,
    header,
    line,
    opening_header,
    state_line,
    status_details,
)
from workbench.tui.widgets.probabilities import TokenCompletionView, TokenInfo


@dataclass(frozen=True)
class CountRequest:
    """What a token count is for; a result for an older request is stale."""

    prompt: p.Prompt
    params: GenParams


@dataclass
class _AboutPanel(Message):
    """A message about one panel, which is its control (for ``@on`` selectors)."""

    panel: ModelPanel

    @property
    def control(self) -> ModelPanel:
        return self.panel


class ModelPanel(Vertical):
    """A model in a column of its own.

    The app creates the panel with a model reference and opens the runner in
    a worker; until then, or if that fails, the panel says so. Run events
    arrive as messages posted from the comparison's threads; each carries
    the run number so events of an abandoned run are ignored.
    """

    ALLOW_MAXIMIZE = True
    DEFAULT_CLASSES = "panel"

    # -- messages ---------------------------------------------------------------

    @dataclass
    class StateChanged(_AboutPanel):
        """The panel's state changed: the one message for its whole life
        (opened, failed, each run's steps and end)."""

        old: PanelState
        new: PanelState

    @dataclass
    class RunnerOpened(_AboutPanel):
        """The panel's runner was made (the model itself loads later); for
        the panel row, which attaches it."""

        runner: Runner
        seq: int = 0

    @dataclass
    class RunnerFailed(_AboutPanel):
        """The runner could not be made (unknown model id, unreadable file);
        for the panel row."""

        message: str
        seq: int = 0

    @dataclass
    class TokensCounted(Message):
        """A count of the prompt finished (``error`` set if it failed)."""

        seq: int
        request: CountRequest
        n_tokens: int | None
        note: str = ""
        error: str | None = None

    @dataclass
    class ModelLoaded(Message):
        """The model was loaded for this run (not sent when already loaded)."""

        run: int
        loaded: p.Loaded

    @dataclass
    class PromptReadingStarted(Message):
        """The model began reading the prompt; ``note`` says what was adjusted."""

        run: int
        n_prompt: int
        n_cached: int
        max_tokens: int
        note: str = ""

    @dataclass
    class TokensArrived(Message):
        """A batch of completion text (several tokens, flushed a few times a second)."""

        run: int
        text: str
        n_tokens: int = 1
        # The events themselves, only when the run has probabilities.
        tokens: tuple[p.Token, ...] | None = None

    @dataclass
    class RunFinished(Message):
        """The model stopped: end of text, max tokens, a stop string or cancelled."""

        run: int
        stop_reason: str
        stats: p.Stats

    @dataclass
    class RunEnded(Message):
        """The whole comparison is over (posted after all of this panel's events)."""

        run: int

    @dataclass
    class RunFailed(Message):
        """The run ended in an error; ``kind`` is "refused" for a prompt too long."""

        run: int
        message: str
        kind: str = "error"

    # -- state ------------------------------------------------------------------

    state: reactive[PanelState] = reactive(PanelState.OPENING)
    current: reactive[bool] = reactive(False)

    _instances: ClassVar[int] = 0

    def __init__(self, ref: str, *, number: int = 1, variant: Variant | None = None) -> None:
        ModelPanel._instances += 1
        self.key = f"panel-{ModelPanel._instances}"
        super().__init__(id=self.key)
        self.ref = ref
        self.variant = variant
        self.number = number
        self.runner: Runner | None = None
        self.open_error: str | None = None
        self.overrides: dict[str, Any] = {}
        self.params = GenParams()
        self.run_id = 0
        self.notes: list[str] = []
        self.message = ""  # the error or refusal shown in the status area
        self.stop_reason: str | None = None
        self.stats: p.Stats | None = None
        self.n_generated = 0
        self._count_seq = 0
        self._count_wanted: CountRequest | None = None
        self._count_running: CountRequest | None = None
        self._counted_once = False
        self._run_params: GenParams | None = None
        self._last_counted: CountRequest | None = None
        self._header = Static("", classes="panel-header")
        self._meter = TokenMeter(classes="panel-meter")
        self._state_line = StateLine(classes="panel-state")
        self._status = Static("", classes="panel-status")
        self._token_info = TokenInfo(classes="panel-token-info")
        self._output = TokenCompletionView(classes="panel-output", info=self._token_info)

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._meter
        yield self._state_line
        yield self._status
        yield self._token_info
        yield self._output

    def on_mount(self) -> None:
        self.refresh_display()

    def refresh_display(self) -> None:
        self._refresh_title()
        self._refresh_header()
        self._refresh_status()

    @property
    def meter(self) -> TokenMeter:
        return self._meter

    @property
    def output(self) -> TokenCompletionView:
        return self._output

    @property
    def title(self) -> str:
        runner = self.runner
        if isinstance(runner, VariantRunner):
            runner = runner.inner
        model = runner.header.title if runner is not None else self.ref
        if self.variant is not None:  # its label first: what tells variant panels apart
            return line(f"{self.variant.label} · {model}")
        return line(model)

    @property
    def own_prompt(self) -> p.Prompt | None:
        """The prompt this panel runs instead of the editor's (a template variant)."""
        return self.variant.prompt if self.variant is not None else None

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def label(self) -> str:
        """How settings and messages name this panel."""
        return f"{self.number} · {self.title}"

    def validate_state(self, state: str) -> PanelState:
        return PanelState(state)

    def watch_state(self, old: PanelState, new: PanelState) -> None:
        self.remove_class(f"-{old.replace(' ', '-')}")
        self.add_class(f"-{new.replace(' ', '-')}")
        if self.is_mounted:
            self._refresh_status()
        if old != new:  # not the first call, as the panel mounts
            self.post_message(self.StateChanged(self, old, new))

    def watch_current(self, current: bool) -> None:
        self.set_class(current, "-current")

    def set_number(self, number: int) -> None:
        self.number = number
        self._refresh_title()

    # -- the runner -------------------------------------------------------------

    def attach(self, runner: Runner) -> None:
        """The panel row made this panel's runner: the panel is ready."""
        self.runner = runner
        self.open_error = None
        self._counted_once = False
        self._meter.status = ""
        self.state = PanelState.IDLE
        self.refresh_display()

    def fail(self, message: str) -> None:
        """The panel row could not make a runner for this panel."""
        self.runner = None
        self.open_error = message
        self.message = message
        self._meter.status = "no model"
        self.state = PanelState.ERROR
        self.refresh_display()

    def detach(self) -> Runner | None:
        """The model is about to change: forget the runner (returned, for
        the panel row to close) and show the panel opening again."""
        runner, self.runner = self.runner, None
        self.forget_counts()
        self.open_error = None
        self.state = PanelState.OPENING
        self.refresh_display()
        return runner

    def set_params(self, params: GenParams) -> None:
        """The effective settings for this panel changed (shared or override)."""
        self.params = params
        self._meter.max_tokens = params.max_tokens
        if self.runner is not None:
            self._meter.n_ctx = self.runner.n_ctx_for(params)
        self._refresh_header()

    # -- token counting ---------------------------------------------------------

    def request_count(self, prompt: p.Prompt) -> None:
        """Count the prompt with this model's tokenizer, off the event loop.

        One count runs at a time per panel (a model worker answers counts one
        by one anyway); a request made meanwhile is remembered and started
        when the running one ends, and only the newest request's result is
        shown.
        """
        prompt = self.own_prompt or prompt
        request = CountRequest(prompt, self.params)
        self._count_wanted = request
        if self.runner is None:
            return
        if not prompt.text.strip() and not prompt.system.strip():
            self._count_wanted = None
            self._last_counted = None
            self._meter.prompt_tokens = None
            self._meter.status = "no prompt to count"
            return
        if request in (self._count_running, self._last_counted):
            return  # already counted, or being counted
        if self._count_running is None and not self._count_would_reload():
            self._start_count(request)

    def _count_would_reload(self) -> bool:
        """Counting at another context size restarts the model's worker (to
        load it at that size), which would end a run in progress: wait."""
        if not self.running or self.runner is None or self._run_params is None:
            return False
        return self.runner.n_ctx_for(self.params) != self.runner.n_ctx_for(self._run_params)

    def _start_count(self, request: CountRequest) -> None:
        assert self.runner is not None
        self._count_seq += 1
        self._count_running = request
        if self._meter.prompt_tokens is None:
            self._meter.status = "counting…" if self._counted_once else "loading model…"
        else:
            self._meter.status = "counting…"
        runner, seq = self.runner, self._count_seq

        def count() -> None:
            try:
                counted = runner.count(request.prompt, request.params)
            except Exception as exc:  # a model that cannot count: shown in the panel
                self.post_message(self.TokensCounted(seq, request, None, error=describe(exc)))
                return
            self.post_message(self.TokensCounted(seq, request, counted.n_tokens, note=counted.note))

        self.run_worker(
            count,
            name=f"count {self.key}",
            group=f"count-{self.key}",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    def on_model_panel_tokens_counted(self, message: TokensCounted) -> None:
        message.stop()
        if message.seq != self._count_seq:
            return  # from a runner this panel no longer has
        self._count_running = None
        self._counted_once = True
        wanted = self._count_wanted
        if message.error is not None:
            self._meter.prompt_tokens = None
            self._meter.status = "cannot count"
            if not self.running:
                self.message = message.error
                self.state = PanelState.ERROR
                self._refresh_status()
        elif wanted is None or wanted == message.request:
            self._last_counted = message.request
            self._meter.prompt_tokens = message.n_tokens
            self._meter.status = ""
            self._meter.tooltip = message.note or None
        if (
            wanted is not None
            and wanted != message.request
            and self.runner is not None
            and not self._count_would_reload()
        ):
            self._start_count(wanted)

    def forget_counts(self) -> None:
        """The runner changed: results of counts still running are stale."""
        self._count_seq += 1
        self._count_running = None
        self._counted_once = False
        self._last_counted = None
        self._meter.prompt_tokens = None

    # -- runs ---------------------------------------------------------------------

    def begin_run(self, run: int) -> None:
        self.run_id = run
        self._run_params = self.params
        self.notes = []
        self.message = ""
        self.stop_reason = None
        self.stats = None
        self.n_generated = 0
        self._output.clear()
        self.state = PanelState.LOADING

    def fail_run(self, message: str) -> None:
        """The run could not start for this panel at all."""
        self.message = message
        self.state = PanelState.ERROR

    def on_model_panel_model_loaded(self, message: ModelLoaded) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        loaded = message.loaded
        weights = f" · repacking {'on' if loaded.repack else 'off'}" if loaded.buffers else ""
        self.notes.append(f"loaded in {loaded.load_s:.1f} s{weights}")
        if loaded.note:
            self.notes.append(line(loaded.note))
        self._refresh_status()

    def on_model_panel_prompt_reading_started(self, message: PromptReadingStarted) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        if message.note:
            self.notes.append(line(message.note))
        self.state = PanelState.READING

    def on_model_panel_tokens_arrived(self, message: TokensArrived) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        self.n_generated += message.n_tokens
        self._output.append(message.text, tokens=message.tokens)
        if self.state in ("loading", "reading prompt"):
            self.state = PanelState.GENERATING
        else:
            # Only the one-line state widget changes while tokens stream:
            # nothing else is redrawn and nothing is laid out again.
            self._state_line.text = self._state_text()

    def on_model_panel_run_finished(self, message: RunFinished) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        self.stop_reason = message.stop_reason
        self.stats = message.stats
        self.state = PanelState.CANCELLED if message.stop_reason == "cancelled" else PanelState.DONE

    def on_model_panel_run_failed(self, message: RunFailed) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        self.message = message.message
        self.state = PanelState.REFUSED if message.kind == "refused" else PanelState.ERROR

    def on_model_panel_run_ended(self, message: RunEnded) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        if self.running:  # the comparison never reported on this panel
            self.message = "the run ended without a result"
            self.state = PanelState.ERROR
        self._run_params = None
        wanted = self._count_wanted
        if (
            wanted is not None
            and wanted != self._last_counted
            and self._count_running is None
            and self.runner is not None
        ):
            self._start_count(wanted)

    # -- display ------------------------------------------------------------------

    def _refresh_title(self) -> None:
        self.border_title = Text(f"{self.number} {self.title}")

    def _refresh_header(self) -> None:
        runner = self.runner
        if runner is None:
            self._header.update(opening_header(self.open_error))
            return
        n_ctx = runner.n_ctx_for(self.params)
        self._header.update(header(runner.header, n_ctx))
        self._meter.n_ctx = n_ctx
        self._meter.max_tokens = self.params.max_tokens

    def _refresh_status(self) -> None:
        self._state_line.text = self._state_text()
        details = status_details(self.state, self.stats, self.message, self.notes)
        self._status.update(details)
        self._status.display = bool(details)

    def _state_text(self) -> Text:
        return state_line(self.state, self.stop_reason, self.n_generated, bool(self._output.text))

    @property
    def status_text(self) -> str:
        """The state line and the details under it, as plain text."""
        details = str(self._status.render()) if self._status.display else ""
        return f"{self._state_line.text.plain}\n{details}".strip()
