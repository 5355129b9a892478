"""A model behind an OpenAI-compatible server: llama.cpp's llama-server, Ollama,
vLLM, llama-cpp-python's server.

A panel names one by a ``[servers.NAME]`` table in the settings, or by a URL
given wherever a model id goes: ``http://127.0.0.1:8080/v1`` (the server's
only model) or ``http://127.0.0.1:8080/v1#MODEL``.

Completions stream as server-sent events from ``/v1/completions`` (raw mode)
and ``/v1/chat/completions`` (chat mode, where the server applies the
model's chat template). The standard OpenAI fields are sent with llama.cpp's
extra sampling fields (``top_k``, ``min_p``, ``repeat_penalty``); servers
that do not know them ignore them.

The runner's parts live beside it: ``remote_spec`` (which server, from a URL
or the settings), ``remote_http`` (requests, and ending a stream from another
thread) and ``remote_stream`` (a streamed completion as events, and what the
run measured as ``Stats``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from workbench.engine.models.hub_files import quant_from_name
from workbench.engine.models.modelinfo import format_bytes, format_count
from workbench.engine.prompts.tokens import pieces_from_bytes, reference_count
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner, RunnerError, next_id
from workbench.engine.running.backends.remote_http import (
    CONNECT_TIMEOUT_S,
    MAX_JSON,
    Http,
    RunConnection,
    TokenizeFailed,
    Unreachable,
)
from workbench.engine.running.backends.remote_spec import ServerSpec
from workbench.engine.running.backends.remote_stream import (
    Figures,
    num,
    read_stream,
    stats,
    stop_reason,
)
from workbench.engine.running.params import GenParams
from workbench.engine.sanitize import clean

DEFAULT_N_CTX = 4096

__all__ = ["RemoteRunner"]


class RemoteRunner(Runner):
    """A model on an OpenAI-compatible server. Nothing is sent until the first
    ``connect``, ``count`` or ``generate``; ``header`` and ``n_ctx_for`` never
    touch the network (a UI may call them on its event loop) and are filled in
    once ``connect`` has asked the server."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.id = spec.id
        self._http = Http(spec)
        self.model = spec.model
        self.header = self._make_header({})
        self._lock = threading.Lock()  # discovery
        self._ready = False
        self._announced = False
        self._connect_s = 0.0
        self._n_ctx_server = 0
        self._n_ctx_train = 0
        self._n_vocab = 0
        self._dialect = ""  # "llama.cpp", "vllm" or "" (unknown until connect)
        self._tokenizer: str | None = None  # how count() counts, found on first use
        self._counts: dict[p.Prompt, int] = {}
        self._run: RunConnection | None = None
        self._run_lock = threading.Lock()

    # -- what the panel shows -------------------------------------------------------

    def _make_header(self, meta: Mapping[str, Any]) -> Header:
        name = self.model or f"model at {self._http.shown}"
        if name.lower().endswith(".gguf"):
            name = name.replace("\\", "/").rsplit("/", 1)[-1]
        n_params = num(meta, "n_params")
        size = num(meta, "size")
        n_train = num(meta, "n_ctx_train")
        return Header(
            title=clean(name, max_len=120),
            arch="remote",
            params=format_count(int(n_params)) if n_params else "?",
            quant=quant_from_name(self.model) if self.model else "?",
            size=format_bytes(int(size)) if size else "?",
            n_ctx_train=int(n_train) if n_train else None,
            kind="server",
        )

    @property
    def uses_local_cpu(self) -> bool:
        return False

    @property
    def base_url(self) -> str:
        return self.spec.base_url

    def n_ctx_for(self, params: GenParams) -> int:
        """The server's context size if it said, else the configured one, else 4096."""
        return self._n_ctx_server or self.spec.n_ctx or DEFAULT_N_CTX

    @property
    def n_ctx_note(self) -> str:
        if self._n_ctx_server or self.spec.n_ctx:
            return ""
        table = f"[servers.{self.spec.name}]" if self.spec.name else "a [servers.NAME] table"
        return f"context size assumed {DEFAULT_N_CTX:,}: the server does not say (n_ctx in {table})"

    # -- asking the server ----------------------------------------------------------

    def connect(self) -> None:
        """Ask the server which model it serves and what it can do (once).

        Raises RunnerError with a message for the user.
        """
        with self._lock:
            if self._ready:
                return
            started = time.perf_counter()
            api = self._http
            path = f"{api.base_path}/models"
            try:
                status, data, raw = api.ask("GET", path)
            except Unreachable as exc:
                raise RunnerError(str(exc)) from None
            entries: list[dict[str, Any]] = []
            if status < 400 and isinstance(data, dict) and isinstance(data.get("data"), list):
                entries = [e for e in data["data"] if isinstance(e, dict) and "id" in e]
            elif status < 400 and isinstance(data, dict) and isinstance(data.get("models"), list):
                entries = [  # some servers list {"models": [{"name": ...}]}
                    {"id": e.get("name") or e.get("model"), **e}
                    for e in data["models"]
                    if isinstance(e, dict) and (e.get("name") or e.get("model"))
                ]
            elif not (status == 404 and self.model):
                raise RunnerError(api.error_message(status, raw, path))
            ids = [str(e["id"]) for e in entries]
            listed = ", ".join(clean(i, max_len=80) for i in ids[:12]) or "none"
            if self.model and ids and self.model not in ids:
                raise RunnerError(
                    f"{api.shown} has no model {clean(self.model, max_len=120)!r} "
                    f"(it serves: {listed})"
                )
            if not self.model:
                if len(ids) != 1:
                    how = "lists no models" if not ids else f"serves several models: {listed}"
                    raise RunnerError(f"{api.shown} {how}; name one: {self.spec.base_url}#MODEL")
                self.model = ids[0]
            entry = next((e for e in entries if str(e["id"]) == self.model), {})
            meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
            assert isinstance(meta, dict)
            if (n := num(entry, "max_model_len")) is not None:  # vLLM
                self._dialect, self._n_ctx_server = "vllm", int(n)
            elif n := num(entry, "n_ctx") or num(meta, "n_ctx"):  # a server that says so
                self._n_ctx_server = int(n)
            self._n_ctx_train = int(num(meta, "n_ctx_train") or 0)
            self._n_vocab = int(num(meta, "n_vocab") or 0)
            if not self._dialect:
                self._ask_props()
            self.header = self._make_header(meta)
            self._connect_s = time.perf_counter() - started
            self._ready = True

    def _ask_props(self) -> None:
        """llama.cpp's server tells its context size at /props."""
        try:
            status, data, _ = self._http.ask("GET", f"{self._http.root_path}/props")
        except Unreachable:
            return
        if status >= 400 or not isinstance(data, dict):
            return
        settings = data.get("default_generation_settings")
        n_ctx = num(settings, "n_ctx") if isinstance(settings, dict) else None
        n_ctx = n_ctx or num(data, "n_ctx")
        if n_ctx:
            self._dialect, self._n_ctx_server = "llama.cpp", int(n_ctx)

    @staticmethod
    def _messages(prompt: p.Prompt) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        return [*messages, {"role": "user", "content": prompt.text}]

    def _tokenize(self, how: str, prompt: p.Prompt) -> int | None:
        """Tokens by one server dialect; None if the server has no such endpoint."""
        api, root, chat = self._http, self._http.root_path, prompt.mode == "chat"
        if how == "llama.cpp":
            text = prompt.text
            if chat:
                path = f"{root}/apply-template"
                status, data, raw = api.ask("POST", path, {"messages": self._messages(prompt)})
                if status in (404, 405, 501):
                    return None
                if status >= 400 or not isinstance(data, dict):
                    raise TokenizeFailed(api.error_message(status, raw, path))
                text = str(data.get("prompt", ""))
            body: dict[str, Any] = {"content": text, "add_special": True, "parse_special": True}
            path = f"{root}/tokenize"
        elif how == "vllm":
            body = {"model": self.model}
            if chat:
                body.update(messages=self._messages(prompt), add_generation_prompt=True)
            else:
                body["prompt"] = prompt.text
            path = f"{root}/tokenize"
        else:  # llama-cpp-python
            text = f"{prompt.system}\n\n{prompt.text}" if chat and prompt.system else prompt.text
            body = {"input": text, "model": self.model}
            path = f"{root}/extras/tokenize"
        status, data, raw = api.ask("POST", path, body)
        if status in (404, 405, 501):
            return None
        if status >= 400:
            raise TokenizeFailed(api.error_message(status, raw, path))
        if isinstance(data, dict):
            if (count := num(data, "count")) is not None:
                return int(count)
            if isinstance(data.get("tokens"), list):
                return len(data["tokens"])
        return None

    def tokenize(self, prompt: p.Prompt, params: GenParams) -> p.Tokenized:
        """The prompt's tokens from llama.cpp's ``/tokenize`` with ``with_pieces``
        (in chat mode after ``/apply-template``). Other servers do not return
        token texts: RunnerError."""
        self.connect()
        if self._dialect != "llama.cpp":
            raise RunnerError(
                "this backend cannot show its tokens: only llama.cpp's llama-server "
                "returns the text of each token"
            )
        api, root = self._http, self._http.root_path
        try:
            text = prompt.text
            if prompt.mode == "chat":
                path = f"{root}/apply-template"
                status, data, raw = api.ask("POST", path, {"messages": self._messages(prompt)})
                if status >= 400 or not isinstance(data, dict):
                    raise RunnerError(api.error_message(status, raw, path))
                text = str(data.get("prompt", ""))
            path = f"{root}/tokenize"
            body = {"content": text, "add_special": True, "parse_special": True,
                    "with_pieces": True}  # fmt: skip
            status, data, raw = api.ask("POST", path, body)
        except Unreachable as exc:
            raise RunnerError(str(exc)) from None
        if status >= 400:
            raise RunnerError(api.error_message(status, raw, path))
        tokens = data.get("tokens") if isinstance(data, dict) else None
        ids: list[int] = []
        chunks: list[bytes] = []
        for item in tokens if isinstance(tokens, list) else [None]:
            piece = item.get("piece") if isinstance(item, dict) else None
            token = item.get("id") if isinstance(item, dict) else None
            if isinstance(piece, list) and all(isinstance(b, int) and 0 <= b < 256 for b in piece):
                piece = bytes(piece)  # a piece that is not valid UTF-8 comes as its bytes
            elif isinstance(piece, str):
                piece = piece.encode("utf-8", "surrogatepass")
            if not isinstance(token, int) or not isinstance(piece, bytes):
                raise RunnerError(
                    f"{api.url(path)} did not return token pieces (a llama-server older "
                    "than with_pieces?)"
                )
            ids.append(token)
            chunks.append(piece)
        return p.Tokenized(next_id(), ids, pieces_from_bytes(chunks))

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        """The server's own token count where it has a tokenize endpoint, else
        the cl100k estimate (labelled in ``note``)."""
        self.connect()
        notes = []
        n: int | None = None
        order = [self._tokenizer] if self._tokenizer else [
            d for d in (self._dialect, "llama-cpp-python") if d]  # fmt: skip
        try:
            for how in order:
                if how == "estimate":
                    break
                n = self._tokenize(how, prompt)
                if n is not None:
                    self._tokenizer = how
                    break
        except Unreachable as exc:
            raise RunnerError(str(exc)) from None
        except TokenizeFailed as exc:  # this time only: estimate, and say why
            notes.append(f"token count estimated with OpenAI cl100k: {exc}")
        if n is None:
            if not notes:
                self._tokenizer = "estimate"
                notes.append("token count estimated with OpenAI cl100k: the server has no "
                             "tokenize endpoint")  # fmt: skip
            text = f"{prompt.system}\n\n{prompt.text}" if prompt.system else prompt.text
            n = reference_count(text)
        elif self._tokenizer == "llama-cpp-python" and prompt.mode == "chat":
            notes.append("counted without the chat template (this server cannot apply it "
                         "on its own): the model reads more tokens than this")  # fmt: skip
        if self.n_ctx_note:
            notes.append(self.n_ctx_note)
        with self._run_lock:
            if len(self._counts) > 16:
                self._counts.clear()
            self._counts[prompt] = n
        return p.Counted(next_id(), n, "; ".join(notes))

    # -- generating -----------------------------------------------------------------

    def _body(self, prompt: p.Prompt, params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            # Not in OpenAI's API; llama.cpp's server and llama-cpp-python read them.
            "top_k": params.top_k,
            "min_p": params.min_p,
            "repeat_penalty": params.repeat_penalty,
        }
        if params.repeat_penalty != 1.0:
            body["repetition_penalty"] = params.repeat_penalty  # vLLM's name for it
        if params.stop:
            body["stop"] = list(params.stop)
        if prompt.mode == "chat":
            body["messages"] = self._messages(prompt)
        else:
            body["prompt"] = prompt.text
        return body

    def _path(self, prompt: p.Prompt) -> str:
        kind = "chat/completions" if prompt.mode == "chat" else "completions"
        return f"{self._http.base_path}/{kind}"

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        run = RunConnection()
        with self._run_lock:
            self._run = run
            n_prompt = self._counts.get(prompt, 0)
        run_id = next_id()
        conn: http.client.HTTPConnection | None = None
        try:
            try:
                self.connect()
            except RunnerError as exc:
                yield p.Error(run_id, str(exc), kind="load")
                return
            if not self._announced:
                self._announced = True
                yield p.Loaded(self._connect_s, 0, self.n_ctx_for(params), self._n_ctx_train,
                               self._n_vocab, True)  # fmt: skip
            # A counted prompt already carried the context note; say it once.
            note = "" if prompt in self._counts else self.n_ctx_note
            yield p.PromptStarted(run_id, n_prompt, 0, params.max_tokens, note)
            if run.cancelled.is_set():
                yield p.Done(run_id, "cancelled", self._stats(Figures(time.perf_counter()),
                                                              params, n_prompt))  # fmt: skip
                return
            body = self._body(prompt, params)
            path = self._path(prompt)
            api = self._http
            figures = Figures(time.perf_counter())
            try:
                conn = api.connection(min(self.spec.timeout, CONNECT_TIMEOUT_S))
                conn.connect()
                run.attach(conn)
                conn.request("POST", path, body=json.dumps(body).encode(),
                             headers=api.headers(stream=True))  # fmt: skip
                if conn.sock is not None:
                    conn.sock.settimeout(self.spec.timeout)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                if run.cancelled.is_set():
                    yield p.Done(run_id, "cancelled", self._stats(figures, params, n_prompt))
                else:
                    message = str(api.unreachable(exc, path, self.spec.timeout))
                    yield p.Error(run_id, message, kind="load")
                return
            if resp.status >= 400:
                raw = b""
                with contextlib.suppress(OSError, http.client.HTTPException):
                    raw = resp.read(MAX_JSON)
                yield p.Error(run_id, api.error_message(resp.status, raw, path), kind="server")
                return
            failure: BaseException | None = None
            try:
                yield from read_stream(resp, run_id, prompt.mode == "chat", figures, run.cancelled)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failure = exc
            if figures.usage.get("prompt_tokens") is None and n_prompt:
                figures.usage["prompt_tokens"] = n_prompt
            stats = self._stats(figures, params, n_prompt)
            if run.cancelled.is_set():
                yield p.Done(run_id, "cancelled", stats)
            elif figures.done or figures.finish:
                yield p.Done(run_id, stop_reason(figures, params), stats)
            else:
                yield p.Error(run_id, self._early_end(figures, failure, body, path), kind="stream")
        finally:
            if conn is not None:
                run.cancel()  # a consumer that stopped early ends the stream too
                conn.close()
            with self._run_lock:
                if self._run is run:
                    self._run = None

    def _stats(self, figures: Figures, params: GenParams, n_prompt: int) -> p.Stats:
        return stats(figures, params, n_prompt, self.n_ctx_for(params))

    def _early_end(
        self, figures: Figures, failure: BaseException | None, body: dict[str, Any], path: str
    ) -> str:
        if isinstance(failure, ValueError) and str(failure).startswith("the server reported"):
            why = clean(self._http.redact(str(failure)), max_len=400)
        elif isinstance(failure, TimeoutError):
            why = f"no data for {self.spec.timeout:g} s (timeout)"
        elif failure is not None:
            why = "the connection was cut"
        else:
            why = "the server closed the stream before it was done"
        if figures.chunks == 0 and failure is None:
            # Some servers (llama-cpp-python's) answer 200 and then end the stream
            # when the request fails; asked again without streaming, they say why.
            said = self._ask_why(body, path)
            if said:
                return said
        return f"stream ended early after {figures.chunks} tokens: {why}"

    def _ask_why(self, body: dict[str, Any], path: str) -> str:
        probe = {**body, "stream": False, "max_tokens": 1}
        probe.pop("stream_options", None)
        try:
            status, _, raw = self._http.ask("POST", path, probe, timeout=self.spec.timeout)
        except Unreachable as exc:
            return str(exc)
        return self._http.error_message(status, raw, path) if status >= 400 else ""

    def cancel(self) -> None:
        with self._run_lock:
            run = self._run
        if run is not None:
            run.cancel()

    def close(self) -> None:
        self.cancel()
