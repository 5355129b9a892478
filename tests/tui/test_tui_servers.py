"""Model servers in the app: runners come from make_runner, so a URL or a
``[servers.NAME]`` name opens a RemoteRunner that connects in a thread; the
model picker lists configured servers and accepts a typed URL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from textual.widgets import Input, OptionList
from tui_support import Factory, fake_catalog  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.engine.running.backends.base import Runner
from workbench.engine.running.backends.remote import RemoteRunner
from workbench.tui.app import make_app
from workbench.tui.screens.picker import ModelPicker


class Server(BaseHTTPRequestHandler):
    """Just enough of llama-server: its model list, /props and a streamed chat."""

    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            meta = {"n_ctx_train": 8192, "n_params": 134515008, "size": 98362432}
            self._json({"object": "list", "data": [{"id": "/m/served-Q8_0.gguf", "meta": meta}]})
        elif self.path == "/props":
            self._json({"default_generation_settings": {"n_ctx": 1536}})
        else:
            self._json({"error": {"message": "File Not Found"}}, 404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v1/chat/completions":
            self._json({"error": {"message": "File Not Found"}}, 404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for chunk in (
            {"choices": [{"delta": {"content": "Hello from"}, "finish_reason": None}]},
            {"choices": [{"delta": {"content": " the server"}, "finish_reason": None}]},
            {"choices": [{"delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
        ):  # fmt: skip
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_app(models: list[str], settings: Settings | None = None, factory: Any = None) -> Any:
    """The app with its own runner factory (make_runner) and the small fake catalog."""
    return make_app(settings=settings or Settings(scan_hf_cache=False), models=models,
                    prompt="say hello", runner_factory=factory, catalog=fake_catalog(),
                    cursor_blink=False)  # fmt: skip


async def test_a_url_panel_connects_and_shows_the_servers_model(server: str, drive):
    app = server_app([server])
    async with drive(app) as d:
        panel = app.panels[0]
        assert isinstance(panel.runner, RemoteRunner)
        # connect() ran in the opening thread: the name and context size are the server's.
        assert panel.title == "served-Q8_0.gguf" and panel.state == "idle"
        header = str(panel.query_one(".panel-header").render())
        assert "remote" in header and "Q8_0" in header and "ctx 1,536 of 8,192" in header
        assert panel.meter.n_ctx == 1536
        await d.press("ctrl+r")
        await d.until(lambda: not app.running, "the run")
        await d.settle()
        assert panel.state == "done" and panel.output.text == "Hello from the server"


async def test_a_configured_server_opens_by_name(server: str, drive):
    settings = Settings(scan_hf_cache=False, servers={"lab": {"base_url": server}})
    app = server_app(["lab"], settings)
    async with drive(app):
        panel = app.panels[0]
        assert isinstance(panel.runner, RemoteRunner) and panel.runner.id == "lab"
        assert panel.title == "served-Q8_0.gguf"


async def test_a_server_that_is_not_there_fails_its_panel_with_the_reason(drive):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    app = server_app([url, "smollm2"], factory=None)
    async with drive(app):
        down, _local = app.panels
        assert down.state == "error" and down.runner is None
        assert "connection refused" in down.status_text
        assert "Traceback" not in down.status_text


async def test_the_picker_lists_configured_servers_and_takes_a_typed_url(
    server: str, build_app, drive
):
    settings = Settings(
        scan_hf_cache=False,
        servers={"lab": {"base_url": "http://10.0.0.5:8080/v1", "model": "qwen"},
                 "gemma": {"base_url": server}},
    )  # fmt: skip
    factory = Factory()

    def runners(ref: str) -> Runner:  # scripted models, real servers
        from workbench.engine.running.runners import make_runner

        if ref.startswith("http") or ref in settings.servers:
            return make_runner(ref, settings, fake_catalog())
        return factory(ref)

    app = build_app(models=["smollm2"], settings=settings, runner_factory=runners)
    async with drive(app) as d:
        await d.press("ctrl+n")
        await d.settle()
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        olist = picker.query_one(OptionList)
        lines = {olist.get_option_at_index(i).id: str(olist.get_option_at_index(i).prompt)
                 for i in range(olist.option_count)}  # fmt: skip
        assert "lab" in lines and "server" in lines["lab"]
        assert "http://10.0.0.5:8080/v1#qwen" in lines["lab"]
        # The catalog's "gemma" would be opened as the server of that name: the
        # picker offers the file instead, so both stay reachable.
        assert "/models/gemma.gguf" in lines and "gemma" in lines
        await d.press(*"serv")  # filters servers like models
        assert [olist.get_option_at_index(i).id for i in range(olist.option_count)] == [
            "lab", "gemma"
        ]  # fmt: skip
        # A typed URL is offered first; a URL with credentials is refused, disabled.
        picker.query_one("#picker-filter", Input).value = "http://user:pw@host:1/v1"
        await d.settle()
        first = olist.get_option_at_index(0)
        assert first.disabled and "must not hold credentials" in str(first.prompt)
        picker.query_one("#picker-filter", Input).value = server
        await d.settle()
        first = olist.get_option_at_index(0)
        assert first.id == server and str(first.prompt) == f"server: {server}"
        await d.press("enter")
        await d.until(lambda: len(app.panels) == 2 and app.panels[1].state == "idle",
                      "the server panel")  # fmt: skip
        assert app.panels[1].title == "served-Q8_0.gguf"
