"""Helpers for the app's tests: scripted models, a small catalog, and a
driver that waits for the app's workers and messages instead of sleeping."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from workbench.engine.models.catalog import Catalog, Entry
from workbench.engine.models.modelinfo import ModelInfo
from workbench.engine.running.backends.base import Header, Runner
from workbench.engine.running.backends.scripted import ScriptedRunner
from workbench.tui.app import WorkbenchApp

REPLIES = {
    "smollm2": "The capital of France is Paris. It is known for the Eiffel Tower, "
    "its museums and its cafés.",
    "gemma": "Paris, and the next question in the quiz was about the longest river "
    "in Europe, which",
}
HEADERS = {
    "smollm2": Header("SmolLM2-135M-Instruct", "llama", "134.5M", "Q4_1", "93.8 MiB", 8192,
                      "instruct"),
    "gemma": Header("Gemma 3 270M", "gemma3", "268.1M", "Q4_K_M", "241.4 MiB", 32768, "base"),
}  # fmt: skip


# Every notification each app sent, by app: toasts are not drawn in a
# headless test, and the app's own list of them is private. Filled by the
# conftest's recorder.
NOTICES: dict[int, list[str]] = {}


def notices(app: WorkbenchApp) -> list[str]:
    """The messages ``app`` has notified, oldest first."""
    return NOTICES.get(id(app), [])


class TokenGate(threading.Event):
    """A gate for ScriptedRunner that lets tokens through one by one.

    ScriptedRunner waits on the gate before each token; ``allow(n)`` lets n
    more through. ``set()`` (what ScriptedRunner.cancel calls) opens it for
    good, so a cancelled run can finish.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tokens = threading.Semaphore(0)

    def allow(self, n: int = 1) -> None:
        for _ in range(n):
            self._tokens.release()

    def wait(self, timeout: float | None = None) -> bool:
        if super().is_set():
            return True
        while not self._tokens.acquire(timeout=0.05):
            if super().is_set():
                return True
        return True

    def set(self) -> None:
        super().set()
        self._tokens.release()


class Factory:
    """Makes scripted runners by id and remembers them, for assertions."""

    def __init__(self, **options: dict[str, Any]) -> None:
        self.options = options
        self.made: list[ScriptedRunner] = []

    def __call__(self, ref: str) -> Runner:
        if ref.startswith("unknown"):
            raise KeyError(f"no model {ref!r}; known ids: smollm2, gemma")
        base = ref.split("#")[0]
        kwargs: dict[str, Any] = {"header": HEADERS.get(base)}
        kwargs.update(self.options.get(ref, {}))
        runner = ScriptedRunner(ref, REPLIES.get(base, "one two three four five six"), **kwargs)
        self.made.append(runner)
        return runner

    def by_id(self, ref: str) -> list[ScriptedRunner]:
        return [r for r in self.made if r.id == ref]


def fake_info(name: str, arch: str, n_params: int, quant: str, size: int, ctx: int) -> ModelInfo:
    return ModelInfo(
        path=Path(f"/models/{name}.gguf"), file_size=size, name=name, architecture=arch,
        n_params=n_params, quant=quant, context_length=ctx, n_layer=30, n_embd=576,
        n_head=9, n_head_kv=3, key_length=None, value_length=None, has_chat_template=True,
        chat_template=None, tokenizer="gpt2", license=None, base_or_instruct="instruct",
        n_vocab=49152,
    )  # fmt: skip


def fake_catalog() -> Catalog:
    """Three entries the picker can show, one of them broken."""
    return Catalog(
        [
            Entry("smollm2", Path("/models/smollm2.gguf"), "default",
                  info=fake_info("SmolLM2-135M-Instruct", "llama", 134_515_008, "Q4_1",
                                 98_362_432, 8192)),
            Entry("gemma", Path("/models/gemma.gguf"), "default",
                  info=fake_info("Gemma 3 270M", "gemma3", 268_098_176, "Q4_K_M",
                                 253_113_024, 32768)),
            Entry("broken-file", Path("/models/broken-file.gguf"), "dir",
                  error="not a GGUF file (bad magic)"),
        ]
    )  # fmt: skip


async def settle(pilot: Pilot[Any], rounds: int = 100) -> None:
    """Wait until no worker runs and the messages they posted are handled.

    Waiting on one worker can start another (a count finishing starts the
    next one), so this loops until a round finds nothing to wait for.
    """
    app = pilot.app
    for _ in range(rounds):
        workers = [w for w in app.workers if not w.is_finished]
        await asyncio.gather(*(w.wait() for w in workers), return_exceptions=True)
        await pilot.pause()
        if not workers and not [w for w in app.workers if not w.is_finished]:
            await pilot.pause()
            return
    raise AssertionError("the app's workers did not settle")


class Driver:
    """Runs the app under Pilot and waits on what the app does, never on a clock.

    Every message the app handles sets an event; ``until`` re-checks its
    condition each time one arrives, so it wakes when a worker thread's
    message lands rather than after a fixed sleep.
    """

    def __init__(self, app: WorkbenchApp, size: tuple[int, int]) -> None:
        self.app = app
        self.size = size
        self._activity = asyncio.Event()
        self._context: Any = None
        self.pilot: Pilot[Any]

    def _hook(self, message: Any) -> None:
        self._activity.set()

    async def __aenter__(self) -> Driver:
        self._context = self.app.run_test(size=self.size, message_hook=self._hook)
        self.pilot = await self._context.__aenter__()
        await self.settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(*exc)

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)

    async def settle(self) -> None:
        await settle(self.pilot)

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Wait until the condition holds, re-checking whenever a message is handled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.pilot.pause()
            if condition():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), timeout=remaining)
            except TimeoutError:
                continue
