"""Shared fixtures. Every test runs with WORKBENCH_HOME in a temporary
directory, and the Hugging Face cache pointed away from the real one."""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# huggingface_hub reads these when it is first imported, so they are set
# before any test module imports the engine.
_HF_HOME = tempfile.mkdtemp(prefix="workbench-test-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("WORKBENCH_MODELS_DIR", None)

from workbench.engine import paths  # noqa: E402
from workbench.engine.models import bundled  # noqa: E402


@pytest.fixture(autouse=True)
def collectable_again() -> Iterator[None]:
    """An app freezes what it made at start (gc.freeze) for the rest of the
    process; tests run many apps in one process, so each test thaws them."""
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def workbench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home for settings and data, for every test."""
    home = tmp_path / "workbench-home"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    yield home


@pytest.fixture(scope="session")
def default_models_dir() -> Path:
    return paths.bundled_models_dir()


@pytest.fixture(scope="session")
def default_model_paths(default_models_dir: Path) -> dict[str, Path]:
    """The two default models, installed by `make models` (make test does it)."""
    found = {}
    for model in bundled.load_catalog():
        path = default_models_dir / model.file
        if not path.is_file():
            pytest.fail(f"{path} is missing: run `make models` first")
        key = "smollm2" if "smollm2" in model.id else "gemma"
        found[key] = path
    return found
