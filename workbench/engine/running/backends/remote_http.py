"""HTTP to a model server: one request and its answer, the server's words
when it refuses, and a connection that another thread can cut.

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
from typing import Any
from urllib.parse import urlsplit

from workbench import __version__
from workbench.engine.running.backends.remote_spec import ServerSpec
from workbench.engine.sanitize import clean

CONNECT_TIMEOUT_S = 10.0
ASK_TIMEOUT_S = 15.0  # model list, properties, token counts
MAX_JSON = 8 << 20  # bytes read from a JSON answer at most


class Unreachable(Exception):
    """The server could not be asked at all (refused, timed out, reset)."""


class TokenizeFailed(Exception):
    """The server has a tokenize endpoint, but it failed this time."""


def shutdown(conn: http.client.HTTPConnection | None) -> None:
    """Wake a read blocked on this connection (from any thread)."""
    sock = getattr(conn, "sock", None) if conn is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Http:
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

    def unreachable(self, exc: BaseException, path: str, timeout: float) -> Unreachable:
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
        return Unreachable(self.redact(text))

    def error_message(self, status: int, raw: bytes, path: str) -> str:
        """The server's own words for a failed request, in one line."""
        said = ""
        try:
            data = json.loads(raw[:MAX_JSON])
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
        """One request; (status, parsed JSON or None, raw body). Raises Unreachable."""
        timeout = min(timeout, self.spec.timeout)
        conn = self.connection(min(timeout, CONNECT_TIMEOUT_S))
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=self.headers())
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            resp = conn.getresponse()
            raw = resp.read(MAX_JSON)
        except (OSError, http.client.HTTPException) as exc:
            raise self.unreachable(exc, path, timeout) from None
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, parsed, raw


class RunConnection:
    """One generation's connection, so that ``cancel`` can end it from any thread."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def attach(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conn = conn
        if self.cancelled.is_set():
            shutdown(conn)

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            conn = self._conn
        shutdown(conn)
