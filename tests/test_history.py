"""The history: runs saved as they stream, found again after a crash, upgraded
from old schemas, listed, shown and exported.

Real-model tests use SmolLM2 with a handful of tokens; everything else uses
made-up runs or scripted runners.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from workbench import cli
from workbench.engine.history import export
from workbench.engine.history.recorder import Recorder, fingerprint
from workbench.engine.history.store import (
    SCHEMA_VERSION,
    ModelRecord,
    Panel,
    Run,
    Store,
    StoreError,
    history_path,
    open_store_or_none,
    process_identity,
)
from workbench.engine.models import bundled
from workbench.engine.models.catalog import build_catalog
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner, next_id
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.backends.scripted import ScriptedRunner
from workbench.engine.running.compare import Comparison, Job
from workbench.engine.running.params import GenParams

SMOL = "smollm2-135m-instruct-q4_1"
T = TypeVar("T")


def workbench(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_for(
    condition: Callable[[], T | None], timeout: float = 60.0, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        pause.wait(0.1)
    pytest.fail(f"timed out waiting for {what}")


def smol_sha256() -> str:
    return next(m.sha256 for m in bundled.load_catalog() if m.id == SMOL)


def made_up_run(prompt: str = "Name three colours.", **changes: Any) -> Run:
    """A finished two-panel run, as the recorder would have stored it."""
    started = 1_750_000_000.25
    panels = [
        Panel(
            position=0,
            model=ModelRecord(
                id="tiny-a",
                title="Tiny | A",
                path="/models/tiny-a.gguf",
                sha256="ab" * 32,
                fingerprint="cd" * 32,
                size=1234,
                mtime=1_700_000_000.5,
                architecture="llama",
                n_params=134_515_008,
                params_label="134.5M",
                quant="Q4_1",
                n_ctx_train=8192,
                kind="instruct",
            ),
            params={"max_tokens": 8, "temperature": 0.0, "stop": ["\n\n"]},
            overrides={"temperature": 0.0},
            n_ctx=2048,
            state="done",
            text="Red, green and blue. ```` and \x1b[31mred\x1b[0m ünïcode",
            stop_reason="max_tokens",
            stats=p.Stats(
                load_s=0.4,
                prompt_tokens=30,
                ttft_s=0.12,
                prompt_tps=250.0,
                gen_tps=40.5,
                completion_tokens=8,
                total_s=0.3,
                n_ctx=2048,
                max_tokens=8,
                n_threads=1,
            ),
            notes=["max tokens clipped to 4"],
            started_at=started + 0.5,
            finished_at=started + 1.5,
        ),
        Panel(
            position=1,
            model=ModelRecord(id="tiny-b", title="tiny-b"),
            params={"max_tokens": 8, "temperature": 0.7, "stop": ["\n\n"]},
            state="error",
            error="model worker killed by signal SIGKILL (9)",
            started_at=started + 0.5,
            finished_at=started + 0.7,
        ),
    ]
    run = Run(
        id=None,
        started_at=started,
        prompt=prompt,
        system="Be brief.",
        mode="chat",
        schedule="parallel",
        threads=2,
        params={"max_tokens": 8, "temperature": 0.7, "stop": ["\n\n"]},
        source="app",
        state="finished",
        finished_at=started + 2.0,
        panels=panels,
    )
    return dataclasses.replace(run, **changes)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open()
    yield s
    s.close()


# -- real runs ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_cli_compare_lands_in_history_with_everything(
    default_model_paths: dict[str, Path],
) -> None:
    out = workbench(
        "compare", "-m", SMOL, "-p", "Say hello.", "--system", "Be brief.",
        "--max-tokens", "8", "--temperature", "0", "--threads", "1", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "saved as run 1" in out.stderr
    doc = json.loads(out.stdout)["models"][0]

    with Store.open() as store:
        run = store.get_run(1)
    assert run is not None
    assert (run.prompt, run.system, run.mode, run.source) == (
        "Say hello.",
        "Be brief.",
        "chat",
        "cli",
    )
    assert run.state == "finished" and run.threads == 1 and run.schedule == "parallel"
    assert run.params["max_tokens"] == 8 and run.params["temperature"] == 0.0
    assert run.finished_at is not None and run.started_at <= run.finished_at <= time.time()

    (panel,) = run.panels
    m = panel.model
    assert m.id == SMOL and m.title == "SmolLM2-135M-Instruct"
    assert m.path == str(default_model_paths["smollm2"])
    assert m.sha256 == smol_sha256()  # from the catalog: the file is not hashed
    assert m.fingerprint == fingerprint(default_model_paths["smollm2"])
    assert m.size == default_model_paths["smollm2"].stat().st_size
    assert (m.architecture, m.params_label, m.quant, m.kind) == (
        "llama",
        "134.5M",
        "Q4_1",
        "instruct",
    )
    assert m.n_params and m.n_ctx_train == 8192 and panel.n_ctx == doc["n_ctx"]
    assert panel.params == doc["params"] and panel.overrides == {}

    assert panel.text == doc["text"] and panel.text
    assert panel.state == "done" and panel.stop_reason == doc["stop_reason"]
    assert panel.stats is not None and panel.stats.to_dict() == doc["stats"]
    assert panel.stats.completion_tokens <= 8 and panel.error is None
    assert panel.started_at and panel.finished_at
    assert run.started_at <= panel.started_at <= panel.finished_at <= run.finished_at


@pytest.mark.slow
def test_a_comparison_with_a_recorder_lands_in_history_as_the_app_runs_it(
    default_model_paths: dict[str, Path], store: Store
) -> None:
    shared = GenParams(max_tokens=8, temperature=0.7)
    smol = LocalRunner(build_catalog().get(SMOL))
    broken = ScriptedRunner("broken", "", fail="could not load broken.gguf: truncated")
    too_small = ScriptedRunner("too-small", "never", n_ctx=4)
    jobs = [
        Job(smol, shared.with_overrides({"temperature": 0.0})),
        Job(broken, shared),
        Job(too_small, shared),
    ]
    prompt = p.Prompt("Name a colour.", mode="chat")
    warnings: list[str] = []
    recorder = Recorder(store, source="app", warn=warnings.append)
    seen: list[tuple[int, p.Event]] = []

    def on_event(i: int, event: p.Event) -> None:
        recorder.on_event(i, event)
        seen.append((i, event))

    comparison = Comparison(jobs, prompt, total_threads=1, on_event=on_event)
    run_id = recorder.start_comparison(comparison, shared)
    assert run_id is not None
    try:
        results = comparison.run()
    finally:
        recorder.finish(comparison.results)
        smol.close()

    assert not warnings
    run = store.get_run(run_id)
    assert run is not None and run.state == "finished" and run.source == "app"
    assert run.params == shared.to_dict()
    done, failed, refused = run.panels
    assert done.text == results[0].text and done.text
    assert done.state == "done" and done.stats == results[0].stats
    assert done.overrides == {"temperature": 0.0} and done.params["temperature"] == 0.0
    assert done.model.sha256 == smol_sha256()
    assert failed.state == "error" and failed.error and "truncated" in failed.error
    assert failed.model.path is None and failed.model.architecture == "llama"
    assert refused.state == "refused" and refused.error and refused.error.startswith("refused")
    assert refused.text == ""


@pytest.mark.slow
def test_a_killed_run_comes_back_interrupted_with_its_partial_text(
    default_model_paths: dict[str, Path], tmp_path: Path
) -> None:
    errors = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "compare", "-m", SMOL, "-p", "1, 2, 3, 4, 5,",
         "--mode", "raw", "--max-tokens", "2000", "--temperature", "0", "--threads", "1",
         "--json"],
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )  # fmt: skip
    try:

        def partial_text() -> tuple[int, str] | None:
            if proc.poll() is not None:
                pytest.fail(f"compare ended early: {(tmp_path / 'stderr.txt').read_text()}")
            if not history_path().exists():
                return None
            with Store.open() as s:
                run_id = s.latest_run_id()
                run = s.get_run(run_id) if run_id else None
            if run is None or not run.panels[0].text:
                return None
            assert run.state == "running" and run.id is not None  # its process is alive
            return run.id, run.panels[0].text

        run_id, seen_text = wait_for(partial_text, 120, "streamed text in the history")
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers, "the model worker should be running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, "the model worker outlived the killed compare"
    finally:
        proc.kill()
        proc.wait()
        errors.close()

    with Store.open() as s:
        assert s.interrupted == [run_id]
        run = s.get_run(run_id)
    assert run is not None and run.state == "interrupted" and run.finished_at
    (panel,) = run.panels
    assert panel.state == "interrupted" and panel.stats is None
    assert panel.text.startswith(seen_text)


@pytest.mark.slow
def test_a_corrupt_history_does_not_stop_compare(default_model_paths: dict[str, Path]) -> None:
    path = history_path()
    path.parent.mkdir(parents=True)
    junk = os.urandom(8192)
    path.write_bytes(junk)
    out = workbench("compare", "-m", SMOL, "-p", "Say hello.", "--max-tokens", "8",
                    "--temperature", "0", "--threads", "1")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "history off:" in out.stderr and "not a history database" in out.stderr
    assert "saved as run" not in out.stderr
    assert "TTFT" in out.stdout and "SmolLM2-135M-Instruct" in out.stdout
    assert path.read_bytes() == junk  # the user's file is left for them to look at


# -- recording ----------------------------------------------------------------------


class HeldRunner(Runner):
    """Starts, waits for ``step``, streams one token, then waits for ``release``."""

    def __init__(self) -> None:
        self.id = "held"
        self.header = Header(title="Held")
        self.step = threading.Event()
        self.release = threading.Event()

    def n_ctx_for(self, params: GenParams) -> int:
        return 2048

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        return p.Counted(next_id(), 3)

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        run = next_id()
        yield p.PromptStarted(run, 3, 0, params.max_tokens)
        self.step.wait(30)
        yield p.Token(run, "Hello")
        self.release.wait(30)
        yield p.Token(run, " there")
        yield p.Done(run, "eos", p.Stats(completion_tokens=2))

    def cancel(self) -> None:
        self.step.set()
        self.release.set()

    def close(self) -> None:
        pass


def test_text_from_a_stream_gone_quiet_is_saved_by_the_timer(store: Store) -> None:
    runner = HeldRunner()
    # A long interval: "Hello" arrives well within it of the previous save,
    # and no token follows, so only the recorder's own timer can save it.
    recorder = Recorder(store, source="app", interval=1.0)
    comparison = Comparison([Job(runner, GenParams())], p.Prompt("Hi"), on_event=recorder.on_event)
    run_id = recorder.start_comparison(comparison, GenParams())
    assert run_id is not None
    thread = threading.Thread(target=comparison.run)
    thread.start()
    try:
        with Store.open() as reader:

            def panel() -> Panel:
                run = reader.get_run(run_id)
                assert run is not None
                return run.panels[0]

            wait_for(lambda: panel().state == "running", 10, "the start of the run")
            runner.step.set()
            wait_for(lambda: panel().text == "Hello", 10, "the timer's save")
            assert panel().state == "running" and not runner.release.is_set()
    finally:
        runner.release.set()
        thread.join()
        recorder.finish(comparison.results)
    run = store.get_run(run_id)
    assert run is not None and run.panels[0].text == "Hello there"
    assert run.panels[0].state == "done" and run.panels[0].stop_reason == "eos"
    assert run.panels[0].stats == p.Stats(completion_tokens=2)


def test_a_failing_disk_is_reported_once_and_the_run_goes_on() -> None:
    broken = Store.open()
    warnings: list[str] = []
    recorder = Recorder(broken, warn=warnings.append)
    runner = ScriptedRunner("s", "one two three four")
    comparison = Comparison([Job(runner, GenParams())], p.Prompt("Hi"), on_event=recorder.on_event)
    assert recorder.start_comparison(comparison, GenParams()) is not None
    broken.close()  # every write from now on fails
    results = comparison.run()
    recorder.finish(results)
    assert results[0].text == "one two three four"
    assert len(warnings) == 1 and "could not save run 1" in warnings[0]


def test_a_run_whose_process_is_gone_becomes_interrupted_and_a_live_one_does_not(
    store: Store,
) -> None:
    running = made_up_run(state="running", finished_at=None)
    running.panels[1] = dataclasses.replace(
        running.panels[1], state="running", text="partial", error=None, finished_at=None
    )
    pid, started = process_identity()
    # Same pid, another start time: the pid was reused by a new process.
    dead = store.create_run(running, pid=pid, pid_started=started - 100)
    live = store.create_run(running, pid=pid, pid_started=started)
    store.close()

    with Store.open() as reopened:
        assert reopened.interrupted == [dead]
        run = reopened.get_run(dead)
        assert run is not None and run.state == "interrupted"
        assert [pl.state for pl in run.panels] == ["done", "interrupted"]
        assert run.panels[1].text == "partial"
        still = reopened.get_run(live)
        assert still is not None and still.state == "running"


# -- opening ------------------------------------------------------------------------


def test_a_corrupt_file_gives_a_clear_message_and_history_off() -> None:
    path = history_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match=r"damaged or not a history database.*move it aside"):
        Store.open()
    warnings: list[str] = []
    assert open_store_or_none(warnings.append) is None
    assert len(warnings) == 1 and str(path) in warnings[0]


def test_a_locked_database_gives_a_clear_message_and_history_off() -> None:
    Store.open().close()
    holder = sqlite3.connect(history_path(), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another program"):
            Store.open(busy_timeout=0.1)
        warnings: list[str] = []
        assert open_store_or_none(warnings.append, busy_timeout=0.1) is None
        assert warnings and "locked" in warnings[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    Store.open(busy_timeout=0.1).close()


# The first schema as it shipped, frozen here: migrations must keep upgrading it.
SCHEMA_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, started_at REAL NOT NULL, finished_at REAL,
    updated_at REAL NOT NULL, state TEXT NOT NULL, source TEXT NOT NULL,
    prompt TEXT NOT NULL, system TEXT NOT NULL, mode TEXT NOT NULL,
    schedule TEXT NOT NULL, threads INTEGER NOT NULL, params TEXT NOT NULL,
    pid INTEGER, pid_started REAL
);
CREATE TABLE panels (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, model_id TEXT NOT NULL, model_title TEXT NOT NULL,
    model_path TEXT, model_sha256 TEXT, model_fingerprint TEXT, model_size INTEGER,
    model_mtime REAL, architecture TEXT NOT NULL, n_params INTEGER,
    params_label TEXT NOT NULL, quant TEXT NOT NULL, n_ctx_train INTEGER,
    kind TEXT NOT NULL, n_ctx INTEGER, params TEXT NOT NULL, overrides TEXT NOT NULL,
    state TEXT NOT NULL, text TEXT NOT NULL DEFAULT '', stop_reason TEXT, error TEXT,
    stats TEXT, started_at REAL, finished_at REAL, updated_at REAL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX runs_state ON runs(state);
INSERT INTO runs VALUES (7, 1700000000.0, 1700000003.0, 1700000003.0, 'finished', 'cli',
    'Old prompt', '', 'raw', 'sequential', 2, '{"max_tokens": 16}', 4242, 1699999999.0);
INSERT INTO panels VALUES (7, 0, 'old-model', 'Old Model', '/m/old.gguf', NULL, 'ff', 10,
    1.0, 'gpt2', 124000000, '124.0M', 'Q8_0', 1024, 'base', 1024, '{"max_tokens": 16}', '{}',
    'done', 'The old completion', 'eos', NULL, '{"completion_tokens": 3, "gen_tps": 9.5}',
    1700000000.5, 1700000002.0, 1700000002.0);
PRAGMA user_version = 1;
"""


