"""``workbench history``, ``show`` and ``export``: the runs kept in the history.

Every string that came from a user or a model is passed through
``sanitize.clean`` before it reaches the terminal; ``export --format json``
keeps the text exactly (JSON escapes control characters).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.engine.sanitize import clean

if TYPE_CHECKING:
    from workbench.engine.history.store import Run, Store

_BIG = 1 << 30


def add_parsers(sub: Any) -> None:
    """Add the history commands to the ``workbench`` subcommand parser."""
    history = sub.add_parser("history", help="list past runs, newest first")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs")
    history.add_argument(
        "--search", metavar="TEXT", help="only runs whose prompt or completions contain TEXT"
    )
    history.add_argument(
        "--model", metavar="ID", help="only runs with this model (id prefix or part of its name)"
    )

    show = sub.add_parser("show", help="everything about one run")
    show.add_argument("run", metavar="RUN", help="a run id from `workbench history`, or 'last'")

    export = sub.add_parser("export", help="one run as a Markdown report or a JSON document")
    export.add_argument("run", metavar="RUN", help="a run id, or 'last'")
    export.add_argument("--format", choices=("md", "json"), default="md")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")


def _fail(message: str) -> SystemExit:
    return SystemExit(f"workbench: {clean(message, max_len=2000)}")


def _open() -> Store:
    from workbench.engine.history.store import Store, StoreError

    try:
        return Store.open()
    except StoreError as exc:
        raise _fail(f"history: {exc}") from None


def _find(store: Store, ref: str) -> Run:
    from workbench.engine.history.store import StoreError

    try:
        if ref in ("last", "latest"):
            run_id = store.latest_run_id()
            if run_id is None:
                raise _fail("the history is empty")
        elif ref.isdigit():
            run_id = int(ref)
        else:
            raise _fail(f"RUN must be a run id or 'last', not {ref!r}")
        run = store.get_run(run_id)
    except StoreError as exc:
        raise _fail(f"history: {exc}") from None
    if run is None:
        raise _fail(f"no run {run_id} in the history (see `workbench history`)")
    return run


def _iso(ts: float | None) -> str | None:
    return (
        None
        if ts is None
        else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
    )


def cmd_history(args: argparse.Namespace) -> int:
    from workbench.engine.history.store import StoreError

    if args.limit < 1:
        raise _fail("--limit must be at least 1")
    with _open() as store:
        try:
            runs = store.list_runs(search=args.search, model=args.model, limit=args.limit)
        except StoreError as exc:
            raise _fail(f"history: {exc}") from None
    if args.json:
        rows = [
            {
                "id": r.id,
                "started_at": _iso(r.started_at),
                "finished_at": _iso(r.finished_at),
                "state": r.state,
                "source": r.source,
                "mode": r.mode,
                "prompt": r.title,
                "models": r.models,
                "states": r.states,
            }
            for r in runs
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not runs:
        print("No runs" + (" match." if args.search or args.model else " yet."), file=sys.stderr)
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from workbench.engine.history.export import format_time

    # Rich would squeeze every column on a narrow terminal; the short ones
    # keep their width here and the models and the prompt share the rest.
    console = Console()
    states = [", ".join(r.states) for r in runs]
    models = [clean(", ".join(r.models), max_len=300) for r in runs]
    titles = [clean(r.title) for r in runs]
    fixed = [max(2, *(len(str(r.id)) for r in runs)), 16, 4, max(6, *map(len, states))]
    flex = max(24, console.width - sum(fixed) - 2 * 5)
    models_w = min(max(6, *map(len, models)), max(10, flex // 3))
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("id", justify="right", no_wrap=True, width=fixed[0])
    table.add_column("time", no_wrap=True, width=fixed[1])
    table.add_column("mode", no_wrap=True, width=fixed[2])
    table.add_column("models", no_wrap=True, overflow="ellipsis", width=models_w)
    prompt_w = min(max(6, *map(len, titles)), flex - models_w)
    table.add_column("prompt", no_wrap=True, overflow="ellipsis", width=prompt_w)
    table.add_column("states", no_wrap=True, width=fixed[3])
    for r, state, model_list, title in zip(runs, states, models, titles, strict=True):
        table.add_row(
            str(r.id),
            format_time(r.started_at, seconds=False),
            r.mode,
            Text(model_list),
            Text(title),
            Text(state),
        )
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _open() as store:
        run = _find(store, args.run)
    for line in show_lines(run):
        print(line)
    return 0


def show_lines(run: Run) -> list[str]:
    """Everything about one run, as lines of safe text."""
    from workbench.engine.history.export import format_time, settings_text, state_label, stats_cells
    from workbench.engine.models.modelinfo import format_bytes

    def c(text: str, max_len: int = 500) -> str:
        return clean(text, max_len=max_len)

    lines = [f"Run {run.id} · {run.state} · from the {c(run.source)}"]
    started = format_time(run.started_at)
    if run.finished_at is not None:
        took = run.finished_at - run.started_at
        lines.append(f"started {started}, ended {format_time(run.finished_at)} ({took:.1f} s)")
    else:
        lines.append(f"started {started}")
    threads = f"{run.threads} thread" + ("s" if run.threads != 1 else "")
    lines.append(f"mode {c(run.mode)} · schedule {c(run.schedule)} · {threads}")
    lines.append(f"settings {c(settings_text(run.params), 2000)}")
    if run.note:
        lines.append(f"note {c(run.note, 2000)}")
    lines.append("")
    if run.system:
        lines += ["System prompt:", _block(run.system), ""]
    lines += ["Prompt:", _block(run.prompt), ""]
    for panel in run.panels:
        m = panel.model
        name = c(m.title) + (f" ({c(m.id)})" if m.title != m.id else "")
        lines.append(f"[{panel.position + 1}] {name}: {state_label(panel)}")
        trained = f"trained ctx {m.n_ctx_train:,}" if m.n_ctx_train else "trained ctx ?"
        kind = f" · {c(m.kind)}" if m.kind else ""
        lines.append(
            f"    model  {c(m.architecture)} · {c(m.params_label)} · {c(m.quant)} · {trained}{kind}"
        )
        if m.path:
            size = f" ({format_bytes(m.size)})" if m.size is not None else ""
            lines.append(f"    file   {c(m.path, 1000)}{size}")
        if m.sha256:
            lines.append(f"    sha256 {c(m.sha256)}")
        elif m.fingerprint:
            lines.append(f"    fingerprint {c(m.fingerprint)} (size, first and last MiB)")
        cells = stats_cells(panel)
        figures = [f"ctx {cells['ctx'] or '?'}"]
        s = panel.stats
        if s is not None:
            figures += [
                f"prompt {s.prompt_tokens:,} tokens ({s.cached_tokens:,} cached)",
                f"TTFT {cells['ttft'] or '-'}",
                f"prompt {cells['prompt_tps'] or '-'} tok/s",
                f"gen {cells['gen_tps'] or '-'} tok/s",
                f"{s.completion_tokens:,} tokens in {s.total_s:.2f} s",
            ]
            if s.load_s:
                figures.append(f"load {s.load_s:.2f} s")
        lines.append("    " + " · ".join(figures))
        if panel.overrides:
            lines.append(f"    own settings {c(settings_text(panel.overrides), 2000)}")
        if panel.error:
            lines.append(f"    error: {c(panel.error, 2000)}")
        for note in panel.notes:
            lines.append(f"    note: {c(note)}")
        lines += [_block(panel.text) if panel.text else "    (no text)", ""]
    return lines


def _block(text: str) -> str:
    body = clean(text, max_len=_BIG, keep_newlines=True).rstrip("\n")
    return "\n".join("    " + line if line else "" for line in body.split("\n"))


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.engine.history import export

    with _open() as store:
        run = _find(store, args.run)
    render: Callable[[Any], str] = export.to_json if args.format == "json" else export.to_markdown
    text = render(run)
    if args.output:
        path = Path(args.output).expanduser()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot write {path} ({exc.strerror or exc})") from None
        print(f"wrote run {run.id} to {clean(str(path), max_len=1000)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "history": cmd_history,
    "show": cmd_show,
    "export": cmd_export,
}
