"""A streamed completion from a model server: its server-sent events as
``Token`` events, and what the run measured (the times seen on this side and
the figures the server reported) as ``Stats`` and a stop reason.

Servers differ in what they report: OpenAI's ``usage``, llama.cpp's
``timings``, or nothing. Each figure comes from the best source there is,
and the times measured here fill in the rest.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.engine.running import protocol as p
from workbench.engine.running.backends.remote_http import MAX_JSON
from workbench.engine.running.params import GenParams

MAX_LINE = 4 << 20  # bytes in one line of an event stream at most


@dataclass
class Figures:
    """What a run measured on this side and what the server reported."""

    started: float
    first: float | None = None
    last: float | None = None
    chunks: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    finish: str | None = None
    done: bool = False


def num(d: Mapping[str, Any], key: str) -> float | None:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def stop_reason(figures: Figures, params: GenParams) -> p.StopReason:
    finish = figures.finish or "stop"
    if finish == "length":
        produced = completion_tokens(figures)
        # Cut before max_tokens: the server ran out of context.
        return "context" if 0 < produced < params.max_tokens else "max_tokens"
    if finish == "stop":
        # OpenAI's "stop" covers both the end of text and a stop string; with
        # stop strings set, a stop string is the likelier cause.
        return "stop" if params.stop else "eos"
    return "eos"


def completion_tokens(figures: Figures) -> int:
    for value in (num(figures.usage, "completion_tokens"),
                  num(figures.timings, "predicted_n")):  # fmt: skip
        if value is not None:
            return int(value)
    return figures.chunks


def stats(figures: Figures, params: GenParams, n_prompt: int, n_ctx: int) -> p.Stats:
    t = figures.timings
    end = figures.last or time.perf_counter()
    ttft = (figures.first - figures.started) if figures.first else 0.0
    produced = completion_tokens(figures)
    gen_tps = num(t, "predicted_per_second") or 0.0
    if not gen_tps and figures.first and figures.last and figures.chunks > 1:
        span = figures.last - figures.first
        gen_tps = (figures.chunks - 1) / span if span > 0 else 0.0
    prompt_tokens = num(figures.usage, "prompt_tokens")
    cached = num(t, "cache_n")
    details = figures.usage.get("prompt_tokens_details")
    if cached is None and isinstance(details, dict):
        cached = num(details, "cached_tokens")
    if prompt_tokens is None and num(t, "prompt_n") is not None:
        prompt_tokens = (num(t, "prompt_n") or 0) + (cached or 0)
    prompt_tokens = prompt_tokens if prompt_tokens is not None else float(n_prompt)
    prompt_tps = num(t, "prompt_per_second") or 0.0
    if not prompt_tps and ttft > 0 and prompt_tokens:
        prompt_tps = (prompt_tokens - (cached or 0)) / ttft  # includes the network
    return p.Stats(
        prompt_tokens=int(prompt_tokens),
        cached_tokens=int(cached or 0),
        ttft_s=ttft,
        prompt_tps=prompt_tps,
        gen_tps=gen_tps,
        completion_tokens=produced,
        total_s=end - figures.started,
        n_ctx=n_ctx,
        max_tokens=params.max_tokens,
        n_threads=0,
    )


def read_stream(
    resp: http.client.HTTPResponse,
    run_id: int,
    chat: bool,
    figures: Figures,
    cancelled: threading.Event,
) -> Iterator[p.Event]:
    """Tokens from a streamed completion (``chat``: a chat completion's
    deltas); fills ``figures`` as it goes and stops early once ``cancelled``."""
    ctype = (resp.getheader("Content-Type") or "").lower()
    if "text/event-stream" not in ctype:
        # A server that ignored stream=true: one JSON answer, one piece of text.
        data = json.loads(resp.read(MAX_JSON) or b"null")
        events: Iterator[Any] = iter([data, "[DONE]"])
    else:
        events = sse(resp)
    for item in events:
        if cancelled.is_set():
            return
        if item == "[DONE]":
            figures.done = True
            return
        chunk = json.loads(item) if isinstance(item, str) else item
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):
            err = chunk["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            raise ValueError(f"the server reported an error: {msg}")
        if isinstance(chunk.get("usage"), dict):
            figures.usage = chunk["usage"]
        if isinstance(chunk.get("timings"), dict):
            figures.timings = chunk["timings"]
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            continue
        choice = choices[0]
        if chat:
            delta = choice.get("delta") or choice.get("message") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
        else:
            text = choice.get("text")
        if isinstance(text, str) and text:
            now = time.perf_counter()
            if figures.first is None:
                figures.first = now
            figures.last = now
            figures.chunks += 1
            yield p.Token(run_id, text)
        if isinstance(choice.get("finish_reason"), str):
            figures.finish = choice["finish_reason"]


def sse(resp: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data`` of each server-sent event, as text."""
    data: list[str] = []
    while True:
        line = resp.readline(MAX_LINE + 1)
        if not line:
            if data:
                yield "\n".join(data)
            return
        if len(line) > MAX_LINE:
            raise ValueError("the server sent a line longer than 4 MiB")
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(b":"):
            continue  # a comment: keep-alive pings
        name, _, value = line.partition(b":")
        if name == b"data":
            data.append(value.removeprefix(b" ").decode("utf-8", "replace"))