def test_a_database_with_the_first_schema_is_upgraded_and_keeps_its_runs() -> None:
    path = history_path()
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as old:
        old.executescript(SCHEMA_V1)
    old.close()

    with Store.open() as store:
        assert store.version == SCHEMA_VERSION >= 2
        run = store.get_run(7)
        assert run is not None
        assert (run.prompt, run.mode, run.schedule, run.note) == (
            "Old prompt",
            "raw",
            "sequential",
            "",
        )
        (panel,) = run.panels
        assert panel.model.id == "old-model" and panel.model.architecture == "gpt2"
        assert panel.text == "The old completion" and panel.notes == []
        assert panel.stats == p.Stats(completion_tokens=3, gen_tps=9.5)
        # The upgraded database takes new runs and notes.
        store.set_note(7, "kept after the upgrade")
        new_id = store.import_run(made_up_run())
        assert [r.id for r in store.list_runs(model="old")] == [7]
        imported = store.get_run(new_id)
        assert imported is not None and imported.panels[0].notes == ["max tokens clipped to 4"]
    with Store.open() as again:
        noted = again.get_run(7)
        assert noted is not None and noted.note == "kept after the upgrade"


def test_a_database_from_a_newer_workbench_is_refused_not_damaged() -> None:
    path = history_path()
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as newer:
        newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(StoreError, match="newer version of workbench"):
        Store.open()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    check.close()


