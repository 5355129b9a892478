"""User settings, read from ``settings.toml`` in the config directory.

A wrong value never stops the program: it is reported as a warning that
names the key, and the default is used in its place.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engine import paths
from workbench.engine.running.cpu import REPACK_SETTINGS
from workbench.engine.running.params import GenParams, ParamError, from_mapping

DEFAULT_MODELS = ("smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m")

TEMPLATE = """\
# Prompt Workbench settings. Every key is optional; delete a line to get
# its default back. `workbench config` shows where this file lives.

# Models opened by a bare `workbench` (ids from `workbench models`).
default_models = ["smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"]

# More folders to search for .gguf files, besides the default models.
model_dirs = []

# Also list GGUF files found in the Hugging Face cache.
scan_hf_cache = true

# How models share the CPU when you run all panels:
#   "parallel"   all at once, cores divided (you watch every panel stream)
#   "sequential" one after another, each with all cores
schedule = "parallel"

# Threads in total across the models running at once (0 = physical cores).
threads = 0

# The context size chosen when a model's own setting is 0: the model's
# trained length, but never more than this (big windows load slowly and
# take memory for the KV cache).
max_default_ctx = 4096

# Weight repacking in llama.cpp: at load, copy weights into layouts made for
# this CPU's widest instructions (faster on AVX2/AVX-512/ARM for some quant
# types). On CPUs with AMX, llama.cpp's repacked kernels crash, so:
#   "auto" off where the CPU has AMX (or a model crashed with it before), else on
#   "on" / "off" always
# `workbench doctor` shows the choice and checks that models run.
cpu_repack = "auto"

# Shared generation settings; each panel can override them in the app.
[generation]
max_tokens = 256       # most new tokens per run
temperature = 0.7      # 0 = greedy decoding; higher = more varied
top_k = 40             # sample from the k likeliest tokens (0 = off)
top_p = 0.95           # nucleus sampling: smallest set adding up to p
min_p = 0.05           # drop tokens below min_p x the likeliest
repeat_penalty = 1.0   # 1 = off; above 1 discourages repeats
seed = 42              # same seed, same sampled text
stop = []              # strings that end a completion
n_ctx = 0              # context window; 0 = trained length, capped
logprobs = 0           # per-token probabilities and k alternatives (0 = off, max 10)

