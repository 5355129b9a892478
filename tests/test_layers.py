"""The engine stays free of the UI toolkit, and the app never loads llama.cpp.

Each check imports modules in a fresh interpreter and looks at
``sys.modules`` there, so what this test process has loaded does not count.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Only worker processes run these: they load llama.cpp on import.
WORKER_ONLY = {
    "workbench.engine.running.backends.llama_local",
    "workbench.engine.running.backends.llama_load",
    "workbench.engine.running.backends.llama_logprobs",
}

# The ones the app and the CLI use most, named so that a module that moves
# away fails here by name rather than silently dropping out of the checks.
ENGINE_MODULES = [
    "workbench.engine.models.catalog",
    "workbench.engine.running.compare",
    "workbench.engine.running.backends.local",
    "workbench.engine.running.backends.scripted",
    "workbench.engine.running.worker",
    "workbench.engine.running.worker_main",
    "workbench.engine.prompts.tokens",
    "workbench.engine.prompts.plan",
    "workbench.engine.models.bundled",
    "workbench.engine.history.store",
    "workbench.engine.history.recorder",
    "workbench.engine.history.export",
    "workbench.engine.history.diff",
    "workbench.engine.models.hub",
    "workbench.engine.running.backends.remote",
]
APP_MODULES = ["workbench.tui.app", "workbench.tui.seeing", "workbench.tui.history"]
CLI_MODULES = ["workbench.cli", "workbench.cli_hub", "workbench.cli_compare"]


def _modules_under(package: str) -> list[str]:
    """Every module in a package of this project, found on disk (not imported)."""
    folder = ROOT.joinpath(*package.split("."))
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_module_lists_name_real_modules() -> None:
    engine = set(_modules_under("workbench.engine"))
    tui = set(_modules_under("workbench.tui"))
    assert set(ENGINE_MODULES) <= engine
    assert engine >= WORKER_ONLY
    assert set(APP_MODULES) <= tui


def test_engine_imports_no_textual() -> None:
    loaded = _loaded_after_import([*_modules_under("workbench.engine"), *CLI_MODULES[1:]])
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)
    assert not any(m.startswith("workbench.tui") for m in loaded)


def test_the_app_side_never_imports_llama_cpp() -> None:
    """Only worker processes load llama.cpp; the app and CLI talk to them."""
    app_side = [m for m in _modules_under("workbench.engine") if m not in WORKER_ONLY]
    loaded = _loaded_after_import([*app_side, *_modules_under("workbench.tui"), *CLI_MODULES])
    assert set(APP_MODULES) <= loaded  # the app itself was imported
    assert "llama_cpp" not in loaded
    assert not (WORKER_ONLY & loaded)