# -- reading and exporting ----------------------------------------------------------


def test_list_runs_filters_by_text_and_model_newest_first(store: Store) -> None:
    a = store.import_run(made_up_run("Write a haiku about 100% cotton_socks"))
    b = store.import_run(made_up_run("Translate: bonjour", started_at=1_760_000_000.0))
    other = made_up_run("Summarise this", started_at=1_770_000_000.0)
    other.panels = [dataclasses.replace(other.panels[1], model=ModelRecord("gemma-3", "Gemma 3"))]
    c = store.import_run(other)

    assert [r.id for r in store.list_runs()] == [c, b, a]
    assert [r.id for r in store.list_runs(limit=2)] == [c, b]
    assert [r.id for r in store.list_runs(search="HAIKU")] == [a]
    assert [r.id for r in store.list_runs(search="100%")] == [a]
    assert store.list_runs(search="100%%") == []  # % is literal, not a wildcard
    assert [r.id for r in store.list_runs(search="_socks")] == [a]
    assert [r.id for r in store.list_runs(search="green and blue")] == [b, a]  # completions
    assert [r.id for r in store.list_runs(search="be brief")] == [c, b, a]  # system prompt
    assert [r.id for r in store.list_runs(model="tiny")] == [b, a]
    assert [r.id for r in store.list_runs(model="gemma")] == [c]
    assert [r.id for r in store.list_runs(model="Gemma 3")] == [c]  # by name
    assert [r.id for r in store.list_runs(search="bonjour", model="tiny-b")] == [b]
    summary = store.list_runs(search="bonjour")[0]
    assert summary.title == "Translate: bonjour" and summary.models == ["tiny-a", "tiny-b"]
    assert summary.states == ["done", "error"] and summary.state == "finished"
    assert store.get_run(9999) is None


