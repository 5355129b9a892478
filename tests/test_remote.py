"""Models on OpenAI-compatible servers, against real servers on 127.0.0.1.

The main peer is llama-cpp-python's own server (``python -m llama_cpp.server``)
running the default SmolLM2 model, started once for the module. A few cases
that server cannot produce (llama.cpp's /props, /tokenize and timings, an API
key, a server that never answers) use a small stdlib server below.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from workbench.engine.config import Settings, load_settings
from workbench.engine.models.catalog import build_catalog
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import RunnerError
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.backends.remote import RemoteRunner
from workbench.engine.running.backends.remote_spec import parse_url
from workbench.engine.running.compare import Comparison, Job
from workbench.engine.running.params import GenParams
from workbench.engine.running.runners import UnknownModel, make_runner

SMOL = "smollm2-135m-instruct-q4_1"
GREEDY = GenParams(temperature=0.0, max_tokens=8)
COUNTING = p.Prompt("Count from 1 to 100: 1, 2, 3, 4,", mode="raw")


LAUNCHER = Path(__file__).with_name("llama_server.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What uvicorn prints once the server listens (after the model has loaded).
_UP_LINE = b"Uvicorn running on "


def _copy_log(
    proc: subprocess.Popen[bytes], log: Path, up: threading.Event, said: list[bool]
) -> None:
    """The server's output into ``log``, all of it and for its whole life (a
    full pipe would stall it). ``up`` is set when the server says it listens
    (``said`` then holds True), or when its output ends without that."""
    assert proc.stdout is not None
    with log.open("wb") as out:
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if not said and _UP_LINE in line:
                said.append(True)
                up.set()
    up.set()


def _start_server(model: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        # llama-cpp-python's server, through a launcher that sets weight
        # repacking as the workbench does for this CPU.
        [sys.executable, str(LAUNCHER), "--model", str(model),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--n_threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    up = threading.Event()
    said: list[bool] = []
    threading.Thread(target=_copy_log, args=(proc, log, up, said), daemon=True).start()
    if not up.wait(timeout=120):
        proc.kill()
        pytest.fail(f"the model server did not come up:\n{log.read_text()[-3000:]}")
    if not said:
        proc.wait()
        pytest.fail(f"the model server exited:\n{log.read_text()[-3000:]}")
    base = f"http://127.0.0.1:{port}/v1"
    with urllib.request.urlopen(f"{base}/models", timeout=10) as resp:
        assert resp.status == 200, f"the model server answered {resp.status}"
    return proc, base


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(
    default_model_paths: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """llama-cpp-python's server on SmolLM2, for the whole module; its base URL."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    proc, base = _start_server(default_model_paths["smollm2"], log)
    try:
        yield base
    finally:
        _stop(proc)


def _run(runner: RemoteRunner, prompt: p.Prompt, params: GenParams) -> list[p.Event]:
    return list(runner.generate(prompt, params, 1))


# -- against llama-cpp-python's server --------------------------------------------------


@pytest.mark.slow
def test_a_remote_panel_runs_beside_a_local_one(server: str) -> None:
    local = LocalRunner(build_catalog(Settings()).get(SMOL))
    remote = RemoteRunner(parse_url(server))
    assert remote.header.kind == "server" and not remote.uses_local_cpu
    prompt = p.Prompt("The capital of France is", mode="raw")
    comparison = Comparison([Job(local, GREEDY), Job(remote, GREEDY)], prompt, total_threads=1)
    try:
        results = comparison.run()
    finally:
        local.close()
        remote.close()
    for result in results:
        assert result.ok, result.error
        assert result.text.strip()
        assert result.stop_reason in ("eos", "max_tokens")
    stats = results[1].stats
    assert stats is not None
    assert 0 < stats.completion_tokens <= 8 and stats.ttft_s > 0 and stats.n_threads == 0
    assert stats.prompt_tokens == results[1].budget.prompt_tokens  # type: ignore[union-attr]
    # The model's name came from the server; llama-cpp-python does not say its context.
    assert remote.header.title == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert remote.header.quant == "Q4_1"
    assert any("context size assumed 4,096" in note for note in results[1].notes)


