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

Plain ``http.client`` rather than a client library: ``cancel`` comes from
another thread, and shutting down the socket under a blocked read is the one
way to end a stream at once whatever the server is doing.

The API key is read from the environment variable the settings name, at the
moment of each request. It goes into the Authorization header and nowhere
else: not into ids, titles, history or error messages (a server that echoes
it back has it masked).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from workbench import __version__
from workbench.engine.errors import WorkbenchError
from workbench.engine.models.modelinfo import format_bytes, format_count
from workbench.engine.prompts.tokens import pieces_from_bytes, reference_count
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner, RunnerError, next_id
from workbench.engine.running.params import GenParams
from workbench.engine.sanitize import clean

DEFAULT_TIMEOUT_S = 300.0  # a long prompt on a slow server can take minutes before a token
DEFAULT_N_CTX = 4096
CONNECT_TIMEOUT_S = 10.0
ASK_TIMEOUT_S = 15.0  # model list, properties, token counts
_MAX_JSON = 8 << 20  # bytes read from a JSON answer at most
_MAX_LINE = 4 << 20  # bytes in one line of an event stream at most
_ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/models")

__all__ = ["RemoteRunner", "ServerSpec", "SpecError", "looks_like_url", "parse_url", "spec_for"]


class SpecError(WorkbenchError, ValueError):
    """A server reference that cannot be used; the message says why."""


@dataclass(frozen=True)
class ServerSpec:
    """Where a remote model lives and how to talk to it.

    ``base_url`` is the API root (``http://host:port/v1``). ``model`` empty
    means the server's only model. ``api_key_env`` names the environment
    variable holding the key (empty: no key). ``n_ctx`` is the context size
    to assume when the server does not say (0: the default).
    """

    base_url: str
    model: str = ""
    api_key_env: str = ""
    n_ctx: int = 0
    timeout: float = DEFAULT_TIMEOUT_S
    name: str = ""

    @property
    def id(self) -> str:
        """The id shown for a panel: the settings name, or host, port and path."""
        if self.name:
            base = self.name
        else:
            parts = urlsplit(self.base_url)
            base = f"{parts.netloc}{parts.path}"
        return f"{base}#{self.model}" if self.model else base


def looks_like_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