def test_json_export_loads_back_to_the_same_run_and_imports(store: Store) -> None:
    original = store.get_run(store.import_run(made_up_run()))
    assert original is not None
    text = export.to_json(original)
    assert export.from_json(text) == original
    assert json.loads(text)["run"]["panels"][0]["stats"]["gen_tps"] == 40.5

    copy = store.get_run(store.import_run(export.from_json(text)))
    assert copy is not None and copy.id != original.id
    assert dataclasses.replace(copy, id=original.id) == original

    for bad in ("not json", "[]", '{"format": "other"}', text.replace('"done"', '"finito"')):
        with pytest.raises(ValueError):
            export.from_json(bad)


def test_the_markdown_report_is_safe_and_complete(store: Store) -> None:
    run = store.get_run(store.import_run(made_up_run("Show me ``` fences")))
    assert run is not None
    md = export.to_markdown(run)
    assert md.startswith(f"# Run {run.id}: ")
    assert "````text\nShow me ``` fences\n````" in md  # longer than the prompt's run
    assert "`````\nRed, green and blue. ```` and red ünïcode\n`````" in md
    assert "\x1b" not in md
    assert "## System prompt\n\n```text\nBe brief.\n```" in md
    header = (
        "| # | model | arch | params | quant | ctx | TTFT | prompt tok/s | gen tok/s | tokens |"
    )
    assert header in md
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert "Tiny \\| A (tiny-a)" in row  # a pipe in a model name cannot break the table
    for cell in (
        "134.5M",
        "Q4\\_1",
        "2,048",
        "0.12 s",
        "250.0",
        "40.5",
        "| 8 |",
        "done (max tokens)",
    ):
        assert cell in row
    assert "| 2 | tiny-b |" in md and "| error |" in md
    assert "### 2. tiny-b" in md and "**Error:** model worker killed by signal SIGKILL (9)" in md
    assert "*Note:* max tokens clipped to 4" in md and "own settings: temperature=0.0" in md