@pytest.mark.slow
def test_counts_come_from_the_servers_tokenizer(server: str) -> None:
    runner = RemoteRunner(parse_url(server))
    text = "Tokenizers split words like antidisestablishmentarianism into pieces."
    request = urllib.request.Request(
        server.removesuffix("/v1") + "/extras/tokenize/count",
        data=json.dumps({"input": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        expected = json.load(resp)["count"]
    counted = runner.count(p.Prompt(text, mode="raw"), GREEDY)
    assert counted.n_tokens == expected
    assert "estimate" not in counted.note
    chat = runner.count(p.Prompt(text, system="Be brief."), GREEDY)
    assert chat.n_tokens > expected and "chat template" in chat.note


@pytest.mark.slow
def test_cancel_from_another_thread_ends_the_stream_at_once(server: str) -> None:
    runner = RemoteRunner(parse_url(server))
    params = GenParams(temperature=0.0, max_tokens=300)
    tokens = 0
    canceller: threading.Thread | None = None
    events = []
    started = time.monotonic()
    for event in runner.generate(COUNTING, params, 1):
        events.append(event)
        if isinstance(event, p.Token):
            tokens += 1
            if tokens == 3:
                canceller = threading.Thread(target=runner.cancel)
                canceller.start()
    assert canceller is not None
    canceller.join()
    done = events[-1]
    assert isinstance(done, p.Done) and done.stop_reason == "cancelled"
    assert tokens < 100 and time.monotonic() - started < 30
    # The server is still there for the next run.
    again = _run(runner, COUNTING, GREEDY)
    assert isinstance(again[-1], p.Done) and again[-1].stop_reason == "max_tokens"


@pytest.mark.slow
def test_a_server_killed_mid_stream_keeps_the_partial_text(
    default_model_paths: dict[str, Path], tmp_path: Path
) -> None:
    proc, base = _start_server(default_model_paths["smollm2"], tmp_path / "server.log")
    try:
        runner = RemoteRunner(parse_url(base))
        text, events = "", []
        for event in runner.generate(COUNTING, GenParams(temperature=0.0, max_tokens=400), 1):
            events.append(event)
            if isinstance(event, p.Token):
                text += event.text
                if sum(isinstance(e, p.Token) for e in events) == 2:
                    proc.send_signal(signal.SIGKILL)
    finally:
        _stop(proc)
    assert text.strip()
    error = events[-1]
    assert isinstance(error, p.Error), events[-3:]
    assert error.message.startswith("stream ended early after ")


@pytest.mark.slow
def test_the_servers_own_message_for_a_request_it_refuses(server: str) -> None:
    runner = RemoteRunner(parse_url(server))
    too_long = p.Prompt("word " * 2500, mode="raw")  # the server's context is 2,048
    comparison = Comparison([Job(runner, GREEDY)], too_long)
    result = comparison.run()[0]
    assert result.error is not None
    assert "answered 400" in result.error
    assert "maximum context length is 2048 tokens" in result.error

    wrong_path = RemoteRunner(parse_url(server.removesuffix("/v1") + "/v2"))
    error = _run(wrong_path, COUNTING, GREEDY)[-1]
    assert isinstance(error, p.Error)
    assert "answered 404: Not Found" in error.message and "ends in /v1" in error.message


@pytest.mark.slow
def test_an_unknown_model_name_is_refused_with_the_servers_list(server: str) -> None:
    runner = RemoteRunner(parse_url(server + "#no-such-model"))
    with pytest.raises(RunnerError, match=r"has no model 'no-such-model'.*SmolLM2"):
        runner.count(COUNTING, GREEDY)


@pytest.mark.slow
def test_compare_command_with_a_url_beside_a_local_model(server: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "compare", "-m", server, "-m", SMOL,
         "-p", "The sky is", "--mode", "raw", "--max-tokens", "8", "--temperature", "0",
         "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    remote, local = doc["models"]
    assert remote["id"] == server.removeprefix("http://")
    assert remote["model"]["title"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    for model in (remote, local):
        assert model["error"] is None and model["text"].strip()
        assert 0 < model["stats"]["completion_tokens"] <= 8


# -- against nothing at all ---------------------------------------------------------------


def test_connection_refused_is_a_message_not_an_exception() -> None:
    runner = RemoteRunner(parse_url(f"http://127.0.0.1:{_free_port()}/v1"))
    events = _run(runner, COUNTING, GREEDY)
    assert len(events) == 1 and isinstance(events[0], p.Error)
    assert "connection refused — is the server running?" in events[0].message
    assert events[0].message.startswith("cannot reach http://127.0.0.1:")
    with pytest.raises(RunnerError, match="connection refused"):
        runner.count(COUNTING, GREEDY)


# -- against a small server speaking llama.cpp's dialect --------------------------------


class LlamaCppLike(BaseHTTPRequestHandler):
    """llama-server's endpoints, answering from a script: /v1/models with its
    ``meta``, /props, /apply-template, /tokenize, and chat completions whose last
    chunk carries ``timings`` and ``usage``. Wants an API key."""

    protocol_version = "HTTP/1.0"  # a streamed body simply ends with the connection
    key = "sk-workbench-test-0123456789"
    stall: ClassVar[threading.Event | None] = None
    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.seen.append((self.command, self.path, dict(self.headers.items())))
        return body if isinstance(body, dict) else {}

    def _authorized(self) -> bool:
        got = self.headers.get("Authorization", "")
        if got == f"Bearer {self.key}":
            return True
        # A careless server that repeats what it was sent.
        self._json(401, {"error": {"message": f"Invalid API key: {got}", "code": 401}})
        return False

    def do_GET(self) -> None:
        self._body()
        if not self._authorized():
            return
        if self.path == "/v1/models":
            meta = {"n_ctx_train": 8192, "n_vocab": 49152, "n_params": 134515008,
                    "size": 98362432}  # fmt: skip
            self._json(200, {"object": "list", "data": [{"id": "/m/tiny-Q8_0.gguf", "meta": meta}]})
        elif self.path == "/props":
            self._json(200, {"default_generation_settings": {"n_ctx": 1536}})
        else:
            self._json(404, {"error": {"message": "File Not Found"}})

    def do_POST(self) -> None:
        body = self._body()
        if not self._authorized():
            return
        if self.path == "/apply-template":
            turns = "".join(f"<{m['role']}>{m['content']}\n" for m in body["messages"])
            self._json(200, {"prompt": turns + "<assistant>"})
        elif self.path == "/tokenize":
            self._json(200, {"tokens": list(range(len(body["content"].split())))})
        elif self.path == "/v1/chat/completions":
            if self.stall is not None:
                self.stall.wait(30)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            timings = {"cache_n": 2, "prompt_n": 5, "prompt_per_second": 456.0,
                       "predicted_n": 2, "predicted_per_second": 123.0}  # fmt: skip
            chunks = [
                {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
                {"choices": [{"delta": {"content": "Hel"}, "finish_reason": None}]},
                {"choices": [{"delta": {"content": "lo"}, "finish_reason": None}]},
                {"choices": [{"delta": {}, "finish_reason": "stop"}], "timings": timings,
                 "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
            ]  # fmt: skip
            for chunk in chunks:
                self.wfile.write(b": ping\n\ndata: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            self._json(404, {"error": {"message": "File Not Found"}})


@pytest.fixture
def llama_like() -> Iterator[str]:
    LlamaCppLike.seen = []
    LlamaCppLike.stall = None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), LlamaCppLike)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        if LlamaCppLike.stall is not None:
            LlamaCppLike.stall.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _configured(base: str, *extra: str) -> Settings:
    path = Path(os.environ["WORKBENCH_HOME"]) / "settings.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[servers.lab]", f'base_url = "{base}"', 'api_key_env = "LAB_KEY"', *extra]
    path.write_text("\n".join(lines) + "\n")
    return load_settings(path)


def test_a_configured_llama_cpp_server(llama_like: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY", LlamaCppLike.key)
    settings = _configured(llama_like)
    assert settings.warnings == []
    runner = make_runner("lab", settings, build_catalog(settings))
    assert isinstance(runner, RemoteRunner) and runner.id == "lab"

    prompt = p.Prompt("say hello", system="be kind")
    counted = runner.count(prompt, GREEDY)
    # Templated by the server, then tokenized by it (one token per word here):
    # "<system>be kind\n<user>say hello\n<assistant>"
    assert counted.n_tokens == 5 and counted.note == ""
    assert runner.n_ctx_for(GREEDY) == 1536  # from /props
    h = runner.header
    assert (h.title, h.params, h.quant, h.size, h.n_ctx_train) == (
        "tiny-Q8_0.gguf", "134.5M", "Q8_0", "93.8 MiB", 8192)  # fmt: skip

    events = _run(runner, prompt, GREEDY)
    assert "".join(e.text for e in events if isinstance(e, p.Token)) == "Hello"
    done = events[-1]
    assert isinstance(done, p.Done) and done.stop_reason == "eos"
    s = done.stats
    # The server's own figures win over the ones measured here.
    assert (s.gen_tps, s.prompt_tps, s.cached_tokens, s.prompt_tokens) == (123.0, 456.0, 2, 7)
    assert s.completion_tokens == 2 and s.n_ctx == 1536

    sent = [h for _method, path, h in LlamaCppLike.seen if path == "/v1/chat/completions"]
    assert sent and all(h["Authorization"] == f"Bearer {LlamaCppLike.key}" for h in sent)


def test_an_api_key_never_shows_in_messages(
    llama_like: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", "sk-wrong-key-that-must-stay-secret")
    settings = _configured(llama_like, 'model = "/m/tiny-Q8_0.gguf"')
    runner = make_runner("lab", settings, build_catalog(settings))
    error = _run(runner, p.Prompt("hi"), GREEDY)[-1]
    assert isinstance(error, p.Error) and "answered 401" in error.message
    assert "sk-wrong-key" not in error.message and "[api key]" in error.message
    assert "sk-wrong-key" not in runner.id + repr(runner.header)

    monkeypatch.delenv("LAB_KEY")
    unset = make_runner("lab", settings, build_catalog(settings))
    with pytest.raises(RunnerError, match=r"the API key comes from \$LAB_KEY, which is not set"):
        unset.count(p.Prompt("hi"), GREEDY)


def test_a_server_that_stops_answering_times_out(
    llama_like: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", LlamaCppLike.key)
    LlamaCppLike.stall = threading.Event()
    settings = _configured(llama_like, "timeout = 0.5")
    runner = make_runner("lab", settings, build_catalog(settings))
    started = time.monotonic()
    error = _run(runner, p.Prompt("hi"), GREEDY)[-1]
    assert isinstance(error, p.Error)
    assert "within 0.5 s (timeout)" in error.message
    assert time.monotonic() - started < 10


def test_server_references_and_settings_are_checked() -> None:
    catalog = build_catalog(Settings())
    with pytest.raises(UnknownModel, match="must not hold credentials"):
        make_runner("http://user:secret@127.0.0.1:8080/v1", Settings(), catalog)
    spec = parse_url("http://127.0.0.1:8080/v1/chat/completions#org/model:Q4")
    assert (spec.base_url, spec.model) == ("http://127.0.0.1:8080/v1", "org/model:Q4")
    assert parse_url("http://localhost:11434").base_url == "http://localhost:11434/v1"

    settings = _configured("http://127.0.0.1:1/v1", 'api_key = "sk-oops"', "n_ctx = 12",
                           "colour = 1")  # fmt: skip
    text = "\n".join(settings.warnings)
    assert "servers.lab.api_key is not read" in text and "sk-oops" not in text
    assert "servers.lab.n_ctx must be" in text and "unknown setting 'colour'" in text
    runner = make_runner("lab#other", settings, catalog)
    assert isinstance(runner, RemoteRunner)
    assert runner.id == "lab#other" and runner.n_ctx_for(GREEDY) == 4096
