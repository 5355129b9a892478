"""CPU cores and memory: how many threads to use, and whether a model fits."""

from __future__ import annotations

import os

import psutil

from workbench.engine.models.modelinfo import ModelInfo

GiB = 1 << 30
# Compute buffers, the logits row, the Python interpreter and llama.cpp's
# own bookkeeping: measured at 60-120 MiB for the default models.
OVERHEAD_BYTES = 160 << 20


def physical_cores() -> int:
    """Cores this process may run on, counting physical cores only.

    llama.cpp gains nothing from hyper-threads, and two models sharing a
    core slow each other down.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or usable
    return max(1, min(usable, physical))


def estimate_bytes(info: ModelInfo, n_ctx: int) -> tuple[int, int]:
    """(weights, KV cache) in bytes for this model at this context size."""
    per_token = info.kv_bytes_per_token() or 0
    return info.file_size, per_token * n_ctx


def check_memory(info: ModelInfo, n_ctx: int, available: int | None = None) -> str | None:
    """None if the model fits in available memory, else a message saying
    how much it needs and what to change."""
    weights, kv = estimate_bytes(info, n_ctx)
    need = weights + kv + OVERHEAD_BYTES
    if available is None:
        available = psutil.virtual_memory().available
    if need <= available:
        return None
    return (
        f"needs about {need / GiB:.1f} GiB (weights {weights / GiB:.2f} GiB + KV cache "
        f"{kv / GiB:.1f} GiB for a {n_ctx:,}-token context) but {available / GiB:.1f} GiB "
        "is available: lower the context size (n_ctx) or close other programs"
    )