def test_history_show_and_export_commands(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = store.import_run(made_up_run("First prompt\nsecond line"))
    second = store.import_run(made_up_run("[bold]Other[/bold] \x1b]0;title\x07prompt"))

    assert cli.main(["history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1]["prompt"] == "First prompt" and rows[1]["states"] == ["done", "error"]

    assert cli.main(["history", "--search", "first", "--limit", "5"]) == 0
    listing = capsys.readouterr().out
    assert "First prompt" in listing and "Other" not in listing

    assert cli.main(["history"]) == 0
    listing = capsys.readouterr().out
    assert "[bold]Other[/bold]" in listing and "\x1b" not in listing  # no markup, no escapes

    assert cli.main(["show", str(first)]) == 0
    shown = capsys.readouterr().out
    assert "First prompt\n    second line" in shown
    assert "Red, green and blue. ```` and red ünïcode" in shown and "\x1b" not in shown
    assert "error: model worker killed" in shown and "own settings temperature=0.0" in shown

    target = tmp_path / "run.json"
    assert cli.main(["export", "last", "--format", "json", "-o", str(target)]) == 0
    assert export.from_json(target.read_text()) == store.get_run(second)
    assert cli.main(["export", str(first)]) == 0
    assert capsys.readouterr().out.startswith(f"# Run {first}: First prompt")

    with pytest.raises(SystemExit, match="no run 99"):
        cli.main(["show", "99"])


def test_the_fingerprint_is_cheap_and_sees_the_ends_of_the_file(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    data = bytearray(os.urandom(3 << 20))
    model.write_bytes(data)
    first = fingerprint(model)
    data[len(data) // 2] ^= 0xFF  # the middle is not read
    model.write_bytes(data)
    assert fingerprint(model) == first
    data[-1] ^= 0xFF
    model.write_bytes(data)
    assert fingerprint(model) != first
