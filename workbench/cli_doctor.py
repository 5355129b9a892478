"""``workbench doctor``: does llama.cpp run here, with the settings in force?

For each model (the defaults unless ``-m`` names others) it starts a worker
with the effective settings, loads the model (which ends with its first
decode), generates a few tokens greedily, and reports the CPU, llama.cpp's
own system info, the repacking choice with its reason, and the result. A
model whose worker crashes is retried as the app would retry it, and the
report says so. Exits 1 if any model fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.engine.config import Settings
from workbench.engine.sanitize import clean

PROMPT = "The sea is"
# Written into the virtualenv by `make setup`: the CPU key of the build.
BUILD_KEY_FILE = "llama-cpu-key"
N_TOKENS = 8


def add_parser(sub: Any, cpu_option: Any) -> None:
    doctor = sub.add_parser("doctor", help="check that local models load and generate on this CPU")
    doctor.add_argument("-m", "--model", action="append", dest="models", metavar="ID",
                        help="model to check (default: the default models)")  # fmt: skip
    doctor.add_argument("--json", action="store_true", help="print JSON")
    cpu_option(doctor)


def _check(runner: Any) -> dict[str, Any]:
    from workbench.engine.running import protocol as p
    from workbench.engine.running.params import GenParams
    from workbench.engine.running.resources import physical_cores

    row: dict[str, Any] = {"model": runner.id, "ok": False}
    choice = runner.repack_choice() if hasattr(runner, "repack_choice") else None
    if choice is not None:
        row["repack"] = {"setting": choice.setting, "on": choice.enabled, "why": choice.reason}
    params = GenParams(max_tokens=N_TOKENS, temperature=0.0)
    text = ""
    for event in runner.generate(p.Prompt(PROMPT, mode="raw"), params, physical_cores()):
        if isinstance(event, p.Loaded):
            row.update(
                load_s=round(event.load_s, 3),
                repacked=event.repack,
                buffers=event.buffers,
                system_info=event.system_info,
            )
            if event.note:
                row["note"] = event.note
        elif isinstance(event, p.Token):
            text += event.text
        elif isinstance(event, p.Done):
            row.update(
                ok=event.stats.completion_tokens > 0,
                tokens=event.stats.completion_tokens,
                gen_tps=round(event.stats.gen_tps, 1),
                text=text,
            )
            if not row["ok"]:
                row["error"] = "loaded, but generated no token"
        elif isinstance(event, p.Error):
            row["error"] = event.message
    return row


def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from workbench.engine.models.catalog import build_catalog
    from workbench.engine.running.cpu import repack_for, this_cpu
    from workbench.engine.running.resources import physical_cores
    from workbench.engine.running.runners import UnknownModel, make_runner

    cpu = this_cpu()
    catalog = build_catalog(settings)
    refs = args.models or list(settings.default_models)
    rows: list[dict[str, Any]] = []
    for ref in refs:
        try:
            runner = make_runner(ref, settings, catalog)
        except UnknownModel as exc:
            rows.append({"model": ref, "ok": False, "error": exc.message})
            continue
        if not runner.uses_local_cpu:
            rows.append({"model": ref, "ok": False, "error": "not a local model: nothing to check"})
            continue
        try:
            rows.append(_check(runner))
        finally:
            runner.close()
    general = repack_for(settings.cpu_repack)
    report = {
        "cpu": {
            "name": cpu.name,
            "cores": physical_cores(),
            "amx": list(cpu.amx),
            "flags": list(cpu.kernel_flags),
            "key": cpu.key(),
        },
        "llama_cpp_python": _version("llama-cpp-python"),
        "built_for": _built_for(),
        "system_info": next((r["system_info"] for r in rows if r.get("system_info")), ""),
        "cpu_repack": {
            "setting": settings.cpu_repack,
            "on": general.enabled,
            "why": general.reason,
        },
        "models": [{k: v for k, v in r.items() if k != "system_info"} for r in rows],
    }
    ok = bool(rows) and all(r["ok"] for r in rows)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0 if ok else 1


def _built_for() -> str | None:
    """The CPU key `make setup` compiled llama.cpp for, if it recorded one."""
    try:
        return (Path(sys.prefix) / BUILD_KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _print(report: dict[str, Any]) -> None:
    cpu = report["cpu"]
    amx = ", ".join(cpu["amx"]) if cpu["amx"] else "no"
    print(f"CPU          {clean(cpu['name'])} · {cpu['cores']} cores · AMX: {amx}")
    print(f"CPU features {' '.join(cpu['flags']) or '(none reported)'}")
    built = report["built_for"]
    if built is None:
        where = ""
    elif built == cpu["key"]:
        where = f", compiled for this CPU (key {built})"
    else:
        where = (
            f", compiled for ANOTHER CPU (key {built}; this one is {cpu['key']}): run make setup"
        )
    print(f"llama.cpp    llama-cpp-python {report['llama_cpp_python']}{where}")
    if report["system_info"]:
        print(f"             {clean(report['system_info'], max_len=400)}")
    rp = report["cpu_repack"]
    print(f"repacking    {'on' if rp['on'] else 'off'} (cpu_repack = \"{rp['setting']}\"): "
          f"{rp['why']}")  # fmt: skip
    for row in report["models"]:
        name = clean(row["model"])
        if row["ok"]:
            buffers = ", ".join(row.get("buffers") or []) or "?"
            print(f"{'ok':<12} {name}: loaded in {row['load_s']:.2f} s "
                  f"(repacking {'on' if row['repacked'] else 'off'}; weights in {buffers}), "
                  f"{row['tokens']} tokens at {row['gen_tps']:.0f} tok/s: "
                  f"{clean(PROMPT + row['text'], max_len=60)!r}")  # fmt: skip
        else:
            print(f"{'FAILED':<12} {name}: {clean(row.get('error', '?'), max_len=600)}")
        if row.get("note"):
            print(f"{'':<12} note: {clean(row['note'], max_len=600)}")
    if not all(r["ok"] for r in report["models"]):
        print("Local models do not run here as set up: see the lines above.", file=sys.stderr)
