"""Fixtures for the app's tests (helpers live in tui_support)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tui_support import NOTICES, Driver, Factory, fake_catalog  # type: ignore[import-not-found]

from workbench.engine.config import Settings
from workbench.tui.app import WorkbenchApp, make_app


@pytest.fixture(autouse=True)
def record_notices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep what every app notifies, for ``tui_support.notices``."""
    original = WorkbenchApp.notify

    def notify(self: WorkbenchApp, message: str, **kwargs: Any) -> None:
        NOTICES.setdefault(id(self), []).append(str(message))
        original(self, message, **kwargs)

    monkeypatch.setattr(WorkbenchApp, "notify", notify)
    yield
    NOTICES.clear()


@pytest.fixture
def factory() -> Factory:
    return Factory()


@pytest.fixture
def build_app(factory: Factory) -> Callable[..., WorkbenchApp]:
    """make_app with scripted models, a fake catalog and no cursor blink."""

    def build(
        models: list[str] | None = None, prompt: str = "", runner_factory: Any = None, **kw: Any
    ) -> WorkbenchApp:
        settings = kw.pop("settings", None) or Settings(scan_hf_cache=False)
        return make_app(
            settings=settings,
            models=models or ["smollm2", "gemma"],
            prompt=prompt,
            runner_factory=runner_factory or factory,
            catalog=kw.pop("catalog", None) or fake_catalog(),
            cursor_blink=False,
            **kw,
        )

    return build


@pytest.fixture
def drive() -> Callable[..., Driver]:
    """``async with drive(app) as d:`` runs the app at 80x24 (or ``size``)."""

    def make(app: WorkbenchApp, size: tuple[int, int] = (80, 24)) -> Driver:
        return Driver(app, size)

    return make
