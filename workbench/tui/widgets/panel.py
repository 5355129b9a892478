"""One model's panel: header, token meter, state and stats, completion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner, RunnerError
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.params import GenParams
from workbench.engine.sanitize import clean
from workbench.tui.variants import Variant
from workbench.tui.widgets.meter import TokenMeter
from workbench.tui.widgets.probabilities import TokenCompletionView, TokenInfo

STOP_LABELS = {
    "eos": "end of text",
    "max_tokens": "max tokens",
    "stop": "stop string",
    "cancelled": "cancelled",
    "context": "context full",
}

# States a panel can be in; the running ones can be cancelled.
RUNNING = ("loading", "reading prompt", "generating")
STATES = ("opening", "idle", *RUNNING, "done", "cancelled", "error", "refused")


def _line(text: str) -> str:
    """A model-provided string made safe for one line."""
    return clean(text, max_len=300)


class StateLine(Widget):
    """The panel's state in one line; redrawn alone while tokens stream."""

    DEFAULT_CSS = """
    StateLine {
        height: 1;
    }
    """

    text: reactive[Text] = reactive(Text, layout=False)

    def render(self) -> Text:
        return self.text


@dataclass(frozen=True)
class CountRequest:
    """What a token count is for; a result for an older request is stale."""

    prompt: p.Prompt
    params: GenParams


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
    class RunnerOpened(Message):
        """The panel's runner was made (the model itself loads later)."""

        panel: ModelPanel
        runner: Runner

        @property
        def control(self) -> ModelPanel:
            return self.panel

    @dataclass
    class RunnerFailed(Message):
        """The runner could not be made (unknown model id, unreadable file)."""

        panel: ModelPanel
        message: str

        @property
        def control(self) -> ModelPanel:
            return self.panel

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

    state: reactive[str] = reactive("opening")
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
            return _line(f"{self.variant.label} · {model}")
        return _line(model)

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

    def watch_state(self, old: str, new: str) -> None:
        self.remove_class(f"-{old.replace(' ', '-')}")
        self.add_class(f"-{new.replace(' ', '-')}")
        if self.is_mounted:
            self._refresh_status()

    def watch_current(self, current: bool) -> None:
        self.set_class(current, "-current")

    def set_number(self, number: int) -> None:
        self.number = number
        self._refresh_title()

    # -- the runner -------------------------------------------------------------

    def on_model_panel_runner_opened(self, message: RunnerOpened) -> None:
        if message.panel is not self:
            return
        self.runner = message.runner
        self.open_error = None
        self.state = "idle"
        self._counted_once = False
        self._meter.status = ""
        self._refresh_title()
        self._refresh_header()
        self._refresh_status()

    def on_model_panel_runner_failed(self, message: RunnerFailed) -> None:
        if message.panel is not self:
            return
        self.runner = None
        self.open_error = message.message
        self.message = message.message
        self.state = "error"
        self._meter.status = "no model"
        self._refresh_title()
        self._refresh_header()
        self._refresh_status()

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
                message = (
                    str(exc) if isinstance(exc, RunnerError) else f"{type(exc).__name__}: {exc}"
                )
                self.post_message(self.TokensCounted(seq, request, None, error=message))
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
                self.state = "error"
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
        self.state = "loading"

    def fail_run(self, message: str) -> None:
        """The run could not start for this panel at all."""
        self.message = message
        self.state = "error"

    def on_model_panel_model_loaded(self, message: ModelLoaded) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        loaded = message.loaded
        weights = f" · repacking {'on' if loaded.repack else 'off'}" if loaded.buffers else ""
        self.notes.append(f"loaded in {loaded.load_s:.1f} s{weights}")
        if loaded.note:
            self.notes.append(_line(loaded.note))
        self._refresh_status()

    def on_model_panel_prompt_reading_started(self, message: PromptReadingStarted) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        if message.note:
            self.notes.append(_line(message.note))
        self.state = "reading prompt"

    def on_model_panel_tokens_arrived(self, message: TokensArrived) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        self.n_generated += message.n_tokens
        self._output.append(message.text, tokens=message.tokens)
        if self.state in ("loading", "reading prompt"):
            self.state = "generating"
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
        self.state = "cancelled" if message.stop_reason == "cancelled" else "done"

    def on_model_panel_run_failed(self, message: RunFailed) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        self.message = message.message
        self.state = "refused" if message.kind == "refused" else "error"

    def on_model_panel_run_ended(self, message: RunEnded) -> None:
        message.stop()
        if message.run != self.run_id:
            return
        if self.running:  # the comparison never reported on this panel
            self.message = "the run ended without a result"
            self.state = "error"
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
            what = "model not available" if self.open_error else "opening…"
            self._header.update(Text(f"{what}\n", style="italic"))
            return
        h = runner.header
        first = " · ".join(_line(x) for x in (h.arch, h.params, h.quant, h.size) if x)
        n_ctx = runner.n_ctx_for(self.params)
        ctx = f"ctx {n_ctx:,}"
        if h.n_ctx_train:
            ctx += f" of {h.n_ctx_train:,}"
        second = " · ".join(x for x in (_line(h.kind), ctx) if x)
        self._header.update(Text(f"{first}\n{second}"))
        self._meter.n_ctx = n_ctx
        self._meter.max_tokens = self.params.max_tokens

    def _refresh_status(self) -> None:
        self._state_line.text = self._state_text()
        details = Text()
        if self.state in ("done", "cancelled") and self.stats is not None:
            s = self.stats
            details.append(f"TTFT {s.ttft_s:.2f}s · cached {s.cached_tokens:,} tok\n")
            details.append(f"prompt {s.prompt_tps:,.0f} tok/s · gen {s.gen_tps:,.1f} tok/s")
        elif self.state in ("error", "refused") and self.message:
            details.append(clean(self.message.removeprefix(f"{self.state}: "), max_len=400))
        for note in self.notes:
            details.append(("\n" if details else "") + note, style="italic")
        self._status.update(details)
        self._status.display = bool(details)

    def _state_text(self) -> Text:
        """One line: the state, then the stop reason and tokens, or a hint."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.state, style="bold")
        if self.state in ("done", "cancelled") and self.stop_reason:
            reason = STOP_LABELS.get(self.stop_reason, self.stop_reason)
            if reason != self.state:
                text.append(f" · {reason}")
        if self.state in ("generating", "done", "cancelled") and self.n_generated:
            text.append(f" · {self.n_generated:,} tok")
        elif self.state == "cancelled" and not self._output.text:
            text.append(" · before it started")
        elif self.state == "idle":
            text.append(" · Ctrl+R runs every panel", style="dim")
        return text

    @property
    def status_text(self) -> str:
        """The state line and the details under it, as plain text."""
        details = str(self._status.render()) if self._status.display else ""
        return f"{self._state_line.text.plain}\n{details}".strip()
