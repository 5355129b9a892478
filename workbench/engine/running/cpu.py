"""The CPU this runs on, and the llama.cpp setting that depends on it.

At load, llama.cpp can copy a model's weights into "extra buffer types":
layouts made for the CPU's widest instructions (``CPU_REPACK`` for AVX2,
AVX-512 and ARM, ``AMX`` for Intel's matrix units). On CPUs with AMX (Xeon
Sapphire Rapids and later, most rented cloud machines) llama.cpp's AMX
kernels crash with SIGSEGV on the first decode of a repacked model (upstream
llama.cpp issue 20824); loaded without repacking, the same models run
correctly. Elsewhere repacking is a speed-up for some quant types (the
README gives the measured figure).

So the choice is made here, in one place, and only here: ``cpu_repack`` in
settings.toml (``auto``, ``on``, ``off``), or ``--cpu-repack`` on the
command line. ``auto`` reads the CPU's feature flags from /proc/cpuinfo
(the kernel's names, as ``lscpu`` shows them) rather than asking llama.cpp,
because the process that decides (the app) never loads llama.cpp.

A worker that dies by a signal during its first decode with repacking on is
retried once with it off (``backends/local.py``); the retry that works is
remembered here, for that model file on this CPU, so that ``auto`` starts
with repacking off for it next time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPACK_SETTINGS = ("auto", "on", "off")
AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "amx_complex")
# The flags that decide which of llama.cpp's CPU kernels run: the ones worth
# naming when llama.cpp crashes, and the ones a built wheel depends on.
KERNEL_FLAGS = (
    "sse4_2", "avx", "f16c", "fma", "avx2", "bmi2", "avx_vnni",
    "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512vbmi",
    "avx512_bf16", "avx512_fp16", *AMX_FLAGS,
    "asimd", "asimddp", "i8mm", "sve", "sve2", "sme", "fphp", "bf16",
)  # fmt: skip
CHOICES_FILE = "cpu-choices.json"


@dataclass(frozen=True)
class Cpu:
    """A CPU as the kernel describes it: its name and its feature flags."""

    name: str
    flags: frozenset[str]

    @property
    def amx(self) -> tuple[str, ...]:
        """The AMX flags this CPU has (empty: no AMX)."""
        return tuple(f for f in AMX_FLAGS if f in self.flags)

    @property
    def kernel_flags(self) -> tuple[str, ...]:
        """The flags, of those llama.cpp's kernels use, that this CPU has."""
        return tuple(f for f in KERNEL_FLAGS if f in self.flags)

    def in_play(self) -> str:
        """The features worth naming when llama.cpp fails: AMX and the widest
        vector extensions, e.g. 'amx_int8, amx_tile, avx512f, avx2'."""
        wide = [
            f for f in self.kernel_flags if f.startswith(("amx", "avx512f", "avx2", "sve", "i8mm"))
        ]
        return ", ".join(wide) or "no wide vector extensions reported"

    def key(self) -> str:
        """A short stable id for this kind of CPU: the same name and kernel
        flags give the same key on any machine."""
        text = self.name + "|" + " ".join(self.kernel_flags)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_cpuinfo(text: str) -> Cpu:
    """A ``Cpu`` from the text of /proc/cpuinfo (x86 ``flags``, ARM ``Features``)."""
    name = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return Cpu(
        name or platform.processor() or platform.machine() or "unknown CPU", frozenset(flags)
    )


