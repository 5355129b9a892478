"""How Comparison shares the cores: never more threads than cores, and a
finished run's threads handed to the runs still going."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

import pytest

from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner
from workbench.engine.running.compare import Comparison, Job, split_threads
from workbench.engine.running.params import GenParams


class Ledger:
    """Threads in use across runners, and the most ever in use at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_use: dict[str, int] = {}
        self.peak = 0

    def set(self, name: str, n: int) -> None:
        with self.lock:
            if n:
                self.in_use[name] = n
            else:
                self.in_use.pop(name, None)
            self.peak = max(self.peak, sum(self.in_use.values()))


class SteppedRunner(Runner):
    """Generates ``steps`` tokens, each one only when the test allows it."""

    def __init__(self, name: str, steps: int, ledger: Ledger) -> None:
        self.id = name
        self.header = Header(title=name)
        self.steps = steps
        self.ledger = ledger
        self.go = threading.Semaphore(0)
        self.threads_seen: list[int] = []
        self.started = threading.Event()
        # One event per thread count this runner was told to switch to.
        self.told: collections.defaultdict[int, threading.Event] = collections.defaultdict(
            threading.Event
        )
        self._cancel = threading.Event()

    def n_ctx_for(self, params: GenParams) -> int:
        return 512

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        return p.Counted(1, 3)

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        self.threads_seen.append(n_threads)
        self.ledger.set(self.id, n_threads)
        self.started.set()
        try:
            yield p.PromptStarted(1, 1, 0, self.steps)  # as a model does once it has the request
            for i in range(self.steps):
                self.go.acquire()
                if self._cancel.is_set():
                    yield p.Done(1, "cancelled")
                    return
                yield p.Token(1, f"{self.id}{i} ")
            yield p.Done(1, "max_tokens")
        finally:
            self.ledger.set(self.id, 0)

    def set_threads(self, n_threads: int) -> None:
        self.threads_seen.append(n_threads)
        self.ledger.set(self.id, n_threads)
        self.told[n_threads].set()

    def cancel(self) -> None:
        self._cancel.set()
        self.go.release()

    def close(self) -> None:
        pass


def test_split_threads() -> None:
    assert split_threads(2, 1) == [2]
    assert split_threads(2, 2) == [1, 1]
    assert split_threads(4, 3) == [2, 1, 1]
    assert split_threads(1, 2) == [1, 1]  # never zero threads for a run


@pytest.mark.timeout(30)
def test_parallel_hands_a_finished_runs_threads_to_the_other() -> None:
    ledger = Ledger()
    short, long = SteppedRunner("a", 1, ledger), SteppedRunner("b", 3, ledger)
    comparison = Comparison([Job(short, GenParams()), Job(long, GenParams())],
                            p.Prompt("x"), schedule="parallel", total_threads=2)  # fmt: skip
    thread = threading.Thread(target=comparison.run)
    thread.start()
    assert short.started.wait(10) and long.started.wait(10)
    short.go.release()  # a finishes
    # b is handed a's core before it goes on (else b could finish first).
    assert long.told[2].wait(10)
    for _ in range(3):
        long.go.release()
    thread.join(10)
    assert not thread.is_alive()
    # Whichever starts first has both cores until the other starts.
    assert short.threads_seen[-1] == 1
    assert long.threads_seen[-1] == 2  # handed over when a finished
    assert 1 in long.threads_seen
    assert ledger.peak <= 2
    assert [r.text for r in comparison.results] == ["a0 ", "b0 b1 b2 "]


class LateStarter(SteppedRunner):
    """Begins its run only when the test says so, after it was given its
    share: a share that changes in between reaches it first."""

    def __init__(self, name: str, steps: int, ledger: Ledger) -> None:
        super().__init__(name, steps, ledger)
        self.given = 0
        self.acquired = threading.Event()
        self.begin = threading.Event()
        self.told_after_begin = threading.Event()

    def set_threads(self, n_threads: int) -> None:
        super().set_threads(n_threads)
        if self.begin.is_set():
            self.told_after_begin.set()

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        self.given = n_threads
        self.acquired.set()
        assert self.begin.wait(10)
        yield from super().generate(prompt, params, n_threads)


class RefusedLater(SteppedRunner):
    """Still counting while ``first`` gets its share; then refused (its
    prompt does not fit), so it never runs."""

    def __init__(self, name: str, ledger: Ledger, first: LateStarter) -> None:
        super().__init__(name, 1, ledger)
        self.first = first
        self.counted = threading.Event()

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        assert self.first.acquired.wait(10)
        self.counted.set()
        return p.Counted(1, 10_000)


@pytest.mark.timeout(30)
def test_a_model_still_loading_keeps_its_share_and_a_changed_share_is_sent_again() -> None:
    ledger = Ledger()
    late = LateStarter("a", 2, ledger)
    refused = RefusedLater("b", ledger, late)
    comparison = Comparison([Job(late, GenParams()), Job(refused, GenParams())], p.Prompt("x"),
                            schedule="parallel", total_threads=2)  # fmt: skip
    thread = threading.Thread(target=comparison.run)
    thread.start()
    assert late.acquired.wait(10)
    # b is still counting (loading its model, in real life): a gets one core.
    assert late.given == 1
    # b is refused before a's run began: a was told 2 before its run carried 1.
    assert refused.counted.wait(10)
    assert late.told[2].wait(10)
    late.begin.set()
    late.go.release()
    assert late.told_after_begin.wait(10)
    assert late.threads_seen == [2, 1, 2]  # began with the stale share, then corrected
    late.go.release()
    thread.join(10)
    assert not thread.is_alive()
    assert comparison.results[1].error and "refused" in comparison.results[1].error
    assert comparison.results[0].text == "a0 a1 "


@pytest.mark.timeout(30)
def test_more_models_than_cores_wait_their_turn_and_sequential_runs_one_at_a_time() -> None:
    for schedule, cores in (("parallel", 2), ("sequential", 2)):
        ledger = Ledger()
        runners = [SteppedRunner(n, 2, ledger) for n in "abc"]
        comparison = Comparison([Job(r, GenParams()) for r in runners], p.Prompt("x"),
                                schedule=schedule, total_threads=cores)  # fmt: skip
        for r in runners:
            for _ in range(2):
                r.go.release()
        comparison.run()
        assert ledger.peak <= cores
        assert all(r.ok and r.stop_reason == "max_tokens" for r in comparison.results)
        if schedule == "sequential":
            assert all(r.threads_seen == [cores] for r in runners)


@pytest.mark.timeout(30)
def test_cancel_all_stops_running_and_waiting_jobs() -> None:
    ledger = Ledger()
    runners = [SteppedRunner(n, 5, ledger) for n in "ab"]
    comparison = Comparison([Job(r, GenParams()) for r in runners], p.Prompt("x"),
                            schedule="sequential", total_threads=2)  # fmt: skip
    thread = threading.Thread(target=comparison.run)
    thread.start()
    assert runners[0].started.wait(10)
    runners[0].go.release()
    comparison.cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert [r.stop_reason for r in comparison.results] == ["cancelled", "cancelled"]
    assert not runners[1].started.is_set()  # the waiting job never started
