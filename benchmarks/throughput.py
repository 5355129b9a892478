"""Figures 1-3 and 10: decode and prompt throughput against native
llama-bench and the bare ``Llama.generate()`` loop, growth per token, and
time to first token of a rerun."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.common import (
    CLEAN,
    TG_PROMPT,
    BenchModel,
    filler_text,
    measured,
    median,
    ratio,
    rotated,
)
from benchmarks.runners import Ours, Run, bare_gen_tps
from benchmarks.session import Figure, Row, Session

THREADS = (1, 2)
# First words of the prompt-throughput prompts: one per round, each a
# different first token.
OPENERS = ("Report", "Summary", "Minutes", "Letter", "Notice", "Record", "Journal", "Story")
TG = 128
PP = 512
TARGET_RATIO = 0.95


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


# -- prompts of an exact length -------------------------------------------------


def bos_tokens(ours: Ours) -> int:
    """Tokens the model adds around any raw prompt (its BOS, if it has one)."""
    return ours.count("")


def fit_prompt(ours: Ours, prefix: str, target: int, seed: int) -> str:
    """Raw text that this model reads as exactly ``target`` tokens (or the
    longest text below it)."""
    words = filler_text(target * 2, seed=seed).split(" ")
    lo, hi = 1, len(words)
    best = prefix
    while lo <= hi:  # the longest word prefix that fits
        mid = (lo + hi) // 2
        text = prefix + " ".join(words[:mid])
        if ours.count(text) <= target:
            best, lo = text, mid + 1
        else:
            hi = mid - 1
    for pad in (" a", ".", " b", ","):  # top up token by token
        if ours.count(best) >= target:
            break
        for _ in range(8):
            longer = best + pad
            if ours.count(longer) > target:
                break
            best = longer
    return best


# -- figures 1 and 2 --------------------------------------------------------------


def clean_median(samples: list[tuple[int, float, float]]) -> float:
    """Median over the samples taken without interference (all, if none were)."""
    clean = [v for _r, v, seen in samples if seen <= CLEAN]
    return median(clean or [v for _r, v, _s in samples])


def best(samples: list[tuple[int, float, float]]) -> float:
    return max((v for _r, v, _s in samples), default=math.nan)


def paired_ratio(a: list[tuple[int, float, float]], b: list[tuple[int, float, float]]) -> float:
    """Median over rounds of a/b, using rounds where both samples are clean."""
    bs = {r: v for r, v, seen in b if seen <= CLEAN}
    return median(v / bs[r] for r, v, seen in a if seen <= CLEAN and r in bs)


def throughput(session: Session, want_tg: bool, want_pp: bool) -> list[Figure]:
    rounds = session.rounds or session.reps(5, 2)
    native = session.native
    combos = [(m, t) for m in session.models for t in THREADS]
    # (model, threads, test, who) -> [(round, tokens per second, interference)]
    samples: dict[tuple[str, int, str, str], list[tuple[int, float, float]]] = {}
    checks: list[str] = []

    # Prompts of exactly PP tokens, a new one each round. Each starts with
    # another word, so only the BOS (if the model has one) is still cached
    # from the run before: the tokens sit at positions 0..PP-1 as in
    # llama-bench, and attention spans the same padded KV length.
    pp_texts: dict[str, list[str]] = {}
    cached: dict[str, int] = {}
    for model in session.models:
        ours = session.ours(model)
        session.bare(model)
        if want_pp:
            cached[model.key] = bos_tokens(ours)
            pp_texts[model.key] = [
                fit_prompt(ours, f"{OPENERS[r % len(OPENERS)]} {r + 1}: ", PP, seed=100 + r)
                for r in range(rounds + 1)
            ]
        # Warm both loops at each thread count; nothing here is recorded.
        for threads in THREADS:
            ours.generate(TG_PROMPT, 16, threads)
            session.bare(model).generate(TG_PROMPT, 16, threads)

    Out = dict[tuple[str, str], float]

    # Each of the three reads the prompt first and then generates, in that
    # order and back to back: llama-bench runs its pp test before its tg test
    # in one invocation, and a tg run straight after busy work measures
    # faster on this kind of machine than one after an idle pause.
    def run_native(model: BenchModel, threads: int, r: int) -> Out:
        out: Out = {}
        if native is None:
            return out
        # The same weight repacking as ours (see workbench.engine.running.cpu).
        repack = session.ours(model).runner.repack_choice().enabled
        results = native.run(
            model.path,
            threads,
            n_prompt=PP if want_pp else 0,
            n_gen=TG if want_tg else 0,
            repack=(repack,),
        )
        for res in results:
            out[(res.test, "native")] = res.tps
        return out

    def run_ours(model: BenchModel, threads: int, r: int) -> Out:
        out: Out = {}
        ours = session.ours(model)
        if want_pp:
            run = ours.generate(pp_texts[model.key][r + 1], 1, threads)
            if run.n_prompt != PP or run.n_cached != cached[model.key]:
                checks.append(
                    f"{model.key} {threads}t: ours read {run.n_prompt} tokens "
                    f"({run.n_cached} cached), not {PP} ({cached[model.key]})"
                )
            out[(f"pp{PP}", "ours")] = run.prompt_tps()
            if run.stats:
                out[(f"pp{PP}", "ours_worker")] = run.stats.prompt_tps
        if want_tg:
            run = ours.generate(TG_PROMPT, TG, threads)
            if run.n_gen != TG or len(run.stamps) != TG:
                checks.append(
                    f"{model.key} {threads}t: ours made {run.n_gen} tokens "
                    f"({len(run.stamps)} Token events), not {TG}"
                )
            out[(f"tg{TG}", "ours")] = run.gen_tps()
            if run.stats:
                out[(f"tg{TG}", "ours_worker")] = run.stats.gen_tps
        return out

    def run_bare(model: BenchModel, threads: int, r: int) -> Out:
        out: Out = {}
        bare = session.bare(model)
        if want_pp:
            res = bare.prompt_eval(pp_texts[model.key][r + 1], threads, cached[model.key])
            if res["n_prompt"] != PP:
                checks.append(f"{model.key} {threads}t: bare read {res['n_prompt']} tokens")
            out[(f"pp{PP}", "bare")] = res["n_eval"] / res["seconds"]
        if want_tg:
            res = bare.generate(TG_PROMPT, TG, threads)
            if res["n_gen"] != TG:
                checks.append(f"{model.key} {threads}t: bare made {res['n_gen']} tokens")
            out[(f"tg{TG}", "bare")] = bare_gen_tps(res)
        return out

    runners = [run_native, run_ours, run_bare]
    for r in range(rounds):
        for i, (model, threads) in enumerate(rotated(combos, r)):
            for fn in rotated(runners, r + i):
                out, seen = measured(session.quiet, fn, model, threads, r)
                for (test, who), value in out.items():
                    samples.setdefault((model.key, threads, test, who), []).append((r, value, seen))

    figures = []
    for test, number, title, on in (
        (f"tg{TG}", 1, f"Decode throughput, tg{TG}, ours / native", want_tg),
        (f"pp{PP}", 2, f"Prompt throughput, pp{PP}, ours / native", want_pp),
    ):
        if not on:
            continue
        fig = Figure(number, title)
        for model, threads in combos:
            got = {
                who: samples.get((model.key, threads, test, who), [])
                for who in ("native", "ours", "bare", "ours_worker")
            }
            med = {who: clean_median(got[who]) for who in got}
            r_ours = ratio(med["ours"], med["native"])
            r_bare = ratio(med["bare"], med["native"])
            fig.data[f"{model.key}/{threads}t"] = {
                "median_tps": med,
                "ours_over_native": r_ours,
                "bare_over_native": r_bare,
                "ours_over_bare": ratio(med["ours"], med["bare"]),
                "paired_ours_over_native": paired_ratio(got["ours"], got["native"]),
                "paired_bare_over_native": paired_ratio(got["bare"], got["native"]),
                # Noise only ever slows a run down: the best of each is a
                # second estimate of the uncontended ratio.
                "best_ours_over_native": ratio(best(got["ours"]), best(got["native"])),
                "best_bare_over_native": ratio(best(got["bare"]), best(got["native"])),
                "samples": {
                    who: [{"round": r, "tps": v, "interference": i} for r, v, i in got[who]]
                    for who in got
                },
                "rounds": rounds,
            }
            name = f"{test} {model.key} {threads}t"
            if native is None:
                fig.rows.append(
                    Row(
                        name,
                        f"ours {_fmt(med['ours'])} t/s, bare {_fmt(med['bare'])} "
                        f"(bare/ours {_fmt(ratio(med['bare'], med['ours']), 2)})",
                        f">= {TARGET_RATIO} of native",
                        None,
                        status="no native",
                    )
                )
                continue
            fig.rows.append(
                Row(
                    name,
                    f"{_fmt(r_ours, 3)} ({_fmt(med['ours'])}/{_fmt(med['native'])} t/s;"
                    f" paired {_fmt(paired_ratio(got['ours'], got['native']), 2)};"
                    f" bare {_fmt(r_bare, 2)})",
                    f">= {TARGET_RATIO}",
                    r_ours >= TARGET_RATIO,
                )
            )
        fig.notes.extend(checks)
        if native is None:
            fig.notes.append(
                f"native llama-bench not available ({session.native_problem}): "
                "run `make bench-native`"
            )
        figures.append(fig)
    return figures


# -- figure 3 -------------------------------------------------------------------

GROWTH_TOKENS = 2000
EARLY = (0, 500)  # tokens 1-500
LATE = (1500, 2000)  # tokens 1501-2000
# Run-to-run spread of late/early on this kind of machine is about 10%.
GROWTH_SLACK = 1.10


def _mean_step(stamps: list[float], lo: int, hi: int) -> float:
    """Mean time per token over tokens lo+1..hi (stamps[i] is token i+1)."""
    start = stamps[lo - 1] if lo > 0 else stamps[0]
    n = hi - lo if lo > 0 else hi - 1
    return (stamps[hi - 1] - start) / n


def _median_step(stamps: list[float], lo: int, hi: int) -> float:
    """Median time between consecutive tokens over the same span: robust to
    the odd preemption on a shared machine."""
    return median(stamps[i] - stamps[i - 1] for i in range(max(lo, 1), hi))


def growth(session: Session) -> Figure:
    reps = session.reps(2, 1)
    threads = 2
    fig = Figure(3, f"Growth per token over one {GROWTH_TOKENS}-token generation (late/early)")
    per: dict[str, dict[str, list[float]]] = {}

    def stamps_of(model: BenchModel, who: str) -> list[float]:
        if who == "ours":
            run = session.ours(model).generate(TG_PROMPT, GROWTH_TOKENS, threads)
            if len(run.stamps) != GROWTH_TOKENS:
                fig.notes.append(
                    f"{model.key}: ours stopped after {len(run.stamps)} tokens ({run.stop_reason})"
                )
            return run.stamps
        res = session.bare(model).generate(TG_PROMPT, GROWTH_TOKENS, threads, stop_at_eos=False)
        return list(res["stamps"])

    for rep in range(reps):
        for i, model in enumerate(rotated(session.models, rep)):
            d = per.setdefault(
                model.key,
                {
                    "ours": [],
                    "bare": [],
                    "ours_ms": [],
                    "bare_ms": [],
                    "ours_robust": [],
                    "bare_robust": [],
                    "interference": [],
                },
            )
            for who in rotated(["ours", "bare"], rep + i):
                stamps, seen = measured(session.quiet, stamps_of, model, who, tries=2)
                d["interference"].append(seen)
                if len(stamps) < LATE[1]:
                    continue
                early, late = _mean_step(stamps, *EARLY), _mean_step(stamps, *LATE)
                d[who].append(late / early)
                d[f"{who}_ms"].append(late * 1000)
                robust = _median_step(stamps, *LATE) / _median_step(stamps, *EARLY)
                d[f"{who}_robust"].append(robust)
    for model in session.models:
        d = per.get(model.key, {})
        g_ours, g_bare = median(d.get("ours", [])), median(d.get("bare", []))
        fig.data[model.key] = {
            "threads": threads,
            "ours_late_over_early": g_ours,
            "bare_late_over_early": g_bare,
            "ours_late_ms_per_token": median(d.get("ours_ms", [])),
            "bare_late_ms_per_token": median(d.get("bare_ms", [])),
            "samples": {"ours": d.get("ours", []), "bare": d.get("bare", [])},
            "median_interval_growth": {
                "ours": median(d.get("ours_robust", [])),
                "bare": median(d.get("bare_robust", [])),
            },
            "interference_cores": d.get("interference", []),
        }
        ok = not math.isnan(g_ours) and not math.isnan(g_bare) and g_ours <= g_bare * GROWTH_SLACK
        fig.rows.append(
            Row(
                f"growth {model.key} {threads}t",
                f"ours {_fmt(g_ours, 3)}, bare {_fmt(g_bare, 3)}",
                f"ours <= bare x {GROWTH_SLACK}",
                ok,
            )
        )
    fig.notes.append(
        "late/early = mean time per token of tokens 1,501-2,000 over tokens 1-500; "
        "llama.cpp's own attention cost grows with the context, so the bare loop is the yardstick"
    )
    return fig


# -- figure 10 --------------------------------------------------------------------


RERUNS = 5


def rerun(session: Session) -> Figure:
    reps = session.reps(5, 2)
    threads = 2
    fig = Figure(10, "Time to first token, identical rerun / first run (~1,000-token prompt)")
    per: dict[str, dict[str, list[Any]]] = {}
    texts = {
        m.key: [
            fit_prompt(session.ours(m), f"Memo {rep + 1}. ", 1000, seed=200 + rep)
            for rep in range(reps)
        ]
        for m in session.models
    }

    def first_run(ours: Ours, text: str) -> Run:
        return ours.generate(text, 4, threads)

    def rerun_ttft(ours: Ours, text: str) -> tuple[float, int]:
        """Median TTFT of a few identical reruns (each is only milliseconds)."""
        runs = [ours.generate(text, 4, threads) for _ in range(RERUNS)]
        return median(r.ttft_s or math.nan for r in runs), max(
            r.n_prompt - r.n_cached for r in runs
        )

    for rep in range(reps):
        for model in rotated(session.models, rep):
            ours = session.ours(model)
            text = texts[model.key][rep]
            # Once: a second try would find the prompt already cached.
            first, seen1 = measured(session.quiet, first_run, ours, text, tries=1)
            (again, reread), seen2 = measured(session.quiet, rerun_ttft, ours, text)
            d = per.setdefault(
                model.key, {"first": [], "again": [], "reread": [], "n": [], "interference": []}
            )
            d["first"].append(first.ttft_s)
            d["again"].append(again)
            d["reread"].append(reread)
            d["n"].append(first.n_prompt)
            d["interference"].append(max(seen1, seen2))
    for model in session.models:
        d = per[model.key]
        first, again = median(d["first"]), median(d["again"])
        r = ratio(again, first)
        fig.data[model.key] = {
            "prompt_tokens": d["n"],
            "ttft_first_s": first,
            "ttft_rerun_s": again,
            "rerun_over_first": r,
            "tokens_reread_on_rerun": d["reread"],
            "interference_cores": d["interference"],
            "threads": threads,
        }
        fig.rows.append(
            Row(
                f"rerun TTFT {model.key}",
                f"{_fmt(r, 4)} ({_fmt(again * 1000)} ms / {_fmt(first * 1000)} ms)",
                "< 0.05",
                r < 0.05,
            )
        )
    return fig


def logprobs_cost(session: Session) -> Figure:
    """Generation speed with next-token probabilities off and on.

    Off is the path every other figure measures: the decode loop picks its
    per-token functions before the loop starts, so off adds no work per
    token. On shows what the probabilities cost (a log-softmax over the
    whole vocabulary per token)."""
    import dataclasses

    from benchmarks.runners import greedy

    reps = session.reps(5, 2)
    threads = 2
    fig = Figure(11, "Generation tok/s with next-token probabilities off and on (logprobs=5)")
    per: dict[str, dict[str, list[float]]] = {}
    on = dataclasses.replace(greedy(TG), logprobs=5)
    for rep in range(reps):
        for model in rotated(session.models, rep):
            ours = session.ours(model)
            d = per.setdefault(model.key, {"off": [], "on": []})
            # Interleaved, in alternating order, so drift hits both alike.
            order = ("off", "on") if rep % 2 == 0 else ("on", "off")
            for which in order:
                params = on if which == "on" else None
                run, _seen = measured(session.quiet, ours.generate, TG_PROMPT, TG, threads,
                                      "raw", params)  # fmt: skip
                d[which].append(run.gen_tps())
    for model in session.models:
        d = per[model.key]
        off, on_tps = median(d["off"]), median(d["on"])
        fig.data[model.key] = {"off_tps": d["off"], "on_tps": d["on"], "threads": threads}
        fig.rows.append(
            Row(
                f"logprobs on/off {model.key}",
                f"{ratio(on_tps, off):.3f} ({on_tps:.1f}/{off:.1f} t/s)",
                "info: off is figure 1's path",
                None,
            )
        )
    return fig