@functools.cache
def this_cpu() -> Cpu:
    """The CPU this process runs on (read once)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no flags, so no AMX is assumed
        text = ""
    return parse_cpuinfo(text)


@dataclass(frozen=True)
class RepackChoice:
    """Whether llama.cpp repacks weights at load, the setting it came from,
    and why, in words for the user."""

    enabled: bool
    setting: str
    reason: str

    @property
    def label(self) -> str:
        return "on" if self.enabled else "off"

    def describe(self) -> str:
        """'weight repacking off (auto): this CPU has AMX (amx_int8, ...) ...'"""
        return f"weight repacking {self.label} ({self.setting}): {self.reason}"


def decide_repack(setting: str, cpu: Cpu, remembered: str | None = None) -> RepackChoice:
    """The effective choice for ``setting`` on ``cpu``.

    ``remembered`` is the note of an earlier crash of this model file on this
    CPU with repacking on; it turns ``auto`` off.
    """
    if setting == "on":
        return RepackChoice(True, setting, "set to on")
    if setting == "off":
        return RepackChoice(False, setting, "set to off")
    if remembered:
        return RepackChoice(False, "auto", remembered)
    if cpu.amx:
        return RepackChoice(
            False,
            "auto",
            f"this CPU has AMX ({', '.join(cpu.amx)}), where llama.cpp's repacked "
            "AMX kernels crash on the first decode",
        )
    return RepackChoice(True, "auto", "no AMX on this CPU: repacked weights decode faster")


# -- crashes remembered per model file and CPU -----------------------------------


def _choices_path() -> Path:
    from workbench.engine import paths  # platformdirs: not needed for the key below

    return paths.data_dir() / CHOICES_FILE


def _file_key(model: Path) -> str:
    try:
        size = model.stat().st_size
    except OSError:
        size = -1
    return f"{model.resolve()}|{size}"


def _read_choices() -> dict[str, Any]:
    try:
        data = json.loads(_choices_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remembered_crash(model: Path, cpu: Cpu | None = None) -> str | None:
    """The note kept when this file crashed here with repacking on, if it did."""
    cpu = cpu or this_cpu()
    entry = _read_choices().get(cpu.key(), {}).get(_file_key(model))
    if isinstance(entry, dict) and isinstance(entry.get("note"), str):
        return str(entry["note"])
    return None


def remember_crash(model: Path, how: str, cpu: Cpu | None = None) -> str:
    """Keep that ``model`` crashed on this CPU with repacking on; return the
    note that ``auto`` will give as its reason from now on. A file that
    cannot be written only means the choice is not kept."""
    cpu = cpu or this_cpu()
    note = (
        f"llama.cpp crashed ({how}) on the first decode of this file with repacking on, "
        f"on {time.strftime('%Y-%m-%d')}"
    )
    data = _read_choices()
    per_cpu = data.get(cpu.key())
    if not isinstance(per_cpu, dict):
        per_cpu = data[cpu.key()] = {}
    per_cpu[_file_key(model)] = {"repack": False, "note": note, "cpu": cpu.name}
    path = _choices_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    return note


def repack_for(setting: str, model: Path | None = None, cpu: Cpu | None = None) -> RepackChoice:
    """The effective choice for a model file (or in general, without one)."""
    cpu = cpu or this_cpu()
    remembered = remembered_crash(model, cpu) if model is not None and setting == "auto" else None
    return decide_repack(setting, cpu, remembered)


def crash_advice(cpu: Cpu, choice: RepackChoice, how: str) -> str:
    """What to tell a user whose model's worker died by a signal on its
    first decode, in plain words."""
    if how.startswith("killed by signal SIGILL"):
        return (
            f"llama.cpp stopped on an instruction this CPU ({cpu.name}) does not have: "
            "it was built for another CPU. Reinstall it on this machine "
            "(make clean, then make setup)"
        )
    where = f"llama.cpp crashed on this CPU ({cpu.name}; features in play: {cpu.in_play()})"
    if choice.enabled:
        return (
            f"{where} on the model's first decode, with weight repacking on. "
            'Set cpu_repack = "off" in settings.toml, or pass --cpu-repack off'
        )
    return (
        f"{where} while loading the model, with weight repacking already off: "
        "the file may be broken"
    )


if __name__ == "__main__":
    # `python -m workbench.engine.running.cpu`: the key the Makefile files this CPU's
    # llama.cpp build under. Runs before anything is installed (stdlib only).
    print(this_cpu().key())
