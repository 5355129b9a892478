"""The three things measured side by side, behind one small interface each.

- ``Ours``: the product path, a ``LocalRunner`` (worker process, protocol,
  the same code ``workbench compare`` runs), timed on the host side from
  the arrival of its events.
- ``Bare``: ``Llama.generate()`` in a process of its own (``benchmarks.bare``).
- native ``llama-bench`` lives in ``benchmarks.llamabench``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import ROOT, BenchModel
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.params import GenParams

N_CTX = 4096


def greedy(max_tokens: int, n_ctx: int = 0) -> GenParams:
    return GenParams(max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0, n_ctx=n_ctx)


@dataclass
class Run:
    """One generation, seen from the host."""

    start: float = 0.0  # perf_counter when generate() was called
    prompt_started: float | None = None
    stamps: list[float] = field(default_factory=list)  # Token arrivals, relative to start
    n_prompt: int = 0
    n_cached: int = 0
    stats: p.Stats | None = None
    stop_reason: str | None = None
    error: str | None = None
    text: str = ""

    @property
    def n_gen(self) -> int:
        return self.stats.completion_tokens if self.stats else len(self.stamps)

    @property
    def ttft_s(self) -> float | None:
        return self.stamps[0] if self.stamps else None

    def gen_tps(self) -> float:
        """Token rate from first to last arrival (decodes per second)."""
        if len(self.stamps) < 2:
            return float("nan")
        return (len(self.stamps) - 1) / (self.stamps[-1] - self.stamps[0])

    def prompt_tps(self) -> float:
        """Prompt tokens read per second, from PromptStarted to the first token."""
        if self.prompt_started is None or not self.stamps:
            return float("nan")
        return (self.n_prompt - self.n_cached) / (self.stamps[0] - self.prompt_started)


class Ours:
    """The product path for one model: a LocalRunner and its worker."""

    def __init__(self, model: BenchModel, n_ctx: int = N_CTX) -> None:
        self.model = model
        self.runner = LocalRunner(model.entry, max_default_ctx=n_ctx)
        self.n_ctx = n_ctx
        self.loaded: p.Loaded | None = None

    def load(self, threads: int = 1) -> p.Loaded:
        self.loaded = self.runner.load(self.runner.n_ctx_for(greedy(1)), threads)
        return self.loaded

    def count(self, text: str, mode: p.Mode = "raw") -> int:
        return self.runner.count(p.Prompt(text, mode=mode), greedy(1)).n_tokens

    def generate(
        self,
        text: str,
        max_tokens: int,
        threads: int,
        mode: p.Mode = "raw",
        params: GenParams | None = None,
    ) -> Run:
        run = Run()
        clock = time.perf_counter
        stamps = run.stamps
        parts = []
        run.start = start = clock()
        params = params or greedy(max_tokens)
        for event in self.runner.generate(p.Prompt(text, mode=mode), params, threads):
            now = clock()
            if isinstance(event, p.Token):
                stamps.append(now - start)
                parts.append(event.text)
            elif isinstance(event, p.PromptStarted):
                run.prompt_started = now - start
                run.n_prompt, run.n_cached = event.n_prompt, event.n_cached
            elif isinstance(event, p.Done):
                run.stats, run.stop_reason = event.stats, event.stop_reason
            elif isinstance(event, p.Error):
                run.error = event.message
        run.text = "".join(parts)
        if run.error:
            raise RuntimeError(f"{self.model.key}: {run.error}")
        return run

    @property
    def pid(self) -> int | None:
        return self.runner.worker_pid

    def close(self) -> None:
        self.runner.close()


class Bare:
    """``Llama.generate()`` in its own process (see ``benchmarks.bare``)."""

    def __init__(self, model: BenchModel, n_ctx: int = N_CTX) -> None:
        self.model = model
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bare", str(model.path), str(n_ctx)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            text=True,
            bufsize=1,
        )
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeError(f"bare loop for {model.key} did not start: {hello}")
        self.threads = 0

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bare loop for {self.model.key} exited ({self.proc.poll()})")
        data: dict[str, Any] = json.loads(line)
        if "error" in data:
            raise RuntimeError(data["error"])
        return data

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def set_threads(self, n: int) -> None:
        if n != self.threads:
            self.call(op="threads", n=n)
            self.threads = n

    def generate(self, text: str, n: int, threads: int, stop_at_eos: bool = True) -> dict[str, Any]:
        self.set_threads(threads)
        return self.call(op="gen", text=text, n=n, stop_at_eos=stop_at_eos)

    def prompt_eval(self, text: str, threads: int, cached: int) -> dict[str, Any]:
        self.set_threads(threads)
        return self.call(op="pp", text=text, cached=cached)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, OSError, ValueError):
                self.call(op="quit")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def bare_gen_tps(result: dict[str, Any]) -> float:
    stamps = result["stamps"]
    if len(stamps) < 2:
        return float("nan")
    return float((len(stamps) - 1) / (stamps[-1] - stamps[0]))
