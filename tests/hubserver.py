"""A small stand-in for the Hugging Face Hub, served on 127.0.0.1 for tests.

It speaks the endpoints huggingface_hub 2.4 uses to list and download files:

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: the
  repository's info (its commit ``sha``, ``gated``, ``private``);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing, with each
  LFS file's ``sha256`` and size;
- ``POST /api/models/{repo}/paths-info/{rev}``: the same for given paths;
- ``HEAD`` and ``GET /{repo}/resolve/{rev}/{file}``: the file, with the
  headers the client needs (``ETag``, ``X-Linked-Etag``, ``X-Linked-Size``,
  ``X-Repo-Commit``, ``Content-Length``) and byte ranges (``206`` with
  ``Content-Range``).

Errors carry the Hub's ``X-Error-Code`` header (``RepoNotFound``,
``GatedRepo``, ``RevisionNotFound``, ``EntryNotFound``), which is how the
client tells them apart. A test can make the next download drop its
connection half-way, answer 503 for a while, or advertise a wrong checksum,
and it can read every request the server saw.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_CHUNK = 1 << 20


@functools.cache
def _sha256_of_file(path: Path, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FakeFile:
    """A file in a fake repository: bytes, or a file on disk served as it is."""

    path: str
    source: Path | bytes
    lfs: bool = True
    advertised_sha256: str | None = None  # set to lie about the checksum
    gone: bool = False  # listed, but a download answers 404 (EntryNotFound)

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    @property
    def sha256(self) -> str:
        if isinstance(self.source, bytes):
            return hashlib.sha256(self.source).hexdigest()
        st = self.source.stat()
        return _sha256_of_file(self.source, st.st_mtime_ns, st.st_size)

    @property
    def listed_sha256(self) -> str:
        return self.advertised_sha256 or self.sha256

    @property
    def git_oid(self) -> str:
        if self.lfs:  # the id of the LFS pointer file, not of the content
            return hashlib.sha1(f"pointer {self.listed_sha256}".encode()).hexdigest()
        data = self.read(0, self.size)
        return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()

    @property
    def etag(self) -> str:
        return self.listed_sha256 if self.lfs else self.git_oid

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[start:end]
        with self.source.open("rb") as f:
            f.seek(start)
            return f.read(end - start)

    def chunks(self, start: int, end: int, size: int = _CHUNK) -> Iterator[bytes]:
        pos = start
        while pos < end:
            block = self.read(pos, min(end, pos + size))
            if not block:
                return
            yield block
            pos += len(block)

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "file",
            "oid": self.git_oid,
            "size": self.size,
            "path": self.path,
        }
        if self.lfs:
            entry["lfs"] = {"oid": self.listed_sha256, "size": self.size, "pointerSize": 134}
        return entry


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, FakeFile]
    commit: str
    token: str | None = None  # a private repository: this bearer token is needed
    gated: bool = False  # a gated repository: a token is needed (any, here)

    def info(self) -> dict[str, Any]:
        return {
            "_id": hashlib.sha1(self.repo_id.encode()).hexdigest()[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "sha": self.commit,
            "private": self.token is not None,
            "gated": "manual" if self.gated else False,
            "disabled": False,
            "tags": ["gguf"],
            "siblings": [{"rfilename": p} for p in sorted(self.files)],
        }

    def tree(self, under: str = "") -> list[dict[str, Any]]:
        prefix = under.strip("/") + "/" if under.strip("/") else ""
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for path in sorted(self.files):
            if not path.startswith(prefix):
                continue
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder.startswith(prefix) and folder not in folders:
                    folders.add(folder)
                    oid = hashlib.sha1(folder.encode()).hexdigest()
                    entries.append({"type": "directory", "oid": oid, "path": folder})
            entries.append(self.files[path].tree_entry())
        return entries


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class FakeHub:
    """The server. Use ``with FakeHub() as hub:``; ``hub.url`` is the endpoint."""

    repos: dict[str, FakeRepo] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    # Fault injection, consumed by the next file downloads (GET on resolve):
    drop_next_get_after: int | None = None  # send this many bytes, then close
    fail_next_gets: int = 0  # answer 503 to this many downloads
    # Past this many bytes of a download, send 64 KiB at a time, this often
    # (a slow link, so that a client sees its download in progress).
    slow_after: int | None = None
    slow_every_s: float = 0.05
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, Path | bytes],
        *,
        token: str | None = None,
        gated: bool = False,
        lfs: bool = True,
    ) -> FakeRepo:
        commit = hashlib.sha1(f"commit of {repo_id}".encode()).hexdigest()
        repo = FakeRepo(
            repo_id,
            {p: FakeFile(p, src, lfs=lfs) for p, src in files.items()},
            commit,
            token=token,
            gated=gated,
        )
        self.repos[repo_id] = repo
        return repo

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and contains in s.path
            ]

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------

    def _record(self) -> str:
        path = urlsplit(self.path).path
        with self.hub._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.hub.seen.append(Seen(self.command, path, headers))
        return path

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, **extra: str) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, **extra}
        self._send_json(status, {"error": message}, headers)

    def _find_repo(self, rest: str) -> tuple[FakeRepo | None, str]:
        for repo_id in sorted(self.hub.repos, key=len, reverse=True):
            if rest == repo_id or rest.startswith(repo_id + "/"):
                return self.hub.repos[repo_id], rest[len(repo_id) :]
        return None, rest

    def _authorized(self, repo: FakeRepo) -> bool:
        """False after answering 401 the way the Hub does."""
        auth = self.headers.get("Authorization", "")
        if repo.token is not None and auth != f"Bearer {repo.token}":
            self._error(401, "RepoNotFound", "Invalid username or password.")
            return False
        if repo.gated and not auth.startswith("Bearer "):
            self._error(
                401,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
            )
            return False
        return True

    def _revision_ok(self, repo: FakeRepo, revision: str) -> bool:
        if unquote(revision) in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return False

    # -- verbs --------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self._record()
        if path.startswith("/api/models/"):
            self._api(path.removeprefix("/api/models/"))
        else:
            self._resolve(path, body=True)

    def do_HEAD(self) -> None:
        path = self._record()
        self._resolve(path, body=False)

    def do_POST(self) -> None:
        path = self._record()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        repo, rest = self._find_repo(path.removeprefix("/api/models/"))
        if repo is None or not rest.startswith("/paths-info/"):
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if not self._authorized(repo) or not self._revision_ok(repo, rest.split("/")[2]):
            return
        try:
            wanted = json.loads(raw or b"{}").get("paths", [])
        except ValueError:
            from urllib.parse import parse_qs

            wanted = parse_qs(raw.decode()).get("paths", [])
        self._send_json(200, [repo.files[p].tree_entry() for p in wanted if p in repo.files])

    # -- endpoints ----------------------------------------------------------------

    def _api(self, rest: str) -> None:
        repo, suffix = self._find_repo(rest)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if not self._authorized(repo):
            return
        if suffix in ("", "/"):
            self._send_json(200, repo.info())
        elif suffix.startswith("/revision/"):
            if self._revision_ok(repo, suffix.removeprefix("/revision/")):
                self._send_json(200, repo.info())
        elif suffix.startswith("/tree/"):
            revision, _, under = suffix.removeprefix("/tree/").partition("/")
            if self._revision_ok(repo, revision):
                self._send_json(200, repo.tree(unquote(under)))
        else:
            self._error(404, "EntryNotFound", "Not found")

    def _resolve(self, path: str, *, body: bool) -> None:
        repo, rest = self._find_repo(path.lstrip("/"))
        if repo is None or not rest.startswith("/resolve/"):
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if not self._authorized(repo):
            return
        revision, _, name = rest.removeprefix("/resolve/").partition("/")
        if not self._revision_ok(repo, revision):
            return
        file = repo.files.get(unquote(name))
        if file is None or file.gone:
            self._error(404, "EntryNotFound", "Entry not found", **{"X-Repo-Commit": repo.commit})
            return
        size = file.size
        headers = {
            "ETag": f'"{file.etag}"',
            "X-Repo-Commit": repo.commit,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if file.lfs:
            headers["X-Linked-Etag"] = f'"{file.etag}"'
            headers["X-Linked-Size"] = str(size)
        if not body:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            return
        with self.hub._lock:  # a pending drop comes first, then the failures
            drop, self.hub.drop_next_get_after = self.hub.drop_next_get_after, None
            failing = drop is None and self.hub.fail_next_gets > 0
            if failing:
                self.hub.fail_next_gets -= 1
        if failing:
            self._send_json(503, {"error": "Service Unavailable"})
            return
        start, status = 0, 200
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted.removeprefix("bytes=").removesuffix("-"))
            if start >= size:
                self._error(416, "RangeNotSatisfiable", "Range Not Satisfiable")
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        sent = 0
        slow_after = self.hub.slow_after
        pace = threading.Event()
        try:
            fast_end = size if slow_after is None else min(size, start + slow_after)
            blocks = file.chunks(start, fast_end)
            if fast_end < size:
                blocks = itertools.chain(blocks, file.chunks(fast_end, size, 64 << 10))
            for block in blocks:
                if drop is not None and sent + len(block) >= drop:
                    self.wfile.write(block[: drop - sent])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if slow_after is not None and start + sent >= fast_end:
                    pace.wait(self.hub.slow_every_s)
                self.wfile.write(block)
                self.wfile.flush()
                sent += len(block)
        except OSError:  # the client went away (a cancelled download)
            self.close_connection = True


@contextmanager
def running_hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub
