"""llama.cpp in this process: its log, its backend, and loading a model's weights.

Runs only inside a worker process, like ``llama_local`` (and in the tests'
and benchmarks' own llama-cpp-python processes, through
``patch_default_params``). llama.cpp's log goes to stderr only for errors,
where the app reads why a load failed; the weight buffers a load makes are
kept for the ``Loaded`` event, so the app can show what repacking did.
"""

from __future__ import annotations

import ctypes
import re
import resource
import sys
from typing import Any

import llama_cpp as ll

from workbench.engine.errors import WorkbenchError

_backend_ready = False

_BUFFER_LINE = re.compile(r"load_tensors:\s+(\S+) model buffer size")
# ggml_log_level: 0 none, 1 info, 2 warn, 3 error, 4 debug, 5 continues the last.
_LOG_ERROR, _LOG_CONT = 3, 5


class _Log:
    """llama.cpp's log: errors go to stderr, where the app reads why a load
    failed; info lines are dropped, except the weight buffers a load makes,
    which are kept for the ``Loaded`` event."""

    def __init__(self) -> None:
        self.buffers: list[str] = []
        self._last_level = 0
        self.callback = ll.llama_log_callback(self._on_line)

    def _on_line(self, level: int, text: bytes, _user: Any) -> None:
        line = text.decode("utf-8", errors="replace")
        if level != _LOG_CONT:
            self._last_level = level
        if self._last_level in (0, _LOG_ERROR):
            sys.stderr.write(line)
        elif match := _BUFFER_LINE.search(line):
            self.buffers.append(match.group(1))


_log = _Log()


def patch_default_params(repack: bool) -> None:
    """Make every ``llama_cpp.Llama`` made in this process load with
    ``use_extra_bufts = repack``: for the processes that load models through
    llama-cpp-python's high-level API (its OpenAI-compatible server, the
    benchmarks' bare loop) rather than through ``LocalModel``."""
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def default_params() -> Any:
        params = original()
        params.use_extra_bufts = repack
        return params

    low.llama_model_default_params = default_params


class ModelError(WorkbenchError, RuntimeError):
    """A model could not load or run; the message is for the user."""


def _init_backend() -> None:
    global _backend_ready
    if not _backend_ready:
        ll.llama_log_set(_log.callback, ctypes.c_void_p(0))
        ll.llama_backend_init()
        _backend_ready = True


def load_model(path: str, mparams: Any) -> tuple[Any, list[str]]:
    """A loaded model and the weight buffers llama.cpp made for it."""
    _init_backend()
    _log.buffers.clear()
    model = ll.llama_model_load_from_file(path.encode(), mparams)
    if not model:
        raise ModelError(f"llama.cpp could not load {path} (see the log lines above)")
    return model, list(_log.buffers)


def load_weights(path: str, repack: bool) -> list[str]:
    """Load a model's weights only (no context, no decode) and return the
    buffers llama.cpp put them in: how to see what ``repack`` did."""
    mparams = ll.llama_model_default_params()
    mparams.use_extra_bufts = repack
    model, buffers = load_model(path, mparams)
    ll.llama_model_free(model)
    return buffers


def peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
