"""The engine stays free of the UI toolkit, and the app never loads llama.cpp."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "workbench.engine.models.catalog",
    "workbench.engine.running.compare",
    "workbench.engine.running.backends.local",
    "workbench.engine.running.backends.scripted",
    "workbench.engine.running.worker",
    "workbench.engine.running.worker_main",
    "workbench.engine.prompts.tokens",
    "workbench.engine.models.bundled",
    "workbench.engine.history.store",
    "workbench.engine.history.recorder",
    "workbench.engine.history.export",
    "workbench.engine.history.diff",
    "workbench.engine.models.hub",
    "workbench.engine.running.backends.remote",
    "workbench.cli_hub",
    "workbench.cli_compare",
]


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_imports_no_textual() -> None:
    loaded = _loaded_after_import(ENGINE_MODULES)
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)
    assert not any(m.startswith("workbench.tui") for m in loaded)


def test_the_app_side_never_imports_llama_cpp() -> None:
    """Only worker processes load llama.cpp; the app and CLI talk to them."""
    loaded = _loaded_after_import([*ENGINE_MODULES[:4], "workbench.cli"])
    assert "llama_cpp" not in loaded