def parse_url(ref: str, **extra: Any) -> ServerSpec:
    """``http(s)://host[:port][/path][#model]`` as a ServerSpec; SpecError if not usable.

    A bare host gets ``/v1``; a pasted endpoint URL (``.../v1/chat/completions``)
    is cut back to its API root.
    """
    shown = clean(ref.split("#", 1)[0], max_len=200)
    try:
        parts = urlsplit(ref.strip())
        port = parts.port
    except ValueError:
        raise SpecError(f"not a usable server URL: {shown}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SpecError(f"not a server URL: {shown} (expected http://HOST:PORT/v1)")
    if parts.username or parts.password:
        raise SpecError(
            "a server URL must not hold credentials: put the key in an environment variable "
            "and name it with api_key_env in a [servers.NAME] table of the settings"
        )
    if parts.query:
        raise SpecError(f"a server URL takes no query string: {shown}")
    path = parts.path.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if path.endswith(suffix):
            path = path.removesuffix(suffix)
            break
    path = path or "/v1"
    host = parts.hostname
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    model = unquote(parts.fragment) if parts.fragment else extra.pop("model", "")
    return ServerSpec(f"{parts.scheme.lower()}://{netloc}{path}", model=model, **extra)


def spec_for(ref: str, servers: Mapping[str, Mapping[str, Any]]) -> ServerSpec | None:
    """The server a model reference names: a URL, or ``NAME`` / ``NAME#MODEL`` from the
    settings' ``servers`` table. None when it names no server (a catalog id or a path).
    """
    if looks_like_url(ref):
        return parse_url(ref)
    name, _, model = ref.partition("#")
    table = servers.get(name)
    if table is None:
        return None
    base = str(table.get("base_url", ""))
    spec = parse_url(
        base.split("#", 1)[0],
        api_key_env=str(table.get("api_key_env", "") or ""),
        n_ctx=int(table.get("n_ctx", 0) or 0),
        timeout=float(table.get("timeout", DEFAULT_TIMEOUT_S) or DEFAULT_TIMEOUT_S),
    )
    chosen = model or str(table.get("model", "") or "")
    return ServerSpec(spec.base_url, chosen, spec.api_key_env, spec.n_ctx, spec.timeout, name)


# -- HTTP -----------------------------------------------------------------------------


class _Unreachable(Exception):
    """The server could not be asked at all (refused, timed out, reset)."""


class _TokenizeFailed(Exception):
    """The server has a tokenize endpoint, but it failed this time."""


def _shutdown(conn: http.client.HTTPConnection | None) -> None:
    """Wake a read blocked on this connection (from any thread)."""
    sock = getattr(conn, "sock", None) if conn is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Http:
    """Requests to one server; a fresh connection for each."""

    def __init__(self, spec: ServerSpec) -> None:
        parts = urlsplit(spec.base_url)
        self.spec = spec
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.base_path = parts.path.rstrip("/")
        # llama.cpp's /props and /tokenize, vLLM's /tokenize and llama-cpp-python's
        # /extras live at the server root, beside /v1.
        self.root_path = self.base_path.removesuffix("/v1")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.shown = clean(spec.base_url, max_len=200)

    def url(self, path: str) -> str:
        """An address for messages (the spec never holds credentials)."""
        return clean(self.origin + path, max_len=300)

    def key(self) -> str:
        return os.environ.get(self.spec.api_key_env, "") if self.spec.api_key_env else ""

    def redact(self, text: str) -> str:
        key = self.key()
        return text.replace(key, "[api key]") if len(key) >= 4 else text

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, *, stream: bool = False) -> dict[str, str]:
        h = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": f"prompt-workbench/{__version__}",
        }
        if key := self.key():
            h["Authorization"] = f"Bearer {key}"
        return h

    def unreachable(self, exc: BaseException, path: str, timeout: float) -> _Unreachable:
        where = self.url(path)
        if isinstance(exc, ConnectionRefusedError):
            text = f"cannot reach {where}: connection refused — is the server running?"
        elif isinstance(exc, socket.gaierror):
            text = f"cannot reach {where}: unknown host {clean(self.host)!r}"
        elif isinstance(exc, TimeoutError):
            text = f"no answer from {where} within {timeout:g} s (timeout)"
        elif isinstance(exc, ssl.SSLError):
            text = f"TLS error talking to {where}: {clean(exc.reason or str(exc))}"
        elif isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected):
            text = f"{where} closed the connection without answering"
        elif isinstance(exc, OSError):
            text = f"cannot reach {where}: {clean(exc.strerror or str(exc))}"
        else:
            text = f"bad answer from {where}: {clean(str(exc)) or type(exc).__name__}"
        return _Unreachable(self.redact(text))

    def error_message(self, status: int, raw: bytes, path: str) -> str:
        """The server's own words for a failed request, in one line."""
        said = ""
        try:
            data = json.loads(raw[:_MAX_JSON])
        except ValueError:
            data = None
        if isinstance(data, dict):
            err = data.get("error", data.get("detail", data.get("message")))
            if isinstance(err, dict):
                err = err.get("message") or err.get("msg") or err.get("type")
            elif isinstance(err, list) and err and isinstance(err[0], dict):
                err = err[0].get("msg")
            if isinstance(err, str):
                said = err
        elif raw and raw.lstrip()[:1] not in (b"<", b"{", b"["):
            said = raw[:500].decode("utf-8", "replace")
        said = clean(self.redact(said), max_len=400).strip()
        text = f"{self.url(path)} answered {status}" + (f": {said}" if said else "")
        if status in (401, 403):
            env = self.spec.api_key_env
            if env and not self.key():
                text += f" (the API key comes from ${env}, which is not set)"
            elif not env:
                text += " (this server wants an API key: name its environment variable with "
                text += "api_key_env in a [servers.NAME] table)"
        elif status == 404 and path.endswith("/models"):
            text += " (is the base URL right? it usually ends in /v1)"
        return text

    def ask(
        self, method: str, path: str, body: Any = None, timeout: float = ASK_TIMEOUT_S
    ) -> tuple[int, Any, bytes]:
        """One request; (status, parsed JSON or None, raw body). Raises _Unreachable."""
        timeout = min(timeout, self.spec.timeout)
        conn = self.connection(min(timeout, CONNECT_TIMEOUT_S))
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=self.headers())
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            resp = conn.getresponse()
            raw = resp.read(_MAX_JSON)
        except (OSError, http.client.HTTPException) as exc:
            raise self.unreachable(exc, path, timeout) from None
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, parsed, raw


