"""Runs one prompt on several models and shares the CPU between them.

Two schedules:

- ``parallel``: as many local models at once as there are cores, the cores
  divided between them. When one finishes, its threads go to those still
  running (``SetThreads`` takes effect between two decode calls), so the
  total time stays close to ``sequential`` while every panel streams.
- ``sequential``: one local model at a time, with every core.

The sum of threads over running local models never exceeds the physical
cores. Remote models take no local threads and always run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from workbench.engine.prompts.tokens import Budget
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Runner, RunnerError
from workbench.engine.running.params import GenParams

Schedule = Literal["parallel", "sequential"]
OnEvent = Callable[[int, p.Event], None]


@dataclass
class Job:
    """One panel's part of a comparison."""

    runner: Runner
    params: GenParams


@dataclass
class Result:
    """What one model produced."""

    text: str = ""
    stop_reason: str | None = None
    stats: p.Stats | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    budget: Budget | None = None
    loaded: p.Loaded | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def split_threads(total: int, n: int) -> list[int]:
    """Divide ``total`` threads among ``n`` runs, at least one each."""
    if n <= 0:
        return []
    base, extra = divmod(max(total, n), n)
    return [base + (1 if i < extra else 0) for i in range(n)]


class Comparison:
    """One run of a prompt on every job. ``run`` blocks; ``cancel`` may be
    called from any thread while it does."""

    def __init__(
        self,
        jobs: list[Job],
        prompt: p.Prompt,
        *,
        schedule: Schedule = "parallel",
        total_threads: int = 1,
        on_event: OnEvent | None = None,
    ) -> None:
        self.jobs = jobs
        self.prompt = prompt
        self.schedule = schedule
        self.total_threads = max(1, total_threads)
        self.on_event = on_event or (lambda _i, _e: None)
        self.results = [Result() for _ in jobs]
        self._cond = threading.Condition()
        self._running: dict[int, int] = {}  # job index -> threads
        # Local jobs still loading or counting: they will want cores soon,
        # and a model loading takes one itself, so shares keep room for them.
        self._coming: set[int] = set()
        self._cancelled: set[int] = set()
        self._all_cancelled = False

    # -- control --------------------------------------------------------------

    def cancel(self, index: int | None = None) -> None:
        """Cancel one job, or all of them when ``index`` is None."""
        with self._cond:
            targets = range(len(self.jobs)) if index is None else [index]
            if index is None:
                self._all_cancelled = True
            self._cancelled.update(targets)
            self._cond.notify_all()
        for i in targets:
            self.jobs[i].runner.cancel()

    # -- running --------------------------------------------------------------

    def run(self) -> list[Result]:
        # One thread per job: models load and count at the same time, and a
        # job refused for its budget never waits for the others.
        self._coming = {i for i, job in enumerate(self.jobs) if job.runner.uses_local_cpu}
        threads = [
            threading.Thread(target=self._run_one, args=(i,), daemon=True)
            for i in range(len(self.jobs))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.results

    def _emit(self, i: int, event: p.Event) -> None:
        result = self.results[i]
        if isinstance(event, p.Token):
            result.text += event.text
        elif isinstance(event, p.Loaded):
            result.loaded = event
        elif isinstance(event, p.PromptStarted):
            if event.note and event.note not in result.notes:
                result.notes.append(event.note)
            if i in self._cancelled:  # cancelled while the model was loading
                self.jobs[i].runner.cancel()
        elif isinstance(event, p.Done):
            result.stop_reason, result.stats = event.stop_reason, event.stats
        elif isinstance(event, p.Error):
            result.error = event.message
        self.on_event(i, event)

    def _check_budget(self, i: int) -> bool:
        """Count the prompt with the model's own tokenizer; refuse what cannot fit."""
        job = self.jobs[i]
        try:
            counted = job.runner.count(self.prompt, job.params)
        except RunnerError as exc:
            self._emit(i, p.Error(-1, str(exc), kind="load"))
            return False
        budget = Budget(counted.n_tokens, job.params.max_tokens, job.runner.n_ctx_for(job.params))
        self.results[i].budget = budget
        if counted.note and counted.note not in self.results[i].notes:
            self.results[i].notes.append(counted.note)
        if not budget.fits:
            self._emit(i, p.Error(-1, f"refused: {budget.describe()}", kind="refused"))
            return False
        return True

    def _slots(self) -> int:
        if self.schedule == "sequential":
            return 1
        return self.total_threads

    def _shares(self) -> list[int]:
        """Threads for each running local job, in order, keeping a share for
        each job still to come while there are slots for it; caller holds
        the lock."""
        running = len(self._running)
        n = max(running, min(self._slots(), running + len(self._coming)))
        return split_threads(self.total_threads, n)[:running] if running else []

    def _rebalance(self) -> None:
        """Share the threads among the running local jobs; caller holds the lock."""
        for (i, old), new in zip(list(self._running.items()), self._shares(), strict=True):
            if new != old:
                self._running[i] = new
                self.jobs[i].runner.set_threads(new)

    def _leave(self, i: int) -> None:
        """Job ``i`` will not run after all: its share goes to the others."""
        with self._cond:
            if i in self._coming:
                self._coming.discard(i)
                self._rebalance()
                self._cond.notify_all()

    def _acquire(self, i: int) -> int | None:
        """Wait for a CPU slot; the thread count, or None if cancelled first."""
        with self._cond:
            while len(self._running) >= self._slots() and i not in self._cancelled:
                self._cond.wait()
            if i in self._cancelled:
                return None
            self._coming.discard(i)
            self._running[i] = 0
            # Rebalance as if the new run had started; its own share is returned.
            for (j, old), new in zip(list(self._running.items()), self._shares(), strict=True):
                self._running[j] = new
                if j != i and new != old:
                    self.jobs[j].runner.set_threads(new)
            return self._running[i]

    def _release(self, i: int) -> None:
        with self._cond:
            self._running.pop(i, None)
            self._rebalance()
            self._cond.notify_all()

    def _run_one(self, i: int) -> None:
        try:
            self._run_job(i)
        finally:
            self._leave(i)  # refused, failed or cancelled before it ran

    def _run_job(self, i: int) -> None:
        if not self._check_budget(i):
            return
        job = self.jobs[i]
        local = job.runner.uses_local_cpu
        n_threads = self._acquire(i) if local else 1
        if n_threads is None:
            self._emit(i, p.Done(-1, "cancelled"))
            return
        # A rebalance between _acquire and the run's start told the runner a
        # share before the run carried its own, older one. PromptStarted says
        # the model holds the run's request, so a share that changed
        # meanwhile is sent again then, and lands after it.
        prompted = not local
        try:
            for event in job.runner.generate(self.prompt, job.params, n_threads):
                if not prompted and isinstance(event, p.PromptStarted):
                    prompted = True
                    self._resync(i, n_threads)
                self._emit(i, event)
        finally:
            if local:
                self._release(i)

    def _resync(self, i: int, sent: int) -> None:
        with self._cond:
            current = self._running.get(i)
            if current and current != sent:
                self.jobs[i].runner.set_threads(current)
