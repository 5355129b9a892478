"""Where the workbench keeps its files.

Everything is computed when asked for, never at import time, so tests can
point ``WORKBENCH_HOME`` at a temporary directory before calling in.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "workbench"
HOME_ENV = "WORKBENCH_HOME"
MODELS_ENV = "WORKBENCH_MODELS_DIR"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The folder holding ``settings.toml``."""
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """The folder for history and user data."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """The folder for caches that may be deleted at any time."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def bundled_models_dir() -> Path:
    """The folder holding the default models and their catalog.

    In a source checkout this is ``models/`` at the top of the repository;
    ``WORKBENCH_MODELS_DIR`` overrides it.
    """
    value = os.environ.get(MODELS_ENV)
    if value:
        return Path(value).expanduser()
    return Path(__file__).resolve().parents[2] / "models"


def bundled_catalog_path() -> Path:
    """The TOML file describing the default models.

    It stays in the repository's ``models/`` folder even when
    ``WORKBENCH_MODELS_DIR`` moves the model files.
    """
    return Path(__file__).resolve().parents[2] / "models" / "catalog.toml"