# -- the runner -----------------------------------------------------------------------


class _Run:
    """One generation's connection, so that ``cancel`` can end it from any thread."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def attach(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conn = conn
        if self.cancelled.is_set():
            _shutdown(conn)

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            conn = self._conn
        _shutdown(conn)


@dataclass
class _Figures:
    """What a run measured on this side and what the server reported."""

    started: float
    first: float | None = None
    last: float | None = None
    chunks: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    finish: str | None = None
    done: bool = False


def _num(d: Mapping[str, Any], key: str) -> float | None:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


class RemoteRunner(Runner):
    """A model on an OpenAI-compatible server. Nothing is sent until the first
    ``connect``, ``count`` or ``generate``; ``header`` and ``n_ctx_for`` never
    touch the network (a UI may call them on its event loop) and are filled in
    once ``connect`` has asked the server."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.id = spec.id
        self._http = _Http(spec)
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
        self._run: _Run | None = None
        self._run_lock = threading.Lock()

    # -- what the panel shows -------------------------------------------------------

    def _make_header(self, meta: Mapping[str, Any]) -> Header:
        from workbench.engine.models.hub import quant_from_name

        name = self.model or f"model at {self._http.shown}"
        if name.lower().endswith(".gguf"):
            name = name.replace("\\", "/").rsplit("/", 1)[-1]
        n_params = _num(meta, "n_params")
        size = _num(meta, "size")
        n_train = _num(meta, "n_ctx_train")
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
            except _Unreachable as exc:
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
            if (n := _num(entry, "max_model_len")) is not None:  # vLLM
                self._dialect, self._n_ctx_server = "vllm", int(n)
            elif n := _num(entry, "n_ctx") or _num(meta, "n_ctx"):  # a server that says so
                self._n_ctx_server = int(n)
            self._n_ctx_train = int(_num(meta, "n_ctx_train") or 0)
            self._n_vocab = int(_num(meta, "n_vocab") or 0)
            if not self._dialect:
                self._ask_props()
            self.header = self._make_header(meta)
            self._connect_s = time.perf_counter() - started
            self._ready = True

    def _ask_props(self) -> None:
        """llama.cpp's server tells its context size at /props."""
        try:
            status, data, _ = self._http.ask("GET", f"{self._http.root_path}/props")
        except _Unreachable:
            return
        if status >= 400 or not isinstance(data, dict):
            return
        settings = data.get("default_generation_settings")
        n_ctx = _num(settings, "n_ctx") if isinstance(settings, dict) else None
        n_ctx = n_ctx or _num(data, "n_ctx")
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
                    raise _TokenizeFailed(api.error_message(status, raw, path))
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
            raise _TokenizeFailed(api.error_message(status, raw, path))
        if isinstance(data, dict):
            if (count := _num(data, "count")) is not None:
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
        except _Unreachable as exc:
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
        except _Unreachable as exc:
            raise RunnerError(str(exc)) from None
        except _TokenizeFailed as exc:  # this time only: estimate, and say why
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
        run = _Run()
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
                yield p.Done(run_id, "cancelled", self._stats(_Figures(time.perf_counter()),
                                                              params, n_prompt))  # fmt: skip
                return
            body = self._body(prompt, params)
            path = self._path(prompt)
            api = self._http
            figures = _Figures(time.perf_counter())
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
                    raw = resp.read(_MAX_JSON)
                yield p.Error(run_id, api.error_message(resp.status, raw, path), kind="server")
                return
            failure: BaseException | None = None
            try:
                yield from self._read(resp, run_id, prompt, figures, run)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failure = exc
            if figures.usage.get("prompt_tokens") is None and n_prompt:
                figures.usage["prompt_tokens"] = n_prompt
            stats = self._stats(figures, params, n_prompt)
            if run.cancelled.is_set():
                yield p.Done(run_id, "cancelled", stats)
            elif figures.done or figures.finish:
                yield p.Done(run_id, self._stop_reason(figures, params), stats)
            else:
                yield p.Error(run_id, self._early_end(figures, failure, body, path), kind="stream")
        finally:
            if conn is not None:
                run.cancel()  # a consumer that stopped early ends the stream too
                conn.close()
            with self._run_lock:
                if self._run is run:
                    self._run = None

    def _read(
        self,
        resp: http.client.HTTPResponse,
        run_id: int,
        prompt: p.Prompt,
        figures: _Figures,
        run: _Run,
    ) -> Iterator[p.Event]:
        """Tokens from the event stream; fills ``figures`` as it goes."""
        ctype = (resp.getheader("Content-Type") or "").lower()
        if "text/event-stream" not in ctype:
            # A server that ignored stream=true: one JSON answer, one piece of text.
            data = json.loads(resp.read(_MAX_JSON) or b"null")
            events: Iterator[Any] = iter([data, "[DONE]"])
        else:
            events = _sse(resp)
        chat = prompt.mode == "chat"
        for item in events:
            if run.cancelled.is_set():
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

    def _stop_reason(self, figures: _Figures, params: GenParams) -> p.StopReason:
        finish = figures.finish or "stop"
        if finish == "length":
            produced = self._completion_tokens(figures)
            # Cut before max_tokens: the server ran out of context.
            return "context" if 0 < produced < params.max_tokens else "max_tokens"
        if finish == "stop":
            # OpenAI's "stop" covers both the end of text and a stop string; with
            # stop strings set, a stop string is the likelier cause.
            return "stop" if params.stop else "eos"
        return "eos"

    @staticmethod
    def _completion_tokens(figures: _Figures) -> int:
        for value in (_num(figures.usage, "completion_tokens"),
                      _num(figures.timings, "predicted_n")):  # fmt: skip
            if value is not None:
                return int(value)
        return figures.chunks

    def _stats(self, figures: _Figures, params: GenParams, n_prompt: int) -> p.Stats:
        t = figures.timings
        end = figures.last or time.perf_counter()
        ttft = (figures.first - figures.started) if figures.first else 0.0
        produced = self._completion_tokens(figures)
        gen_tps = _num(t, "predicted_per_second") or 0.0
        if not gen_tps and figures.first and figures.last and figures.chunks > 1:
            span = figures.last - figures.first
            gen_tps = (figures.chunks - 1) / span if span > 0 else 0.0
        prompt_tokens = _num(figures.usage, "prompt_tokens")
        cached = _num(t, "cache_n")
        details = figures.usage.get("prompt_tokens_details")
        if cached is None and isinstance(details, dict):
            cached = _num(details, "cached_tokens")
        if prompt_tokens is None and _num(t, "prompt_n") is not None:
            prompt_tokens = (_num(t, "prompt_n") or 0) + (cached or 0)
        prompt_tokens = prompt_tokens if prompt_tokens is not None else float(n_prompt)
        prompt_tps = _num(t, "prompt_per_second") or 0.0
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
            n_ctx=self.n_ctx_for(params),
            max_tokens=params.max_tokens,
            n_threads=0,
        )

    def _early_end(
        self, figures: _Figures, failure: BaseException | None, body: dict[str, Any], path: str
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
        except _Unreachable as exc:
            return str(exc)
        return self._http.error_message(status, raw, path) if status >= 400 else ""

    def cancel(self) -> None:
        with self._run_lock:
            run = self._run
        if run is not None:
            run.cancel()

    def close(self) -> None:
        self.cancel()


def _sse(resp: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data`` of each server-sent event, as text."""
    data: list[str] = []
    while True:
        line = resp.readline(_MAX_LINE + 1)
        if not line:
            if data:
                yield "\n".join(data)
            return
        if len(line) > _MAX_LINE:
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
