"""Past runs, newest first: filter them, open one again, export one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.engine.history.export import format_time
from workbench.engine.history.store import RunSummary, Store, StoreError
from workbench.engine.sanitize import clean

# Runs listed at most; the filters find older ones.
LIMIT = 500


def describe_run(run: RunSummary, width: int = 68) -> Text:
    """Two lines, each cut to ``width``: id, time, mode and the prompt's first
    line; then each model with how it ended."""
    first = Text()
    first.append(f"#{run.id:<4}", style="bold")
    first.append(f" {format_time(run.started_at, seconds=False)}  ")
    first.append(f"{clean(run.mode, max_len=4):<4}  ", style="italic")
    if run.source != "app":
        first.append(f"[{clean(run.source, max_len=8)}] ", style="dim")
    first.append(clean(run.title, max_len=200) or "(empty prompt)")
    second = Text("      ")
    ends = [f"{clean(model, max_len=40)} {state}" for model, state in
            zip(run.models, run.states, strict=False)]  # fmt: skip
    second.append(" · ".join(ends) or "no models", style="dim")
    if run.state != "finished":
        second.append(f"  ({run.state})", style="italic")
    for line in (first, second):
        line.truncate(width, overflow="ellipsis")
    return Text("\n").join((first, second))


class HistoryScreen(ModalScreen[int | None]):
    """The runs in the history, newest first.

    Typing in the first field finds text in prompts and completions; the
    second keeps runs with a model whose id starts with it (or whose name
    holds it). The list is read in a thread after each change. Enter
    dismisses with the highlighted run's id; F9 exports it and stays.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f3", "close", "Close"),
        Binding("f9", "export", "Export", show=False),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
        Binding("pagedown", "move(8)", show=False),
        Binding("pageup", "move(-8)", show=False),
    ]

    @dataclass
    class RunsListed(Message):
        """A listing finished (``error`` set if the history could not be read)."""

        seq: int
        runs: Sequence[RunSummary]
        error: str | None = None

    def __init__(self, store: Store, *, export: Callable[[int], object]) -> None:
        super().__init__()
        self.store = store
        self.export = export
        self.runs: list[RunSummary] = []
        self._seq = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="history-dialog", classes="dialog") as dialog:
            dialog.border_title = "History"
            with Horizontal(id="history-filters"):
                yield Input(id="history-search", compact=True,
                            placeholder="find text in prompts and completions")  # fmt: skip
                yield Input(id="history-model", compact=True, placeholder="model")
            yield OptionList(id="history-list", compact=True)
            yield Static("loading…", id="history-status", classes="dialog-hint")
            yield Static(
                "↑↓ choose · Enter open · F9 export · Tab next field · Esc close",
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#history-search", Input).focus()
        self.reload()

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#history-list", OptionList)

    # -- listing ------------------------------------------------------------------

    def reload(self) -> None:
        """List the runs matching the filters, in a thread."""
        self._seq += 1
        seq, store = self._seq, self.store
        search = self.query_one("#history-search", Input).value.strip() or None
        model = self.query_one("#history-model", Input).value.strip() or None

        def read() -> None:
            try:
                runs = store.list_runs(search=search, model=model, limit=LIMIT)
            except StoreError as exc:
                self.post_message(self.RunsListed(seq, [], error=str(exc)))
                return
            self.post_message(self.RunsListed(seq, runs))

        self.run_worker(read, name="list runs", group="history-list", thread=True,
                        exclusive=True, exit_on_error=False)  # fmt: skip

    def on_history_screen_runs_listed(self, message: RunsListed) -> None:
        message.stop()
        if message.seq != self._seq:
            return  # the filters changed since
        status = self.query_one("#history-status", Static)
        if message.error is not None:
            status.update(Text(clean(f"history: {message.error}", max_len=300)))
            return
        keep = self.selected
        self.runs = list(message.runs)
        olist = self.option_list
        olist.clear_options()
        width = olist.scrollable_content_region.width or 68
        olist.add_options([Option(describe_run(run, width), id=str(run.id)) for run in self.runs])
        if not self.runs:
            filtered = any(i.value.strip() for i in self.query(Input))
            olist.add_option(Option(Text("no run matches" if filtered else
                                         "no runs yet: Ctrl+R runs the prompt"),
                                    disabled=True))  # fmt: skip
            olist.highlighted = None
        else:
            ids = [run.id for run in self.runs]
            olist.highlighted = ids.index(keep) if keep in ids else 0
        count = len(self.runs)
        more = f" (the newest {LIMIT}; filter to find older ones)" if count >= LIMIT else ""
        status.update(Text(f"{count:,} run{'s' if count != 1 else ''}{more}"))

    @property
    def selected(self) -> int | None:
        """The highlighted run's id."""
        olist = self.option_list
        if olist.highlighted is None or not self.runs:
            return None
        option = olist.get_option_at_index(olist.highlighted)
        return int(option.id) if option.id is not None else None

    # -- keys -----------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._open(self.selected)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self._open(int(event.option.id))

    def _open(self, run_id: int | None) -> None:
        if run_id is None:
            self.notify("No run to open: change the filters", severity="warning")
            return
        self.dismiss(run_id)

    def action_move(self, step: int) -> None:
        olist = self.option_list
        for _ in range(abs(step)):
            if step > 0:
                olist.action_cursor_down()
            else:
                olist.action_cursor_up()

    def action_export(self) -> None:
        run_id = self.selected
        if run_id is None:
            self.notify("No run to export.", severity="warning")
            return
        self.export(run_id)

    def action_close(self) -> None:
        self.dismiss(None)
