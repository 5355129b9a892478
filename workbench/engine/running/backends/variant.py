"""A panel's variant of a model: the model of another runner, with a label and,
if given, a prompt of its own.

Sweeps and few-shot variants run one model several times side by side
(``temperature=0.7``, ``one-shot``). A ``Comparison`` sends one prompt to
every job, so a variant with a prompt of its own answers ``count``,
``tokenize`` and ``generate`` with that prompt instead. Each variant needs an
``inner`` runner of its own: runners run one generation at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from workbench.engine.running import protocol as p
from workbench.engine.running.backends.base import Header, Runner
from workbench.engine.running.params import GenParams


class VariantRunner(Runner):
    """``inner`` shown as "<title> · <label>", with ``prompt`` (when not None)
    in place of the prompt it is asked to run. The history and exports see
    the model underneath through ``inner``."""

    def __init__(self, inner: Runner, label: str, prompt: p.Prompt | None = None) -> None:
        self.inner = inner
        self.label = label
        self.prompt = prompt
        self.id = inner.id

    @property
    def header(self) -> Header:
        # The inner header can change (a server describes its model on connect).
        h = self.inner.header
        return dataclasses.replace(h, title=f"{h.title} · {self.label}")

    @header.setter
    def header(self, value: Header) -> None:
        raise AttributeError("a variant's header comes from the runner it wraps")

    @property
    def info(self) -> Any:
        """The inner runner's ModelInfo, if it has one."""
        return getattr(self.inner, "info", None)

    def _prompt(self, prompt: p.Prompt) -> p.Prompt:
        return self.prompt if self.prompt is not None else prompt

    def n_ctx_for(self, params: GenParams) -> int:
        return self.inner.n_ctx_for(params)

    def count(self, prompt: p.Prompt, params: GenParams) -> p.Counted:
        return self.inner.count(self._prompt(prompt), params)

    def tokenize(self, prompt: p.Prompt, params: GenParams) -> p.Tokenized:
        return self.inner.tokenize(self._prompt(prompt), params)

    def generate(self, prompt: p.Prompt, params: GenParams, n_threads: int) -> Iterator[p.Event]:
        return self.inner.generate(self._prompt(prompt), params, n_threads)

    def cancel(self) -> None:
        self.inner.cancel()

    def set_threads(self, n_threads: int) -> None:
        self.inner.set_threads(n_threads)

    @property
    def uses_local_cpu(self) -> bool:
        return self.inner.uses_local_cpu

    def close(self) -> None:
        self.inner.close()
