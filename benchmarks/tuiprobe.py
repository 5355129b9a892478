"""Figures 5 and 6: the app's responsiveness, measured through Textual's
``App.run_test()`` in a process of its own.

``python -m benchmarks.tuiprobe keys|meter [--samples N]`` prints JSON.

Keys are sent the way a terminal driver sends them (``driver.send_message``
from outside the event loop), at a typing pace. "On screen" is the first
frame the app hands to its driver after the change: the headless driver
skips turning frames into terminal output, so the probe does that itself
(``render_segments``), to pay what a real terminal would.

- ``keys``: with both default models streaming (parallel, all cores), the
  time from a key press in the prompt editor to a frame whose editor text
  contains it; also the same with nothing running.
- ``meter``: a ~4,000-token prompt; after a burst of three keys, the time
  from the last one to a frame in which both panels' token meters show the
  count of the new text (the app's debounce included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from textual import events

from benchmarks.common import TG_PROMPT, filler_text, median, percentile
from workbench.engine.config import Settings
from workbench.engine.running.params import GenParams

SIZE = (120, 36)


class FrameWatch:
    """Wraps ``app._display``: calls ``check`` on every frame and records
    when it first returns True."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.check: Callable[[], bool] | None = None
        self.hit_at: float | None = None
        self.done = asyncio.Event()
        self.frames = 0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            self.frames += 1
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                render(app.console)  # what a real terminal driver would write
            if self.check is not None and self.hit_at is None and self.check():
                self.hit_at = time.perf_counter()
                self.done.set()

        app._display = display

    def arm(self, check: Callable[[], bool]) -> None:
        self.hit_at = None
        self.done.clear()
        self.check = check

    async def wait(self, timeout: float) -> float | None:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except TimeoutError:
            return None
        finally:
            self.check = None
        return self.hit_at


def never() -> bool:
    return False


def send_key(app: Any, char: str) -> float:
    key = "space" if char == " " else char
    event = events.Key(key, char)
    event.set_sender(app)
    t0 = time.perf_counter()
    app._driver.send_message(event)
    return t0


async def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


def make(prompt: str, max_tokens: int, max_ctx: int) -> Any:
    from workbench.tui.app import make_app

    settings = Settings(
        scan_hf_cache=False,
        schedule="parallel",
        threads=0,
        max_default_ctx=max_ctx,
        generation=GenParams(max_tokens=max_tokens, temperature=0.0),
    )
    return make_app(settings=settings, prompt=prompt, cursor_blink=False)


def summary(samples: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": median(ms) if ms else None,
        "p95_ms": percentile(ms, 95) if ms else None,
        "max_ms": max(ms) if ms else None,
    }


async def settle(app: Any, timeout: float = 60.0) -> None:
    """Both panels opened their model and counted the prompt."""
    ok = await wait_until(
        lambda: (
            len(app.panels) == 2
            and all(p.runner is not None and p.meter.prompt_tokens is not None for p in app.panels)
            and all(not p.meter.status for p in app.panels)
        ),
        timeout,
    )
    if not ok:
        states = [(p.state, p.meter.status, p.meter.prompt_tokens) for p in app.panels]
        raise RuntimeError(f"panels did not become ready: {states}")


def longer_than(editor: Any, n: int) -> Callable[[], bool]:
    return lambda: len(editor.text) > n


async def type_keys(
    app: Any,
    watch: FrameWatch,
    n: int,
    rng: random.Random,
    while_: Callable[[], bool] = lambda: True,
) -> tuple[list[float], int]:
    """Type up to ``n`` letters at a typing pace, while ``while_()`` holds.
    Returns each key's latency to the screen, and how many were measured
    with ``while_()`` still true when the key showed."""
    editor = app.prompt_area.editor
    out = []
    held = 0
    letters = "etaoinshrdlu"
    for i in range(n):
        if not while_():
            break
        watch.arm(longer_than(editor, len(editor.text)))
        t0 = send_key(app, letters[i % len(letters)])
        hit = await watch.wait(5.0)
        if hit is not None:
            out.append(hit - t0)
            held += while_()
        await asyncio.sleep(rng.uniform(0.06, 0.14))
    return out, held


async def probe_keys(samples: int) -> dict[str, Any]:
    rng = random.Random(1)
    app = make(TG_PROMPT, max_tokens=3000, max_ctx=4096)
    result: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        watch = FrameWatch(app)
        app.prompt_area.switch.mode = "raw"
        await settle(app)
        editor = app.prompt_area.editor
        editor.focus()
        editor.move_cursor(editor.document.end)
        await pilot.pause()
        idle, _ = await type_keys(app, watch, max(10, samples // 3), rng)
        result["idle"] = summary(idle)

        app.action_run()
        ok = await wait_until(lambda: all(p.state == "generating" for p in app.panels), 120)
        if not ok:
            raise RuntimeError(f"panels did not start streaming: {[p.state for p in app.panels]}")
        editor.focus()

        def both_streaming() -> bool:
            return all(p.state == "generating" for p in app.panels)

        streaming, both = await type_keys(app, watch, samples, rng, both_streaming)
        result["streaming"] = summary(streaming)
        result["streaming"]["samples_with_both_streaming"] = both
        result["generated_tokens"] = [p.n_generated for p in app.panels]
        app.action_cancel()
        await app.shutdown_models()
    return result


async def probe_meter(samples: int) -> dict[str, Any]:
    rng = random.Random(2)
    text = filler_text(3500, seed=7)
    app = make(text, max_tokens=256, max_ctx=8192)
    latencies: list[float] = []
    counts: list[list[int]] = []
    async with app.run_test(size=SIZE) as pilot:
        watch = FrameWatch(app)
        app.prompt_area.switch.mode = "raw"
        await settle(app, timeout=120)
        # The prompt is counted at its full size once before timing.
        await asyncio.sleep(0.5)
        await settle(app)
        editor = app.prompt_area.editor
        editor.focus()
        editor.move_cursor(editor.document.end)
        await pilot.pause()
        panels = app.panels
        first = [p.meter.prompt_tokens for p in panels]
        for _ in range(samples):
            before = [p.meter.prompt_tokens for p in panels]

            def shown(before: list[Any] = before) -> bool:
                for p, old in zip(panels, before, strict=True):
                    meter = p.meter
                    if meter.status or meter.prompt_tokens is None or meter.prompt_tokens == old:
                        return False
                    last = getattr(p, "_last_counted", None)
                    if last is not None and last.prompt.text != editor.text:
                        return False
                return True

            t_last = 0.0
            for char in (" ", "w", "x"):
                watch.arm(never)  # typing: nothing to wait for yet
                t_last = send_key(app, char)
                await asyncio.sleep(0.04)
            watch.arm(shown)
            hit = await watch.wait(5.0)
            if hit is not None:
                latencies.append(hit - t_last)
                counts.append([p.meter.prompt_tokens for p in panels])
            await asyncio.sleep(rng.uniform(0.15, 0.3))
        await app.shutdown_models()
    return {
        "prompt_tokens_at_start": first,
        "after": summary(latencies),
        "counts": counts[-3:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuiprobe")
    parser.add_argument("what", choices=["keys", "meter"])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    probe = probe_keys if args.what == "keys" else probe_meter
    result = asyncio.run(probe(args.samples))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
