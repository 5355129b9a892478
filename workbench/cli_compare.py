"""``workbench compare``: one prompt on several models, without the app.

On a terminal the completions stream side by side in columns; piped, the
columns are printed once at the end. ``--json`` prints one document for
scripts. Either way the exit status is 1 if any model failed, with its
message on stderr, and the other models' results are still printed.

A panel is one model, or one variant of it: ``--sweep temperature=0,0.7``
runs a panel per value, and ``--template NAME --shots 0,1,3`` a panel per
few-shot variant. With several models every model gets every variant. Each
panel has a runner of its own (panels run at the same time), so N panels of
one local model load it N times.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from workbench.engine.history.recorder import Recorder
from workbench.engine.history.store import open_store_or_none
from workbench.engine.prompts import plan
from workbench.engine.prompts.sweep import parse_sweep
from workbench.engine.prompts.tokens import REFERENCE_LABEL, reference_count
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner
from workbench.engine.running.backends.variant import VariantRunner
from workbench.engine.running.compare import Comparison, Job, Result
from workbench.engine.running.params import GenParams
from workbench.engine.running.resources import physical_cores
from workbench.engine.sanitize import clean

MAX_PANELS = 16
"""Most panels in one comparison (each is a model process of its own)."""


def _display(text: str) -> str:
    return clean(text, max_len=1 << 30, keep_newlines=True)


def _name(r: Runner) -> str:
    """A panel's model id, with its variant on a second line."""
    return f"{r.id}\n{r.label}" if isinstance(r, VariantRunner) else r.id


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
            table.add_row(_name(r), "", "", "", "", "", "", "error" if res.error else "")
            continue
        table.add_row(
            _name(r),
            f"{s.prompt_tokens:,}",
            f"{s.cached_tokens:,}",
            f"{s.ttft_s:.2f}s",
            f"{s.prompt_tps:.1f}",
            f"{s.gen_tps:.1f}",
            f"{s.completion_tokens:,}",
            p.STOP_LABELS.get(res.stop_reason or "", res.stop_reason or ""),
        )
    return table


class _Plan:
    """The panels of one compare command: prompts, settings and their labels."""

    def __init__(self, args: argparse.Namespace, params: GenParams, text: str | None) -> None:
        self.template: dict[str, Any] | None = None
        self.sweep: dict[str, Any] | None = None
        self.prompts: list[tuple[str, p.Prompt]] = self._prompts(args, text)
        self.sweep_variants: list[plan.Variant] = []
        if args.sweep:
            self.sweep_variants = plan.sweep_variants(params, args.sweep)
            name, values = parse_sweep(args.sweep)
            self.sweep = {"setting": name, "values": values}

    def _prompts(self, args: argparse.Namespace, text: str | None) -> list[tuple[str, p.Prompt]]:
        mode = args.mode if args.mode in ("chat", "raw") else None
        if not args.template:
            if args.shots or args.values:
                raise SystemExit("workbench: --shots and --set go with --template NAME")
            return [("", p.Prompt(text or "", args.system, mode or "chat"))]
        from workbench.engine.prompts import templates as t

        # A TemplateError reaches the user through ``cli.main``.
        template = t.load_template(args.template)
        values = t.parse_assignments(args.values)
        if text is not None:
            values.setdefault("input", text)
        shots = t.parse_shots(args.shots) if args.shots else None
        system = args.system or None
        if shots is not None and len(shots) > 1:
            prompts = template.variants(values, shots, mode=mode, system=system)
        else:
            one = shots[0] if shots else None
            prompts = [("", template.prompt(values, one, mode=mode, system=system))]
        self.template = {"name": template.name, "shots": shots, "values": template.values(values)}
        return prompts

    def panels(self, refs: Sequence[str]) -> list[plan.PanelSpec]:
        """Every panel: each model with each prompt variant and sweep value. A
        single prompt is the comparison's own, so it gives no panel a prompt."""
        prompt_variants = plan.template_variants(self.prompts) if len(self.prompts) > 1 else []
        out = plan.expand(refs, prompt_variants, self.sweep_variants)
        if len(out) > MAX_PANELS:
            raise SystemExit(
                f"workbench: {len(out)} panels ({len(refs)} models x {len(self.prompts)} prompts "
                f"x {len(self.sweep_variants) or 1} settings); at most {MAX_PANELS}"
            )
        return out


