"""Figures 7 (start-up), 8 (metadata) and 9 (memory)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.common import ROOT, median
from benchmarks.session import Figure, Row, Session

BIN = Path(sys.executable).parent


def _workbench() -> list[str]:
    exe = BIN / "workbench"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "workbench"]


# -- figure 7 -------------------------------------------------------------------


# Python writes compiled bytecode next to the sources unless told not to; a
# user's install runs from it after the first start. Some environments set
# PYTHONDONTWRITEBYTECODE, which would make every start compile the package
# again (about 350 ms here), so start-up is measured without it.
NO_BYTECODE = "PYTHONDONTWRITEBYTECODE"


def _user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != NO_BYTECODE}


def startup(session: Session, tui_ready: str | None) -> Figure:
    fig = Figure(7, "Start-up")
    reps = session.reps(10, 5)
    cmd = [*_workbench(), "models"]
    env = _user_env()
    # Warms the page cache and writes the bytecode, as a first start does.
    subprocess.run(cmd, capture_output=True, check=False, env=env)
    times = []
    for _ in range(reps):
        session.quiet.wait()
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            fig.notes.append(f"`workbench models` exited {proc.returncode}")
    med = median(times)
    fig.data["workbench_models_s"] = {"median": med, "samples": times}
    fig.rows.append(Row("`workbench models`", f"{med * 1000:.0f} ms", "< 1000 ms", med < 1.0))

    if tui_ready is not None:
        fig.rows.append(Row("`workbench` first paint", "pending", "", None, status="pending"))
        fig.notes.append(f"first paint: {tui_ready}")
        return fig
    if shutil.which("tmux") is None:
        fig.rows.append(Row("`workbench` first paint", "no tmux", "", None, status="pending"))
        return fig
    paints = []
    for _ in range(session.reps(5, 3)):
        session.quiet.wait()
        t, screen = first_paint_tmux()
        if t is not None:
            paints.append(t)
        else:
            fig.notes.append("no first paint; screen: " + " | ".join(screen.split("\n")[:6]))
    if not paints:
        fig.rows.append(Row("`workbench` first paint", "never painted", "", False))
        return fig
    med = median(paints)
    fig.data["workbench_first_paint_s"] = {"median": med, "samples": paints}
    fig.rows.append(Row("`workbench` first paint", f"{med * 1000:.0f} ms", "< 1000 ms", med < 1.0))
    fig.notes.append("first paint: `workbench` in a detached 100x30 tmux pane, until its "
                     "frame is on screen (polled every 5 ms)")  # fmt: skip
    return fig


def first_paint_tmux(timeout: float = 15.0) -> tuple[float | None, str]:
    """Seconds from launching ``workbench`` in tmux to its screen showing up
    (None if it never did), and the last screen seen."""
    name = f"wb-bench-{uuid.uuid4().hex[:8]}"
    cmd = " ".join(["env", "-u", NO_BYTECODE, *_workbench()])
    env = {**_user_env(), "TERM": "xterm-256color"}
    start = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "100", "-y", "30", cmd],
        env=env,
        cwd=ROOT,
        check=True,
    )
    screen = ""
    try:
        while time.perf_counter() - start < timeout:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", name],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            if "Traceback" in screen:
                return None, screen
            # The command runs without a shell: anything on screen is the
            # app's, and a laid-out frame fills many lines at once.
            if sum(1 for line in screen.splitlines() if line.strip()) >= 5:
                return time.perf_counter() - start, screen
            time.sleep(0.005)
        return None, screen
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "C-q"], check=False)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            alive = subprocess.run(
                ["tmux", "has-session", "-t", name], capture_output=True, check=False
            )
            if alive.returncode != 0:
                break
            time.sleep(0.05)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)


# -- figure 8 -------------------------------------------------------------------


def metadata(session: Session) -> Figure:
    import tempfile

    from workbench.engine.models.gguf import read_gguf
    from workbench.engine.models.infocache import InfoCache
    from workbench.engine.models.modelinfo import describe
    from workbench.engine.sanitize import clean

    fig = Figure(8, "GGUF metadata: read_gguf of each default model, and clean()")
    n = session.reps(50, 20)
    with tempfile.TemporaryDirectory() as tmp:
        # What a catalog scan pays for a file it described before.
        cache = InfoCache.load(Path(tmp) / "model-info.json")
        for model in session.models:
            cache.describe(model.path)
        cache.save()
        cache = InfoCache.load(cache.path)
        for model in session.models:
            read_gguf(model.path)  # page cache
            times = []
            for _ in range(n):
                start = time.perf_counter()
                read_gguf(model.path)
                times.append(time.perf_counter() - start)
            described = []
            for _ in range(n // 5):
                start = time.perf_counter()
                describe(model.path)
                described.append(time.perf_counter() - start)
            cached = []
            for _ in range(n):
                start = time.perf_counter()
                cache.describe(model.path)
                cached.append(time.perf_counter() - start)
            med = median(times)
            fig.data[model.key] = {
                "read_gguf_ms": med * 1000,
                "describe_ms": median(described) * 1000,
                "cached_describe_ms": median(cached) * 1000,
                "n": n,
            }
            ok = med < 0.02
            fig.rows.append(Row(f"read_gguf {model.key}", f"{med * 1000:.2f} ms", "< 20 ms", ok))
            fig.rows.append(
                Row(
                    f"catalog, unchanged file, {model.key}",
                    f"{median(cached) * 1000:.2f} ms",
                    "info: the scan's cost after the first",
                    None,
                )
            )
        if cache.reads:
            fig.notes.append(f"the model-info cache missed {cache.reads} times")
    # Every metadata string and every streamed text passes through clean()
    # before a terminal sees it (it was a timed test once).
    text = ("normal words and ünïcode " * 400) + "\x1b[31m" * 50
    times = []
    for _ in range(n):
        start = time.perf_counter()
        clean(text, max_len=20_000)
        times.append(time.perf_counter() - start)
    med = median(times)
    fig.data["clean_10k_ms"] = med * 1000
    fig.rows.append(Row("sanitize.clean, 10 kB of text", f"{med * 1000:.2f} ms", "< 50 ms",
                        med < 0.05))  # fmt: skip
    return fig


# -- figure 9 -------------------------------------------------------------------


def memory(session: Session) -> Figure:
    """Runs ``benchmarks.memprobe`` in a fresh process: a host like the CLI."""
    fig = Figure(9, "Resident memory after a run (workers vs their model files; host)")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memprobe"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        fig.rows.append(Row("memory", "probe failed", "", False))
        fig.notes.append(proc.stderr.strip()[-500:])
        return fig
    data = json.loads(proc.stdout)
    fig.data = data
    mib = 1 << 20
    for key, w in data["workers"].items():
        fig.rows.append(
            Row(
                f"worker RSS {key}",
                f"{w['rss'] / mib:.0f} MiB = {w['rss'] / w['file_size']:.2f}x file "
                f"({w['file_size'] / mib:.0f} MiB)",
                f"<= estimate {w['estimate'] / mib:.0f} MiB",
                w["rss"] <= w["estimate"],
            )
        )
    fig.rows.append(Row("host RSS", f"{data['host_rss'] / mib:.0f} MiB", "info", None))
    fig.notes.append(
        "estimate = the memory guard's own figure: weights + KV cache at n_ctx + fixed overhead "
        "(workbench.engine.running.resources)"
    )
    return fig
