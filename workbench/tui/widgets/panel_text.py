"""What a model panel says: its state, its header and its status lines.

Pure functions of the panel's state, kept apart from the widget that holds
that state (``panel.py``), so the wording has one place.
"""

from __future__ import annotations

from enum import StrEnum

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header
from workbench.engine.running.protocol import STOP_LABELS
from workbench.engine.sanitize import clean


class PanelState(StrEnum):
    """A panel's one state: its model opening, then idle or failed, then
    each run's steps and end. Compares equal to its text ("done")."""

    OPENING = "opening"
    IDLE = "idle"
    LOADING = "loading"
    READING = "reading prompt"
    GENERATING = "generating"
    DONE = "done"
    CANCELLED = "cancelled"
    ERROR = "error"
    REFUSED = "refused"


# The running states: these can be cancelled.
RUNNING = (PanelState.LOADING, PanelState.READING, PanelState.GENERATING)


def line(text: str) -> str:
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


def opening_header(open_error: str | None) -> Text:
    """The header while there is no runner: opening, or not available."""
    what = "model not available" if open_error else "opening…"
    return Text(f"{what}\n", style="italic")


def header(h: Header, n_ctx: int) -> Text:
    """Two lines: architecture, parameters, quant and size; kind and context."""
    first = " · ".join(line(x) for x in (h.arch, h.params, h.quant, h.size) if x)
    ctx = f"ctx {n_ctx:,}"
    if h.n_ctx_train:
        ctx += f" of {h.n_ctx_train:,}"
    second = " · ".join(x for x in (line(h.kind), ctx) if x)
    return Text(f"{first}\n{second}")


def status_details(
    state: PanelState, stats: p.Stats | None, message: str, notes: list[str]
) -> Text:
    """Under the state line: a finished run's figures, or the error, then notes."""
    details = Text()
    if state in (PanelState.DONE, PanelState.CANCELLED) and stats is not None:
        details.append(f"TTFT {stats.ttft_s:.2f}s · cached {stats.cached_tokens:,} tok\n")
        details.append(f"prompt {stats.prompt_tps:,.0f} tok/s · gen {stats.gen_tps:,.1f} tok/s")
    elif state in (PanelState.ERROR, PanelState.REFUSED) and message:
        details.append(clean(message.removeprefix(f"{state}: "), max_len=400))
    for note in notes:
        details.append(("\n" if details else "") + note, style="italic")
    return details


def state_line(
    state: PanelState, stop_reason: str | None, n_generated: int, has_text: bool
) -> Text:
    """One line: the state, then the stop reason and tokens, or a hint."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(state, style="bold")
    if state in (PanelState.DONE, PanelState.CANCELLED) and stop_reason:
        reason = STOP_LABELS.get(stop_reason, stop_reason)
        if reason != state:
            text.append(f" · {reason}")
    if state in (PanelState.GENERATING, PanelState.DONE, PanelState.CANCELLED) and n_generated:
        text.append(f" · {n_generated:,} tok")
    elif state == PanelState.CANCELLED and not has_text:
        text.append(" · before it started")
    elif state == PanelState.IDLE:
        text.append(" · Ctrl+R runs every panel", style="dim")
    return text
