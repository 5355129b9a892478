"""``workbench compare``: one prompt on several models, without the app.

On a terminal the completions stream side by side in columns; piped, the
columns are printed once at the end. ``--json`` prints one document for
scripts. Either way the exit status is 1 if any model failed, with its
message on stderr, and the other models' results are still printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from workbench.engine import protocol as p
from workbench.engine.backends.base import Runner
from workbench.engine.compare import Comparison, Job, Result
from workbench.engine.params import GenParams
from workbench.engine.recorder import Recorder
from workbench.engine.resources import physical_cores
from workbench.engine.sanitize import clean
from workbench.engine.store import open_store_or_none
from workbench.engine.tokens import REFERENCE_LABEL, reference_count


def _display(text: str) -> str:
    return clean(text, max_len=1 << 30, keep_newlines=True)


def _columns(runners: list[Runner], results: list[Result], states: list[str], tail: int | None):
    table = Table(expand=True, show_lines=False, box=None, padding=(0, 1))
    for r, state in zip(runners, states, strict=True):
        table.add_column(Text(f"{clean(r.header.title)} [{state}]", style="bold"), ratio=1)
    cells = []
    for res in results:
        body = _display(res.text)
        if tail is not None:
            body = "\n".join(body.splitlines()[-tail:])
        cell = Text(body)
        if res.error:
            cell.append(("\n" if body else "") + "error: " + clean(res.error, max_len=500), "red")
        cells.append(cell)
    table.add_row(*cells)
    return table


def stats_table(runners: list[Runner], results: list[Result]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    cols = ("model", "tok in", "cached", "TTFT", "in t/s", "out t/s", "tok out", "stop")
    for col in cols:
        table.add_column(
            col,
            justify="left" if col in ("model", "stop") else "right",
            no_wrap=True,
            max_width=24 if col == "model" else None,
        )
    for r, res in zip(runners, results, strict=True):
        s = res.stats
        if s is None:
            table.add_row(r.id, "", "", "", "", "", "", "error" if res.error else "")
            continue
        table.add_row(
            r.id,
            f"{s.prompt_tokens:,}",
            f"{s.cached_tokens:,}",
            f"{s.ttft_s:.2f}s",
            f"{s.prompt_tps:.1f}",
            f"{s.gen_tps:.1f}",
            f"{s.completion_tokens:,}",
            p.STOP_LABELS.get(res.stop_reason or "", res.stop_reason or ""),
        )
    return table


def run_compare(
    args: argparse.Namespace,
    settings: Any,
    params: GenParams,
    text: str,
    runners: list[Runner],
) -> int:
    prompt = p.Prompt(text, args.system, args.mode)
    threads = args.threads or settings.threads or physical_cores()
    schedule = args.schedule or settings.schedule
    states = ["waiting"] * len(runners)
    changed = threading.Event()
    recorder = Recorder(
        open_store_or_none(lambda msg: _warn(f"history off: {msg}")), source="cli", warn=_warn
    )

    def on_event(i: int, event: p.Event) -> None:
        recorder.on_event(i, event)
        if isinstance(event, p.Loaded):
            states[i] = "loaded"
        elif isinstance(event, p.PromptStarted):
            states[i] = "reading prompt"
        elif isinstance(event, p.Token):
            states[i] = "generating"
        elif isinstance(event, p.Done):
            states[i] = p.STOP_LABELS.get(event.stop_reason, "done")
        elif isinstance(event, p.Error):
            states[i] = "refused" if event.kind == "refused" else "error"
        changed.set()

    jobs = [Job(r, params) for r in runners]
    comparison = Comparison(
        jobs, prompt, schedule=schedule, total_threads=threads, on_event=on_event
    )
    recorder.start_comparison(comparison, params)
    console = Console(stderr=False)
    live = console.is_terminal and not args.json
    try:
        if live:
            worker = threading.Thread(target=comparison.run, daemon=True)
            worker.start()
            height = max(5, console.size.height - 6)
            with Live(console=console, refresh_per_second=8, transient=True) as view:
                while worker.is_alive():
                    changed.wait(0.25)
                    changed.clear()
                    view.update(_columns(runners, comparison.results, states, height))
                worker.join()
        else:
            comparison.run()
    except KeyboardInterrupt:
        comparison.cancel()
        recorder.finish(comparison.results, unfinished="cancelled")
        raise
    finally:
        for r in runners:
            r.close()
    results = comparison.results
    recorder.finish(results)

    failed = [(r, res) for r, res in zip(runners, results, strict=True) if res.error]
    for r, res in failed:
        print(f"workbench: {r.id}: {clean(res.error or '', max_len=2000)}", file=sys.stderr)
    if args.json:
        doc = _json_doc(args, prompt, params, schedule, threads, runners, results)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        console.print(Group(_columns(runners, results, states, None), Text()))
        console.print(stats_table(runners, results))
        for r, res in zip(runners, results, strict=True):
            for note in res.notes:
                console.print(Text(f"{r.id}: note: {clean(note, max_len=300)}", style="yellow"))
    if recorder.run_id is not None:
        print(f"saved as run {recorder.run_id}", file=sys.stderr)
    return 1 if failed else 0


def _warn(message: str) -> None:
    print(f"workbench: {clean(message, max_len=2000)}", file=sys.stderr)


def _json_doc(
    args: argparse.Namespace,
    prompt: p.Prompt,
    params: GenParams,
    schedule: str,
    threads: int,
    runners: list[Runner],
    results: list[Result],
) -> dict[str, Any]:
    models = []
    for r, res in zip(runners, results, strict=True):
        info = getattr(r, "info", None)
        models.append(
            {
                "id": r.id,
                "model": info.to_dict() if info is not None else {"title": r.header.title},
                "params": params.to_dict(),
                "n_ctx": r.n_ctx_for(params),
                "budget": res.budget.to_dict() if res.budget else None,
                "text": res.text,
                "stop_reason": res.stop_reason,
                "stats": res.stats.to_dict() if res.stats else None,
                "load": res.loaded.__dict__ if res.loaded else None,
                "error": res.error,
                "notes": res.notes,
            }
        )
    return {
        "prompt": prompt.text,
        "system": prompt.system,
        "mode": prompt.mode,
        "schedule": schedule,
        "threads": threads,
        "params": params.to_dict(),
        "reference": {"label": REFERENCE_LABEL, "tokens": reference_count(prompt.text)},
        "models": models,
    }
