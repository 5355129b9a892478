"""``python -m benchmarks [--quick] [--only N,M] [--output PATH]``

Runs the figures, prints a table (figure, value, target, pass/fail) and
writes every number, with a description of the machine, to
``benchmarks/results.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import native as native_build
from benchmarks.common import ROOT, default_models, machine, rounded
from benchmarks.llamabench import LlamaBench
from benchmarks.session import Figure, Row, Session

ALL = tuple(range(1, 13))
TITLES = {
    1: "Decode throughput (tg128) vs native",
    2: "Prompt throughput (pp512) vs native",
    3: "No growth per token",
    4: "Schedules: parallel vs sequential",
    5: "Key press to screen, two panels streaming",
    6: "Token meters after typing (~4,000 tokens)",
    7: "Start-up",
    8: "GGUF metadata",
    9: "Memory",
    10: "Rerun time to first token",
    11: "Next-token probabilities: cost",
    12: "Weight repacking on vs off",
}


def parse_only(text: str | None) -> list[int]:
    if not text:
        return list(ALL)
    picked = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    bad = [n for n in picked if n not in ALL]
    if bad:
        raise SystemExit(f"no figure {bad[0]}: figures are 1-12")
    return picked


def tui_problem() -> str | None:
    """None if the app can be driven; else why its figures are pending."""
    try:
        from workbench.tui.app import make_app
    except Exception as exc:  # the app is optional for this suite
        return f"the app does not import ({type(exc).__name__}: {exc})"
    try:
        make_app(models=[], prompt="")
    except Exception as exc:
        return f"make_app failed ({type(exc).__name__}: {exc})"
    return None


def tui_figure(number: int, session: Session, problem: str | None) -> Figure:
    what = "keys" if number == 5 else "meter"
    fig = Figure(number, TITLES[number])
    target_ms = 50 if number == 5 else 300
    label = "key to screen, streaming" if number == 5 else "last key to both meters"
    if problem is not None:
        fig.rows.append(Row(label, "pending", f"p95 < {target_ms} ms", None, status="pending"))
        fig.notes.append(problem)
        return fig
    samples = session.reps(60, 25) if number == 5 else session.reps(30, 10)
    session.quiet.wait()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.tuiprobe", what, "--samples", str(samples)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        fig.rows.append(Row(label, "probe failed", f"p95 < {target_ms} ms", None, status="pending"))
        fig.notes.append(proc.stderr.strip()[-800:])
        return fig
    data = json.loads(proc.stdout)
    fig.data = data
    main = data["streaming"] if number == 5 else data["after"]
    p95 = main["p95_ms"]
    fig.rows.append(
        Row(
            label,
            f"p50 {main['p50_ms']:.0f} ms, p95 {p95:.0f} ms (n={main['n']})",
            f"p95 < {target_ms} ms",
            p95 is not None and p95 < target_ms,
        )
    )
    if number == 5:
        idle = data["idle"]
        fig.rows.append(
            Row(
                "key to screen, idle",
                f"p50 {idle['p50_ms']:.0f} ms, p95 {idle['p95_ms']:.0f} ms (n={idle['n']})",
                "info",
                None,
            )
        )
    return fig


def run_figures(numbers: list[int], session: Session) -> list[Figure]:
    from benchmarks import misc, repack, schedule, throughput

    figures: list[Figure] = []
    problem = tui_problem() if {5, 6, 7} & set(numbers) else None

    def timed(fn: Callable[[], list[Figure]]) -> None:
        start = time.perf_counter()
        try:
            out = fn()
        except Exception as exc:
            traceback.print_exc()
            out = [Figure(0, f"error: {type(exc).__name__}: {exc}")]
        seconds = time.perf_counter() - start
        for fig in out:
            fig.seconds = seconds / max(1, len(out))
            figures.append(fig)
            for row in fig.rows:
                print(f"  [{fig.number}] {row.name}: {row.value} ({row.verdict})", flush=True)

    want = set(numbers)
    plan: list[tuple[set[int], Callable[[], list[Figure]]]] = [
        ({8}, lambda: [misc.metadata(session)]),
        ({7}, lambda: [misc.startup(session, problem)]),
        ({1, 2}, lambda: throughput.throughput(session, 1 in want, 2 in want)),
        ({4}, lambda: [schedule.schedules(session)]),
        ({10}, lambda: [throughput.rerun(session)]),
        ({3}, lambda: [throughput.growth(session)]),
        ({11}, lambda: [throughput.logprobs_cost(session)]),
        ({12}, lambda: [repack.repack(session)]),
        ({9}, lambda: [misc.memory(session)]),
        ({5}, lambda: [tui_figure(5, session, problem)]),
        ({6}, lambda: [tui_figure(6, session, problem)]),
    ]
    for needs, fn in plan:
        if needs & want:
            if needs & {5, 6, 9}:
                session.close()  # the app and the probe start their own workers
            print(f"figure {', '.join(map(str, sorted(needs & want)))}...", flush=True)
            timed(fn)
    return sorted(figures, key=lambda f: f.number)


def table(figures: list[Figure]) -> str:
    rows = [("fig", "measure", "value", "target", "result")]
    for fig in figures:
        for row in fig.rows:
            rows.append((str(fig.number), row.name, row.value, row.target, row.verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", metavar="N,M", help="run only these figures (1-12)")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds for figures 1, 2 and 4 (default 5)"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    numbers = parse_only(args.only)
    started = time.perf_counter()

    binary = native_build.find_llama_bench()
    problem = None
    if binary is None:
        problem = "llama-bench is not built"
        if {1, 2} & set(numbers):
            print("Native llama-bench is missing: figures 1 and 2 report our numbers and the bare"
                  " loop's only. Build it with `make bench-native`.", flush=True)  # fmt: skip
    desc = machine()
    print(f"{desc['cpu']}, {desc['physical_cores']} cores, Python {desc['python']}, "
          f"llama-cpp-python {desc['llama_cpp_python']}, load {desc['loadavg_at_start']}",
          flush=True)  # fmt: skip
    models = default_models()
    session = Session(
        models,
        quick=args.quick,
        rounds=args.rounds,
        native=LlamaBench(binary) if binary else None,
        native_problem=problem,
    )
    try:
        figures = run_figures(numbers, session)
    finally:
        session.close()

    print()
    print(table(figures))
    notes = [(f.number, n) for f in figures for n in f.notes]
    if notes:
        print()
        for number, note in notes:
            print(f"  note [{number}]: {note}")
    failed = [r for f in figures for r in f.rows if r.ok is False]
    total = time.perf_counter() - started
    doc: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "quick": args.quick,
        "machine": desc,
        "native": {
            "llama_bench": str(binary) if binary else None,
            "build": native_build.build_info() if binary else None,
            "problem": problem,
        },
        "models": {m.key: {"path": str(m.path), "size": m.size} for m in models},
        "quiet": session.quiet.summary(),
        "seconds": total,
        "figures": {
            str(f.number): {
                "title": f.title,
                "rows": [
                    {"name": r.name, "value": r.value, "target": r.target, "result": r.verdict}
                    for r in f.rows
                ],
                "data": f.data,
                "notes": f.notes,
                "seconds": f.seconds,
            }
            for f in figures
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rounded(doc), indent=2) + "\n")
    print(f"\n{len(failed)} target(s) missed; {total / 60:.1f} min; wrote {args.output}")
    quiet = session.quiet.summary()
    if quiet["samples_kept_despite_interference"] or quiet["started_busy"]:
        print(f"warning: other work ran during {quiet['samples_kept_despite_interference']} "
              f"sample(s) even after retries (median {quiet['interference_cores_median']} "
              "cores): re-run when the machine is quiet", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
