"""A stored run as a Markdown report or a JSON document.

The JSON document holds the whole run, unchanged: ``from_json(to_json(run))``
equals ``run``, and ``Store.import_run`` stores it again. The Markdown report
is for people (and GitHub): model output and metadata are passed through
``sanitize.clean`` and put in fences longer than any run of backticks they
contain, so nothing in them can end a block or format the page.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from workbench.engine.history.store import Panel, Run, first_line
from workbench.engine.running.protocol import STOP_LABELS
from workbench.engine.sanitize import clean

FORMAT = "workbench-run"
FORMAT_VERSION = 1


_BIG = 1 << 30


# -- JSON ---------------------------------------------------------------------


def to_json(run: Run) -> str:
    """The whole run as one JSON document."""
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "run": run.to_dict()}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def from_json(text: str | bytes) -> Run:
    """Parse ``to_json`` output; ValueError says what is wrong with it."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} document")
    version = doc.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{FORMAT} version {version!r} is newer than this workbench reads")
    return Run.from_dict(doc.get("run"))


# -- shared labels --------------------------------------------------------------


def format_time(ts: float | None, *, seconds: bool = True) -> str:
    """Local time with the offset from UTC, e.g. "2025-01-31 14:03:05 +0100"."""
    if ts is None:
        return "-"
    fmt = "%Y-%m-%d %H:%M:%S %z" if seconds else "%Y-%m-%d %H:%M"
    return datetime.fromtimestamp(ts).astimezone().strftime(fmt)


def state_label(panel: Panel) -> str:
    """How a panel ended: "done (max tokens)", "error", "interrupted", ..."""
    if panel.state == "done" and panel.stop_reason:
        return f"done ({STOP_LABELS.get(panel.stop_reason, panel.stop_reason)})"
    return panel.state


def settings_text(params: dict[str, Any]) -> str:
    """Settings on one line: "max_tokens=8 temperature=0.0 stop=['\\n']"."""
    return " ".join(
        f"{k}={v!r}" if isinstance(v, str | list) else f"{k}={v}" for k, v in params.items()
    )


def stats_cells(panel: Panel) -> dict[str, str]:
    """The figures of a panel as display strings ("" where unknown)."""
    s = panel.stats
    ctx = (s.n_ctx if s and s.n_ctx else None) or panel.n_ctx
    return {
        "ctx": f"{ctx:,}" if ctx else "",
        "ttft": f"{s.ttft_s:.2f} s" if s and s.completion_tokens else "",
        "prompt_tps": f"{s.prompt_tps:.1f}" if s and s.prompt_tokens else "",
        "gen_tps": f"{s.gen_tps:.1f}" if s and s.completion_tokens else "",
        "tokens": f"{s.completion_tokens:,}" if s else "",
    }


# -- Markdown -------------------------------------------------------------------


def fence(text: str, info: str = "") -> str:
    """A fenced code block that ``text`` cannot close: longer than its backtick runs."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    marks = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{marks}{info}\n{body}{marks}\n"


_CELL_SPECIAL = re.compile(r"([\\|*_`<>\[\]#~])")


def _cell(text: str) -> str:
    """Text safe inside a table cell: one line, Markdown characters escaped."""
    return _CELL_SPECIAL.sub(r"\\\1", clean(text, max_len=200))


def _inline(text: str) -> str:
    return _CELL_SPECIAL.sub(r"\\\1", clean(text, max_len=500))


def _body(text: str) -> str:
    return clean(text, max_len=_BIG, keep_newlines=True)


def to_markdown(run: Run) -> str:
    """A report for people: prompt, settings, a table of models, the completions."""
    out: list[str] = []
    title = f"Run {run.id}" if run.id is not None else "Run"
    out.append(f"# {title}: {_inline(first_line(run.prompt, 80)) or 'empty prompt'}\n")
    when = f"Started {format_time(run.started_at)}"
    if run.finished_at is not None:
        when += f", {run.state} after {run.finished_at - run.started_at:.1f} s"
    else:
        when += f", {run.state}"
    out.append(
        f"{when}. Mode **{run.mode}**, {run.schedule} schedule, "
        f"{run.threads} thread{'s' if run.threads != 1 else ''}, from the {run.source}.\n"
    )
    if run.note:
        out.append(f"> {_inline(run.note)}\n")

    out.append("## Prompt\n")
    out.append(fence(_body(run.prompt), "text"))
    out.append("## System prompt\n")
    out.append(fence(_body(run.system), "text") if run.system else "*(none)*\n")

    out.append("## Settings\n")
    out.append("| setting | value |\n|---|---|")
    for key, value in run.params.items():
        out.append(f"| {_cell(key)} | {_cell(_value(value))} |")
    out.append("")

    out.append("## Models\n")
    cols = ("#", "model", "arch", "params", "quant", "ctx", "TTFT", "prompt tok/s",
            "gen tok/s", "tokens", "stop / state")  # fmt: skip
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "|".join("---:" if c not in ("model", "arch", "quant", "stop / state")
                              else "---" for c in cols) + "|")  # fmt: skip
    for panel in run.panels:
        m, cells = panel.model, stats_cells(panel)
        row = (
            str(panel.position + 1),
            _cell(f"{m.title} ({m.id})" if m.title != m.id else m.id),
            _cell(m.architecture),
            _cell(m.params_label),
            _cell(m.quant),
            cells["ctx"],
            cells["ttft"],
            cells["prompt_tps"],
            cells["gen_tps"],
            cells["tokens"],
            _cell(state_label(panel)),
        )
        out.append("| " + " | ".join(row) + " |")
    out.append("")

    out.append("## Completions\n")
    for panel in run.panels:
        m = panel.model
        out.append(f"### {panel.position + 1}. {_inline(m.title)}\n")
        facts = [f"`{clean(m.id)}`", state_label(panel)]
        if m.sha256:
            facts.append(f"sha256 `{m.sha256[:16]}…`")
        if panel.overrides:
            facts.append("own settings: " + _inline(settings_text(panel.overrides)))
        out.append(" · ".join(facts) + "\n")
        if panel.error:
            out.append(f"**Error:** {_inline(panel.error)}\n")
        for note in panel.notes:
            out.append(f"*Note:* {_inline(note)}\n")
        out.append(fence(_body(panel.text)) if panel.text else "*(no text)*\n")
    return "\n".join(out)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(repr(v) for v in value) if value else "(none)"
    return str(value)
