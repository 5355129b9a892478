"""Shared pieces: statistics, the machine, quiet periods, the default models."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent

# -- statistics ---------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    data = sorted(values)
    if not data:
        return math.nan
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


def percentile(values: Iterable[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats rounded for the JSON file, recursively."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def rotated(items: Sequence[Any], shift: int) -> list[Any]:
    """The items, starting at ``shift``: each round runs them in another order."""
    if not items:
        return []
    k = shift % len(items)
    return [*items[k:], *items[:k]]


# -- the machine --------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    mem = psutil.virtual_memory()
    return {
        "cpu": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(mem.total / (1 << 30), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "llama_cpp_python": _version("llama-cpp-python"),
        "textual": _version("textual"),
        "workbench": _version("workbench"),
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- quiet periods ------------------------------------------------------------


@dataclass
class Quiet:
    """Waits for the rest of the machine to be idle before a measurement.

    Other people's work on a shared machine shows up as CPU time while ours
    is idle; each round starts only when that is below ``max_busy`` (of all
    CPUs), or after ``timeout`` seconds regardless. What it saw is recorded.
    """

    max_busy: float = 0.15
    timeout: float = 30.0
    sample_s: float = 0.2

    def __post_init__(self) -> None:
        self.samples: list[float] = []
        self.interference: list[float] = []
        self.retries = 0
        self.dirty = 0
        self.waited_s = 0.0
        self.gave_up = 0

    def wait(self, patience: float = 1.0) -> float:
        """Block until the machine is quiet, or ``patience`` x timeout passed."""
        start = time.monotonic()
        busy = 1.0
        while True:
            busy = psutil.cpu_percent(interval=self.sample_s) / 100
            if busy <= self.max_busy:
                break
            if time.monotonic() - start > self.timeout * patience:
                self.gave_up += 1
                break
        self.samples.append(busy)
        self.waited_s += time.monotonic() - start
        return busy

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": len(self.samples),
            "busy_before_rounds_median": median(self.samples) if self.samples else None,
            "busy_before_rounds_max": max(self.samples) if self.samples else None,
            "waited_s": self.waited_s,
            "started_busy": self.gave_up,
            "samples_measured": len(self.interference),
            "interference_cores_median": median(self.interference) if self.interference else None,
            "interference_cores_max": max(self.interference) if self.interference else None,
            "samples_retaken": self.retries,
            "samples_kept_despite_interference": self.dirty,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _own_seconds() -> float:
    """CPU time of this process and everything it started (live or reaped)."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            c = child.cpu_times()
            total += c.user + c.system
    return float(total)


class Interference:
    """How many cores other people's work used while we measured.

    System-wide busy CPU time minus our own process tree's, over the wall
    time of the measurement. A sample taken while someone else's tests ran
    can be told apart, and taken again.
    """

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.busy0 = _busy_seconds()
        self.own0 = _own_seconds()

    def cores(self) -> float:
        wall = time.perf_counter() - self.t0
        if wall <= 0:
            return 0.0
        others = (_busy_seconds() - self.busy0) - (_own_seconds() - self.own0)
        return max(0.0, others / wall)


CLEAN = 0.15  # cores of other work below which a sample counts as clean


def measured(
    quiet: Quiet, fn: Any, *args: Any, limit: float = CLEAN, tries: int = 4
) -> tuple[Any, float]:
    """Run ``fn`` after a quiet period; again (up to ``tries`` times, waiting
    longer for quiet each time) while other work took more than ``limit``
    cores meanwhile. Returns the cleanest result and the interference it saw."""
    best: tuple[float, Any] | None = None
    for attempt in range(tries):
        quiet.wait(patience=1 + 2 * attempt)
        probe = Interference()
        result = fn(*args)
        seen = probe.cores()
        quiet.interference.append(seen)
        if best is None or seen < best[0]:
            best = (seen, result)
        if seen <= limit:
            break
        quiet.retries += 1
    assert best is not None
    if best[0] > limit:
        quiet.dirty += 1
    return best[1], best[0]


# -- the default models -------------------------------------------------------


@dataclass(frozen=True)
class BenchModel:
    key: str  # short name for tables
    entry: Any  # workbench.engine.models.catalog.Entry

    @property
    def path(self) -> Path:
        return Path(self.entry.path)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def title(self) -> str:
        return str(self.entry.display_name)


SHORT_NAMES = {"smollm2-135m-instruct-q4_1": "SmolLM2", "gemma-3-270m-q4_k_m": "Gemma"}


def default_models() -> list[BenchModel]:
    """The two default models, found the way the app finds them."""
    from workbench.engine.config import DEFAULT_MODELS, Settings
    from workbench.engine.models.catalog import build_catalog

    catalog = build_catalog(Settings(scan_hf_cache=False))
    found = []
    for ref in DEFAULT_MODELS:
        try:
            entry = catalog.get(ref)
        except KeyError:
            raise SystemExit(f"default model {ref} is not installed: run `make models`") from None
        if entry.info is None:
            raise SystemExit(f"default model {ref} is unreadable: {entry.error}")
        found.append(BenchModel(SHORT_NAMES.get(ref, ref), entry))
    return found


# -- prompts ------------------------------------------------------------------

# A raw-mode opening that both default models continue for thousands of
# tokens without an end-of-text token (checked by every figure that uses it).
TG_PROMPT = "Chapter One\n\nThe old lighthouse keeper climbed the spiral stairs one last time."

_PROSE = (
    "the river town kept its market open through the long winter while traders "
    "from the northern valleys brought salt wool and iron tools to sell and the "
    "children watched the boats come in under a grey sky that promised snow before "
    "evening; a council of elders met each week in the stone hall to settle "
    "disputes over grazing land water rights and the repair of the old bridge "
    "which had stood for three hundred years and carried every cart and drover "
    "between the hills and the sea"
)
_WORDS = _PROSE.split(" ")


def filler_text(n_words: int, seed: int = 0) -> str:
    """Plain English-like prose of about ``n_words`` words (deterministic)."""
    rng = random.Random(seed)
    out: list[str] = []
    sentence = 0
    while len(out) < n_words:
        length = rng.randint(8, 18)
        start = rng.randrange(len(_WORDS))
        words = [_WORDS[(start + i * rng.randint(1, 3)) % len(_WORDS)] for i in range(length)]
        words[0] = words[0].capitalize()
        out.extend(words)
        out[-1] += "."
        sentence += 1
        if sentence % 6 == 0:
            out[-1] += "\n\n"
    return " ".join(out[:n_words]).replace("\n\n ", "\n\n")


def python() -> str:
    return sys.executable