# Models on servers that speak the OpenAI API (llama.cpp's llama-server,
# Ollama, vLLM, llama-cpp-python's server). Open one in a panel with
# `-m NAME`, or `-m NAME#MODEL` for another model on the same server. A URL
# works without any setting: `-m http://127.0.0.1:8080/v1#MODEL`.
# [servers.local]
# base_url = "http://127.0.0.1:8080/v1"  # the API root, usually ending in /v1
# model = ""                 # "" = the server's only model
# api_key_env = ""           # environment variable holding the API key, if the
#                            # server wants one (the key itself never goes here)
# n_ctx = 0                  # context size when the server does not report it
# timeout = 300              # seconds to wait for the server before giving up
"""


@dataclass
class Settings:
    """The user's settings, with defaults for everything missing."""

    default_models: tuple[str, ...] = DEFAULT_MODELS
    model_dirs: tuple[Path, ...] = ()
    scan_hf_cache: bool = True
    schedule: str = "parallel"
    threads: int = 0
    max_default_ctx: int = 4096
    # llama.cpp's weight repacking: "auto", "on" or "off" (see engine/running/cpu.py).
    cpu_repack: str = "auto"
    generation: GenParams = field(default_factory=GenParams)
    # [servers.NAME] tables, checked: base_url, model, api_key_env (str), n_ctx (int),
    # timeout (float). See running/backends/remote_spec.py.
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; a missing file means all defaults."""
    path = path or paths.settings_path()
    settings = Settings(path=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return settings
    except OSError as exc:
        settings.warnings.append(f"{path}: cannot read ({exc.strerror}); using defaults")
        return settings
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        settings.warnings.append(f"{path}: not valid TOML ({exc}); using defaults")
        return settings
    _apply(settings, data, str(path))
    return settings


def _apply(s: Settings, data: dict[str, Any], where: str) -> None:
    def warn(key: str, msg: str) -> None:
        s.warnings.append(f"{where}: {key} {msg}; using the default")

    for key, value in data.items():
        if key == "default_models":
            if _is_str_list(value) and value:
                s.default_models = tuple(value)
            else:
                warn(key, "must be a non-empty list of model ids")
        elif key == "model_dirs":
            if _is_str_list(value):
                s.model_dirs = tuple(Path(v).expanduser() for v in value)
            else:
                warn(key, "must be a list of folder paths")
        elif key == "scan_hf_cache":
            if isinstance(value, bool):
                s.scan_hf_cache = value
            else:
                warn(key, "must be true or false")
        elif key == "schedule":
            if value in ("parallel", "sequential"):
                s.schedule = value
            else:
                warn(key, 'must be "parallel" or "sequential"')
        elif key == "threads":
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1024:
                s.threads = value
            else:
                warn(key, "must be a whole number, 0 for all physical cores")
        elif key == "max_default_ctx":
            if isinstance(value, int) and not isinstance(value, bool) and value >= 256:
                s.max_default_ctx = value
            else:
                warn(key, "must be a whole number of at least 256")
        elif key == "cpu_repack":
            if value in REPACK_SETTINGS:
                s.cpu_repack = value
            else:
                warn(key, 'must be "auto", "on" or "off"')
        elif key == "generation":
            if not isinstance(value, dict):
                warn(key, "must be a table")
                continue
            for name, item in value.items():
                try:
                    s.generation = from_mapping({name: item}, base=s.generation)
                except ParamError as exc:
                    s.warnings.append(f"{where}: generation.{exc}; using the default")
        elif key == "servers":
            if not isinstance(value, dict):
                warn(key, "must be a table of [servers.NAME] tables")
                continue
            for name, table in value.items():
                if checked := _server(str(name), table, s.warnings.append, where):
                    s.servers[str(name)] = checked
        else:
            s.warnings.append(f"{where}: unknown setting {key!r} ignored")


_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# The keys of a [servers.NAME] table besides base_url: a check, and what it wants.
_SERVER_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (lambda v: isinstance(v, str), "a model name"),
    "api_key_env": (
        lambda v: isinstance(v, str) and (not v or bool(_ENV_NAME.fullmatch(v))),
        "the name of an environment variable",
    ),
    "n_ctx": (
        lambda v: isinstance(v, int) and _number(v) and (v == 0 or 64 <= v <= 1 << 24),
        "0 or a whole number from 64",
    ),
    "timeout": (lambda v: _number(v) and 0 < v <= 86400, "a number of seconds above 0"),
}


def _server(
    name: str, table: object, warn: Callable[[str], None], where: str
) -> dict[str, Any] | None:
    """One [servers.NAME] table, checked; None (with a warning) if it cannot be used."""
    here = f"{where}: servers.{name}"
    if not _SERVER_NAME.fullmatch(name):
        warn(f"{here}: a server name takes letters, digits, '.', '_' and '-'; ignored")
        return None
    if not isinstance(table, dict):
        warn(f"{here} must be a table; ignored")
        return None
    url = table.get("base_url")
    if not (isinstance(url, str) and re.fullmatch(r"(?i)https?://[^/@\s]+(/\S*)?", url)):
        warn(
            f'{here}.base_url must be a URL like "http://127.0.0.1:8080/v1" (with no '
            "credentials in it); ignored"
        )
        return None
    out: dict[str, Any] = {"base_url": url, "model": "", "api_key_env": "", "n_ctx": 0}
    for key, value in table.items():
        if key == "base_url":
            continue
        if key in _SERVER_KEYS:
            ok, wanted = _SERVER_KEYS[key]
            if ok(value):
                out[key] = float(value) if key == "timeout" else value
            else:
                warn(f"{here}.{key} must be {wanted}; using the default")
        elif key in ("api_key", "key", "token"):
            warn(
                f"{here}.{key} is not read: keep the key in an environment variable and "
                "name it with api_key_env"
            )
        else:
            warn(f"{here}: unknown setting {key!r} ignored")
    return out


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def write_template(path: Path | None = None) -> Path:
    """Write the documented settings file if there is none; return its path."""
    path = path or paths.settings_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE, encoding="utf-8")
    return path
