"""Where a model server is and how to reach it: ``ServerSpec``, from a URL
given wherever a model id goes or from a ``[servers.NAME]`` table in the
settings.

``http://127.0.0.1:8080/v1`` means the server's only model;
``http://127.0.0.1:8080/v1#MODEL`` names one. A spec never holds
credentials: an API key is named by the environment variable it is read from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from workbench.engine.errors import WorkbenchError
from workbench.engine.sanitize import clean

DEFAULT_TIMEOUT_S = 300.0  # a long prompt on a slow server can take minutes before a token
_ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/models")

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ServerSpec",
    "SpecError",
    "looks_like_url",
    "parse_url",
    "spec_for",
]


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