def run_compare(
    args: argparse.Namespace,
    settings: Any,
    params: GenParams,
    text: str | None,
    refs: Sequence[str],
    make_runners: Callable[[list[str]], list[Runner]],
) -> int:
    planned = _Plan(args, params, text)
    panels = planned.panels(refs)
    runners: list[Runner] = []
    for spec, runner in zip(panels, make_runners([spec.ref for spec in panels]), strict=True):
        runners.append(VariantRunner(runner, spec.label, spec.prompt) if spec.label else runner)
    copies = {ref: n for ref in refs if (n := sum(spec.ref == ref for spec in panels)) > 1}
    for ref, n in copies.items():
        if any(r.id == ref and r.uses_local_cpu for r in runners):
            _warn(f"{ref}: {n} panels load the model {n} times (one process each)")
    prompt = planned.prompts[0][1]
    threads = args.threads or settings.threads or physical_cores()
    schedule = args.schedule or settings.schedule
    states = ["waiting"] * len(runners)
    changed = threading.Event()
    recorder = Recorder(
        open_store_or_none(lambda msg: _warn(f"history off: {msg}")), source="cli", warn=_warn
    )
    probabilities: list[list[p.Token]] = [[] for _ in runners]
    settings_of = [spec.params(params) for spec in panels]
    measured = [gp.logprobs > 0 for gp in settings_of]

    def on_event(i: int, event: p.Event) -> None:
        recorder.on_event(i, event)
        if isinstance(event, p.Loaded):
            states[i] = "loaded"
        elif isinstance(event, p.PromptStarted):
            states[i] = "reading prompt"
        elif isinstance(event, p.Token):
            states[i] = "generating"
            if measured[i]:
                probabilities[i].append(event)
        elif isinstance(event, p.Done):
            states[i] = p.STOP_LABELS.get(event.stop_reason, "done")
        elif isinstance(event, p.Error):
            states[i] = "refused" if event.kind == "refused" else "error"
        changed.set()

    jobs = [Job(r, gp) for r, gp in zip(runners, settings_of, strict=True)]
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
        name = _name(r).replace("\n", " · ")
        print(f"workbench: {name}: {clean(res.error or '', max_len=2000)}", file=sys.stderr)
    if args.json:
        doc = _json_doc(prompt, params, schedule, threads, jobs, results, probabilities)
        if planned.template is not None:
            doc["template"] = planned.template
        if planned.sweep is not None:
            doc["sweep"] = planned.sweep
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        console.print(Group(_columns(runners, results, states, None), Text()))
        console.print(stats_table(runners, results))
        for r, res in zip(runners, results, strict=True):
            for note in res.notes:
                console.print(Text(f"{r.id}: note: {clean(note, max_len=300)}", style="yellow"))
        if any(job.params.logprobs for job in jobs):
            _warn("token probabilities are in the --json output")
    if recorder.run_id is not None:
        print(f"saved as run {recorder.run_id}", file=sys.stderr)
    return 1 if failed else 0


def _warn(message: str) -> None:
    print(f"workbench: {clean(message, max_len=2000)}", file=sys.stderr)


def _json_doc(
    prompt: p.Prompt,
    params: GenParams,
    schedule: str,
    threads: int,
    jobs: list[Job],
    results: list[Result],
    probabilities: list[list[p.Token]],
) -> dict[str, Any]:
    models = []
    for job, res, tokens in zip(jobs, results, probabilities, strict=True):
        r = job.runner
        info = getattr(r, "info", None)
        entry: dict[str, Any] = {
            "id": r.id,
            "variant": r.label if isinstance(r, VariantRunner) else None,
            "model": info.to_dict() if info is not None else {"title": r.header.title},
            "params": job.params.to_dict(),
            "n_ctx": r.n_ctx_for(job.params),
            "budget": res.budget.to_dict() if res.budget else None,
            "text": res.text,
            "stop_reason": res.stop_reason,
            "stats": res.stats.to_dict() if res.stats else None,
            "load": res.loaded.__dict__ if res.loaded else None,
            "error": res.error,
            "notes": res.notes,
        }
        if isinstance(r, VariantRunner) and r.prompt is not None:
            entry["prompt"] = {"text": r.prompt.text, "system": r.prompt.system,
                               "mode": r.prompt.mode}  # fmt: skip
        if job.params.logprobs:
            entry["logprobs"] = [
                {
                    "text": t.text,
                    "logprob": t.logprob,
                    "top": [{"text": text, "logprob": lp} for text, lp in t.top or ()],
                }
                for t in tokens
            ]
        models.append(entry)
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
