"""Figure 4: the default pair under the ``parallel`` and ``sequential``
schedules (``compare.Comparison``, all cores), against the two bare loops
run one after the other with all cores each."""

from __future__ import annotations

import time

from benchmarks.common import TG_PROMPT, measured, median, ratio, rotated
from benchmarks.runners import greedy
from benchmarks.session import Figure, Row, Session
from workbench.engine.running import protocol as p
from workbench.engine.running.compare import Comparison, Job

MAX_TOKENS = 256
TOTAL_THREADS = 2
TOLERANCE = 0.03


def schedules(session: Session) -> Figure:
    reps = session.rounds or session.reps(5, 2)
    fig = Figure(4, f"Default pair, {MAX_TOKENS} tokens each: parallel vs sequential vs bare")
    params = greedy(MAX_TOKENS)
    ours = [session.ours(m) for m in session.models]
    bares = [session.bare(m) for m in session.models]
    walls: dict[str, list[float]] = {"parallel": [], "sequential": [], "bare_sum": []}
    tokens: dict[str, list[list[int]]] = {"parallel": [], "sequential": [], "bare_sum": []}
    seen: dict[str, list[float]] = {"parallel": [], "sequential": [], "bare_sum": []}

    def run_schedule(schedule: str) -> tuple[float, list[int]]:
        jobs = [Job(o.runner, params) for o in ours]
        comparison = Comparison(
            jobs, p.Prompt(TG_PROMPT, mode="raw"), schedule=schedule,  # type: ignore[arg-type]
            total_threads=TOTAL_THREADS,
        )  # fmt: skip
        start = time.perf_counter()
        results = comparison.run()
        wall = time.perf_counter() - start
        errors = [r.error for r in results if r.error]
        if errors:
            raise RuntimeError(f"{schedule}: {errors}")
        return wall, [r.stats.completion_tokens if r.stats else 0 for r in results]

    def run_bare() -> tuple[float, list[int]]:
        total = 0.0
        made = []
        for bare in bares:
            res = bare.generate(TG_PROMPT, MAX_TOKENS, TOTAL_THREADS)
            total += res["wall_s"]
            made.append(res["n_gen"])
        return total, made

    def run(name: str) -> tuple[float, list[int]]:
        return run_bare() if name == "bare_sum" else run_schedule(name)

    for name in walls:  # one untimed pass of each: thread pools and caches warm
        run(name)
    for rep in range(reps):
        for name in rotated(list(walls), rep):
            (wall, made), interference = measured(session.quiet, run, name, tries=3)
            walls[name].append(wall)
            tokens[name].append(made)
            seen[name].append(interference)

    par, seq, bare = (median(walls[k]) for k in ("parallel", "sequential", "bare_sum"))
    r_ps = ratio(par, seq)
    # Per-repetition ratios: each pair was measured within seconds of each other.
    paired = [a / b for a, b in zip(walls["parallel"], walls["sequential"], strict=True)]
    faster = "parallel" if par < seq else "sequential"
    margin = abs(1 - r_ps) * 100
    fig.data = {
        "reps": reps,
        "max_tokens": MAX_TOKENS,
        "total_threads": TOTAL_THREADS,
        "median_wall_s": {"parallel": par, "sequential": seq, "bare_sum": bare},
        "walls_s": walls,
        "completion_tokens": tokens,
        "interference_cores": seen,
        "parallel_over_sequential": r_ps,
        "parallel_over_sequential_paired_median": median(paired),
        "parallel_over_bare": ratio(par, bare),
        "sequential_over_bare": ratio(seq, bare),
        "faster": faster,
        "faster_by_percent": margin,
    }
    fig.rows.append(
        Row(
            "parallel / sequential",
            f"{r_ps:.3f} ({par:.2f} s / {seq:.2f} s)",
            f"<= {1 + TOLERANCE:.2f}",
            r_ps <= 1 + TOLERANCE,
        )
    )
    fig.rows.append(
        Row("sequential / bare sum", f"{ratio(seq, bare):.3f} (bare {bare:.2f} s)", "info", None)
    )
    fig.rows.append(Row("parallel / bare sum", f"{ratio(par, bare):.3f}", "info", None))
    fig.rows.append(
        Row(
            "faster schedule",
            f"{faster}, by {margin:.1f}% (median of {reps})",
            "default schedule",
            None,
        )
    )
    return fig
