"""The engine with the real default models, each in its own worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from workbench.engine.models.catalog import build_catalog, make_entry
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.compare import Comparison, Job
from workbench.engine.running.params import GenParams

pytestmark = pytest.mark.slow

GREEDY = GenParams(max_tokens=24, temperature=0.0)
QUESTION = p.Prompt("Name three colours of the rainbow.", mode="chat")


@pytest.fixture
def smol(default_model_paths: dict[str, Path]) -> Iterator[LocalRunner]:
    runner = LocalRunner(build_catalog().get("smollm2-135m-instruct-q4_1"))
    yield runner
    runner.close()


@pytest.fixture
def gemma(default_model_paths: dict[str, Path]) -> Iterator[LocalRunner]:
    runner = LocalRunner(build_catalog().get("gemma-3-270m-q4_k_m"))
    yield runner
    runner.close()


def run(runner: LocalRunner, prompt: p.Prompt, params: GenParams, threads: int = 1):
    """All events of one run, and the streamed text."""
    events = list(runner.generate(prompt, params, threads))
    text = "".join(e.text for e in events if isinstance(e, p.Token))
    return events, text


def done(events: list[p.Event]) -> p.Done:
    last = events[-1]
    assert isinstance(last, p.Done), f"run did not finish: {last}"
    return last


def test_greedy_runs_are_reproducible(smol: LocalRunner) -> None:
    events1, text1 = run(smol, QUESTION, GREEDY)
    smol.close()  # a fresh worker must give the same text too
    _events2, text2 = run(smol, QUESTION, GREEDY)
    assert text1 and text1 == text2
    assert done(events1).stats.completion_tokens > 0


def test_same_seed_same_sample_and_other_seed_differs(gemma: LocalRunner) -> None:
    prompt = p.Prompt("Once upon a time", mode="raw")
    hot = GenParams(max_tokens=32, temperature=1.2, top_k=0, top_p=1.0, min_p=0.0, seed=7)
    _, a = run(gemma, prompt, hot)
    _, b = run(gemma, prompt, hot)
    _, c = run(gemma, prompt, GenParams(**{**hot.to_dict(), "seed": 8, "stop": ()}))
    assert a == b
    assert a != c


def test_rerun_reuses_the_kv_cache(smol: LocalRunner) -> None:
    first, _ = run(smol, QUESTION, GREEDY)
    second, _ = run(smol, QUESTION, GREEDY)
    s1, s2 = done(first).stats, done(second).stats
    assert s1.cached_tokens == 0
    assert s2.prompt_tokens == s1.prompt_tokens
    # At most one prompt token evaluated again: the last, for its logits.
    assert s2.prompt_tokens - s2.cached_tokens <= 1


def test_multibyte_text_streams_intact(smol: LocalRunner) -> None:
    events, text = run(smol, p.Prompt("🌊🌊🌊🌊🌊🌊 日本語", mode="raw"), GREEDY)
    tokens = [e.text for e in events if isinstance(e, p.Token)]
    # SmolLM2 spells the emoji in several byte tokens (three: F0 9F, 8C, 8A).
    spelled = smol.tokenize(p.Prompt("🌊", mode="raw"), GREEDY).pieces
    parts = sum(piece.startswith("<0x") for piece in spelled)
    assert parts > 1, spelled
    waves = text.count("🌊")
    assert waves > 0, text
    # No piece of a character may reach the stream on its own: each wave's
    # tokens but one are held back until the character is whole.
    assert done(events).stats.completion_tokens - len(tokens) >= waves * (parts - 1)
    assert all("\ufffd" not in t for t in tokens)


def test_stop_sequence_ends_the_run(gemma: LocalRunner) -> None:
    prompt = p.Prompt("1, 2, 3, 4, 5,", mode="raw")
    events, text = run(gemma, prompt, GenParams(max_tokens=40, temperature=0, stop=("9",)))
    assert done(events).stop_reason == "stop"
    assert "9" not in text
    assert "8" in text


def test_max_tokens_is_clipped_to_the_context(smol: LocalRunner) -> None:
    params = GenParams(max_tokens=500, temperature=0, n_ctx=128)
    events, _ = run(smol, p.Prompt("Count: 1 2 3 4 5 6 7 8 9 10", mode="raw"), params)
    started = next(e for e in events if isinstance(e, p.PromptStarted))
    n_ctx = smol.n_ctx_for(params)
    assert n_ctx == 256  # llama.cpp rounds 128 up to 256, and the runner says so
    assert started.max_tokens == n_ctx - started.n_prompt
    assert "clipped" in started.note


def test_over_long_prompt_is_refused_with_numbers_and_nothing_runs(
    smol: LocalRunner, gemma: LocalRunner
) -> None:
    seen: list[tuple[int, p.Event]] = []
    long_prompt = p.Prompt("word " * 400, mode="raw")
    jobs = [Job(smol, GenParams(n_ctx=256, max_tokens=8)), Job(gemma, GenParams(n_ctx=256))]
    results = Comparison(jobs, long_prompt, on_event=lambda i, e: seen.append((i, e))).run()
    for i, result in enumerate(results):
        assert result.error and result.error.startswith("refused")
        assert "context window is 256" in result.error
        assert not any(isinstance(e, p.PromptStarted | p.Token) for j, e in seen if j == i)


def test_a_killed_worker_is_an_error_and_the_other_model_completes(
    smol: LocalRunner, gemma: LocalRunner
) -> None:
    seen: list[tuple[int, p.Event]] = []
    killed = threading.Event()

    def on_event(i: int, event: p.Event) -> None:
        seen.append((i, event))
        if i == 0 and isinstance(event, p.Token) and not killed.is_set():
            killed.set()
            pid = smol.worker_pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

    prompt = p.Prompt("Write a long story about a dragon.", mode="chat")
    params = GenParams(max_tokens=200, temperature=0)
    jobs = [Job(smol, params), Job(gemma, GenParams(max_tokens=32, temperature=0))]
    results = Comparison(jobs, prompt, total_threads=2, on_event=on_event).run()
    assert killed.is_set()
    assert results[0].error and "SIGKILL" in results[0].error
    assert results[1].ok and results[1].stop_reason == "max_tokens"
    # The next run starts a fresh worker for the killed model.
    events, text = run(smol, QUESTION, GREEDY)
    assert done(events).stop_reason in ("eos", "max_tokens") and text


def test_cancel_mid_generation_then_run_again(smol: LocalRunner) -> None:
    _, reference = run(smol, QUESTION, GREEDY)
    stream = smol.generate(p.Prompt("Tell me a long story.", mode="chat"),
                           GenParams(max_tokens=400, temperature=0), 1)  # fmt: skip
    events = []
    for event in stream:
        events.append(event)
        if sum(isinstance(e, p.Token) for e in events) == 3:
            smol.cancel()
    finish = done(events)
    assert finish.stop_reason == "cancelled"
    # Within one token of the cancel, give or take one already in flight.
    assert finish.stats.completion_tokens <= 5
    _, again = run(smol, QUESTION, GREEDY)
    assert again == reference


def test_cancel_during_a_long_prompt_evaluation(gemma: LocalRunner) -> None:
    long_prompt = p.Prompt("The quick brown fox jumps over the lazy dog. " * 300, mode="raw")
    params = GenParams(max_tokens=8, temperature=0, n_ctx=4096)
    events = []
    for event in gemma.generate(long_prompt, params, 1):
        events.append(event)
        if isinstance(event, p.PromptStarted):
            assert event.n_prompt > 2000
            gemma.cancel()
    finish = done(events)
    assert finish.stop_reason == "cancelled"
    # Cancelled inside the prompt: no token was generated, and it stopped
    # long before reading ~3,000 tokens at ~200 tok/s would have taken.
    assert finish.stats.completion_tokens == 0
    short = p.Prompt("The capital of France is", mode="raw")
    _, after = run(gemma, short, GREEDY)
    fresh = LocalRunner(gemma.entry)
    try:
        _, expected = run(fresh, short, GREEDY)
    finally:
        fresh.close()
    assert after == expected


def test_memory_guard_refuses_a_context_too_big_for_the_machine(smol: LocalRunner) -> None:
    events, _ = run(smol, QUESTION, GenParams(n_ctx=4_000_000))
    assert len(events) == 1 and isinstance(events[0], p.Error)
    message = events[0].message
    assert "needs about" in message and "GiB" in message and "n_ctx" in message
    assert smol.worker_pid is None  # refused before any worker started


def test_chat_mode_without_template_falls_back_with_a_note(gemma: LocalRunner) -> None:
    events, _ = run(gemma, p.Prompt("Hello", system="Be brief."), GREEDY)
    started = next(e for e in events if isinstance(e, p.PromptStarted))
    assert "no chat template" in started.note


def test_counts_use_each_models_own_tokenizer(smol: LocalRunner, gemma: LocalRunner) -> None:
    text = "Tokenizers split text differently: 日本語, emoji 🌊, and code_like_identifiers."
    raw = p.Prompt(text, mode="raw")
    a = smol.count(raw, GREEDY).n_tokens
    b = gemma.count(raw, GREEDY).n_tokens
    assert a > 5 and b > 5 and a != b
    # Chat mode counts the template's tokens too.
    assert smol.count(p.Prompt(text, mode="chat"), GREEDY).n_tokens > a + 5


def test_workers_yield_the_cpu_to_the_app(smol: LocalRunner) -> None:
    """Decoding fills every core: a worker runs at a lower priority than the
    process that started it, so the app gets a core the moment a key
    arrives. The app itself keeps its own priority."""
    from workbench.engine.running.worker_main import WORKER_NICE

    app_nice = os.getpriority(os.PRIO_PROCESS, 0)
    smol.load(256, 1)
    assert smol.worker_pid is not None
    worker_nice = psutil.Process(smol.worker_pid).nice()
    assert worker_nice == min(19, app_nice + WORKER_NICE) > app_nice
    assert os.getpriority(os.PRIO_PROCESS, 0) == app_nice


def test_workers_exit_when_the_app_is_killed(default_model_paths: dict[str, Path]) -> None:
    script = (
        "import sys\n"
        "from workbench.engine.models.catalog import build_catalog\n"
        "from workbench.engine.running.backends.local import LocalRunner\n"
        "r = LocalRunner(build_catalog().get('smollm2-135m-instruct-q4_1'))\n"
        "r.load(256, 1)\n"
        "print(r.worker_pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert app.stdout is not None
        worker_pid = int(app.stdout.readline())
        worker = psutil.Process(worker_pid)
        assert worker.is_running()
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
        gone, alive = psutil.wait_procs([worker], timeout=5)
        assert worker in gone and not alive
    finally:
        app.kill()


def test_broken_files_fail_in_their_worker_and_the_caller_survives(
    tmp_path: Path, default_model_paths: dict[str, Path]
) -> None:
    real = default_model_paths["smollm2"].read_bytes()
    cases = {
        "empty.gguf": b"",
        "text.gguf": b"this is not a model\n" * 20,
        "truncated-header.gguf": real[:5000],
        "truncated-data.gguf": real[: len(real) // 2],
    }
    # A header our reader accepts, naming an architecture llama.cpp lacks.
    i = real.index(b"llama", real.index(b"general.architecture"))
    cases["unknown-arch.gguf"] = real[:i] + b"llamx" + real[i + 5 :]
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        entry = make_entry(name, path, "file")
        if name == "unknown-arch.gguf":
            assert entry.ok, entry.error  # passes the header check; fails in llama.cpp
        runner = LocalRunner(entry)
        try:
            events, _ = run(runner, QUESTION, GREEDY)
        finally:
            runner.close()
        assert isinstance(events[-1], p.Error), name
        assert events[-1].message, name
    # The calling process is still here and the real model still runs.
    good = LocalRunner(make_entry("good", default_model_paths["smollm2"], "file"))
    try:
        events, text = run(good, QUESTION, GREEDY)
    finally:
        good.close()
    assert text


def test_the_worker_itself_survives_loading_broken_files(
    tmp_path: Path, default_model_paths: dict[str, Path]
) -> None:
    """Past the header check: each broken file goes straight to a worker's
    llama.cpp, which must answer with an error (or die alone), never hang."""
    import queue

    from workbench.engine.running.worker import WorkerProcess

    real = default_model_paths["smollm2"].read_bytes()
    cases = {
        "empty.gguf": b"",
        "random.gguf": os.urandom(4096),
        "text.gguf": b"hello\n" * 100,
        "truncated-meta.gguf": real[:100_000],
        "truncated-data.gguf": real[: len(real) - 1_000_000],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        events: queue.Queue[p.Event] = queue.Queue()
        worker = WorkerProcess(events.put, events.put)
        try:
            worker.send(p.Load(str(path), 256, 1))
            event = events.get(timeout=60)
        finally:
            worker.close()
        assert isinstance(event, p.Error), (name, event)
        assert event.message, name


def test_a_cancel_that_arrives_before_its_run_still_applies(
    default_model_paths: dict[str, Path],
) -> None:
    import queue

    from workbench.engine.running.worker import WorkerProcess

    events: queue.Queue[p.Event] = queue.Queue()
    worker = WorkerProcess(events.put, events.put)
    try:
        worker.send(p.Load(str(default_model_paths["smollm2"]), 256, 1))
        assert isinstance(events.get(timeout=60), p.Loaded)
        params = GenParams(max_tokens=64, temperature=0).to_dict()
        worker.send(p.Cancel(7))  # an old run's cancel must not touch run 8
        worker.send(p.Cancel(9))  # run 9's cancel, sent before run 9 exists
        worker.send(p.Generate(8, QUESTION, params, 1))
        worker.send(p.Generate(9, QUESTION, params, 1))
        finished = {}
        while len(finished) < 2:
            event = events.get(timeout=60)
            if isinstance(event, p.Done):
                finished[event.id] = event
        assert finished[8].stop_reason in ("eos", "max_tokens")
        assert finished[8].stats.completion_tokens > 0
        assert finished[9].stop_reason == "cancelled"
    finally:
        worker.close()
