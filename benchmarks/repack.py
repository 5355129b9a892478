"""Figure 12: what llama.cpp's weight repacking is worth, on and off.

``cpu_repack = "auto"`` turns repacking off on CPUs with AMX (where
llama.cpp's repacked AMX kernels crash) and on elsewhere; this figure is
the measurement behind "on elsewhere". Native llama-bench runs both
settings in one invocation (``--repack 0,1``), alternating which goes first
from round to round, at all cores; the ratio on/off is taken per round and
its median reported. On a CPU with AMX it uses the llama-bench built
without AMX kernels (``make bench-native`` builds it there), which repacks
exactly as on a CPU without AMX with the same vector extensions.
"""

from __future__ import annotations

import statistics

from benchmarks import native as native_build
from benchmarks.llamabench import LlamaBench
from benchmarks.session import Figure, Row, Session
from benchmarks.throughput import PP, TG
from workbench.engine.running.cpu import this_cpu
from workbench.engine.running.resources import physical_cores

TITLE = "Weight repacking on vs off (native llama-bench)"


def repack(session: Session) -> Figure:
    fig = Figure(12, TITLE)
    cpu = this_cpu()
    if cpu.amx:
        binary = native_build.find_noamx_bench()
        how = "llama-bench built without AMX kernels (this CPU has AMX)"
    else:
        binary = native_build.find_llama_bench()
        how = "native llama-bench"
    if binary is None:
        fig.rows.append(Row("repack on/off", "not measured", "info", None, status="no native"))
        fig.notes.append(f"{how} is not built: run `make bench-native`")
        return fig
    bench = LlamaBench(binary)
    threads = physical_cores()
    rounds = session.rounds or session.reps(4, 2)
    fig.notes.append(f"{how}, {threads} threads, {rounds} rounds, order alternating")
    for model in session.models:
        ratios: dict[str, list[float]] = {f"tg{TG}": [], f"pp{PP}": []}
        speeds: dict[tuple[str, bool], list[float]] = {}
        for r in range(rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            session.quiet.wait()
            results = bench.run(model.path, threads, n_prompt=PP, n_gen=TG, reps=2, repack=order)
            by = {(res.test, res.repack): res.tps for res in results}
            for test, out in ratios.items():
                out.append(by[(test, True)] / by[(test, False)])
                for on in (True, False):
                    speeds.setdefault((test, on), []).append(by[(test, on)])
        for test, values in ratios.items():
            on = statistics.median(speeds[(test, True)])
            off = statistics.median(speeds[(test, False)])
            fig.rows.append(
                Row(
                    f"{model.key} {test} on/off",
                    f"{statistics.median(values):.2f} ({on:.0f} vs {off:.0f} tok/s)",
                    "info",
                    None,
                )
            )
            fig.data[f"{model.key}/{test}"] = {"ratios": values, "on": on, "off": off}
    return fig
