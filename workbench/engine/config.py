"""User settings, read from ``settings.toml`` in the config directory.

A wrong value never stops the program: it is reported as a warning that
names the key, and the default is used in its place.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engine import paths
from workbench.engine.params import GenParams, ParamError, from_mapping

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
    generation: GenParams = field(default_factory=GenParams)
    servers: dict[str, dict[str, str]] = field(default_factory=dict)
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
            if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
                s.servers = {
                    str(k): {str(a): str(b) for a, b in v.items()} for k, v in value.items()
                }
            else:
                warn(key, "must be a table of [servers.NAME] tables")
        else:
            s.warnings.append(f"{where}: unknown setting {key!r} ignored")


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def write_template(path: Path | None = None) -> Path:
    """Write the documented settings file if there is none; return its path."""
    path = path or paths.settings_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE, encoding="utf-8")
    return path
